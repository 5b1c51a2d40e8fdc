//! [`TokenScope`]: the origins a token may be sent to.
//!
//! ```
//! use bodhi_auth::{Credentials, IdmAuthLayer, TokenScope};
//!
//! let scope = TokenScope::origins(["https://api.bodhi.example"]).unwrap();
//! let layer = IdmAuthLayer::new(Credentials::new("user", "secret")).scope(scope);
//! ```

use std::sync::Arc;

use crate::{Error, ErrorKind};

/// A list of origins (scheme, host, port) that may receive the Bodhi token.
///
/// With a scope, the front ends add the token only to requests for these origins; any
/// other request passes through untouched and causes no login. So a client shared with
/// third-party APIs, or one that follows a redirect to another host, never sends the
/// token elsewhere. Requests whose URI has no scheme and host never get the token.
#[derive(Debug, Clone)]
pub struct TokenScope {
    origins: Arc<[Origin]>,
}

#[derive(Debug, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    }
}

impl Origin {
    fn new(scheme: &str, host: &str, port: Option<u16>) -> Option<Origin> {
        let scheme = scheme.to_ascii_lowercase();
        let port = port.or_else(|| default_port(&scheme))?;
        Some(Origin {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase(),
            scheme,
            port,
        })
    }
}

impl TokenScope {
    /// A scope of these origins, each written as a URL (`https://api.example:8443`); a
    /// path is ignored, the port defaults by scheme.
    pub fn origins<I, S>(origins: I) -> Result<TokenScope, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let origins = origins
            .into_iter()
            .map(|text| {
                let text = text.as_ref();
                reqwest::Url::parse(text)
                    .ok()
                    .and_then(|url| Origin::new(url.scheme(), url.host_str()?, url.port()))
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
        Ok(TokenScope {
            origins: origins.into(),
        })
    }

    fn allows(&self, origin: Option<Origin>) -> bool {
        origin.is_some_and(|origin| self.origins.contains(&origin))
    }

    /// Whether a request for `uri` may carry the token.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn allows_uri(&self, uri: &http::Uri) -> bool {
        let origin = (|| Origin::new(uri.scheme_str()?, uri.host()?, uri.port_u16()))();
        self.allows(origin)
    }

    /// Whether a request for `url` may carry the token.
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
    pub(crate) fn allows_url(&self, url: &reqwest::Url) -> bool {
        let origin = (|| Origin::new(url.scheme(), url.host_str()?, url.port()))();
        self.allows(origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_on_scheme_host_and_port() {
        let scope =
            TokenScope::origins(["https://API.example", "http://127.0.0.1:8080/x"]).unwrap();
        let allows = |uri: &str| scope.allows_uri(&uri.parse().unwrap());
        assert!(allows("https://api.example/stores"));
        assert!(allows("https://api.example:443/stores"));
        assert!(allows("http://127.0.0.1:8080/"));
        assert!(!allows("http://api.example/stores"), "scheme differs");
        assert!(!allows("https://api.example:8443/"), "port differs");
        assert!(!allows("https://api.example.evil.com/"), "host differs");
        assert!(!allows("/relative"), "no origin");
        assert!(TokenScope::origins(["not a url"]).is_err());
    }
}
