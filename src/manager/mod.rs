//! [`TokenManager`]: the single-flight token cache both front ends share.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

mod builder;
mod clock;
mod deadline;
mod flight;
mod published;
mod shared_session;
mod state;
mod stats;

pub use builder::{
    DEFAULT_CLIENT_ID, DEFAULT_REFRESH_MARGIN, DEFAULT_SCOPE, TOKEN_URL_ENV, TokenManagerBuilder,
};
pub(crate) use stats::Event;
pub use stats::{IdmFailures, Stats, TokenState};

use crate::idm::transport::Transport;
use crate::idm::wire as idm;
use crate::policy::Policy;
use crate::store::TokenStore;
use crate::token::{AccessToken, Issuer};
use crate::{Credentials, Error, ErrorKind};
use published::Published;
use state::{Access, Flight, FlightResult, Invalidation, RefreshToken, Shared};

/// Gets, caches and renews Bodhi access tokens.
///
/// One `TokenManager` (and every clone of it, which shares the cache) talks to the IDM
/// in at most one *flight* at a time, however many callers need a token:
///
/// - a cached token is returned at once, without awaiting anything;
/// - from *refresh-due* (`expires_in` minus the refresh margin after the request was
///   sent) callers keep the current token while one refresh runs in the background;
/// - after expiry, callers wait for that one flight;
/// - a flight is not owned by any caller: cancelled callers cancel nothing.
///
/// **Several runtimes.** A manager may be shared by callers on different Tokio runtimes
/// (sync code often wraps it in a `current_thread` runtime driven only inside
/// `block_on`). A flight runs on the runtime of the caller that started it; a caller
/// on another runtime never waits for it longer than the flight deadline plus one
/// second, measured on its own runtime's clock. A flight still silent by then is not
/// being run (its runtime is idle or gone): the caller takes over with a new flight on
/// its own runtime. The old flight, should it ever run again, sends nothing more; and
/// if it had already presented the refresh token (which Keycloak may make single-use),
/// the takeover logs in with the password instead of presenting it twice. The crate's
/// own HTTP client keeps no pooled connections, since a pooled connection is driven by
/// the runtime that opened it.
///
/// Paused Tokio time (`start_paused`, tests only) belongs to one runtime: a caller on a
/// paused runtime that waits for a flight running on another one sees its bound pass as
/// soon as it is idle, and takes the flight over (a second login). Keep a paused test's
/// callers and flights on one runtime.
///
/// The retry, backoff and cooldown rules are in [the resilience policy](crate::policy).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), bodhi_auth::Error> {
/// use bodhi_auth::testing::FakeIdm;
/// use bodhi_auth::{Credentials, TokenManager};
///
/// let idm = FakeIdm::new();
/// let manager = TokenManager::builder(Credentials::new("user", "secret"))
///     .fake_idm(&idm)
///     .build()?;
/// let token = manager.access_token().await?;
/// assert_eq!(token.identity()?.username(), "user");
/// let again = manager.access_token().await?;
/// assert!(again.same_token(&token));
/// assert_eq!(idm.token_requests(), 1);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TokenManager {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) transport: Arc<dyn Transport>,
    /// Where the session also lives, beyond this process (none by default).
    pub(crate) store: Option<Arc<dyn TokenStore>>,
    pub(crate) counters: stats::Counters,
    /// The state behind its lock, and the token it serves published for `cached()`.
    pub(crate) shared: Published,
}

/// What the builder decided.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) token_url: reqwest::Url,
    pub(crate) client_id: String,
    pub(crate) scope: Option<String>,
    pub(crate) refresh_margin: Duration,
    pub(crate) policy: Policy,
}

impl Config {
    pub(crate) fn idm_client(&self) -> idm::Client<'_> {
        idm::Client {
            token_url: &self.token_url,
            client_id: &self.client_id,
            scope: self.scope.as_deref(),
        }
    }
}

impl TokenManager {
    /// Starts configuring a manager for these credentials.
    pub fn builder(credentials: Credentials) -> TokenManagerBuilder {
        TokenManagerBuilder::new(credentials)
    }

