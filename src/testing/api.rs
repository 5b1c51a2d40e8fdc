//! [`FakeApi`]: a Bodhi-like resource server that checks tokens with a [`FakeIdm`], and
//! can be scripted with [`Reply`]s and keep a log of [`ApiRequest`]s.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::Full;
use parking_lot::Mutex;
use tokio::time::Instant;

use super::FakeIdm;

/// A fake Bodhi API: 200 with a small JSON body for a live token from its [`FakeIdm`],
/// 401 with `WWW-Authenticate: Bearer error="invalid_token"` otherwise.
///
/// A `tower::Service` for any request body (in memory) and, with [`FakeApi::serve`], a
/// loopback HTTP server. Clones share counters, script and log.
///
/// # Scripting
/// Each request is answered by the first of these that applies:
/// 1. the oldest [queued](FakeApi::enqueue) [`Reply`], whatever the request and its token;
/// 2. a 401 forced by [`set_reject_all`](FakeApi::set_reject_all) or
///    [`reject_next`](FakeApi::reject_next);
/// 3. for a request without a live token, the 401 above;
/// 4. the [`Reply`] [routed](FakeApi::route) to its method and path;
/// 5. the default 200, `{"user":"<user name>"}`.
///
/// With [`set_recording(true)`](FakeApi::set_recording), every request and the status
/// it got are kept, in order, for [`recorded`](FakeApi::recorded).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), bodhi_auth::Error> {
/// use bodhi_auth::testing::{FakeApi, FakeIdm, Reply};
/// use bodhi_auth::{Credentials, TokenManager};
/// use http::Method;
///
/// let idm = FakeIdm::new();
/// let api = FakeApi::new(&idm);
/// api.set_recording(true);
/// api.route(Method::GET, "/stores", Reply::json(200, r#"[{"id":7}]"#));
/// api.enqueue(Reply::status(503)); // the next request, whatever it is
///
/// let manager = TokenManager::builder(Credentials::new("user", "secret"))
///     .fake_idm(&idm)
///     .build()?;
/// let token = manager.access_token().await?;
/// let get = || {
///     http::Request::get("/stores")
///         .header(http::header::AUTHORIZATION, token.header_value())
///         .body(())
///         .unwrap()
/// };
/// assert_eq!(api.answer(&get()).status(), 503);
/// assert_eq!(api.answer(&get()).status(), 200); // the route
/// assert_eq!(api.recorded()[1].bearer(), Some(token.secret()));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct FakeApi {
    idm: FakeIdm,
    state: Arc<ApiState>,
}

#[derive(Default)]
struct ApiState {
    requests: AtomicUsize,
    unauthorized: AtomicUsize,
    reject_all: AtomicBool,
    reject_next: AtomicUsize,
    script: Mutex<Script>,
}

#[derive(Default)]
struct Script {
    queue: VecDeque<Reply>,
    routes: Vec<(Method, String, Reply)>,
    recording: bool,
    log: Vec<ApiRequest>,
}

impl fmt::Debug for FakeApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let script = self.state.script.lock();
        f.debug_struct("FakeApi")
            .field("requests", &self.requests())
            .field("unauthorized", &self.unauthorized())
            .field("queued", &script.queue.len())
            .field("routes", &script.routes.len())
            .finish_non_exhaustive()
    }
}

impl FakeApi {
    /// An API that trusts the tokens of `idm`.
    pub fn new(idm: &FakeIdm) -> FakeApi {
        FakeApi {
            idm: idm.clone(),
            state: Arc::default(),
        }
    }

    /// Answer 401 to every request (a user without rights to this API).
    pub fn set_reject_all(&self, reject: bool) {
        self.state.reject_all.store(reject, Ordering::SeqCst);
    }

    /// Answer 401 to the next `n` requests, whatever their token.
    pub fn reject_next(&self, n: usize) {
        self.state.reject_next.store(n, Ordering::SeqCst);
    }

    /// Answer the next request with `reply`, whatever its method, path and token; each
    /// call queues one more, answered in the order queued. When the queue is empty, the
    /// API answers as usual again.
    pub fn enqueue(&self, reply: Reply) {
        self.state.script.lock().queue.push_back(reply);
    }

    /// Answer every request for `method` and `path` (the query is ignored) that carries
    /// a live token with `reply`, instead of the default 200; a request without a live
    /// token still gets the 401. Replaces an earlier route for the same method and path.
    pub fn route(&self, method: Method, path: &str, reply: Reply) {
        let mut script = self.state.script.lock();
        script
            .routes
            .retain(|(m, p, _)| !(*m == method && p == path));
        script.routes.push((method, path.to_owned(), reply));
    }

    /// Keep a log of the requests from now on (off by default, so a long test keeps
    /// nothing it does not read). Turning it off empties the log.
    pub fn set_recording(&self, recording: bool) {
        let mut script = self.state.script.lock();
        script.recording = recording;
        if !recording {
            script.log = Vec::new();
        }
    }

    /// The requests received while recording, in the order they arrived.
    pub fn recorded(&self) -> Vec<ApiRequest> {
        self.state.script.lock().log.clone()
    }

    /// Requests received.
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Requests answered 401.
    pub fn unauthorized(&self) -> usize {
        self.state.unauthorized.load(Ordering::SeqCst)
    }

    /// The answer to a `GET /` with this `Authorization` header and no other.
    pub fn respond(&self, authorization: Option<&HeaderValue>) -> Response<Full<Bytes>> {
        let mut headers = HeaderMap::new();
        if let Some(authorization) = authorization {
            headers.insert(AUTHORIZATION, authorization.clone());
        }
        self.reply(&Method::GET, &Uri::from_static("/"), &headers, None)
    }

