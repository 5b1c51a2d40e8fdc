//! [`FakeIdm`]: a scriptable stand-in for Bodhi's Keycloak token endpoint.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use parking_lot::Mutex;
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;
use zeroize::Zeroize;

use crate::idm::transport::{BoxFuture, IdmReply, IdmRequest, Transport, body_too_large};
use crate::token::base64url_encode;
use crate::{DEFAULT_CLIENT_ID, Error, ErrorKind};

/// What the fake IDM does with one request instead of answering normally.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this status and body (`Content-Type: application/json` if it parses).
    Reply {
        /// The HTTP status.
        status: u16,
        /// The body, sent as is.
        body: String,
        /// A `Retry-After` header in seconds.
        retry_after: Option<u64>,
    },
    /// Accept the request and never answer.
    Hang,
    /// Refuse the connection (in memory: a connect error; over HTTP: the connection is
    /// closed without an answer).
    Refuse,
    /// Answer normally, after this delay.
    Delay(Duration),
}

impl Fault {
    /// An empty-bodied answer with this status.
    pub fn status(status: u16) -> Fault {
        Fault::Reply {
            status,
            body: String::new(),
            retry_after: None,
        }
    }

    /// An answer with this status and body.
    pub fn body(status: u16, body: impl Into<String>) -> Fault {
        Fault::Reply {
            status,
            body: body.into(),
            retry_after: None,
        }
    }

    /// An answer with this status and a `Retry-After` of `seconds`.
    pub fn retry_after(status: u16, seconds: u64) -> Fault {
        Fault::Reply {
            status,
            body: String::new(),
            retry_after: Some(seconds),
        }
    }
}

/// A request the fake IDM received.
#[derive(Clone)]
pub struct RecordedRequest {
    /// The URL path (`.../token` or `.../logout`).
    pub path: String,
    /// The form body exactly as sent (still URL-encoded).
    pub raw_form: String,
    /// The form, decoded.
    pub form: Vec<(String, String)>,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The `Content-Type` header (over HTTP; `None` in memory, where there are no headers).
    pub content_type: Option<String>,
    /// When it arrived (Tokio time: paused time in paused tests).
    pub at: Instant,
}

impl RecordedRequest {
    /// The value of a form field.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `grant_type` field, `None` for a logout.
    pub fn grant_type(&self) -> Option<&str> {
        self.field("grant_type")
    }
}

impl Drop for RecordedRequest {
    // The fake copies each form it receives; it wipes those copies when it drops them,
    // so a test scanning freed memory for a password sees only the crate's own copies.
    fn drop(&mut self) {
        self.raw_form.zeroize();
        for (key, value) in &mut self.form {
            key.zeroize();
            value.zeroize();
        }
        self.authorization.zeroize();
    }
}

impl fmt::Debug for RecordedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Test output may be shared: show the shape, not the secrets.
        f.debug_struct("RecordedRequest")
            .field("path", &self.path)
            .field("grant_type", &self.grant_type())
            .field("has_authorization", &self.authorization.is_some())
            .field("at", &self.at)
            .finish()
    }
}

/// What the fake decided to do with a request.
pub(crate) enum Outcome {
    Reply(IdmReply),
    Delayed(Duration, IdmReply),
    Hang,
    Refuse,
}

struct User {
    password: String,
    namespace: Option<String>,
}

struct Session {
    username: String,
    revoked: bool,
    /// Like Keycloak's session idle timeout: the session ends this long after its last
    /// login or refresh (the refresh token's lifetime), taking its access tokens with it.
    idle_until: Option<Instant>,
}

impl Session {
    fn alive(&self, now: Instant) -> bool {
        !self.revoked && self.idle_until.is_none_or(|at| now < at)
    }
}

struct Issued {
    session: u64,
    expires_at: Option<Instant>,
}

#[derive(Default)]
struct Counts {
    token: usize,
    password: usize,
    refresh: usize,
    logout: usize,
}