    /// A manager configured from the environment (`BODHI_USERNAME`, `BODHI_PASSWORD`,
    /// `BODHI_ENV`, `BODHI_TOKEN_URL`): see [`TokenManagerBuilder::from_env`]. No I/O.
    pub fn from_env() -> Result<TokenManager, Error> {
        TokenManagerBuilder::from_env()?.build()
    }

    /// A manager for the Prod IDM with every default. Infallible and free of I/O.
    pub fn new(credentials: Credentials) -> TokenManager {
        match Self::builder(credentials).build() {
            Ok(manager) => manager,
            // The defaults are constants checked by a unit test.
            Err(_) => unreachable!("the default configuration is valid"),
        }
    }

    pub(crate) fn from_parts(
        config: Config,
        transport: Arc<dyn Transport>,
        store: Option<Arc<dyn TokenStore>>,
        credentials: Credentials,
    ) -> Self {
        TokenManager {
            inner: Arc::new(Inner {
                config,
                transport,
                store,
                counters: stats::Counters::default(),
                shared: Published::new(Shared::new(credentials)),
            }),
        }
    }

    /// The current token if it can be used right now without waiting, else `None`.
    ///
    /// Synchronous and cheap: no lock, one clock read and a reference-count increment.
    /// The clock is the coarse monotonic one (kernel-tick resolution, the deadline moved
    /// 10 ms early), or Tokio's for a token cached on a current-thread runtime, the only
    /// kind whose clock a test can pause. The front ends try it first and only fall back to
    /// [`access_token`](Self::access_token) on a miss. A token dropped by
    /// [`invalidate`](Self::invalidate) is never returned once that call has returned.
    #[inline]
    pub fn cached(&self) -> Option<AccessToken> {
        self.inner.shared.serving()
    }

    /// A token that is valid now: cached, or from the one flight all callers share.
    ///
    /// Needs a Tokio runtime with timers (`enable_time`) when it has to talk to the
    /// IDM; without one it fails with [`ErrorKind::Config`].
    #[inline]
    pub async fn access_token(&self) -> Result<AccessToken, Error> {
        if let Some(token) = self.cached() {
            return Ok(token);
        }
        // Boxed, so this future stays a few words: every caller creates and moves it,
        // and on the cached path nothing past the `cached()` above runs.
        Box::pin(self.slow_path()).await
    }