    /// The answer to `request` (its body is not read, nor recorded).
    pub fn answer<B>(&self, request: &Request<B>) -> Response<Full<Bytes>> {
        self.reply(request.method(), request.uri(), request.headers(), None)
    }

    /// Picks the answer (see "Scripting" above), counts it and records it.
    pub(super) fn reply(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: Option<Bytes>,
    ) -> Response<Full<Bytes>> {
        self.state.requests.fetch_add(1, Ordering::SeqCst);
        let mut script = self.state.script.lock();
        let response = match script.queue.pop_front() {
            Some(reply) => reply.response(),
            None => self.usual_answer(&script, method, uri.path(), headers),
        };
        if response.status() == StatusCode::UNAUTHORIZED {
            self.state.unauthorized.fetch_add(1, Ordering::SeqCst);
        }
        if script.recording {
            script.log.push(ApiRequest {
                method: method.clone(),
                uri: uri.clone(),
                headers: headers.clone(),
                body,
                status: response.status(),
                at: Instant::now(),
            });
        }
        response
    }

    fn usual_answer(
        &self,
        script: &Script,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Response<Full<Bytes>> {
        let forced = self.state.reject_all.load(Ordering::SeqCst)
            || self
                .state
                .reject_next
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        let user = headers
            .get(AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .and_then(|token| self.idm.validate(token))
            .filter(|_| !forced);
        // The usual answers are built in place, not through a `Reply`: a served fake is
        // part of the reqwest rows of `benches/allocations.rs`.
        let Some(user) = user else {
            let mut response = json_response(Bytes::new());
            *response.status_mut() = StatusCode::UNAUTHORIZED;
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static(INVALID_TOKEN));
            return response;
        };
        let route = script
            .routes
            .iter()
            .find(|(m, p, _)| m == method && p == path);
        match route {
            Some((_, _, reply)) => reply.response(),
            None => json_response(Bytes::from(format!("{{\"user\":\"{user}\"}}"))),
        }
    }
}

/// The API's `WWW-Authenticate` for a request without a live token.
const INVALID_TOKEN: &str = r#"Bearer realm="bodhi", error="invalid_token""#;

/// A 200 with `Content-Type: application/json` and `body`.
fn json_response(body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

impl<B> tower_service::Service<Request<B>> for FakeApi {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        std::future::ready(Ok(self.answer(&request)))
    }
}

/// An answer scripted into a [`FakeApi`]: a status, headers and a body, sent as they are.
///
/// ```
/// use bodhi_auth::testing::Reply;
/// use http::HeaderValue;
/// use http::header::RETRY_AFTER;
///
/// let busy = Reply::status(503).header(RETRY_AFTER, HeaderValue::from(30));
/// let stores = Reply::json(200, r#"[{"id":7}]"#);
/// let rejected = Reply::unauthorized(); // what the API answers a dead token
/// # let _ = (busy, stores, rejected);
/// ```
///
/// Its `Debug` shows the status, header names and body length, not the values.
#[derive(Clone)]
pub struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    /// An empty answer with this status (one that is not an HTTP status, such as 1000,
    /// becomes 500).
    pub fn status(status: u16) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    /// An answer with this status, `Content-Type: application/json` and `body`, sent as
    /// it is (not checked to be JSON, so a test can send a broken one).
    pub fn json(status: u16, body: impl Into<Bytes>) -> Reply {
        Reply::status(status)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body)
    }

    /// The 401 the API answers a request without a live token, with
    /// `WWW-Authenticate: Bearer realm="bodhi", error="invalid_token"`.
    pub fn unauthorized() -> Reply {
        Reply::json(401, Bytes::new())
            .header(WWW_AUTHENTICATE, HeaderValue::from_static(INVALID_TOKEN))
    }

    /// Adds a header (one more value if the name is already there).
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Reply {
        self.headers.append(name, value);
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Reply {
        self.body = body.into();
        self
    }

    fn response(&self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(self.body.clone()));
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers.clone();
        response
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reply")
            .field("status", &self.status)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// A request a [`FakeApi`] received while [recording](FakeApi::set_recording).
///
/// Its `Debug` shows the header names, never their values: `Authorization` holds a token.
#[derive(Clone)]
#[non_exhaustive]
pub struct ApiRequest {
    /// The method.
    pub method: Method,
    /// The URI as the API saw it: over HTTP its path and query; in memory, whatever the
    /// request carried (often an absolute URI).
    pub uri: Uri,
    /// Every header, `Authorization` included.
    pub headers: HeaderMap,
    /// The body as received over HTTP; `None` in memory, where the body is not read.
    pub body: Option<Bytes>,
    /// The status the API answered with.
    pub status: StatusCode,
    /// When it arrived (Tokio time: paused time in paused tests).
    pub at: Instant,
}

impl ApiRequest {
    /// The URI's path.
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    /// The token of an `Authorization: Bearer <token>` header, if any.
    pub fn bearer(&self) -> Option<&str> {
        self.headers
            .get(AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
    }
}

impl fmt::Debug for ApiRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Test output may be shared: show the shape, not the token.
        f.debug_struct("ApiRequest")
            .field("method", &self.method)
            .field("uri", &self.uri)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.as_ref().map(Bytes::len))
            .field("status", &self.status)
            .field("at", &self.at)
            .finish()
    }
}
