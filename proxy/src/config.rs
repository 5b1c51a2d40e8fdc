//! Flags, each with its environment variable, and the checked configuration they make.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use bodhi_auth::{Credentials, Environment, TokenManager, TokenManagerBuilder, TokenScope};
use clap::{CommandFactory, FromArgMatches, Parser};
use http::uri::{Authority, Scheme, Uri};

/// The default largest request body kept for the one resend after a 401: 64 KiB.
pub(crate) const DEFAULT_REPLAY_LIMIT: usize = 64 * 1024;
/// The default cap on open client connections.
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// bodhi-proxy: adds a Bodhi token to every request and forwards it to one upstream.
///
/// Credentials come from BODHI_USERNAME and BODHI_PASSWORD only (never a flag: flags show
/// in `ps`). An empty environment variable counts as unset.
///
/// Request bodies stream both ways. For the one resend after a 401, a request body of up
/// to --replay-limit bytes is kept in memory; a larger or still-streaming body is not
/// replayed: the 401 goes back to the client (the token is still dropped, so the next
/// request gets a new one).
///
/// Safe by default: loopback only, Host allow list (DNS rebinding), browser requests
/// (Origin, Sec-Fetch-Site) refused, client Authorization refused, hop-by-hop and
/// forwarded headers stripped, no absolute-form URIs, no CONNECT, no `..` segments.
/// `/-/healthz`, `/-/readyz` and `/-/metrics` are answered by the proxy itself.
#[derive(Debug, Parser)]
#[command(name = "bodhi-proxy", version, about, long_about)]
pub(crate) struct Flags {
    /// The one upstream origin requests go to (https, or http on loopback only); the
    /// client's Host never picks the destination.
    #[arg(long, env = "BODHI_API_URL", value_name = "ORIGIN")]
    upstream: String,

    /// Address to listen on. Off loopback it needs --allow-remote.
    #[arg(long, env = "BODHI_PROXY_LISTEN", default_value = "127.0.0.1:8181")]
    listen: SocketAddr,

    /// Listen on this Unix socket instead of TCP; it is created with mode 0600.
    #[arg(long, env = "BODHI_PROXY_UNIX_SOCKET", value_name = "PATH")]
    unix_socket: Option<PathBuf>,

    /// `dev` or `prod`: which IDM to log in to.
    #[arg(long = "env", env = "BODHI_ENV", value_name = "ENV")]
    environment: Option<String>,

    /// The IDM token endpoint; overrides --env (https, or http on loopback only).
    #[arg(long, env = "BODHI_TOKEN_URL", value_name = "URL")]
    token_url: Option<String>,

    /// Where the session is kept so several proxies share it: `none`, `file`,
    /// `file:PATH`, or `redis://...` (sealed with the key(s) in BODHI_STORE_KEY).
    #[arg(long, env = "BODHI_STORE", value_name = "STORE")]
    store: Option<String>,

    /// Allow a --listen address off loopback. Requires --client-token-file and
    /// --accept-host.
    #[arg(long, env = "BODHI_PROXY_ALLOW_REMOTE")]
    allow_remote: bool,

    /// A Host (`name` or `name:port`) to accept besides `127.0.0.1`, `[::1]` and `localhost`
    /// with the listening port. Repeat for more. Matched exactly, never as a pattern.
    #[arg(
        long,
        env = "BODHI_PROXY_ACCEPT_HOST",
        value_delimiter = ',',
        value_name = "HOST"
    )]
    accept_host: Vec<String>,

    /// A file holding a shared secret: clients must send it in X-Bodhi-Proxy-Token
    /// (stripped before forwarding). The file must not be readable by group or others.
    #[arg(long, env = "BODHI_PROXY_CLIENT_TOKEN_FILE", value_name = "PATH")]
    client_token_file: Option<PathBuf>,

    /// Forward requests that carry their own Authorization header as they are (without
    /// the proxy's token) instead of refusing them.
    #[arg(long, env = "BODHI_PROXY_PASS_CLIENT_AUTH")]
    pass_client_auth: bool,

    /// A browser origin (`http://localhost:3000`) whose requests are allowed, with CORS
    /// answers (the proxy answers its preflights). Repeat for more. None by default:
    /// every cross-origin browser request is refused.
    #[arg(
        long,
        env = "BODHI_PROXY_ALLOW_ORIGIN",
        value_delimiter = ',',
        value_name = "ORIGIN"
    )]
    allow_origin: Vec<String>,

    /// Largest request body, in bytes, kept in memory to be resent once after a 401.
    #[arg(long, env = "BODHI_PROXY_REPLAY_LIMIT", default_value_t = DEFAULT_REPLAY_LIMIT, value_name = "BYTES")]
    replay_limit: usize,

    /// Most client connections open at once; more wait to be accepted.
    #[arg(long, env = "BODHI_PROXY_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS, value_name = "N")]
    max_connections: usize,

    /// Seconds in-flight requests get to finish after SIGTERM or SIGINT.
    #[arg(
        long,
        env = "BODHI_PROXY_SHUTDOWN_TIMEOUT",
        default_value_t = 30,
        value_name = "SECONDS"
    )]
    shutdown_timeout: u64,

    /// Log level: error, warn, info, debug or trace.
    #[arg(
        long,
        env = "BODHI_PROXY_LOG",
        default_value = "info",
        value_name = "LEVEL"
    )]
    log: tracing::Level,
}

