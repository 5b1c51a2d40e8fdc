//! The seam between the token manager and the network.
//!
//! The manager hands an [`IdmRequest`] to a [`Transport`] and gets the status, the
//! `Retry-After` header and at most `body_limit` bytes of body back. The real transport
//! is reqwest; tests plug in the in-memory fake IDM (feature `testing`) so that time can
//! be paused.
//!
//! IDM requests are never redirected: their form holds a password or a refresh token,
//! and a 307/308 would re-send it to wherever the `Location` points, plain http
//! included, past the https-or-loopback rule the token URL was checked against. The
//! crate's own client does not follow redirects, and a 3xx answer is an
//! [`ErrorKind::Config`] error naming the `Location` (without its query). A client
//! given to [`http_client`](crate::TokenManagerBuilder::http_client) keeps its own
//! redirect policy, which reqwest fixes when it is built: if it followed one (the
//! answer's URL is not the request's), the answer is refused with the same kind of
//! error, though the form has already gone there.
//!
//! Secrets in memory: every copy this crate makes of a form holding a password or a
//! refresh token (the form, the `Authorization` value, the IDM's answer) lives in
//! zeroizing storage, wiped when dropped, and is handed to reqwest as `Bytes` owned by
//! that storage, without a copy. What reqwest, hyper and rustls copy into their own
//! buffers (the connection's write buffer, TLS records) is outside this guarantee, as is
//! what the fake IDM of the `testing` feature keeps.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use http::{HeaderValue, StatusCode};
use zeroize::Zeroizing;

use crate::wiped_buffer::WipedBuffer;

use crate::error::root_cause;
use crate::{Error, ErrorKind};

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A form POST to the IDM, ready for the wire. Its body holds a password or a refresh
/// token.
///
/// The body and the header value are `Bytes` whose owner is the zeroizing buffer they
/// were built in: handing them to a transport copies nothing, and the buffer is wiped
/// when the last reference (the transport's included) is dropped.
pub(crate) struct IdmRequest {
    pub(crate) url: reqwest::Url,
    /// The URL-encoded form.
    pub(crate) body: Bytes,
    /// The whole `Authorization` header value (sensitive), when the request has one.
    pub(crate) authorization: Option<HeaderValue>,
}

impl IdmRequest {
    pub(crate) fn new(
        url: reqwest::Url,
        form: Zeroizing<String>,
        authorization: Option<Zeroizing<String>>,
    ) -> Self {
        let authorization = authorization.and_then(|value| {
            // A value with bytes a header cannot carry (a hostile IDM's refresh token)
            // is left out; the same token in the form still identifies the session.
            let mut value = HeaderValue::from_maybe_shared(Bytes::from_owner(value)).ok()?;
            value.set_sensitive(true);
            Some(value)
        });
        IdmRequest {
            url,
            body: Bytes::from_owner(form),
            authorization,
        }
    }
}

impl fmt::Debug for IdmRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdmRequest")
            .field("url", &self.url.as_str())
            .field("form", &"<redacted>")
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// What came back: status, `Retry-After`, and the (capped) body.
#[derive(Debug, Clone)]
pub(crate) struct IdmReply {
    pub(crate) status: StatusCode,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) body: Bytes,
}

/// Sends one request to the IDM. Network failures are [`ErrorKind::Unavailable`]; a body
/// over `body_limit` is [`ErrorKind::InvalidResponse`]. Time-outs are the caller's job.
pub(crate) trait Transport: Send + Sync + fmt::Debug + 'static {
    fn send(&self, request: IdmRequest, body_limit: usize) -> BoxFuture<Result<IdmReply, Error>>;
}

/// The production transport: one `reqwest::Client`, created on first use when the
/// user gave none, so that building a manager stays infallible and free of I/O.
#[derive(Debug)]
pub(crate) struct ReqwestTransport {
    client: OnceLock<Result<reqwest::Client, Error>>,
    /// Build the default client without any proxy (the token URL is on loopback).
    no_proxy: bool,
    /// The client came from `http_client`: its TLS is the user's business.
    user_client: bool,
}