    /// [`access_token`](Self::access_token) as a `'static` future, for the front ends.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) async fn access_token_owned(self) -> Result<AccessToken, Error> {
        self.access_token().await
    }

    async fn slow_path(&self) -> Result<AccessToken, Error> {
        // Each turn either answers, or gives up on a flight that cannot answer (its task
        // is gone, or it is parked on a runtime nobody drives) and looks again, which
        // starts a new flight on this caller's runtime. Two turns suffice when this
        // runtime is healthy; the bound only keeps a runtime that is itself shutting
        // down from spinning.
        for _ in 0..MAX_TURNS {
            let flight = match self.next_step() {
                Next::Wait(flight) => flight,
                Next::Answer(answer) => return answer,
            };
            // Joining a flight started on another runtime still needs timers here, to
            // bound the wait: without them, the same error as starting one.
            idm_runtime()?;
            match self.wait_bounded(&flight).await {
                Waited::Landed(result) => return result,
                Waited::Ended => {
                    // Its task ended without an answer (its runtime shut down, or it
                    // was superseded): the next turn starts afresh if it was current.
                    self.inner.shared.write().abandon(flight.id);
                }
                Waited::Stalled => {
                    if self.inner.shared.write().abandon(flight.id) {
                        tracing::warn!(
                            target: "bodhi_auth",
                            flight = flight.id,
                            "token flight made no progress past its deadline (its runtime \
                             is not being driven); taking it over"
                        );
                    }
                }
            }
        }
        Err(abandoned())
    }

    /// Under the lock: the answer (a token, a cooldown's error, or a token served while
    /// a background refresh starts), or the flight to wait for, started if needed.
    fn next_step(&self) -> Next {
        let mut shared = self.inner.shared.write();
        let now = Instant::now();
        let mut access = shared.state.access(now);
        if let Access::Join(flight) = &access
            && flight.result.has_changed().is_err()
        {
            // Its task was dropped before it ran (its runtime went away): forget it and
            // start afresh rather than join a flight that cannot end.
            shared.abandon(flight.id);
            access = shared.state.access(now);
        }
        match access {
            Access::Ready(token) => Next::Answer(Ok(token)),
            Access::Fail(error) => {
                tracing::trace!(target: "bodhi_auth", "cooling down; returning the last error");
                Next::Answer(Err(error))
            }
            Access::Join(flight) => {
                tracing::trace!(target: "bodhi_auth", flight = flight.id, "joining token flight");
                Next::Wait(flight)
            }
            Access::StartAndWait => match self.launch(&mut shared, now) {
                Ok(flight) => Next::Wait(flight),
                Err(error) => Next::Answer(Err(error)),
            },
            Access::StartInBackground(token) => {
                match self.launch(&mut shared, now) {
                    Ok(_) => {
                        tracing::debug!(target: "bodhi_auth", "refresh due; refreshing in the background")
                    }
                    // The token is still valid: serve it; the refresh waits for a runtime.
                    Err(error) => {
                        tracing::debug!(target: "bodhi_auth", %error, "refresh due but not started")
                    }
                }
                Next::Answer(Ok(token))
            }
        }
    }

    /// Waits for `flight` on this caller's own runtime and clock, never longer than the
    /// flight deadline plus [`TAKEOVER_GRACE`]: a flight ends on its own by its
    /// deadline, so one still silent then is not being run (it was spawned on a runtime
    /// that is alive but idle, such as a `current_thread` runtime between two
    /// `block_on` calls, whose timers cannot fire either).
    async fn wait_bounded(&self, flight: &Flight) -> Waited {
        let now = Instant::now();
        let deadline = flight
            .deadline
            .min(now + self.inner.config.policy.flight_deadline);
        match tokio::time::timeout_at(deadline + TAKEOVER_GRACE, wait(flight.clone())).await {
            Ok(Some(result)) => Waited::Landed(result),
            Ok(None) => Waited::Ended,
            Err(_) => Waited::Stalled,
        }
    }

    /// Registers and spawns a flight while holding the lock, so exactly one starts.
    fn launch(&self, shared: &mut Shared, now: Instant) -> Result<Flight, Error> {
        let runtime = idm_runtime()?;
        let deadline = now + self.inner.config.policy.flight_deadline;
        let (flight, tx) = shared.new_flight(deadline);
        tracing::debug!(target: "bodhi_auth", flight = flight.id, state = shared.state.name(), "starting token flight");
        shared.start(now, flight.clone());
        runtime.spawn(flight::run(self.inner.clone(), flight.id, deadline, tx));
        Ok(flight)
    }

    /// Resolves once the IDM flight in progress (a login, or a background refresh
    /// started at refresh-due) has stored its outcome; at once when none is running.
    ///
    /// For tests that must observe what a background refresh did, and for a program
    /// that wants a refresh under way to land before it exits. It starts nothing and
    /// never fails; a flight started after this call is not awaited, and one that makes
    /// no progress (its runtime is idle) is given up on after the flight deadline plus
    /// one second.
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
    /// assert!(manager.access_token().await?.same_token(&first)); // served at once
    /// manager.settled().await; // the background refresh has landed
    /// assert!(!manager.cached().unwrap().same_token(&first));
    /// # Ok(()) }
    /// ```
    pub async fn settled(&self) {
        let flight = self.inner.shared.read().state.flight().cloned();
        // Without a runtime with timers no wait can be bounded: return at once.
        if let Some(flight) = flight.filter(|_| idm_runtime().is_ok()) {
            // An ended or stalled flight is not running either.
            let _ = self.wait_bounded(&flight).await;
        }
    }

    /// Reports that the API rejected `rejected` (a 401): drop it if it is still the
    /// current token, so the next [`access_token`](Self::access_token) gets a new one.
    ///
    /// Returns whether it was dropped. It is not dropped when a newer token already
    /// replaced it (a late 401 never discards a good token), or when the previous
    /// 401-driven re-login was less than the minimum re-login interval ago (see
    /// [`TokenManagerBuilder::min_relogin_interval`]).
    pub fn invalidate(&self, rejected: &AccessToken) -> bool {
        self.inner.rejected(rejected)
    }

    /// Ends the Keycloak session (the end-session endpoint beside the token endpoint)
    /// and clears the cache. Without a session it only clears the cache.
    ///
    /// A login or refresh in flight is waited for first (at most the flight deadline),
    /// and the session it opens is the one ended: a logout racing a login never leaves
    /// a session behind. The callers of that login still get its token, which the
    /// logout then ends.
    ///
    /// A session the IDM no longer knows counts as logged out. Needs a Tokio runtime
    /// with timers, like [`access_token`](Self::access_token); without one it fails with
    /// [`ErrorKind::Config`] and changes nothing.
    pub async fn logout(&self) -> Result<(), Error> {
        // Before clearing: a logout that cannot be sent must not lose the refresh token
        // a later logout would need.
        idm_runtime()?;
        let local = self.clear_after_flights().await;
        // With a store, the stored session is the one to end: its refresh token is the
        // newest any process sharing it has.
        let stored = match &self.inner.store {
            Some(store) => self.take_stored_refresh(store.as_ref()).await?,
            None => None,
        };
        let Some(refresh) = stored.or_else(|| local.map(|r| r.secret.clone())) else {
            return Ok(());
        };
        let logout_url = logout_url(&self.inner.config.token_url)?;
        let request = idm::logout_request(&logout_url, &self.inner.config.client_id, &refresh);
        let policy = &self.inner.config.policy;
        let reply = tokio::time::timeout(
            policy.request_timeout,
            self.inner.transport.send(request, policy.max_body_bytes),
        )
        .await
        .map_err(|_| Error::new(ErrorKind::Unavailable, "the IDM did not answer the logout"))??;
        if reply.status.is_success() {
            tracing::debug!(target: "bodhi_auth", "logged out");
            return Ok(());
        }
        let error = idm::error_from_reply(&reply, idm::GrantKind::Refresh);
        if idm::is_invalid_grant(&error) {
            return Ok(());
        }
        Err(error)
    }

    /// Deletes the stored session and returns its refresh token, if it is this
    /// manager's. A store that fails is logged and skipped (the IDM logout still ends
    /// the session), unless it is misconfigured.
    async fn take_stored_refresh(
        &self,
        store: &dyn TokenStore,
    ) -> Result<Option<zeroize::Zeroizing<String>>, Error> {
        let skip = |error: Error| {
            if error.kind() == ErrorKind::Config {
                return Err(error);
            }
            tracing::warn!(target: "bodhi_auth", %error, "the session store failed during logout");
            Ok(None)
        };
        let stored = match store.load().await {
            Ok(stored) => stored,
            Err(error) => return skip(error),
        };
        let username = self.username();
        let config = &self.inner.config;
        let refresh = stored
            .filter(|s| s.is_for(config.token_url.as_str(), &config.client_id, &username))
            .and_then(|s| s.refresh.map(|r| r.token));
        if let Err(error) = store.delete().await {
            return skip(error);
        }
        Ok(refresh)
    }

    /// Clears the cache once no flight is in progress, and returns the refresh token to
    /// end. A login or refresh in flight is about to open (or renew) a session whose
    /// refresh token only its answer brings: clearing under it would make that answer
    /// "not current" and throw the refresh token away, leaving a session nothing can
    /// end. So wait for it to land first. A flight is bounded by the flight deadline.
    async fn clear_after_flights(&self) -> Option<Arc<RefreshToken>> {
        loop {
            let flight = {
                let mut shared = self.inner.shared.write();
                match shared.state.flight() {
                    Some(flight) => flight.clone(),
                    None => return shared.clear(),
                }
            };
            tracing::debug!(target: "bodhi_auth", flight = flight.id, "logout waits for the token flight");
            if !matches!(self.wait_bounded(&flight).await, Waited::Landed(_)) {
                // Gone or stalled: forget it (should it ever run again, it sends nothing
                // more) and end the session now. Abandoning drops a refresh token the
                // flight may already have presented, so that no grant presents it twice;
                // the logout may still present it: ending a session twice is harmless.
                let mut shared = self.inner.shared.write();
                let refresh = shared.refresh.clone();
                if shared.abandon(flight.id) {
                    shared.clear();
                    return refresh;
                }
            }
        }
    }

    /// Replaces the credentials (password rotation). New values end any cooldown and
    /// failure count; if the user name changes, the cached session is dropped too.
    /// The same user name and password again change nothing (no new login, the
    /// cooldown stays), so re-delivering unchanged values on a timer is harmless.
    pub fn set_credentials(&self, credentials: Credentials) {
        self.inner.shared.write().replace_credentials(credentials);
    }

    /// What this manager has done (logins, refreshes, failures, 401s, resends, store
    /// use) and where its token stands. Cheap: a few atomic loads and a read lock.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), bodhi_auth::Error> {
    /// use bodhi_auth::testing::FakeIdm;
    /// use bodhi_auth::{Credentials, TokenManager, TokenState};
    ///
    /// let idm = FakeIdm::new();
    /// let manager = TokenManager::builder(Credentials::new("user", "secret"))
    ///     .fake_idm(&idm)
    ///     .build()?;
    /// manager.access_token().await?;
    /// let stats = manager.stats();
    /// assert_eq!((stats.logins, stats.state), (1, TokenState::Valid));
    /// assert!(stats.expires_in.unwrap().as_secs() > 29 * 3600);
    /// # Ok(()) }
    /// ```
    pub fn stats(&self) -> Stats {
        let shared = self.inner.shared.read();
        let now = Instant::now();
        let state = shared.state.token_state();
        let mut stats = self.inner.counters.snapshot(state);
        if let Some((token, refresh_at)) = shared.state.current_with_refresh_at() {
            stats.refresh_due_in = Some(refresh_at.saturating_duration_since(now));
            stats.expires_in = Some(token.deadline().saturating_duration_since(now));
            stats.expires_at = Some(token.expires_at());
        }
        if state == TokenState::CoolingDown {
            stats.cooldown_remaining = shared.next_attempt_in(now);
        }
        stats
    }

    /// Counts something a front end did.
    #[cfg_attr(not(any(feature = "tower", feature = "reqwest")), allow(dead_code))]
    pub(crate) fn count(&self, event: Event) {
        self.inner.counters.count(event);
    }

    /// The token endpoint this manager uses.
    pub fn token_url(&self) -> &str {
        self.inner.config.token_url.as_str()
    }

    /// The user name of the current credentials.
    pub fn username(&self) -> String {
        self.inner.shared.read().credentials.username().to_owned()
    }
}

