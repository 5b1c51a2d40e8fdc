//! The seam between the token manager and the network.
//!
//! The manager hands an [`IdmRequest`] to a [`Transport`] and gets the status, the
//! `Retry-After` header and at most `body_limit` bytes of body back. The real transport
//! is reqwest; tests plug in the in-memory fake IDM (feature `testing`) so that time can
//! be paused.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::StatusCode;
use http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use zeroize::Zeroizing;

use crate::{Error, ErrorKind};

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A form POST to the IDM. Its body holds a password or a refresh token.
pub(crate) struct IdmRequest {
    pub(crate) url: reqwest::Url,
    pub(crate) form: Zeroizing<String>,
    /// The whole `Authorization` header value, when the request carries one.
    pub(crate) authorization: Option<Zeroizing<String>>,
}

impl IdmRequest {
    pub(crate) fn new(
        url: reqwest::Url,
        form: Zeroizing<String>,
        authorization: Option<Zeroizing<String>>,
    ) -> Self {
        IdmRequest {
            url,
            form,
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
}

impl ReqwestTransport {
    pub(crate) fn new(client: Option<reqwest::Client>) -> Self {
        let cell = OnceLock::new();
        if let Some(client) = client {
            let _ = cell.set(Ok(client));
        }
        ReqwestTransport { client: cell }
    }

    fn client(&self) -> Result<&reqwest::Client, Error> {
        self.client
            .get_or_init(|| {
                reqwest::Client::builder().build().map_err(|e| {
                    Error::new(ErrorKind::Config, "could not create the HTTP client").with_source(e)
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

pub(crate) fn body_too_large(limit: usize) -> Error {
    Error::new(
        ErrorKind::InvalidResponse,
        format!("the IDM's answer is larger than the {limit}-byte limit"),
    )
}

impl Transport for ReqwestTransport {
    fn send(&self, request: IdmRequest, body_limit: usize) -> BoxFuture<Result<IdmReply, Error>> {
        let client = match self.client() {
            Ok(client) => client,
            Err(error) => return Box::pin(std::future::ready(Err(error))),
        };
        let mut builder = client
            .post(request.url)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(authorization) = &request.authorization
            && let Ok(mut value) = http::HeaderValue::from_str(authorization)
        {
            value.set_sensitive(true);
            builder = builder.header(AUTHORIZATION, value);
        }
        let builder = builder.body(request.form.as_bytes().to_vec());
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
                    "the IDM request timed out"
                } else if e.is_connect() {
                    "could not connect to the IDM"
                } else {
                    "the IDM request failed"
                };
                // `without_url` keeps the message short; the token URL is no secret,
                // but reqwest errors never carry the form body either way.
                Error::new(ErrorKind::Unavailable, what).with_source(e.without_url())
            };
            let mut response = builder.send().await.map_err(unavailable)?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(super::idm::parse_retry_after);
            if response
                .content_length()
                .is_some_and(|len| len > body_limit as u64)
            {
                return Err(body_too_large(body_limit).with_status(status));
            }
            let mut body = BytesMut::new();
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

/// True when TLS refused the IDM's certificate somewhere in `error`'s chain. rustls's
/// error sits inside (nested) `io::Error`s, whose `source()` skips their inner error,
/// hence `get_ref`.
fn refused_certificate(error: &reqwest::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if matches!(
            e.downcast_ref::<rustls::Error>(),
            Some(rustls::Error::InvalidCertificate(_))
        ) {
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
