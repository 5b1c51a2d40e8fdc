//! [`TokenManagerBuilder`]: every knob of the token manager, with its default.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::{Config, TokenManager};
use crate::environment::Environment;
use crate::idm::transport::{ReqwestTransport, Transport};
use crate::policy::Policy;
use crate::store::{FileStore, STORE_ENV, TokenStore};
use crate::{Credentials, Error, ErrorKind};

/// The OAuth client id the vendor document prescribes.
pub const DEFAULT_CLIENT_ID: &str = "urn:mace:oidc:hotschedules.com";
/// The OAuth scope sent with the password grant. With `openid`, a current Keycloak
/// returns an `id_token`, from which [`AccessToken::identity`](crate::AccessToken::identity)
/// reads the user name and namespace.
pub const DEFAULT_SCOPE: &str = "openid";
/// How long before expiry a background refresh starts. Example: a 30-hour token is
/// refreshed 30 s before it expires; a 10 s token at 5 s (the margin never exceeds half
/// the lifetime).
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(30);

/// The environment variable [`TokenManagerBuilder::from_env`] reads the token endpoint
/// from; it overrides `BODHI_ENV`.
pub const TOKEN_URL_ENV: &str = "BODHI_TOKEN_URL";

/// The longest duration a knob takes; larger values are clamped, so that no
/// `Instant` arithmetic can overflow (a year is "never" for a token cache).
const MAX_KNOB: Duration = Duration::from_secs(365 * 24 * 3600);

fn cap(duration: Duration) -> Duration {
    duration.min(MAX_KNOB)
}

/// Configures a [`TokenManager`]. `build` does no I/O. Durations above a year are
/// treated as a year.
///
/// ```
/// use std::time::Duration;
/// use bodhi_auth::{Credentials, Environment, TokenManager};
///
/// let manager = TokenManager::builder(Credentials::new("user", "secret"))
///     .environment(Environment::Dev)
///     .refresh_margin(Duration::from_secs(60))
///     .build()
///     .unwrap();
/// assert!(manager.token_url().starts_with("https://login.bodhi-dev.io/"));
/// ```
#[derive(Debug)]
#[must_use]
pub struct TokenManagerBuilder {
    credentials: Credentials,
    environment: Environment,
    token_url: Option<String>,
    client_id: String,
    scope: Option<String>,
    refresh_margin: Duration,
    client: Option<reqwest::Client>,
    policy: Policy,
    transport: Option<Arc<dyn Transport>>,
    store: StoreChoice,
}

/// Where the session is kept beyond the process; some stores are only made at `build`,
/// when the token URL, client and user name that name the session are final.
#[derive(Default)]
enum StoreChoice {
    #[default]
    None,
    Given(Arc<dyn TokenStore>),
    DefaultFile,
    /// `BODHI_STORE=redis://...` and `BODHI_STORE_KEY` (a secret: never printed).
    #[cfg(feature = "redis")]
    Redis {
        url: String,
        keys: Option<zeroize::Zeroizing<String>>,
    },
}

impl std::fmt::Debug for StoreChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreChoice::None => f.write_str("None"),
            StoreChoice::Given(store) => f.debug_tuple("Given").field(store).finish(),
            StoreChoice::DefaultFile => f.write_str("DefaultFile"),
            // The URL may hold Redis's password: the store's own `Debug` hides it once
            // built; until then only the scheme is shown.
            #[cfg(feature = "redis")]
            StoreChoice::Redis { .. } => f.write_str("Redis"),
        }
    }
}

impl TokenManagerBuilder {
    pub(crate) fn new(credentials: Credentials) -> Self {
        TokenManagerBuilder {
            credentials,
            environment: Environment::default(),
            token_url: None,
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            scope: Some(DEFAULT_SCOPE.to_owned()),
            refresh_margin: DEFAULT_REFRESH_MARGIN,
            client: None,
            policy: Policy::default(),
            transport: None,
            store: StoreChoice::None,
        }
    }