/// How long past its deadline a flight may stay silent before a waiter takes it over.
/// Its own time-outs fire at the deadline; this covers the time to record and publish
/// the outcome on a loaded machine, so a healthy flight is never taken over.
const TAKEOVER_GRACE: Duration = Duration::from_secs(1);

/// Turns of [`TokenManager::slow_path`] before a caller gives up.
const MAX_TURNS: usize = 4;

/// What a caller on the slow path does next.
enum Next {
    Wait(Flight),
    Answer(Result<AccessToken, Error>),
}

/// How a bounded wait for a flight ended.
enum Waited {
    Landed(FlightResult),
    /// The task ended without an answer.
    Ended,
    /// Nothing by the deadline plus the grace.
    Stalled,
}

/// The flight's result, or `None` if its task ended without one.
async fn wait(mut flight: Flight) -> Option<FlightResult> {
    match flight.result.wait_for(Option::is_some).await {
        Ok(result) => result.clone(),
        Err(_) => None,
    }
}

/// The runtime to talk to the IDM on: a Tokio runtime whose timers are enabled, since
/// every IDM request runs under a time-out. Checked before anything is spawned or
/// changed, so a misconfigured runtime is a clear error, not a panicking task.
fn idm_runtime() -> Result<tokio::runtime::Handle, Error> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
        Error::new(
            ErrorKind::Config,
            "bodhi-auth needs a Tokio runtime to talk to the IDM",
        )
    })?;
    if !timers_enabled() {
        return Err(Error::new(
            ErrorKind::Config,
            "bodhi-auth needs a Tokio runtime with timers: build it with `enable_time()` \
             (or `enable_all()`)",
        ));
    }
    Ok(runtime)
}