impl Flags {
    /// The command line and environment, with the README's rule for every variable: an
    /// empty one counts as unset (clap alone would take it as an empty value).
    pub(crate) fn from_env_and_args() -> Flags {
        let command = Flags::command().mut_args(|arg| {
            let empty = arg
                .get_env()
                .and_then(std::env::var_os)
                .is_some_and(|value| value.is_empty());
            if empty { arg.env(None::<&str>) } else { arg }
        });
        let matches = command.get_matches();
        Flags::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }
}

/// Where the proxy listens.
#[derive(Debug, Clone)]
pub(crate) enum Listen {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// The upstream origin: requests are rewritten to it.
#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    pub(crate) scheme: Scheme,
    pub(crate) authority: Authority,
}

impl Upstream {
    /// `scheme://authority`, as the token scope names it.
    pub(crate) fn origin(&self) -> String {
        format!("{}://{}", self.scheme, self.authority)
    }
}

/// The checked configuration.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) upstream: Upstream,
    pub(crate) listen: Listen,
    pub(crate) accept_hosts: Vec<String>,
    pub(crate) allow_origins: Vec<String>,
    pub(crate) client_token: Option<Vec<u8>>,
    pub(crate) pass_client_auth: bool,
    pub(crate) allow_remote: bool,
    pub(crate) replay_limit: usize,
    pub(crate) max_connections: usize,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) log: tracing::Level,
    /// Built from the flags: where to log in and where to keep the session.
    pub(crate) manager: ManagerConfig,
}

/// What the token manager is built from (the credentials are read at build time).
#[derive(Debug)]
pub(crate) struct ManagerConfig {
    environment: Option<Environment>,
    token_url: Option<String>,
    store: Option<String>,
}

/// A configuration mistake, said to the operator before anything starts.
pub(crate) type ConfigError = String;

impl Config {
    /// Checks the flags.
    pub(crate) fn from_flags(flags: Flags) -> Result<Config, ConfigError> {
        let upstream = parse_upstream(&flags.upstream)?;
        let environment = match flags.environment.as_deref() {
            None | Some("") => None,
            Some(e) if e.eq_ignore_ascii_case("dev") => Some(Environment::Dev),
            Some(e) if e.eq_ignore_ascii_case("prod") => Some(Environment::Prod),
            Some(e) => {
                return Err(format!(
                    "--env (BODHI_ENV) is {e:?}; expected `dev` or `prod`"
                ));
            }
        };
        let listen = match flags.unix_socket.filter(|p| !p.as_os_str().is_empty()) {
            Some(path) => Listen::Unix(path),
            None => Listen::Tcp(flags.listen),
        };
        let remote = matches!(listen, Listen::Tcp(addr) if !addr.ip().is_loopback());
        if remote && !flags.allow_remote {
            return Err(format!(
                "--listen {} is not a loopback address: anyone who reaches it is answered \
                 with your Bodhi token; add --allow-remote (with --client-token-file and \
                 --accept-host) if that is what you want",
                flags.listen
            ));
        }
        let accept_hosts: Vec<String> = flags
            .accept_host
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        if let Some(bad) = accept_hosts.iter().find(|h| !is_host_name(h)) {
            return Err(format!(
                "--accept-host {bad:?} is not a host name or host:port (patterns are not accepted)"
            ));
        }
        if flags.allow_remote {
            if flags.client_token_file.is_none() {
                return Err("--allow-remote requires --client-token-file".into());
            }
            if accept_hosts.is_empty() {
                return Err("--allow-remote requires an explicit --accept-host".into());
            }
        }
        let client_token = flags
            .client_token_file
            .as_deref()
            .map(read_client_token)
            .transpose()?;
        let allow_origins = flags
            .allow_origin
            .iter()
            .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
            .filter(|o| !o.is_empty())
            .collect();
        Ok(Config {
            upstream,
            listen,
            accept_hosts,
            allow_origins,
            client_token,
            pass_client_auth: flags.pass_client_auth,
            allow_remote: flags.allow_remote,
            replay_limit: flags.replay_limit,
            max_connections: flags.max_connections.max(1),
            shutdown_timeout: Duration::from_secs(flags.shutdown_timeout),
            log: flags.log,
            manager: ManagerConfig {
                environment,
                token_url: flags.token_url.filter(|u| !u.is_empty()),
                store: flags.store.filter(|s| !s.is_empty()),
            },
        })
    }