    /// A builder configured from the environment, by the README's table:
    ///
    /// | variable | meaning | default |
    /// |---|---|---|
    /// | `BODHI_USERNAME`, `BODHI_PASSWORD` | credentials | required |
    /// | `BODHI_ENV` | `dev` or `prod` | `prod` |
    /// | `BODHI_TOKEN_URL` | token endpoint; overrides `BODHI_ENV`; https, or http on loopback | from `BODHI_ENV` |
    ///
    /// An empty variable counts as unset; a bad value is an [`ErrorKind::Config`] error
    /// naming the variable. The builder's other knobs can still be set before `build`.
    ///
    /// ```no_run
    /// # fn run() -> Result<(), bodhi_auth::Error> {
    /// use std::time::Duration;
    /// use bodhi_auth::TokenManagerBuilder;
    ///
    /// let manager = TokenManagerBuilder::from_env()?
    ///     .refresh_margin(Duration::from_secs(60))
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn from_env() -> Result<Self, Error> {
        let mut builder = TokenManagerBuilder::new(Credentials::from_env()?)
            .environment(Environment::from_env_or(Environment::Prod)?);
        if let Some(url) = crate::env::read(TOKEN_URL_ENV)? {
            // Checked here too, so that the error names the variable.
            check_token_url(&url).map_err(|e| {
                Error::new(
                    ErrorKind::Config,
                    format!("{TOKEN_URL_ENV}: {}", e.message()),
                )
            })?;
            builder = builder.token_url(url);
        }
        builder.store = store_from_env()?;
        Ok(builder)
    }

    /// Dev or Prod IDM (Prod by default). A [`token_url`](Self::token_url) overrides it.
    pub fn environment(mut self, environment: Environment) -> Self {
        self.environment = environment;
        self
    }

    /// The token endpoint, overriding the environment. Must be `https://`, except on a
    /// loopback address (`127.0.0.0/8`, `::1`) or exactly `localhost`.
    pub fn token_url(mut self, url: impl Into<String>) -> Self {
        self.token_url = Some(url.into());
        self
    }

