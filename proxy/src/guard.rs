//! What a request must pass before anything is forwarded: the method and URI form, the
//! Host allow list (DNS rebinding), browser requests (`Origin`, `Sec-Fetch-Site`), the
//! client token, `..` segments and the client's own `Authorization`.

use http::header::{AUTHORIZATION, HOST, ORIGIN};
use http::{HeaderMap, HeaderName, Method, StatusCode, Uri, Version};
use subtle::ConstantTimeEq;

/// The header a client sends the shared secret of `--client-token-file` in.
pub(crate) const CLIENT_TOKEN_HEADER: HeaderName = HeaderName::from_static("x-bodhi-proxy-token");
const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// Why a request was refused: its status, a stable code for the JSON body and the
/// metrics label, and a sentence for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: &'static str,
}

impl Refusal {
    const fn new(status: StatusCode, code: &'static str, message: &'static str) -> Self {
        Refusal {
            status,
            code,
            message,
        }
    }
}

pub(crate) const CONNECT: Refusal = Refusal::new(
    StatusCode::METHOD_NOT_ALLOWED,
    "connect_refused",
    "bodhi-proxy is not an open proxy: CONNECT is refused",
);
pub(crate) const ABSOLUTE_FORM: Refusal = Refusal::new(
    StatusCode::BAD_REQUEST,
    "absolute_uri_refused",
    "bodhi-proxy is not an open proxy: send the path only; the upstream is fixed",
);
pub(crate) const HOST_REFUSED: Refusal = Refusal::new(
    StatusCode::FORBIDDEN,
    "host_refused",
    "this Host is not accepted (only loopback names with the listening port, and --accept-host)",
);
pub(crate) const ORIGIN_REFUSED: Refusal = Refusal::new(
    StatusCode::FORBIDDEN,
    "origin_refused",
    "browser requests from this Origin are refused (see --allow-origin)",
);
pub(crate) const CROSS_SITE: Refusal = Refusal::new(
    StatusCode::FORBIDDEN,
    "cross_site_refused",
    "cross-site browser requests are refused (Sec-Fetch-Site is not none or same-origin)",
);
pub(crate) const CLIENT_TOKEN: Refusal = Refusal::new(
    StatusCode::UNAUTHORIZED,
    "client_token_required",
    "send the proxy's shared secret in X-Bodhi-Proxy-Token",
);
pub(crate) const PATH: Refusal = Refusal::new(
    StatusCode::BAD_REQUEST,
    "path_refused",
    "the path must start with / and have no . or .. segments, raw or percent-encoded",
);
pub(crate) const CLIENT_AUTHORIZATION: Refusal = Refusal::new(
    StatusCode::FORBIDDEN,
    "client_authorization_refused",
    "the request has its own Authorization header; the proxy adds the token itself (see --pass-client-auth)",
);

/// The checks' settings, fixed at start-up.
#[derive(Debug, Clone)]
pub(crate) struct Guard {
    /// Lowercase `host[:port]` values accepted in `Host`, exactly.
    hosts: Vec<String>,
    /// Lowercase origins whose browser requests are allowed.
    origins: Vec<String>,
    client_token: Option<Vec<u8>>,
    pass_client_auth: bool,
}

impl Guard {
    /// `port` is the listening port (`None` on a Unix socket, where clients send
    /// `localhost`). `accept` adds hosts; one without a port gets the listening port.
    pub(crate) fn new(
        port: Option<u16>,
        accept: &[String],
        origins: Vec<String>,
        client_token: Option<Vec<u8>>,
        pass_client_auth: bool,
    ) -> Guard {
        let with_port = |name: &str| match port {
            Some(port) => format!("{name}:{port}"),
            None => name.to_owned(),
        };
        let mut hosts: Vec<String> = ["127.0.0.1", "[::1]", "localhost"]
            .into_iter()
            .map(with_port)
            .collect();
        for host in accept {
            let has_port = host.rsplit_once(':').is_some_and(|(_, p)| !p.contains(']'));
            hosts.push(if has_port {
                host.clone()
            } else {
                with_port(host)
            });
        }
        Guard {
            hosts,
            origins,
            client_token,
            pass_client_auth,
        }
    }

