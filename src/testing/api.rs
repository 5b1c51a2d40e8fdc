//! [`FakeApi`]: a Bodhi-like resource server that checks tokens with a [`FakeIdm`].

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;

use super::FakeIdm;

/// A fake Bodhi API: 200 with a small JSON body for a live token from its [`FakeIdm`],
/// 401 with `WWW-Authenticate: Bearer error="invalid_token"` otherwise.
///
/// A `tower::Service` for any request body (in memory) and, with [`FakeApi::serve`], a
/// loopback HTTP server. Clones share counters.
#[derive(Clone)]
pub struct FakeApi {
    idm: FakeIdm,
    state: Arc<ApiState>,
}

#[derive(Default)]
struct ApiState {
    requests: AtomicUsize,
    unauthorized: AtomicUsize,
    reject_all: AtomicBool,
    reject_next: AtomicUsize,
}

impl fmt::Debug for FakeApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeApi")
            .field("requests", &self.requests())
            .field("unauthorized", &self.unauthorized())
            .finish_non_exhaustive()
    }
}

impl FakeApi {
    /// An API that trusts the tokens of `idm`.
    pub fn new(idm: &FakeIdm) -> FakeApi {
        FakeApi {
            idm: idm.clone(),
            state: Arc::default(),
        }
    }

    /// Answer 401 to every request (a user without rights to this API).
    pub fn set_reject_all(&self, reject: bool) {
        self.state.reject_all.store(reject, Ordering::SeqCst);
    }

    /// Answer 401 to the next `n` requests, whatever their token.
    pub fn reject_next(&self, n: usize) {
        self.state.reject_next.store(n, Ordering::SeqCst);
    }

    /// Requests received.
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Requests answered 401.
    pub fn unauthorized(&self) -> usize {
        self.state.unauthorized.load(Ordering::SeqCst)
    }

    /// The answer to a request with this `Authorization` header.
    pub fn respond(&self, authorization: Option<&HeaderValue>) -> Response<Full<Bytes>> {
        self.state.requests.fetch_add(1, Ordering::SeqCst);
        let forced = self.state.reject_all.load(Ordering::SeqCst)
            || self
                .state
                .reject_next
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        let user = authorization
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .and_then(|token| self.idm.validate(token))
            .filter(|_| !forced);
        let mut response = match user {
            Some(user) => Response::new(Full::new(Bytes::from(format!("{{\"user\":\"{user}\"}}")))),
            None => {
                self.state.unauthorized.fetch_add(1, Ordering::SeqCst);
                let mut r = Response::new(Full::new(Bytes::new()));
                *r.status_mut() = StatusCode::UNAUTHORIZED;
                r.headers_mut().insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer realm="bodhi", error="invalid_token""#),
                );
                r
            }
        };
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

impl<B> tower_service::Service<Request<B>> for FakeApi {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        std::future::ready(Ok(self.respond(request.headers().get(AUTHORIZATION))))
    }
}