    /// The scope of the layer: exactly the upstream origin.
    pub(crate) fn scope(&self) -> Result<TokenScope, ConfigError> {
        TokenScope::origins([self.upstream.origin()]).map_err(|e| e.to_string())
    }
}

impl ManagerConfig {
    /// The token manager: credentials from BODHI_USERNAME and BODHI_PASSWORD, the IDM and
    /// store from the flags (which carry their environment variables already).
    pub(crate) fn build(&self) -> Result<TokenManager, ConfigError> {
        let credentials = Credentials::from_env().map_err(|e| e.to_string())?;
        let environment = self.environment.unwrap_or(Environment::Prod);
        let mut builder: TokenManagerBuilder =
            TokenManager::builder(credentials).environment(environment);
        if let Some(url) = &self.token_url {
            builder = builder.token_url(url.clone());
        }
        // The same values as BODHI_STORE in the library's `from_env`, read from the flag
        // (a Redis store's keys only ever from the environment).
        builder = builder
            .store_spec(self.store.as_deref().unwrap_or(""))
            .map_err(|e| e.to_string())?;
        builder.build().map_err(|e| e.to_string())
    }
}

/// One origin: https anywhere, http only on loopback; no path, query or user info.
fn parse_upstream(text: &str) -> Result<Upstream, ConfigError> {
    let bad = |why: &str| format!("--upstream (BODHI_API_URL) {text:?}: {why}");
    if text.contains(',') {
        return Err(bad("the proxy forwards to exactly one origin, not a list"));
    }
    let uri: Uri = text.trim().parse().map_err(|_| bad("not a URL"))?;
    let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
        return Err(bad("expected an origin such as https://api.example"));
    };
    if authority.as_str().contains('@') {
        return Err(bad("must not carry a user name or password"));
    }
    if uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
        return Err(bad("must be an origin, without a path or query"));
    }
    if *scheme == Scheme::HTTP {
        if !is_loopback(authority.host()) {
            return Err(bad("plain http is allowed only on loopback; use https"));
        }
    } else if *scheme != Scheme::HTTPS {
        return Err(bad("the scheme must be https (or http on loopback)"));
    }
    let authority: Authority = authority
        .as_str()
        .to_ascii_lowercase()
        .parse()
        .map_err(|_| bad("not a host"))?;
    Ok(Upstream {
        scheme: scheme.clone(),
        authority,
    })
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `name`, `name:port`, `[v6]` or `[v6]:port`: letters, digits, `.-:[]` only.
fn is_host_name(host: &str) -> bool {
    host.parse::<Authority>().is_ok_and(|a| a.as_str() == host)
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
}

/// The shared secret: the file's first line, which must not be empty; the file must
/// not be readable or writable by group or others.
fn read_client_token(path: &std::path::Path) -> Result<Vec<u8>, ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display();
    let metadata =
        std::fs::metadata(path).map_err(|e| format!("--client-token-file {shown}: {e}"))?;
    if metadata.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "--client-token-file {shown} is accessible to group or others; chmod 600 it"
        ));
    }
    let text = std::fs::read(path).map_err(|e| format!("--client-token-file {shown}: {e}"))?;
    let first = text.split(|&b| b == b'\n').next().unwrap_or_default();
    let token = first.strip_suffix(b"\r").unwrap_or(first).to_vec();
    if token.is_empty() {
        return Err(format!("--client-token-file {shown} is empty"));
    }
    if http::HeaderValue::from_bytes(&token).is_err() {
        return Err(format!(
            "--client-token-file {shown}: the token must be printable text (a header value)"
        ));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_is_one_https_origin_or_loopback_http() {
        assert!(parse_upstream("https://api.example").is_ok());
        assert!(parse_upstream("https://API.example:8443/").is_ok());
        assert!(parse_upstream("http://127.0.0.1:9000").is_ok());
        assert!(parse_upstream("http://[::1]:9000").is_ok());
        assert!(parse_upstream("http://localhost:9000").is_ok());
        for bad in [
            "http://api.example",
            "http://localhost.evil.example",
            "https://a.example,https://b.example",
            "https://api.example/v1",
            "https://user:pw@api.example",
            "ftp://api.example",
            "/relative",
        ] {
            assert!(parse_upstream(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn accept_host_takes_names_not_patterns() {
        assert!(is_host_name("proxy.internal"));
        assert!(is_host_name("proxy.internal:8181"));
        assert!(!is_host_name(".*"));
        assert!(!is_host_name("*.example"));
        assert!(!is_host_name("a/b"));
    }
}