struct IdmState {
    users: HashMap<String, User>,
    client_id: String,
    access_ttl: Duration,
    refresh_ttl: Option<Duration>,
    latency: Duration,
    invalid_grant_status: u16,
    faults: VecDeque<Fault>,
    persistent_fault: Option<Fault>,
    requests: Vec<RecordedRequest>,
    recording: bool,
    counts: Counts,
    sessions: Vec<Session>,
    access_tokens: HashMap<String, Issued>,
    refresh_tokens: HashMap<String, Issued>,
    serial: u64,
}

/// A fake Keycloak token endpoint for tests, examples and benchmarks.
///
/// It speaks the vendor document's protocol (password and refresh grants, logout),
/// mints JWT-shaped tokens whose id token carries `preferred_username` and
/// `otherClaims.bodhiapi`, answers errors the way Keycloak does, counts and records
/// every request, and can be told to misbehave with [`Fault`]s. Clones share state.
///
/// Use it in memory with [`TokenManagerBuilder::fake_idm`](crate::TokenManagerBuilder::fake_idm)
/// (works under paused Tokio time) or over loopback HTTP with [`FakeIdm::serve`].
/// Its clock is Tokio's.
#[derive(Clone)]
pub struct FakeIdm {
    state: Arc<Mutex<IdmState>>,
    /// Every request received so far (token and logout), for [`FakeIdm::wait_for_requests`].
    received: Arc<watch::Sender<usize>>,
}

/// The fake wires itself into the builder; the builder knows no fake.
impl crate::TokenManagerBuilder {
    /// Talks to an in-memory [`FakeIdm`] instead of the network, so that tests can run
    /// under paused Tokio time.
    pub fn fake_idm(self, idm: &FakeIdm) -> Self {
        self.transport(Arc::new(idm.clone()), FakeIdm::IN_MEMORY_TOKEN_URL)
    }
}

impl Default for FakeIdm {
    fn default() -> Self {
        FakeIdm::new()
    }
}

impl fmt::Debug for FakeIdm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.lock();
        f.debug_struct("FakeIdm")
            .field("users", &state.users.len())
            .field("requests", &state.requests.len())
            .finish_non_exhaustive()
    }
}

impl FakeIdm {
    /// The token URL a manager built with `fake_idm` reports (never contacted).
    pub const IN_MEMORY_TOKEN_URL: &'static str =
        "https://fake-idm.invalid/auth/realms/hotschedules/protocol/openid-connect/token";
    /// The path of the token endpoint, as on Bodhi's IDM.
    pub const TOKEN_PATH: &'static str = "/auth/realms/hotschedules/protocol/openid-connect/token";
    /// The path of the end-session endpoint.
    pub const LOGOUT_PATH: &'static str =
        "/auth/realms/hotschedules/protocol/openid-connect/logout";

    /// A fake IDM with one user, `user` / `secret` in namespace `user-ns`; access tokens
    /// live 30 hours and refresh tokens 30 minutes, as the vendor document says.
    pub fn new() -> FakeIdm {
        let idm = FakeIdm {
            state: Arc::new(Mutex::new(IdmState {
                users: HashMap::new(),
                client_id: DEFAULT_CLIENT_ID.to_owned(),
                access_ttl: Duration::from_secs(108_000),
                refresh_ttl: Some(Duration::from_secs(1800)),
                latency: Duration::ZERO,
                invalid_grant_status: 401,
                faults: VecDeque::new(),
                persistent_fault: None,
                requests: Vec::new(),
                recording: true,
                counts: Counts::default(),
                sessions: Vec::new(),
                access_tokens: HashMap::new(),
                refresh_tokens: HashMap::new(),
                serial: 0,
            })),
            received: Arc::new(watch::Sender::new(0)),
        };
        idm.add_user("user", "secret", Some("user-ns"));
        idm
    }

    /// Adds (or replaces) a user.
    pub fn add_user(&self, username: &str, password: &str, namespace: Option<&str>) {
        self.state.lock().users.insert(
            username.to_owned(),
            User {
                password: password.to_owned(),
                namespace: namespace.map(str::to_owned),
            },
        );
    }

    /// Lifetime of new access tokens (`expires_in`).
    pub fn set_access_ttl(&self, ttl: Duration) {
        self.state.lock().access_ttl = ttl;
    }

