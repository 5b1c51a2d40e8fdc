//! [`IdmAuth`]: the service the layer produces.

use std::task::{Context, Poll};

use http::header::AUTHORIZATION;
use http::{Request, Response};
use tower_service::Service;

use super::BoxError;
use super::future::{Plan, Replay, ResponseFuture};
use super::origin_memo::OriginMemo;
use super::replay::ReplayBody;
use crate::{AccessToken, TokenManager, TokenScope};

/// Adds a Bodhi bearer token to each request and recovers from one 401.
/// Made by [`IdmAuthLayer`](super::IdmAuthLayer); the rules are in [the module
/// docs](crate::layer).
#[derive(Debug, Clone)]
pub struct IdmAuth<S, R> {
    inner: S,
    manager: TokenManager,
    replay: R,
    resend: bool,
    scope: TokenScope,
    /// The key of the origin this instance last sent a request to, for the 401 rule.
    origin: OriginMemo,
}

impl<S, R> IdmAuth<S, R> {
    pub(crate) fn new(
        inner: S,
        manager: TokenManager,
        replay: R,
        resend: bool,
        scope: TokenScope,
    ) -> Self {
        IdmAuth {
            inner,
            manager,
            replay,
            resend,
            scope,
            origin: OriginMemo::default(),
        }
    }

    /// The manager this service gets its tokens from.
    pub fn manager(&self) -> &TokenManager {
        &self.manager
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// A copy of `request` (body by `replay`) to resend after a 401.
fn copy_request<B>(request: &Request<B>, replay: &impl ReplayBody<B>) -> Option<Request<B>> {
    let body = replay.clone_body(request.body())?;
    let mut copy = Request::new(body);
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    *copy.extensions_mut() = request.extensions().clone();
    Some(copy)
}

impl<S, R, B, ResB> Service<Request<B>> for IdmAuth<S, R>
where
    S: Service<Request<B>, Response = Response<ResB>> + Clone,
    S::Error: Into<BoxError>,
    R: ReplayBody<B>,
{
    type Response = Response<ResB>;
    type Error = BoxError;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let admitted = match self.scope.admits_uri(request.uri()) {
            Some(admitted) if !request.headers().contains_key(AUTHORIZATION) => admitted,
            _ => return ResponseFuture::forward(self.inner.call(request)),
        };
        // The copy is made before the first send; the resend gets its own service
        // instance, readied when (and only if) it is needed.
        let replay = if self.resend {
            copy_request(&request, &self.replay).map(|request| {
                Box::new(Replay {
                    request,
                    service: self.inner.clone(),
                    manager: self.manager.clone(),
                })
            })
        } else {
            None
        };
        let uncopied = self.resend && replay.is_none();
        // With a copy, its URI says where the request went; without one, only the
        // origin's key is kept: the scope's own when it matched one of its origins.
        let sent_to = replay.is_none().then(|| {
            admitted
                .origin_key()
                .unwrap_or_else(|| self.origin.key(request.uri()))
        });
        let plan = Plan {
            replay,
            uncopied,
            sent_to,
        };
        match self.manager.cached() {
            // Sent now, by the instance `poll_ready` readied.
            Some(token) => ResponseFuture::send(&mut self.inner, request, token, plan),
            None => {
                // Sent later, by the future: it takes the ready instance and leaves a
                // fresh clone for the next `poll_ready` (tower-service docs, "Be careful
                // when cloning inner services").
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::wait_for_token(request, inner, plan, &self.manager)
            }
        }
    }
}

pub(super) fn set_token<B>(request: &mut Request<B>, token: &AccessToken) {
    request
        .headers_mut()
        .insert(AUTHORIZATION, token.header_value().clone());
}