/// Tokio offers no query for its timer driver; creating a `Sleep` is the only check,
/// and it panics when timers are disabled. Catching that panic here, in the caller,
/// turns it into an error before any task exists (a panicking flight task would only
/// look "abandoned" to its waiters). Nothing is shared across the unwind: the closure
/// captures nothing. The panic hook still prints Tokio's message on such a runtime,
/// and with `panic = "abort"` the process aborts, as the task's panic would have.
fn timers_enabled() -> bool {
    std::panic::catch_unwind(|| drop(tokio::time::sleep(Duration::ZERO))).is_ok()
}

fn abandoned() -> Error {
    Error::new(
        ErrorKind::Unavailable,
        "the token request was abandoned (no runtime could run it)",
    )
}

/// `.../openid-connect/token` becomes `.../openid-connect/logout`.
fn logout_url(token_url: &reqwest::Url) -> Result<reqwest::Url, Error> {
    let path = token_url.path();
    let Some(base) = path.strip_suffix("/token") else {
        return Err(Error::new(
            ErrorKind::Config,
            "cannot derive the logout URL: the token URL does not end in /token",
        ));
    };
    let mut url = token_url.clone();
    url.set_path(&format!("{base}/logout"));
    Ok(url)
}

impl Inner {
    /// The handle tokens carry back to this cache.
    pub(crate) fn issuer(self: &Arc<Self>) -> std::sync::Weak<dyn Issuer> {
        let weak: std::sync::Weak<Inner> = Arc::downgrade(self);
        weak
    }
}