    /// The OAuth client id ([`DEFAULT_CLIENT_ID`]).
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = client_id.into();
        self
    }

    /// The OAuth scope of the password grant ([`DEFAULT_SCOPE`]); `None` sends none.
    pub fn scope(mut self, scope: Option<&str>) -> Self {
        self.scope = scope.map(str::to_owned);
        self
    }

    /// How long before expiry to refresh ([`DEFAULT_REFRESH_MARGIN`]); capped at half
    /// of each token's lifetime.
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.refresh_margin = cap(margin);
        self
    }

    /// The `reqwest::Client` for IDM calls: custom root certificates, proxies.
    ///
    /// Build it with `.redirect(reqwest::redirect::Policy::none())`: reqwest follows
    /// redirects by default, and a 307/308 re-sends the password form to wherever it
    /// points. The crate cannot change a built client's policy; it refuses an answer
    /// that came through a redirect (`ErrorKind::Config`), but by then the form has gone.
    ///
    /// For a loopback `http://` token URL, also build it with `.no_proxy()`: the crate's
    /// own client bypasses any system proxy (`HTTP_PROXY`) for a loopback token URL, but
    /// cannot tell whether a given client uses one, and a proxy would receive the
    /// password form in clear text.
    ///
    /// If the manager is shared by callers on several runtimes, also set
    /// `.pool_max_idle_per_host(0)`, as the crate's own client does: a pooled connection
    /// is driven by the runtime that opened it, and a request on another runtime stalls
    /// on it while that one is idle.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Time-out of each IDM request ([`DEFAULT_REQUEST_TIMEOUT`](crate::policy::DEFAULT_REQUEST_TIMEOUT)).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.policy.request_timeout = cap(timeout);
        self
    }

    /// IDM requests per flight for transient failures, at least 1
    /// ([`DEFAULT_MAX_ATTEMPTS`](crate::policy::DEFAULT_MAX_ATTEMPTS)).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.policy.max_attempts = attempts.max(1);
        self
    }

    /// Bound of the first retry pause ([`DEFAULT_INITIAL_BACKOFF`](crate::policy::DEFAULT_INITIAL_BACKOFF)).
    pub fn initial_backoff(mut self, backoff: Duration) -> Self {
        self.policy.initial_backoff = cap(backoff);
        self
    }

    /// The most one flight takes ([`DEFAULT_FLIGHT_DEADLINE`](crate::policy::DEFAULT_FLIGHT_DEADLINE)).
    pub fn flight_deadline(mut self, deadline: Duration) -> Self {
        self.policy.flight_deadline = cap(deadline);
        self
    }

    /// Largest IDM answer read ([`DEFAULT_MAX_BODY_BYTES`](crate::policy::DEFAULT_MAX_BODY_BYTES)).
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.policy.max_body_bytes = bytes;
        self
    }

    /// Longest `Retry-After` obeyed ([`DEFAULT_MAX_RETRY_AFTER`](crate::policy::DEFAULT_MAX_RETRY_AFTER)).
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.policy.max_retry_after = cap(max);
        self
    }

    /// First and largest cooldown after failed flights
    /// ([`DEFAULT_COOLDOWN`](crate::policy::DEFAULT_COOLDOWN),
    /// [`DEFAULT_MAX_COOLDOWN`](crate::policy::DEFAULT_MAX_COOLDOWN)).
    pub fn cooldown(mut self, first: Duration, max: Duration) -> Self {
        self.policy.cooldown = cap(first);
        self.policy.max_cooldown = cap(max);
        self
    }

    /// Cooldown after refused credentials
    /// ([`DEFAULT_INVALID_CREDENTIALS_COOLDOWN`](crate::policy::DEFAULT_INVALID_CREDENTIALS_COOLDOWN)).
    pub fn invalid_credentials_cooldown(mut self, cooldown: Duration) -> Self {
        self.policy.invalid_credentials_cooldown = cap(cooldown);
        self
    }

    /// Minimum time between 401-driven re-logins
    /// ([`DEFAULT_MIN_RELOGIN_INTERVAL`](crate::policy::DEFAULT_MIN_RELOGIN_INTERVAL));
    /// zero disables the throttle.
    pub fn min_relogin_interval(mut self, interval: Duration) -> Self {
        self.policy.min_relogin_interval = cap(interval);
        self
    }

    /// Keeps the session in `store` as well as in memory, so other processes (or the
    /// next run of this program) sharing the store share one login: see [the store
    /// module](crate::store). Without a store (the default) nothing leaves the process.
    pub fn store(mut self, store: impl TokenStore + 'static) -> Self {
        self.store = StoreChoice::Given(Arc::new(store));
        self
    }

    /// Keeps the session in a [`FileStore`] at its default path: a file in the user's
    /// cache directory named for the token URL, client id and user name (see
    /// [`FileStore::default_path`]). The path is decided at [`build`](Self::build).
    pub fn default_file_store(mut self) -> Self {
        self.store = StoreChoice::DefaultFile;
        self
    }

    /// Keeps the session where `spec` says, in the values `BODHI_STORE` takes (see
    /// [`STORE_ENV`](crate::store::STORE_ENV)): `none`, `file`, `file:PATH`,
    /// `redis://...` (its keys from `BODHI_STORE_KEY`, a secret that only ever comes
    /// from the environment). For a program whose own flag sets it, as `bodhi-proxy`'s
    /// `--store` does. A bad value is a `Config` error naming `BODHI_STORE`.
    pub fn store_spec(mut self, spec: &str) -> Result<Self, Error> {
        self.store = if spec.is_empty() {
            StoreChoice::None
        } else {
            parse_store(spec.to_owned())?
        };
        Ok(self)
    }

    /// Keeps the session in memory only (the default; undoes `BODHI_STORE`).
    pub fn no_store(mut self) -> Self {
        self.store = StoreChoice::None;
        self
    }

    /// The lifetime of the store's lease ([`DEFAULT_LEASE_TTL`](crate::policy::DEFAULT_LEASE_TTL)).
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.policy.lease_ttl = cap(ttl).max(Duration::from_millis(30));
        self
    }

    /// How much the clocks of processes sharing a store may differ
    /// ([`DEFAULT_CLOCK_SKEW`](crate::policy::DEFAULT_CLOCK_SKEW)).
    pub fn clock_skew(mut self, skew: Duration) -> Self {
        self.policy.clock_skew = cap(skew);
        self
    }

    /// Sends IDM requests through `transport` to `token_url` instead of the network:
    /// the hook test doubles wire themselves in with.
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    pub(crate) fn transport(mut self, transport: Arc<dyn Transport>, token_url: &str) -> Self {
        self.transport = Some(transport);
        self.token_url = Some(token_url.to_owned());
        self
    }

    /// Checks the configuration and creates the manager. Does no I/O.
    pub fn build(self) -> Result<TokenManager, Error> {
        let url = self
            .token_url
            .as_deref()
            .unwrap_or(self.environment.token_url());
        let token_url = check_token_url(url)?;
        if self.client_id.is_empty() {
            return Err(Error::new(ErrorKind::Config, "client_id is empty"));
        }
        let transport: Arc<dyn Transport> = match self.transport {
            Some(transport) => transport,
            // Plain http is allowed on loopback only because the bytes never leave the
            // machine; a system proxy (`HTTP_PROXY`) would carry them off, and could not
            // reach this machine's loopback anyway. So the crate's own client never
            // uses a proxy for a loopback token URL.
            None => Arc::new(ReqwestTransport::new(self.client, is_loopback(&token_url))),
        };
        let store: Option<Arc<dyn TokenStore>> = match self.store {
            StoreChoice::None => None,
            StoreChoice::Given(store) => Some(store),
            StoreChoice::DefaultFile => Some(Arc::new(FileStore::new(FileStore::default_path(
                token_url.as_str(),
                &self.client_id,
                self.credentials.username(),
            )?))),
            #[cfg(feature = "redis")]
            StoreChoice::Redis { url, keys } => {
                Some(Arc::new(crate::store::RedisStore::from_env_parts(
                    &url,
                    keys.as_deref().map(String::as_str),
                    token_url.as_str(),
                    &self.client_id,
                    self.credentials.username(),
                )?))
            }
        };
        let config = Config {
            token_url,
            client_id: self.client_id,
            scope: self.scope.filter(|s| !s.is_empty()),
            refresh_margin: self.refresh_margin,
            policy: self.policy,
        };
        Ok(TokenManager::from_parts(
            config,
            transport,
            store,
            self.credentials,
        ))
    }
}