    /// Every check, in order; `Ok` means the request may go on (to the reserved `/-/`
    /// endpoints, or upstream).
    pub(crate) fn check(
        &self,
        method: &Method,
        uri: &Uri,
        version: Version,
        headers: &HeaderMap,
    ) -> Result<(), Refusal> {
        if method == Method::CONNECT {
            return Err(CONNECT);
        }
        // HTTP/2 carries the authority in the URI (`:authority`); HTTP/1 requests in
        // origin form have none, and an absolute-form one is a proxy request.
        let host = if version == Version::HTTP_2 {
            uri.authority().map(|a| a.as_str())
        } else {
            if uri.scheme().is_some() || uri.authority().is_some() {
                return Err(ABSOLUTE_FORM);
            }
            single(headers, &HOST)
        };
        if !host.is_some_and(|h| self.hosts.iter().any(|a| a.eq_ignore_ascii_case(h))) {
            return Err(HOST_REFUSED);
        }
        self.check_browser(headers)?;
        if let Some(expected) = &self.client_token {
            let sent = single(headers, &CLIENT_TOKEN_HEADER).unwrap_or_default();
            if !bool::from(sent.as_bytes().ct_eq(expected)) {
                return Err(CLIENT_TOKEN);
            }
        }
        if !path_is_safe(uri.path()) {
            return Err(PATH);
        }
        Ok(())
    }

    /// The check for a request to be forwarded (not for `/-/`): no `Authorization` of
    /// its own unless `--pass-client-auth`.
    pub(crate) fn check_authorization(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        if headers.contains_key(AUTHORIZATION) && !self.pass_client_auth {
            return Err(CLIENT_AUTHORIZATION);
        }
        Ok(())
    }

    /// A page in a browser can reach a loopback port, and a cross-site `POST` needs no
    /// preflight: refuse any `Origin` not allowed, and any `Sec-Fetch-Site` but `none`
    /// (typed in, a bookmark) or `same-origin`. A page on another loopback port is
    /// `same-site`, and refused.
    fn check_browser(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        if let Some(origin) = headers.get(ORIGIN) {
            // An allowed origin's requests are cross-site by nature: the allow list is
            // the operator's word for them.
            return if self.allows_origin(origin) {
                Ok(())
            } else {
                Err(ORIGIN_REFUSED)
            };
        }
        for site in headers.get_all(SEC_FETCH_SITE) {
            let site = site.to_str().unwrap_or("invalid");
            if !(site.eq_ignore_ascii_case("none") || site.eq_ignore_ascii_case("same-origin")) {
                return Err(CROSS_SITE);
            }
        }
        Ok(())
    }
}

impl Guard {
    /// Whether `origin` is one of `--allow-origin` (exactly, ignoring ASCII case).
    pub(crate) fn allows_origin(&self, origin: &http::HeaderValue) -> bool {
        origin.to_str().is_ok_and(|o| {
            let o = o.trim_end_matches('/');
            self.origins.iter().any(|a| a.eq_ignore_ascii_case(o))
        })
    }
}

/// The value of a header that must appear once, as text.
fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok()
}

/// A path that cannot climb out of the upstream's root however the upstream decodes it:
/// it starts with `/`, and no segment is `.` or `..` once percent-decoded (repeatedly,
/// so `%252e%252e` counts too), with `\` counted as a separator.
pub(crate) fn path_is_safe(path: &str) -> bool {
    if !path.starts_with('/') {
        return false;
    }
    let mut current = path.as_bytes().to_vec();
    // Each round removes one layer of encoding; a path that still changes after a few
    // is refused rather than followed.
    for _ in 0..4 {
        let has_dot_segment = current
            .split(|&b| b == b'/' || b == b'\\')
            .any(|segment| segment == b"." || segment == b"..");
        if has_dot_segment {
            return false;
        }
        let decoded = percent_decode(&current);
        if decoded == current {
            return true;
        }
        current = decoded;
    }
    false
}

