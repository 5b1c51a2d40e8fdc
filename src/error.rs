//! [`Error`] and [`ErrorKind`]: what can go wrong while getting a token.
//!
//! ```
//! use bodhi_auth::{Credentials, ErrorKind, TokenManager};
//!
//! let err = TokenManager::builder(Credentials::new("user", "secret"))
//!     .token_url("http://idm.example.com/token")
//!     .build()
//!     .unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::Config);
//! assert!(err.to_string().contains("https"));
//! ```

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

/// The broad class of an [`Error`], for deciding what to do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The IDM refused the user name or password (`invalid_grant` on a password grant).
    ///
    /// Permanent until the credentials change: the manager does not retry it.
    InvalidCredentials,
    /// The IDM could not be reached or is unwell: connection refused, time-outs, 5xx, 429.
    ///
    /// Transient: the manager retries within a flight and tries again after a cooldown.
    Unavailable,
    /// The IDM answered, but not with something this crate understands: an HTML page,
    /// malformed JSON, a missing `access_token`, a token type other than bearer, a
    /// token that is not a JWT when its claims are asked for.
    InvalidResponse,
    /// The configuration is wrong: a bad or insecure token URL, a missing environment
    /// variable, or an IDM answer that blames the client (`invalid_client`,
    /// `unauthorized_client`, `invalid_request`).
    Config,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::InvalidCredentials => "invalid credentials",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::InvalidResponse => "invalid IDM response",
            ErrorKind::Config => "configuration error",
        })
    }
}

/// An error from the token manager or one of its front ends.
///
/// Cheap to clone: one failed login is shared by every caller that waited for it.
/// Never contains a password or a token.
#[derive(Clone)]
pub struct Error {
    inner: Arc<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    idm: Option<IdmError>,
    status: Option<StatusCode>,
    retry_after: Option<Duration>,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

/// The OAuth error an IDM answered with (`error` and `error_description`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IdmError {
    pub(crate) code: String,
    pub(crate) description: Option<String>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            inner: Arc::new(Inner {
                kind,
                message: message.into(),
                idm: None,
                status: None,
                retry_after: None,
                source: None,
            }),
        }
    }

    /// For a [`TokenStore`](crate::store::TokenStore) that cannot be reached or
    /// failed (kind [`ErrorKind::Unavailable`]): the manager logs it and carries on as
    /// if it had no store. `message` must not hold a secret.
    pub fn store_unavailable(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Unavailable, message)
    }

    /// For a [`TokenStore`](crate::store::TokenStore) that is set up wrongly (kind
    /// [`ErrorKind::Config`]: an insecure file, a bad key): the token request fails
    /// with it, so the mistake is seen. `message` must not hold a secret.
    pub fn store_misconfigured(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Config, message)
    }

    /// Adds details while the error is still owned by one place (before it is shared).
    fn edit(mut self, f: impl FnOnce(&mut Inner)) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            f(inner);
        }
        self
    }

    pub(crate) fn with_status(self, status: StatusCode) -> Self {
        self.edit(|i| i.status = Some(status))
    }

    pub(crate) fn with_idm(self, idm: IdmError) -> Self {
        self.edit(|i| i.idm = Some(idm))
    }

    pub(crate) fn with_retry_after(self, retry_after: Option<Duration>) -> Self {
        self.edit(|i| i.retry_after = retry_after)
    }

    pub(crate) fn with_source(self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.edit(|i| i.source = Some(Box::new(source)))
    }

    /// The message alone, without the kind in front (for wrapping it in another).
    pub(crate) fn message(&self) -> &str {
        &self.inner.message
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The HTTP status the IDM answered with, when it answered.
    pub fn status(&self) -> Option<StatusCode> {
        self.inner.status
    }

    /// The OAuth `error` code the IDM sent (`invalid_grant`, `invalid_client`, ...).
    pub fn idm_error(&self) -> Option<&str> {
        self.inner.idm.as_ref().map(|e| e.code.as_str())
    }

    /// The IDM's `error_description` (Keycloak: "Invalid user credentials", ...).
    pub fn idm_error_description(&self) -> Option<&str> {
        self.inner
            .idm
            .as_ref()
            .and_then(|e| e.description.as_deref())
    }

    /// How long the IDM asked us to wait (`Retry-After` on a 429 or 503).
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    /// True if the two errors are the same shared value (one failed flight).
    pub fn same_as(&self, other: &Error) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The `bodhi_auth::Error` anywhere in `error`'s chain, however other middleware
    /// wrapped it: `error` itself, any of its `source()`s, and inside the wrappers whose
    /// `source()` skips the error they hold, so that a walk over `source()` (or a
    /// `downcast_ref` on the outermost error) misses ours:
    /// - `reqwest_middleware::Error::Middleware`, transparent around an `anyhow::Error`;
    /// - `reqwest_retry::RetryError` (0.9), with the feature `reqwest-retry`: with
    ///   `RetryTransientMiddleware` outside [`IdmAuthMiddleware`](crate::IdmAuthMiddleware),
    ///   a token failure comes back as `Middleware(RetryError::Error(Middleware(ours)))`,
    ///   transparent all the way, so without the feature it is not found there.
    ///
    /// A chain that loops back on itself ends the search (`None`) after 64 steps.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use bodhi_auth::testing::{FakeApi, FakeIdm};
    /// use bodhi_auth::{Credentials, ErrorKind, IdmAuthMiddleware, TokenManager, TokenScope};
    ///
    /// let idm = FakeIdm::new();
    /// let api = FakeApi::new(&idm).serve().await?;
    /// let manager = TokenManager::builder(Credentials::new("user", "wrong password"))
    ///     .fake_idm(&idm)
    ///     .build()?;
    /// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
    ///     .with(IdmAuthMiddleware::with_manager(manager, TokenScope::origins([api.url("")])?))
    ///     .build();
    /// let error = client.get(api.url("/stores")).send().await.unwrap_err();
    /// let found = bodhi_auth::Error::find_in(&error).expect("a token failure");
    /// assert_eq!(found.kind(), ErrorKind::InvalidCredentials);
    /// // The same for the Tower layer's `BoxError`: `Error::find_in(&*error)`.
    /// # Ok(()) }
    /// ```
    pub fn find_in<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a Error> {
        // A chain longer than this is taken to loop back on itself.
        const MAX_DEPTH: usize = 64;
        let mut next = Some(error);
        for _ in 0..MAX_DEPTH {
            let current = next?;
            if let Some(found) = current.downcast_ref::<Error>() {
                return Some(found);
            }
            next = match unwrapped(current) {
                Some(inner) => Some(inner),
                None => current.source(),
            };
        }
        None
    }
}

