//! Origins (scheme, host, port) read in place from a request's URI or URL.
//!
//! Both the token scope and the 401 rule compare origins on every request, so nothing
//! here allocates: hosts and schemes are compared ASCII case-insensitively where they
//! lie, and the port defaults by scheme.

use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::OnceLock;

/// The default port of `scheme`, for the schemes that can carry a Bodhi token.
fn default_port(scheme: &str) -> Option<u16> {
    if scheme.eq_ignore_ascii_case("https") {
        Some(443)
    } else if scheme.eq_ignore_ascii_case("http") {
        Some(80)
    } else {
        None
    }
}

/// An origin borrowed from a URI or URL. Equality ignores ASCII case, as origins do.
#[derive(Debug, Clone, Copy)]
pub(super) struct Origin<'a> {
    scheme: &'a str,
    host: &'a str,
    port: u16,
}

impl<'a> Origin<'a> {
    /// `None` for a scheme other than http(s) without a port.
    pub(crate) fn new(scheme: &'a str, host: &'a str, port: Option<u16>) -> Option<Self> {
        let port = port.or_else(|| default_port(scheme))?;
        // IPv6 literals come bracketed from a URI and a URL alike; compare them bare.
        let host = host
            .strip_prefix('[')
            .and_then(|host| host.strip_suffix(']'))
            .unwrap_or(host);
        Some(Origin { scheme, host, port })
    }

    /// The origin of an absolute URI; `None` for a relative one (`/stores`).
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(super) fn of_uri(uri: &'a http::Uri) -> Option<Self> {
        Origin::new(uri.scheme_str()?, uri.host()?, uri.port_u16())
    }

    /// The origin of a URL; `None` for one without a host.
    pub(super) fn of_url(url: &'a url::Url) -> Option<Self> {
        Origin::new(url.scheme(), url.host_str()?, url.port())
    }

    /// The scheme, host (without brackets) and port, as written.
    pub(crate) fn parts(&self) -> (&'a str, &'a str, u16) {
        (self.scheme, self.host, self.port)
    }

    /// Whether two possibly missing origins are the same; two missing ones are (both
    /// requests went wherever a relative URI goes).
    #[cfg_attr(not(any(feature = "tower", feature = "reqwest")), allow(dead_code))]
    pub(crate) fn same(a: Option<Origin<'_>>, b: Option<Origin<'_>>) -> bool {
        match (a, b) {
            (Some(a), Some(b)) => a == b,
            (None, None) => true,
            _ => false,
        }
    }
}

impl PartialEq for Origin<'_> {
    fn eq(&self, other: &Origin<'_>) -> bool {
        self.port == other.port
            && self.scheme.eq_ignore_ascii_case(other.scheme)
            && self.host.eq_ignore_ascii_case(other.host)
    }
}

/// A request's origin kept, as a keyed hash, past the moment the request is handed to
/// the inner service: for a front end that kept no copy of the request and must later
/// tell whether a 401 came from that origin. Equal origins give equal keys; two
/// different origins share one with a probability of 2^-64, and the hash is keyed per
/// process, so a redirect target cannot choose a URL that collides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(any(feature = "tower", feature = "reqwest")), allow(dead_code))]
pub(super) struct OriginKey(u64);

#[cfg_attr(not(any(feature = "tower", feature = "reqwest")), allow(dead_code))]
impl OriginKey {
    pub(crate) fn of(origin: Option<Origin<'_>>) -> OriginKey {
        static KEYS: OnceLock<RandomState> = OnceLock::new();
        let mut hasher = KEYS.get_or_init(RandomState::new).build_hasher();
        match origin {
            None => hasher.write_u8(0),
            Some(origin) => {
                hasher.write_u8(1);
                hasher.write_u16(origin.port);
                for part in [origin.scheme, origin.host] {
                    // Lowercased (equal origins must give equal keys) in chunks on the
                    // stack: the hasher takes a byte stream, so where it is cut does not
                    // change the key, and one `write` per chunk is several times faster
                    // than one per byte (this runs on every request without a copy).
                    let mut lower = [0u8; 64];
                    for chunk in part.as_bytes().chunks(lower.len()) {
                        let lower = &mut lower[..chunk.len()];
                        lower.copy_from_slice(chunk);
                        lower.make_ascii_lowercase();
                        hasher.write(lower);
                    }
                    hasher.write_u8(0xff); // not a byte of any UTF-8 text: ends the part
                }
            }
        }
        OriginKey(hasher.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(uri: &str) -> Option<Origin<'static>> {
        let uri: &'static http::Uri = Box::leak(Box::new(uri.parse().unwrap()));
        Origin::of_uri(uri)
    }

    #[test]
    fn origins_ignore_case_and_default_ports_by_scheme() {
        assert_eq!(
            origin("HTTPS://API.example/x"),
            origin("https://api.example:443/y")
        );
        assert_eq!(origin("http://[::1]:80/"), origin("http://[::1]/"));
        assert_ne!(
            origin("https://api.example/"),
            origin("http://api.example/")
        );
        assert_ne!(
            origin("https://api.example/"),
            origin("https://api.example:8443/")
        );
        assert_ne!(
            origin("https://api.example/"),
            origin("https://api.example.evil/")
        );
        assert_eq!(origin("/relative"), None);
        assert_eq!(origin("ftp://files.example/"), None);
    }

    #[test]
    fn keys_are_equal_exactly_for_equal_origins() {
        let key = |uri| OriginKey::of(origin(uri));
        assert_eq!(
            key("https://API.example/x"),
            key("https://api.example:443/y")
        );
        assert_ne!(key("https://api.example/"), key("https://files.example/"));
        assert_ne!(key("https://api.example/"), key("http://api.example:443/"));
        assert_ne!(key("https://api.example/"), key("/relative"));
        assert_eq!(key("/a"), key("/b"));
    }
}