    /// Lifetime of new refresh tokens; `None` sends `refresh_expires_in: 0` (no expiry).
    pub fn set_refresh_ttl(&self, ttl: Option<Duration>) {
        self.state.lock().refresh_ttl = ttl;
    }

    /// A delay before every answer, so that concurrent callers pile up on one flight.
    pub fn set_latency(&self, latency: Duration) {
        self.state.lock().latency = latency;
    }

    /// The status of `invalid_grant` answers: 401 (Keycloak up to 26.5) or 400.
    pub fn set_invalid_grant_status(&self, status: u16) {
        self.state.lock().invalid_grant_status = status;
    }

    /// Queues faults for the next requests, one each.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state.lock().faults.extend(faults);
    }

    /// A fault for every request after the queued ones, until set to `None`.
    pub fn set_persistent_fault(&self, fault: Option<Fault>) {
        self.state.lock().persistent_fault = fault;
    }

    /// Whether to keep every request for [`requests`](Self::requests) (on by default).
    /// Long soak runs turn it off; the counters keep counting.
    pub fn set_recording(&self, recording: bool) {
        let mut state = self.state.lock();
        state.recording = recording;
        if !recording {
            state.requests = Vec::new();
        }
    }

    /// Every request received so far (while recording).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.lock().requests.clone()
    }

    /// Waits until the fake has received at least `n` requests in all (token and
    /// logout), counted from its creation.
    ///
    /// Wait for this rather than yielding a fixed number of times: a test that yields N
    /// times depends on how many polls the manager takes to send a request, and breaks
    /// when one more `.await` appears on the way without any behaviour changing. Under
    /// paused Tokio time, put a bound on it with `tokio::time::timeout` so a missing
    /// request fails the test instead of hanging it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), bodhi_auth::Error> {
    /// use std::time::Duration;
    /// use bodhi_auth::testing::FakeIdm;
    /// use bodhi_auth::{Credentials, TokenManager};
    ///
    /// let idm = FakeIdm::new();
    /// idm.set_access_ttl(Duration::from_secs(100));
    /// let manager = TokenManager::builder(Credentials::new("user", "secret"))
    ///     .fake_idm(&idm)
    ///     .build()?;
    /// let first = manager.access_token().await?;
    /// tokio::time::advance(Duration::from_secs(71)).await; // past refresh-due
    /// manager.access_token().await?; // still `first`; a refresh starts in the background
    /// idm.wait_for_requests(2).await;
    /// assert_eq!(idm.refresh_grants(), 1);
    /// # let _ = first;
    /// # Ok(()) }
    /// ```
    pub async fn wait_for_requests(&self, n: usize) {
        let mut received = self.received.subscribe();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = received.wait_for(|&count| count >= n).await;
    }

    /// Requests to the token endpoint.
    pub fn token_requests(&self) -> usize {
        self.state.lock().counts.token
    }

    /// Password grants received.
    pub fn password_grants(&self) -> usize {
        self.state.lock().counts.password
    }

    /// Refresh grants received.
    pub fn refresh_grants(&self) -> usize {
        self.state.lock().counts.refresh
    }

    /// Logout requests received.
    pub fn logouts(&self) -> usize {
        self.state.lock().counts.logout
    }

    /// Sessions that are neither logged out, revoked nor idled out.
    pub fn active_sessions(&self) -> usize {
        let now = Instant::now();
        let state = self.state.lock();
        state.sessions.iter().filter(|s| s.alive(now)).count()
    }

    /// Ends every session, as a Keycloak admin logging the users out: their access and
    /// refresh tokens stop working.
    pub fn revoke_sessions(&self) {
        for session in &mut self.state.lock().sessions {
            session.revoked = true;
        }
    }

    /// Makes one access token invalid (its session and refresh token live on), as an API
    /// rejecting exactly that token.
    pub fn revoke_access_token(&self, access_token: &str) {
        self.state.lock().access_tokens.remove(access_token);
    }

    /// The user name an access token belongs to, if it is issued, unexpired and its
    /// session alive: what a resource server would check.
    pub fn validate(&self, access_token: &str) -> Option<String> {
        let state = self.state.lock();
        let issued = state.access_tokens.get(access_token)?;
        if issued.expires_at.is_some_and(|at| Instant::now() >= at) {
            return None;
        }
        let session = state.sessions.get(issued.session as usize)?;
        session
            .alive(Instant::now())
            .then(|| session.username.clone())
    }

    /// Handles one request. `path` is the URL path; `authorization` the header.
    pub(crate) fn handle(
        &self,
        path: &str,
        raw_form: &str,
        authorization: Option<&str>,
        content_type: Option<&str>,
    ) -> Outcome {
        let mut state = self.state.lock();
        let form: Vec<(String, String)> = form_urlencoded::parse(raw_form.as_bytes())
            .into_owned()
            .collect();
        let request = RecordedRequest {
            path: path.to_owned(),
            raw_form: raw_form.to_owned(),
            form,
            authorization: authorization.map(str::to_owned),
            content_type: content_type.map(str::to_owned),
            at: Instant::now(),
        };
        let counts = &mut state.counts;
        if path.ends_with("/logout") {
            counts.logout += 1;
        } else {
            counts.token += 1;
            match request.grant_type() {
                Some("password") => counts.password += 1,
                Some("refresh_token") => counts.refresh += 1,
                _ => {}
            }
        }
        if state.recording {
            state.requests.push(request.clone());
        }
        self.received.send_modify(|count| *count += 1);
        let fault = state
            .faults
            .pop_front()
            .or_else(|| state.persistent_fault.clone());
        let latency = state.latency;
        let mut delay = latency;
        match fault {
            Some(Fault::Hang) => return Outcome::Hang,
            Some(Fault::Refuse) => return Outcome::Refuse,
            Some(Fault::Reply {
                status,
                body,
                retry_after,
            }) => {
                let reply = IdmReply {
                    status: StatusCode::from_u16(status)
                        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    retry_after: retry_after.map(Duration::from_secs),
                    body: Bytes::from(body),
                };
                return delayed(delay, reply);
            }
            Some(Fault::Delay(extra)) => delay += extra,
            None => {}
        }
        let reply = if path.ends_with("/logout") {
            state.logout(&request)
        } else {
            state.token(&request)
        };
        delayed(delay, reply)
    }
}