/// The error that a wrapper known to hide it holds: one whose `source()` skips the
/// error it wraps (a transparent wrapper around anyhow, or around another such wrapper).
#[cfg_attr(not(feature = "reqwest"), allow(unused_variables))]
fn unwrapped<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a (dyn StdError + 'static)> {
    #[cfg(feature = "reqwest")]
    if let Some(reqwest_middleware::Error::Middleware(inner)) =
        error.downcast_ref::<reqwest_middleware::Error>()
    {
        // `anyhow::Error` derefs to the error it holds.
        let inner: &(dyn StdError + Send + Sync + 'static) = &**inner;
        return Some(inner);
    }
    #[cfg(feature = "reqwest-retry")]
    if let Some(retry) = error.downcast_ref::<reqwest_retry::RetryError>() {
        let (reqwest_retry::RetryError::WithRetries { err, .. }
        | reqwest_retry::RetryError::Error(err)) = retry;
        return Some(err);
    }
    None
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind)
            .field("message", &self.inner.message);
        if let Some(status) = self.inner.status {
            d.field("status", &status);
        }
        if let Some(idm) = &self.inner.idm {
            d.field("idm_error", &idm.code);
            d.field("idm_error_description", &idm.description);
        }
        if let Some(retry_after) = self.inner.retry_after {
            d.field("retry_after", &retry_after);
        }
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.inner.kind, self.inner.message)?;
        if let Some(idm) = &self.inner.idm {
            match &idm.description {
                Some(description) => write!(f, " ({}: {description})", idm.code)?,
                None => write!(f, " ({})", idm.code)?,
            }
        }
        if let Some(status) = self.inner.status {
            write!(f, " [HTTP {}]", status.as_u16())?;
        }
        Ok(())
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_ref()
            .map(|s| &**s as &(dyn StdError + 'static))
    }
}

/// A duration as a person reads it in a message: `250 ms`, `10 s`, `1.5 s`, `2 min`.
pub(crate) fn shown_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 {
        format!("{millis} ms")
    } else if millis >= 120_000 && millis.is_multiple_of(60_000) {
        format!("{} min", millis / 60_000)
    } else if millis.is_multiple_of(1000) {
        format!("{} s", millis / 1000)
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

/// The innermost cause in `error`'s chain, where the actionable words are
/// ("Connection refused (os error 111)", "dns error: ..."). `io::Error`'s `source()`
/// skips the error it wraps, hence `get_ref`.
pub(crate) fn root_cause(error: &(dyn StdError + 'static)) -> String {
    let mut cause = error;
    loop {
        let next = match cause
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => cause.source(),
        };
        match next {
            Some(next) => cause = next,
            None => return cause.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_shown_rounded() {
        for (millis, shown) in [
            (250, "250 ms"),
            (1000, "1 s"),
            (9_417, "9.4 s"),
            (30_000, "30 s"),
            (90_000, "90 s"),
            (120_000, "2 min"),
        ] {
            assert_eq!(shown_duration(Duration::from_millis(millis)), shown);
        }
    }

    #[test]
    fn the_root_cause_is_the_innermost_error() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused here");
        let outer = Error::new(ErrorKind::Unavailable, "could not connect").with_source(io);
        assert_eq!(root_cause(&outer), "refused here");
    }

    fn assert_traits<T: StdError + Send + Sync + Clone + 'static>() {}

    #[test]
    fn error_is_shareable_and_displays_the_idm_description() {
        assert_traits::<Error>();
        let err = Error::new(ErrorKind::InvalidCredentials, "the IDM refused the login")
            .with_status(StatusCode::UNAUTHORIZED)
            .with_idm(IdmError {
                code: "invalid_grant".into(),
                description: Some("Invalid user credentials".into()),
            });
        let shown = err.to_string();
        assert!(shown.contains("Invalid user credentials"), "{shown}");
        assert!(shown.contains("invalid_grant"), "{shown}");
        assert_eq!(err.kind(), ErrorKind::InvalidCredentials);
        assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED));
        assert!(err.clone().same_as(&err));
    }
}