impl ReqwestTransport {
    pub(crate) fn new(client: Option<reqwest::Client>, no_proxy: bool) -> Self {
        let cell = OnceLock::new();
        let user_client = client.is_some();
        if let Some(client) = client {
            let _ = cell.set(Ok(client));
        }
        ReqwestTransport {
            client: cell,
            no_proxy,
            user_client,
        }
    }

    fn client(&self) -> Result<&reqwest::Client, Error> {
        if let Some(client) = self.client.get() {
            return client.as_ref().map_err(Clone::clone);
        }
        // Not cached: the program may install the provider before its next login.
        missing_crypto_provider()?;
        self.client
            .get_or_init(|| {
                // No pooled connections: a pooled connection is driven by a task on the
                // runtime that opened it, so a flight on another runtime would stall on
                // it while that one is idle. The IDM is called a few times a day; a new
                // connection each time costs nothing that matters.
                let mut builder = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .pool_max_idle_per_host(0);
                if self.no_proxy {
                    builder = builder.no_proxy();
                }
                builder.build().map_err(|e| {
                    Error::new(ErrorKind::Config, "could not create the HTTP client").with_source(e)
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// With `rustls-no-provider` alone, reqwest panics when it builds a client and no
/// process-level rustls `CryptoProvider` is installed: say so as an error instead.
fn missing_crypto_provider() -> Result<(), Error> {
    #[cfg(all(
        feature = "rustls-no-provider",
        not(any(feature = "rustls", feature = "native-tls"))
    ))]
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        return Err(Error::new(
            ErrorKind::Config,
            "bodhi-auth was built with `rustls-no-provider` and no rustls CryptoProvider is \
             installed: install one at start-up, e.g. \
             `rustls::crypto::ring::default_provider().install_default()`",
        ));
    }
    Ok(())
}

pub(crate) fn body_too_large(limit: usize) -> Error {
    Error::new(
        ErrorKind::InvalidResponse,
        format!("the IDM's answer is larger than the {limit}-byte limit"),
    )
}

/// Whether one of the crate's TLS features is on; without one, the crate's own client
/// reaches only loopback `http://` token URLs.
const TLS_BUILT_IN: bool = cfg!(any(
    feature = "rustls",
    feature = "rustls-no-provider",
    feature = "native-tls"
));

fn no_tls() -> Error {
    Error::new(
        ErrorKind::Config,
        "this build of bodhi-auth has no TLS, so it cannot reach an https token URL: enable \
         its `rustls`, `rustls-no-provider` or `native-tls` feature, or give `http_client` a \
         reqwest client that has TLS",
    )
}

impl Transport for ReqwestTransport {
    fn send(&self, request: IdmRequest, body_limit: usize) -> BoxFuture<Result<IdmReply, Error>> {
        if !TLS_BUILT_IN && !self.user_client && request.url.scheme() == "https" {
            return Box::pin(std::future::ready(Err(no_tls())));
        }
        let client = match self.client() {
            Ok(client) => client,
            Err(error) => return Box::pin(std::future::ready(Err(error))),
        };
        let url = request.url.clone();
        let mut builder = client
            .post(request.url)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(authorization) = request.authorization {
            builder = builder.header(AUTHORIZATION, authorization);
        }
        let builder = builder.body(request.body);
        Box::pin(async move {
            let unavailable = |e: reqwest::Error| {
                if refused_certificate(&e) {
                    // Permanent until the configuration changes: not worth retrying.
                    return Error::new(
                        ErrorKind::Config,
                        "the IDM's TLS certificate is not trusted (give `http_client` a \
                         client that trusts its CA)",
                    )
                    .with_source(e.without_url());
                }
                let what = if e.is_timeout() {
                    "the request to the IDM timed out"
                } else if e.is_connect() {
                    "could not connect to the IDM"
                } else {
                    "the request to the IDM failed"
                };
                // The message names the URL (without its query) and the innermost
                // cause, where a person finds what to fix; reqwest errors never carry
                // the form body.
                let e = e.without_url();
                let message = format!("{what} at {}: {}", shown(&url), root_cause(&e));
                Error::new(ErrorKind::Unavailable, message).with_source(e)
            };
            let mut response = builder.send().await.map_err(unavailable)?;
            let status = response.status();
            if response.url() != &url {
                return Err(followed_redirect(response.url()).with_status(status));
            }
            if status.is_redirection() {
                let location = response.headers().get(LOCATION);
                return Err(refused_redirect(&url, location).with_status(status));
            }
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(super::wire::parse_retry_after);
            if response
                .content_length()
                .is_some_and(|len| len > body_limit as u64)
            {
                return Err(body_too_large(body_limit).with_status(status));
            }
            // The answer holds the new refresh token: collect it in wiped storage.
            let expected = response.content_length().unwrap_or(0) as usize;
            let mut body = WipedBuffer::with_capacity(expected);
            while let Some(chunk) = response.chunk().await.map_err(unavailable)? {
                if body.len() + chunk.len() > body_limit {
                    return Err(body_too_large(body_limit).with_status(status));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(IdmReply {
                status,
                retry_after,
                body: body.freeze(),
            })
        })
    }
}

/// A 3xx from the IDM: permanent until the token URL changes, so not retried.
fn refused_redirect(request_url: &reqwest::Url, location: Option<&http::HeaderValue>) -> Error {
    let target = match location {
        None => "nowhere (no Location)".to_owned(),
        Some(value) => match value.to_str().ok().map(|l| request_url.join(l)) {
            Some(Ok(target)) => shown(&target),
            _ => "an unreadable Location".to_owned(),
        },
    };
    Error::new(
        ErrorKind::Config,
        format!(
            "the IDM answered with a redirect to {target}; IDM requests are never \
             redirected (their form holds a password or refresh token): set the token URL \
             to the right address"
        ),
    )
}

/// A user-supplied client followed a redirect: the form went to `to` already, but its
/// answer is not trusted, and the configuration must change.
fn followed_redirect(to: &reqwest::Url) -> Error {
    Error::new(
        ErrorKind::Config,
        format!(
            "the HTTP client given to `http_client` followed a redirect from the IDM to {}; \
             build it with `reqwest::redirect::Policy::none()`",
            shown(to)
        ),
    )
}

/// A URL for an error message: no user info, query or fragment (they may carry a
/// session or a code), and not too long.
pub(crate) fn shown(url: &reqwest::Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    url.as_str()
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect()
}

/// True when TLS refused the IDM's certificate somewhere in `error`'s chain. The TLS
/// error sits inside (nested) `io::Error`s, whose `source()` skips their inner error,
/// hence `get_ref`.
fn refused_certificate(error: &reqwest::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if is_certificate_refusal(e) {
            return true;
        }
        cause = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner),
            None => e.source(),
        };
    }
    false
}

/// One link of the chain: rustls's typed refusal, or (native-tls) OpenSSL's verify
/// failure, which native-tls only reports as text. Other platforms' native refusals are
/// not recognised and stay `Unavailable`.
fn is_certificate_refusal(error: &(dyn std::error::Error + 'static)) -> bool {
    #[cfg(any(feature = "rustls", feature = "rustls-no-provider"))]
    if matches!(
        error.downcast_ref::<rustls::Error>(),
        Some(rustls::Error::InvalidCertificate(_))
    ) {
        return true;
    }
    #[cfg(feature = "native-tls")]
    if let Some(native) = error.downcast_ref::<native_tls::Error>() {
        return native.to_string().contains("certificate verify failed");
    }
    let _ = error;
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_is_named_without_user_info_query_or_fragment() {
        let from = reqwest::Url::parse("http://127.0.0.1:9/auth/token").unwrap();
        let location = http::HeaderValue::from_static("https://u:p@idm.example/t?code=1#f");
        let err = refused_redirect(&from, Some(&location));
        assert_eq!(err.kind(), ErrorKind::Config);
        let message = err.to_string();
        assert!(message.contains("https://idm.example/t;"), "{message}");
        for hidden in ["code", "u:p", "#f"] {
            assert!(!message.contains(hidden), "{message}");
        }
        let relative = http::HeaderValue::from_static("/elsewhere?x=1");
        let message = refused_redirect(&from, Some(&relative)).to_string();
        assert!(
            message.contains("http://127.0.0.1:9/elsewhere;"),
            "{message}"
        );
        assert!(
            refused_redirect(&from, None)
                .to_string()
                .contains("no Location")
        );
    }
}
