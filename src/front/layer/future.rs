//! [`ResponseFuture`]: a hand-written state machine, so the cached-token path does not
//! allocate; only waiting for the IDM boxes a future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_http::follow_redirect::RequestUri;
use tower_service::Service;

use super::BoxError;
use super::service::set_token;
use crate::front::origin::{Origin, OriginKey};
use crate::front::{Rejector, Replacement, replace_rejected};
use crate::manager::Event;
use crate::{AccessToken, Error, ErrorKind, TokenManager};

type TokenFuture = Pin<Box<dyn Future<Output = Result<AccessToken, Error>> + Send>>;

/// What a resend needs: the copied request, a service instance to ready, and the
/// manager (held strongly here: the service, and with it the layer's handle, may be gone
/// by the time the 401 arrives, as with `oneshot`).
pub(crate) struct Replay<S, B> {
    pub(crate) request: Request<B>,
    pub(crate) service: S,
    pub(crate) manager: TokenManager,
}

/// How a request is to be sent, decided in `call`: the copy to resend (if any), whether
/// resending was on but the body could not be copied (said in a `debug` event if a 401
/// comes back), and, without a copy, the key of the origin it is sent to (for the 401
/// rule: the copy's URI says where it went, so no `Uri` is cloned on the cached path).
pub(super) struct Plan<S, B> {
    pub(super) replay: Option<Box<Replay<S, B>>>,
    pub(super) uncopied: bool,
    pub(super) sent_to: Option<OriginKey>,
}

pin_project! {
    /// The response future of [`IdmAuth`](super::IdmAuth).
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<B>>,
    {
        // No cached token: waiting for the manager (the only boxed path).
        WaitingForToken {
            token: TokenFuture,
            // Boxed, like the other slow-path payloads, to keep the future small for
            // the cached path, which moves it around.
            pending: Option<Box<(Request<B>, S)>>,
            replay: Option<Box<Replay<S, B>>>,
            uncopied: bool,
            sent_to: Option<OriginKey>,
        },
        // Sent with our token; a 401 may lead to a resend.
        Sent {
            #[pin]
            future: S::Future,
            token: Option<AccessToken>,
            replay: Option<Box<Replay<S, B>>>,
            // Without a copy, what is left of the request's address: its origin.
            sent_to: Option<OriginKey>,
            // Resending was on, but the body could not be copied.
            uncopied: bool,
        },
        // Got a 401; waiting for a token that differs from the rejected one.
        Renewing {
            token: TokenFuture,
            rejected: AccessToken,
            response: Option<Box<S::Response>>,
            replay: Option<Box<Replay<S, B>>>,
        },
        // Readying the spare service for the resend.
        Resending { replay: Option<Box<Replay<S, B>>> },
        // A caller's own header, or the resend: whatever comes back is the answer.
        Forward {
            #[pin]
            future: S::Future,
        },
        Done,
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    pub(super) fn forward(future: S::Future) -> Self {
        ResponseFuture {
            state: State::Forward { future },
        }
    }

    /// `request` with `token` set, sent through `service`, as `plan` says.
    pub(super) fn send(
        service: &mut S,
        request: Request<B>,
        token: AccessToken,
        plan: Plan<S, B>,
    ) -> Self {
        ResponseFuture {
            state: State::send(service, request, token, plan),
        }
    }

    pub(super) fn wait_for_token(
        request: Request<B>,
        service: S,
        plan: Plan<S, B>,
        manager: &TokenManager,
    ) -> Self {
        let Plan {
            replay,
            uncopied,
            sent_to,
        } = plan;
        ResponseFuture {
            state: State::WaitingForToken {
                token: Box::pin(manager.clone().access_token_owned()),
                pending: Some(Box::new((request, service))),
                replay,
                uncopied,
                sent_to,
            },
        }
    }
}

fn polled_after_completion() -> BoxError {
    Box::new(Error::new(
        ErrorKind::Config,
        "IdmAuth's response future was polled after it completed",
    ))
}

impl<S, B, ResB> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResB>>,
    S::Error: Into<BoxError>,
{
    type Output = Result<Response<ResB>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let next = match this.state.as_mut().project() {
                StateProj::WaitingForToken {
                    token,
                    pending,
                    replay,
                    uncopied,
                    sent_to,
                } => {
                    let token = match ready!(token.as_mut().poll(cx)) {
                        Ok(token) => token,
                        Err(error) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Err(Box::new(error)));
                        }
                    };
                    let Some(pending) = pending.take() else {
                        return Poll::Ready(Err(polled_after_completion()));
                    };
                    let (request, mut service) = *pending;
                    let plan = Plan {
                        replay: replay.take(),
                        uncopied: *uncopied,
                        sent_to: *sent_to,
                    };
                    State::send(&mut service, request, token, plan)
                }
                StateProj::Sent {
                    future,
                    token,
                    replay,
                    sent_to,
                    uncopied,
                } => {
                    let response = match ready!(future.poll(cx)) {
                        Ok(response) => response,
                        Err(error) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Err(error.into()));
                        }
                    };
                    let Some(rejected) = token.take() else {
                        return Poll::Ready(Err(polled_after_completion()));
                    };
                    if response.status() != StatusCode::UNAUTHORIZED {
                        this.state.set(State::Done);
                        return Poll::Ready(Ok(response));
                    }
                    let by = rejector(&response, replay.as_deref(), *sent_to);
                    let Some(replay) = replay.take() else {
                        if *uncopied && by == Rejector::Request {
                            tracing::debug!(target: "bodhi_auth", "not resent: the body cannot be copied");
                        }
                        // No copy to resend: invalidate so the next request is fresh,
                        // through the token's handle on its cache (if the cache is gone,
                        // so is the token it held).
                        if by != Rejector::OtherOrigin {
                            rejected.report_rejected();
                        }
                        this.state.set(State::Done);
                        return Poll::Ready(Ok(response));
                    };
                    match replace_rejected(&replay.manager, &rejected, by) {
                        Replacement::Ready(fresh) => resend(replay, &fresh),
                        Replacement::None => {
                            this.state.set(State::Done);
                            return Poll::Ready(Ok(response));
                        }
                        Replacement::Wait => State::Renewing {
                            token: Box::pin(replay.manager.clone().access_token_owned()),
                            rejected,
                            response: Some(Box::new(response)),
                            replay: Some(replay),
                        },
                    }
                }
                StateProj::Renewing {
                    token,
                    rejected,
                    response,
                    replay,
                } => {
                    let result = ready!(token.as_mut().poll(cx));
                    match (Replacement::filter(result, rejected), replay.take()) {
                        (Some(fresh), Some(replay)) => resend(replay, &fresh),
                        _ => {
                            let response = response
                                .take()
                                .map(|response| *response)
                                .ok_or_else(polled_after_completion);
                            this.state.set(State::Done);
                            return Poll::Ready(response);
                        }
                    }
                }
                StateProj::Resending { replay } => {
                    let Some(pending) = replay.as_mut() else {
                        return Poll::Ready(Err(polled_after_completion()));
                    };
                    if let Err(error) = ready!(pending.service.poll_ready(cx)) {
                        this.state.set(State::Done);
                        return Poll::Ready(Err(error.into()));
                    }
                    let Some(pending) = replay.take() else {
                        return Poll::Ready(Err(polled_after_completion()));
                    };
                    let Replay {
                        request,
                        mut service,
                        manager,
                    } = *pending;
                    tracing::debug!(target: "bodhi_auth", "resending the request after a 401");
                    manager.count(Event::Resend);
                    State::Forward {
                        future: service.call(request),
                    }
                }
                StateProj::Forward { future } => {
                    let result = ready!(future.poll(cx)).map_err(Into::into);
                    this.state.set(State::Done);
                    return Poll::Ready(result);
                }
                StateProj::Done => return Poll::Ready(Err(polled_after_completion())),
            };
            this.state.set(next);
        }
    }
}