fn percent_decode(input: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%'
            && let (Some(h), Some(l)) = (
                input.get(i + 1).copied().and_then(hex),
                input.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn guard() -> Guard {
        Guard::new(Some(8181), &[], Vec::new(), None, false)
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn check(g: &Guard, uri: &str, pairs: &[(&str, &str)]) -> Result<(), Refusal> {
        g.check(
            &Method::GET,
            &uri.parse().unwrap(),
            Version::HTTP_11,
            &headers(pairs),
        )
    }

    #[test]
    fn host_allow_list_is_anchored_and_has_the_port() {
        let g = guard();
        for ok in [
            "127.0.0.1:8181",
            "localhost:8181",
            "[::1]:8181",
            "LOCALHOST:8181",
        ] {
            assert_eq!(check(&g, "/x", &[("host", ok)]), Ok(()), "{ok}");
        }
        for bad in [
            "evil.example",
            "localhost.evil.example",
            "localhost.evil.example:8181",
            "evil.example:8181",
            "localhost",
            "localhost:8182",
            "127.0.0.1:8181.evil.example",
        ] {
            assert_eq!(
                check(&g, "/x", &[("host", bad)]),
                Err(HOST_REFUSED),
                "{bad}"
            );
        }
        assert_eq!(check(&g, "/x", &[]), Err(HOST_REFUSED));
        let two = [("host", "localhost:8181"), ("host", "evil.example")];
        assert_eq!(check(&g, "/x", &two), Err(HOST_REFUSED));
    }

    #[test]
    fn browsers_are_refused_unless_allowed() {
        let g = Guard::new(
            Some(8181),
            &[],
            vec!["http://localhost:3000".into()],
            None,
            false,
        );
        let h = ("host", "localhost:8181");
        for site in ["none", "same-origin"] {
            assert_eq!(check(&g, "/x", &[h, ("sec-fetch-site", site)]), Ok(()));
        }
        for site in ["same-site", "cross-site", "bogus"] {
            assert_eq!(
                check(&g, "/x", &[h, ("sec-fetch-site", site)]),
                Err(CROSS_SITE)
            );
        }
        let evil = ("origin", "http://127.0.0.1:9999");
        assert_eq!(check(&g, "/x", &[h, evil]), Err(ORIGIN_REFUSED));
        assert_eq!(
            check(&g, "/x", &[h, ("origin", "null")]),
            Err(ORIGIN_REFUSED)
        );
        let allowed = [
            h,
            ("origin", "http://localhost:3000"),
            ("sec-fetch-site", "same-site"),
        ];
        assert_eq!(check(&g, "/x", &allowed), Ok(()));
    }

    #[test]
    fn dot_segments_are_refused_raw_or_encoded() {
        for ok in ["/", "/stores", "/a/b.c/d", "/a..b", "/...", "/%41"] {
            assert!(path_is_safe(ok), "{ok}");
        }
        for bad in [
            "/..",
            "/a/../b",
            "/%2e%2e/x",
            "/%2E%2e",
            "/.%2e/",
            "/a/%252e%252e/b",
            "/./a",
            "/a\\..\\b",
            "/a%5c..%5cb",
            "/a%2f..%2fb",
            "*",
            "",
        ] {
            assert!(!path_is_safe(bad), "{bad}");
        }
    }

    #[test]
    fn client_token_is_required_when_configured() {
        let g = Guard::new(Some(1), &[], Vec::new(), Some(b"s3cret".to_vec()), false);
        let h = ("host", "localhost:1");
        assert_eq!(check(&g, "/x", &[h]), Err(CLIENT_TOKEN));
        assert_eq!(
            check(&g, "/x", &[h, ("x-bodhi-proxy-token", "s3cre")]),
            Err(CLIENT_TOKEN)
        );
        assert_eq!(
            check(&g, "/x", &[h, ("x-bodhi-proxy-token", "s3cret")]),
            Ok(())
        );
    }

    #[test]
    fn absolute_form_and_connect_are_refused() {
        let g = guard();
        let h = ("host", "localhost:8181");
        assert_eq!(check(&g, "http://evil.example/x", &[h]), Err(ABSOLUTE_FORM));
        let connect = g.check(
            &Method::CONNECT,
            &"evil.example:443".parse().unwrap(),
            Version::HTTP_11,
            &headers(&[h]),
        );
        assert_eq!(connect, Err(CONNECT));
    }
}