fn delayed(delay: Duration, reply: IdmReply) -> Outcome {
    if delay.is_zero() {
        Outcome::Reply(reply)
    } else {
        Outcome::Delayed(delay, reply)
    }
}

fn json_reply(status: u16, body: serde_json::Value) -> IdmReply {
    IdmReply {
        status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        retry_after: None,
        body: Bytes::from(body.to_string()),
    }
}

fn oauth_error(status: u16, error: &str, description: &str) -> IdmReply {
    json_reply(
        status,
        json!({"error": error, "error_description": description}),
    )
}

impl IdmState {
    fn token(&mut self, request: &RecordedRequest) -> IdmReply {
        if request.field("client_id") != Some(self.client_id.as_str()) {
            return oauth_error(
                401,
                "invalid_client",
                "Invalid client or Invalid client credentials",
            );
        }
        match request.grant_type() {
            Some("password") => {
                let username = request.field("username").unwrap_or_default();
                let password = request.field("password").unwrap_or_default();
                let known = self
                    .users
                    .get(username)
                    .is_some_and(|u| u.password == password);
                if !known {
                    return oauth_error(
                        self.invalid_grant_status,
                        "invalid_grant",
                        "Invalid user credentials",
                    );
                }
                self.sessions.push(Session {
                    username: username.to_owned(),
                    revoked: false,
                    idle_until: None,
                });
                let session = self.sessions.len() as u64 - 1;
                let openid = request
                    .field("scope")
                    .is_some_and(|s| s.split(' ').any(|s| s == "openid"));
                self.issue(session, openid)
            }
            Some("refresh_token") => {
                let presented = request.field("refresh_token").unwrap_or_default();
                let Some(issued) = self.refresh_tokens.get(presented) else {
                    return oauth_error(400, "invalid_grant", "Invalid refresh token");
                };
                let session = issued.session;
                if issued.expires_at.is_some_and(|at| Instant::now() >= at) {
                    return oauth_error(400, "invalid_grant", "Token is not active");
                }
                if self.sessions[session as usize].revoked {
                    return oauth_error(400, "invalid_grant", "Session not active");
                }
                self.issue(session, true)
            }
            Some(_) => oauth_error(400, "unsupported_grant_type", "Unsupported grant_type"),
            None => oauth_error(400, "invalid_request", "Missing form parameter: grant_type"),
        }
    }