impl Issuer for Inner {
    fn rejected(&self, token: &AccessToken) -> bool {
        let outcome = self.shared.write().invalidate(
            token,
            Instant::now(),
            self.config.policy.min_relogin_interval,
        );
        self.counters.count(Event::Rejection);
        if matches!(outcome, Invalidation::Throttled { .. }) {
            self.counters.count(Event::Throttled);
        }
        match outcome {
            Invalidation::Dropped => {
                tracing::debug!(target: "bodhi_auth", "token rejected by the API; dropped")
            }
            Invalidation::NotCurrent => {
                tracing::trace!(target: "bodhi_auth", "rejected token already replaced")
            }
            Invalidation::Throttled { remaining } => tracing::debug!(
                target: "bodhi_auth",
                remaining_ms = remaining.as_millis() as u64,
                "re-login throttled; keeping the token"
            ),
        }
        outcome == Invalidation::Dropped
    }
}

impl fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = self.inner.shared.read();
        f.debug_struct("TokenManager")
            .field("token_url", &self.inner.config.token_url.as_str())
            .field("client_id", &self.inner.config.client_id)
            .field("username", &shared.credentials.username())
            .field("state", &shared.state.name())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_configuration_builds() {
        assert!(
            TokenManager::builder(Credentials::new("u", "p"))
                .build()
                .is_ok()
        );
        let manager = TokenManager::new(Credentials::new("u", "p"));
        assert!(
            manager
                .token_url()
                .starts_with("https://login.hotschedules.io/")
        );
    }

    #[test]
    fn logout_url_sits_beside_the_token_url() {
        let token =
            reqwest::Url::parse("https://h/auth/realms/r/protocol/openid-connect/token").unwrap();
        assert_eq!(
            logout_url(&token).unwrap().as_str(),
            "https://h/auth/realms/r/protocol/openid-connect/logout"
        );
        let odd = reqwest::Url::parse("https://h/oauth").unwrap();
        assert_eq!(logout_url(&odd).unwrap_err().kind(), ErrorKind::Config);
    }
}
