//! [`TokenScope`]: the origins a token may be sent to.
//!
//! Every [`IdmAuthLayer`](crate::IdmAuthLayer) and
//! [`IdmAuthMiddleware`](crate::IdmAuthMiddleware) is made with one: the Bodhi token is
//! a credential for Bodhi only, so a front end must be told where it may go.
//!
//! ```
//! use bodhi_auth::{Credentials, IdmAuthLayer, TokenScope};
//!
//! let scope = TokenScope::origins(["https://api.bodhi.example"])?;
//! let layer = IdmAuthLayer::new(Credentials::new("user", "secret"), scope);
//! # Ok::<(), bodhi_auth::Error>(())
//! ```

use std::sync::Arc;

use super::origin::{Origin, OriginKey};
use crate::{Error, ErrorKind};

/// The environment variable [`TokenScope::from_env`] reads.
pub const API_URL_ENV: &str = "BODHI_API_URL";

/// The origins (scheme, host, port) that may receive the Bodhi token.
///
/// A front end adds the token only to requests for these origins; any other request
/// passes through untouched and causes no login. So a client shared with third-party
/// APIs, or one that follows a redirect to another host, never sends the token
/// elsewhere. Requests whose URI has no scheme and host never get the token.
///
/// [`TokenScope::any_origin`] turns that off, for a stack that only ever talks to Bodhi.
///
/// Matching a request allocates nothing: origins are compared in place, ignoring ASCII
/// case.
#[derive(Debug, Clone)]
pub struct TokenScope(Scope);

#[derive(Debug, Clone)]
enum Scope {
    AnyOrigin,
    Origins(Arc<[Allowed]>),
}

/// An origin of the list, lowercase, and its key (so a request admitted by it needs no
/// key of its own computed).
#[derive(Debug)]
struct Allowed {
    scheme: String,
    host: String,
    port: u16,
    key: OriginKey,
    /// The URI authority as a request for this origin usually writes it (`host`, or
    /// `host:port` for a port that is not the scheme's default; IPv6 in brackets), and
    /// with the port always written.
    authority: String,
    authority_with_port: String,
}

impl Allowed {
    fn new(scheme: &str, host: &str, port: u16, key: OriginKey) -> Self {
        let (scheme, host) = (scheme.to_ascii_lowercase(), host.to_ascii_lowercase());
        let bracketed = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let authority_with_port = format!("{bracketed}:{port}");
        let authority = match Origin::new(&scheme, &host, None) {
            Some(default) if default.parts().2 == port => bracketed,
            _ => authority_with_port.clone(),
        };
        Allowed {
            scheme,
            host,
            port,
            key,
            authority,
            authority_with_port,
        }
    }

    /// Whether a URI with this scheme and authority is for this origin, compared as
    /// written (ASCII case aside): a quick test that never says yes when the parsed
    /// origins differ, and may say no when they are equal but written otherwise.
    fn written_as(&self, scheme: &str, authority: &str) -> bool {
        scheme.eq_ignore_ascii_case(&self.scheme)
            && (authority.eq_ignore_ascii_case(&self.authority)
                || authority.eq_ignore_ascii_case(&self.authority_with_port))
    }

    fn matches(&self, origin: &Origin<'_>) -> bool {
        Origin::new(&self.scheme, &self.host, Some(self.port)).as_ref() == Some(origin)
    }
}

