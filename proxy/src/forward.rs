//! The way upstream: each request rewritten to an absolute URI on the upstream origin
//! (the layer's scope matches nothing else), stripped of hop-by-hop, forwarded and
//! client-only headers, then sent through `BufferBodyLayer` + `IdmAuthLayer` and a
//! hyper-util client.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bodhi_auth::{
    BoxError, BufferBody, BufferBodyLayer, BufferedBodies, IdmAuth, IdmAuthLayer, ReplayableBody,
    TokenManager, TokenScope,
};
use http::header::{AUTHORIZATION, CONNECTION, HOST, PROXY_AUTHORIZATION, TE, TRAILER, UPGRADE};
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName, Request, Response, Uri};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::{Layer, Service, ServiceExt};

use crate::config::Upstream;
use crate::guard::CLIENT_TOKEN_HEADER;

type Https = HttpsConnector<HttpConnector>;
type Body = ReplayableBody<Incoming>;
/// The whole way upstream, as one cloneable Tower service.
pub(crate) type Upstreamer = BufferBody<IdmAuth<RequireToken<Client<Https, Body>>, BufferedBodies>>;

/// Builds the stack: bodies up to `replay_limit` are kept for the one resend after a
/// 401; the layer adds the token to requests for exactly the upstream origin.
pub(crate) fn upstreamer(
    manager: TokenManager,
    scope: TokenScope,
    replay_limit: usize,
) -> Result<Upstreamer, BoxError> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()?
        .https_or_http()
        .enable_http1()
        .build();
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .build::<_, Body>(connector);
    let auth = IdmAuthLayer::with_manager(manager, scope).replay(BufferedBodies);
    // With --pass-client-auth a client's own Authorization reaches the layer, which
    // leaves it alone, and `RequireToken` lets it through; without, the guard refused it.
    let inner = RequireToken { inner: client };
    Ok(BufferBodyLayer::new(replay_limit).layer(auth.layer(inner)))
}

/// Sends `request` (already rewritten) upstream.
pub(crate) async fn send(
    upstreamer: Upstreamer,
    request: Request<Incoming>,
) -> Result<Response<Incoming>, BoxError> {
    let mut response = upstreamer.oneshot(request).await?;
    strip_hop_by_hop(response.headers_mut());
    Ok(response)
}

/// The request addressed to the upstream: an absolute URI on its origin with the
/// client's path and query, and only end-to-end headers the upstream should see.
pub(crate) fn rewrite<B>(request: &mut Request<B>, upstream: &Upstream) -> Result<(), http::Error> {
    let path = request
        .uri()
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    *request.uri_mut() = Uri::builder()
        .scheme(upstream.scheme.clone())
        .authority(upstream.authority.clone())
        .path_and_query(path)
        .build()?;
    // The upstream connection is HTTP/1.1, whatever the client spoke.
    *request.version_mut() = http::Version::HTTP_11;
    let headers = request.headers_mut();
    strip_hop_by_hop(headers);
    strip_forwarded(headers);
    // The client set Host for the proxy; the client sets it from the URI.
    headers.remove(HOST);
    headers.remove(CLIENT_TOKEN_HEADER);
    headers.remove(PROXY_AUTHORIZATION);
    Ok(())
}

/// Headers for one hop only (RFC 9110 §7.6.1): `Connection` and every header it names,
/// and the classic list.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        // Never let `Connection: authorization` take the token's header away... or
        // anything the proxy itself decides on: those are handled on their own.
        if name != AUTHORIZATION {
            headers.remove(name);
        }
    }
    for name in [
        CONNECTION,
        TE,
        TRAILER,
        UPGRADE,
        http::header::TRANSFER_ENCODING,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
        http::header::PROXY_AUTHENTICATE,
    ] {
        headers.remove(name);
    }
}

/// Every spelling of the forwarding headers, which the upstream could trust for the
/// client's address: `Forwarded`, `X-Forwarded-*`, `X-Real-IP`, with `_` for `-`.
pub(crate) fn strip_forwarded(headers: &mut HeaderMap) {
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            let name = name.as_str().replace('_', "-");
            name == "forwarded"
                || name.starts_with("x-forwarded")
                || name == "x-real-ip"
                || name == "x-client-ip"
        })
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

/// The last line of fail-closed: a request reaches the upstream only with an
/// `Authorization` header (the layer's token, or with `--pass-client-auth` the
/// client's own). A request the layer let through without a token (it would be one
/// its scope does not match) is an error, never a bare request.
#[derive(Debug, Clone)]
pub(crate) struct RequireToken<S> {
    inner: S,
}

/// The error of a request that would have gone upstream without a token.
#[derive(Debug)]
pub(crate) struct NoToken;

impl std::fmt::Display for NoToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("refused to forward a request without a token")
    }
}

impl std::error::Error for NoToken {}

impl<S> Service<Request<Body>> for RequireToken<S>
where
    S: Service<Request<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let has_token = request.headers().contains_key(AUTHORIZATION);
        if !has_token {
            return Box::pin(async { Err(Box::new(NoToken) as BoxError) });
        }
        let future = self.inner.call(request);
        Box::pin(async move { future.await.map_err(Into::into) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn rewrite_fixes_the_destination_and_strips_headers() {
        let upstream = Upstream {
            scheme: http::uri::Scheme::HTTPS,
            authority: "api.example".parse().unwrap(),
        };
        let mut request = Request::get("/stores?x=1")
            .header(HOST, "evil.example")
            .header("x-forwarded-for", "1.2.3.4")
            .header("x_forwarded_host", "evil.example")
            .header("X_Forwarded_For", "1.2.3.4")
            .header("forwarded", "for=1.2.3.4")
            .header("x-real-ip", "1.2.3.4")
            .header(CONNECTION, "close, x-secret")
            .header("x-secret", "1")
            .header("keep-alive", "timeout=5")
            .header("proxy-authorization", "Basic eA==")
            .header("x-bodhi-proxy-token", "s3cret")
            .header("accept", "application/json")
            .body(())
            .unwrap();
        rewrite(&mut request, &upstream).unwrap();
        assert_eq!(request.uri(), "https://api.example/stores?x=1");
        let names: Vec<&str> = request.headers().keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["accept"]);
        assert_eq!(
            request.headers()["accept"],
            HeaderValue::from_static("application/json")
        );
    }
}