/// `BODHI_STORE`: `none`, `file`, `file:PATH`, `redis://...` or `rediss://...` (with
/// `BODHI_STORE_KEY`).
fn store_from_env() -> Result<StoreChoice, Error> {
    match crate::env::read(STORE_ENV)? {
        Some(value) => parse_store(value),
        None => Ok(StoreChoice::None),
    }
}

/// One value of `BODHI_STORE`; errors name the variable.
fn parse_store(value: String) -> Result<StoreChoice, Error> {
    if value.starts_with("redis://") || value.starts_with("rediss://") {
        #[cfg(feature = "redis")]
        return Ok(StoreChoice::Redis {
            url: value,
            keys: crate::env::read(crate::store::STORE_KEY_ENV)?.map(zeroize::Zeroizing::new),
        });
        #[cfg(not(feature = "redis"))]
        return Err(Error::new(
            ErrorKind::Config,
            format!("{STORE_ENV}: a Redis store needs bodhi-auth's `redis` feature"),
        ));
    }
    match value.as_str() {
        "none" => Ok(StoreChoice::None),
        "file" => Ok(StoreChoice::DefaultFile),
        _ => match value.strip_prefix("file:") {
            Some("") => Err(Error::new(
                ErrorKind::Config,
                format!("{STORE_ENV}: `file:` needs a path after it (or use `file`)"),
            )),
            Some(path) => Ok(StoreChoice::Given(Arc::new(FileStore::new(path)))),
            // The value is not echoed: a mistyped URL may hold a password.
            None => Err(Error::new(
                ErrorKind::Config,
                format!("{STORE_ENV}: expected `none`, `file`, `file:PATH` or `redis://...`"),
            )),
        },
    }
}

/// HTTPS only, except loopback: a password must never cross a network in clear text.
fn check_token_url(url: &str) -> Result<reqwest::Url, Error> {
    // Not echoed: a mistyped URL may still hold a password.
    let parsed = reqwest::Url::parse(url).map_err(|e| {
        Error::new(
            ErrorKind::Config,
            format!("the token URL is not a URL ({e})"),
        )
        .with_source(e)
    })?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        // It would be printed wherever the URL is (logs, errors, `Debug`), and reqwest
        // would not send it the way it is written anyway.
        return Err(Error::new(
            ErrorKind::Config,
            "the token URL must not carry a user name or password: the IDM takes them in \
             the login form (`Credentials`)",
        ));
    }
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if is_loopback(&parsed) => Ok(parsed),
        "http" => Err(Error::new(
            ErrorKind::Config,
            format!("the token URL must use https (plain http is allowed only on loopback): {url}"),
        )),
        other => Err(Error::new(
            ErrorKind::Config,
            format!("the token URL must use https, not {other:?}"),
        )),
    }
}

/// A loopback address (`127.0.0.0/8`, `::1`) or exactly `localhost`.
fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_is_refused_except_on_loopback() {
        for ok in [
            "https://login.hotschedules.io/auth/x/token",
            "http://127.0.0.1:8080/token",
            "http://127.9.9.9/token",
            "http://[::1]:9/token",
            "http://localhost:1/token",
            "http://LOCALHOST/token",
        ] {
            assert!(check_token_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://localhost.example.com/token",
            "https://svc:hunter2@idm.example/token",
            "https://svc@idm.example/token",
            "http://10.0.0.1/token",
            "http://login.hotschedules.io/token",
            "ftp://127.0.0.1/token",
            "not a url",
        ] {
            let err = check_token_url(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{bad}");
        }
    }
}