impl TokenScope {
    /// A scope of these origins, each written as a URL (`https://api.example:8443`); a
    /// path is ignored, the port defaults by scheme. An empty list allows no origin.
    pub fn origins<I, S>(origins: I) -> Result<TokenScope, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let origins = origins
            .into_iter()
            .map(|text| {
                let text = text.as_ref();
                let url = url::Url::parse(text).ok();
                url.as_ref()
                    .and_then(Origin::of_url)
                    .map(|origin| {
                        let (scheme, host, port) = origin.parts();
                        Allowed::new(scheme, host, port, OriginKey::of(Some(origin)))
                    })
                    .ok_or_else(|| {
                        Error::new(
                            ErrorKind::Config,
                            format!(
                                "{text:?} is not an http(s) origin such as https://api.example"
                            ),
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TokenScope(Scope::Origins(origins.into())))
    }

    /// The scope `BODHI_API_URL` names: one origin, or several separated by commas
    /// (`https://api.example,https://files.example`). Unset or empty is an
    /// [`ErrorKind::Config`] error, since the front ends need a scope; a value that is
    /// not a list of http(s) origins is one too, naming the variable.
    pub fn from_env() -> Result<TokenScope, Error> {
        let value = crate::env::required(
            API_URL_ENV,
            "the Bodhi API origin(s) the token may be sent to, comma-separated",
        )?;
        TokenScope::origins(value.split(',').map(str::trim).filter(|s| !s.is_empty())).map_err(
            |e| {
                Error::new(
                    ErrorKind::Config,
                    format!("{API_URL_ENV} is {value:?}: {}", e.message()),
                )
            },
        )
    }

    /// Every request may carry the token, whatever its origin, relative URIs included.
    ///
    /// The explicit opt-out, for a client or service that only ever talks to Bodhi. It
    /// is the only way to let the token follow a redirect *above* a Tower layer: with
    /// tower-http's `FollowRedirectLayer` outside an [`IdmAuthLayer`](crate::IdmAuthLayer)
    /// made with this scope, each hop passes through the layer again and gets the token,
    /// whatever origin the `Location` names. Redirects followed *below* a front end
    /// (tower-http's `FollowRedirectLayer` inside the layer, or reqwest's own redirects)
    /// are not re-authorised: those libraries drop the `Authorization` header on a hop to
    /// another origin.
    pub fn any_origin() -> TokenScope {
        TokenScope(Scope::AnyOrigin)
    }

    /// Whether a request for this origin may carry the token, and how it was admitted.
    fn admits<'a>(&self, origin: impl FnOnce() -> Option<Origin<'a>>) -> Option<Admitted> {
        match &self.0 {
            Scope::AnyOrigin => Some(Admitted(None)),
            Scope::Origins(allowed) => {
                let origin = origin()?;
                let matched = allowed.iter().find(|a| a.matches(&origin))?;
                Some(Admitted(Some(matched.key)))
            }
        }
    }

    /// Whether a request for `uri` may carry the token, and how it was admitted.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(super) fn admits_uri(&self, uri: &http::Uri) -> Option<Admitted> {
        // First as written, which needs no parsing of the authority: a request for one
        // of the origins usually names it as the list does. Anything else (another
        // origin, user info, a port written `:0443`) is parsed and compared in full.
        if let Scope::Origins(allowed) = &self.0
            && let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority())
            && let Some(matched) = allowed
                .iter()
                .find(|a| a.written_as(scheme, authority.as_str()))
        {
            return Some(Admitted(Some(matched.key)));
        }
        self.admits(|| Origin::of_uri(uri))
    }

    /// Whether a request for `uri` may carry the token.
    #[cfg(test)]
    pub(super) fn allows_uri(&self, uri: &http::Uri) -> bool {
        self.admits_uri(uri).is_some()
    }

    /// Whether a request for `url` may carry the token, and how it was admitted.
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
    pub(super) fn admits_url(&self, url: &url::Url) -> Option<Admitted> {
        self.admits(|| Origin::of_url(url))
    }

    /// Whether a request for `url` may carry the token.
    #[cfg(test)]
    pub(super) fn allows_url(&self, url: &url::Url) -> bool {
        self.admits_url(url).is_some()
    }
}

/// A request a scope admitted: the key of its origin when the scope matched it against
/// one of its own (computed once, when the scope was made), so the cached path of a
/// front end that keeps no copy does not parse and hash the origin a second time.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(any(feature = "tower", feature = "reqwest")), allow(dead_code))]
pub(super) struct Admitted(Option<OriginKey>);

#[cfg_attr(not(any(feature = "tower", feature = "reqwest")), allow(dead_code))]
impl Admitted {
    /// The key of the request's origin, when the scope matched it against one of its own.
    pub(super) fn origin_key(self) -> Option<OriginKey> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_on_scheme_host_and_port() {
        let scope = TokenScope::origins([
            "https://API.example",
            "http://127.0.0.1:8080/x",
            "http://[::1]:3000",
        ])
        .unwrap();
        let allows = |uri: &str| scope.allows_uri(&uri.parse().unwrap());
        assert!(allows("https://api.example/stores"));
        assert!(allows("HTTPS://Api.Example:443/stores"));
        assert!(allows("http://127.0.0.1:8080/"));
        assert!(allows("http://[::1]:3000/"));
        assert!(!allows("http://api.example/stores"), "scheme differs");
        assert!(!allows("https://api.example:8443/"), "port differs");
        assert!(!allows("https://api.example.evil.com/"), "host differs");
        assert!(!allows("/relative"), "no origin");
        assert!(
            allows("https://api.example:0443/"),
            "a port written otherwise"
        );
        assert!(allows("https://user@api.example/"), "user info");
        assert!(allows("HTTP://127.0.0.1:8080/"));
        assert!(!allows("http://127.0.0.1/"), "default port, not 8080");
        assert!(allows("http://[::1]:3000/x"));
        assert!(!allows("http://[::1]/"), "default port, not 3000");
        assert!(TokenScope::origins(["not a url"]).is_err());
        let url = |text: &str| url::Url::parse(text).unwrap();
        assert!(scope.allows_url(&url("https://API.example/stores")));
        assert!(!scope.allows_url(&url("https://elsewhere.example/")));
    }

    #[test]
    fn any_origin_allows_every_request_and_an_empty_list_none() {
        let any = TokenScope::any_origin();
        assert!(any.allows_uri(&"https://anything.example/".parse().unwrap()));
        assert!(any.allows_uri(&"/relative".parse().unwrap()));
        let none = TokenScope::origins(Vec::<String>::new()).unwrap();
        assert!(!none.allows_uri(&"https://api.example/".parse().unwrap()));
    }
}