    fn logout(&mut self, request: &RecordedRequest) -> IdmReply {
        let presented = request.field("refresh_token").unwrap_or_default();
        let Some(issued) = self.refresh_tokens.get(presented) else {
            return oauth_error(400, "invalid_grant", "Invalid refresh token");
        };
        let session = issued.session as usize;
        self.sessions[session].revoked = true;
        IdmReply {
            status: StatusCode::NO_CONTENT,
            retry_after: None,
            body: Bytes::new(),
        }
    }

    fn issue(&mut self, session: u64, with_id_token: bool) -> IdmReply {
        self.serial += 1;
        let serial = self.serial;
        let now = Instant::now();
        // Forget dead tokens, so a long soak run does not grow the fake without bound.
        let live = |issued: &Issued| issued.expires_at.is_none_or(|at| now < at);
        self.access_tokens.retain(|_, issued| live(issued));
        self.refresh_tokens.retain(|_, issued| live(issued));
        let idle_until = self.refresh_ttl.map(|ttl| now + ttl);
        self.sessions[session as usize].idle_until = idle_until;
        let username = self.sessions[session as usize].username.clone();
        let namespace = self.users.get(&username).and_then(|u| u.namespace.clone());
        let jwt = |typ: &str| {
            let header = base64url_encode(br#"{"alg":"none","typ":"JWT"}"#);
            let mut claims = json!({
                "jti": format!("{typ}-{serial}"),
                "typ": typ,
                "azp": self.client_id,
                "preferred_username": username,
                "session_state": format!("session-{session}"),
            });
            if let Some(namespace) = &namespace {
                claims["otherClaims"] = json!({ "bodhiapi": namespace });
            }
            let payload = base64url_encode(claims.to_string().as_bytes());
            format!("{header}.{payload}.fake-signature-{serial}")
        };
        let access_token = jwt("Bearer");
        let refresh_token = jwt("Refresh");
        self.access_tokens.insert(
            access_token.clone(),
            Issued {
                session,
                expires_at: Some(now + self.access_ttl),
            },
        );
        self.refresh_tokens.insert(
            refresh_token.clone(),
            Issued {
                session,
                expires_at: self.refresh_ttl.map(|ttl| now + ttl),
            },
        );
        let mut body = json!({
            "access_token": access_token,
            "expires_in": self.access_ttl.as_secs(),
            "refresh_expires_in": self.refresh_ttl.map_or(0, |t| t.as_secs()),
            "refresh_token": refresh_token,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "session_state": format!("session-{session}"),
            "scope": if with_id_token { "openid profile email" } else { "profile email" },
        });
        if with_id_token {
            body["id_token"] = json!(jwt("ID"));
        }
        json_reply(200, body)
    }
}

impl Transport for FakeIdm {
    fn send(&self, request: IdmRequest, body_limit: usize) -> BoxFuture<Result<IdmReply, Error>> {
        // The crate only builds UTF-8 forms; anything else reads as an empty form.
        let form = std::str::from_utf8(&request.body).unwrap_or_default();
        let authorization = request.authorization.as_ref().and_then(|v| v.to_str().ok());
        let outcome = self.handle(request.url.path(), form, authorization, None);
        Box::pin(async move {
            let reply = match outcome {
                Outcome::Reply(reply) => reply,
                Outcome::Delayed(delay, reply) => {
                    tokio::time::sleep(delay).await;
                    reply
                }
                Outcome::Hang => std::future::pending().await,
                Outcome::Refuse => {
                    return Err(Error::new(
                        ErrorKind::Unavailable,
                        "could not connect to the IDM (connection refused)",
                    ));
                }
            };
            if reply.body.len() > body_limit {
                return Err(body_too_large(body_limit).with_status(reply.status));
            }
            Ok(reply)
        })
    }
}
