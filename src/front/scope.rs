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

use super::origin::Origin;
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

/// An origin of the list, lowercase.
#[derive(Debug)]
struct Allowed {
    scheme: String,
    host: String,
    port: u16,
}

impl Allowed {
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
                        Allowed {
                            scheme: scheme.to_ascii_lowercase(),
                            host: host.to_ascii_lowercase(),
                            port,
                        }
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

    fn allows<'a>(&self, origin: impl FnOnce() -> Option<Origin<'a>>) -> bool {
        match &self.0 {
            Scope::AnyOrigin => true,
            Scope::Origins(allowed) => {
                origin().is_some_and(|origin| allowed.iter().any(|a| a.matches(&origin)))
            }
        }
    }

    /// Whether a request for `uri` may carry the token.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(super) fn allows_uri(&self, uri: &http::Uri) -> bool {
        self.allows(|| Origin::of_uri(uri))
    }

    /// Whether a request for `url` may carry the token.
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
    pub(super) fn allows_url(&self, url: &url::Url) -> bool {
        self.allows(|| Origin::of_url(url))
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