impl<S, B> State<S, B>
where
    S: Service<Request<B>>,
{
    fn send(
        service: &mut S,
        mut request: Request<B>,
        token: AccessToken,
        plan: Plan<S, B>,
    ) -> Self {
        set_token(&mut request, &token);
        State::Sent {
            future: service.call(request),
            token: Some(token),
            replay: plan.replay,
            sent_to: plan.sent_to,
            uncopied: plan.uncopied,
        }
    }
}

/// Who answered a 401. `FollowRedirect` below this layer records the URI it last
/// requested in the response; without that record, the answer is the request's.
fn rejector<S, B, ResB>(
    response: &Response<ResB>,
    replay: Option<&Replay<S, B>>,
    sent_to: Option<OriginKey>,
) -> Rejector {
    let Some(RequestUri(last)) = response.extensions().get::<RequestUri>() else {
        return Rejector::Request;
    };
    match (replay, sent_to) {
        (Some(replay), _) => {
            let first = replay.request.uri();
            Rejector::after(
                first == last,
                Origin::same(Origin::of_uri(first), Origin::of_uri(last)),
            )
        }
        (None, Some(sent_to)) => {
            Rejector::by_origin(sent_to == OriginKey::of(Origin::of_uri(last)))
        }
        (None, None) => Rejector::Request,
    }
}

fn resend<S, B>(mut replay: Box<Replay<S, B>>, fresh: &AccessToken) -> State<S, B>
where
    S: Service<Request<B>>,
{
    set_token(&mut replay.request, fresh);
    State::Resending {
        replay: Some(replay),
    }
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::WaitingForToken { .. } => "WaitingForToken",
            State::Sent { .. } => "Sent",
            State::Renewing { .. } => "Renewing",
            State::Resending { .. } => "Resending",
            State::Forward { .. } => "Forward",
            State::Done => "Done",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
