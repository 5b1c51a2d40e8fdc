//! What both front ends share: the one rule for a 401, and the origins a token may go to.
//!
//! A front end adds the current token to each request for an origin of its
//! [`TokenScope`](crate::TokenScope); when the answer is a 401 to that token, it asks this module what to
//! do: drop the token (unless the 401 came from another origin that never saw it), then
//! resend once with a different token, wait for one, or hand the 401 back. The Tower
//! layer and the reqwest middleware differ only in how they carry requests.

// With neither front end compiled in, only the scope is used.
#![cfg_attr(not(any(feature = "tower", feature = "reqwest")), allow(dead_code))]

#[cfg(feature = "tower")]
pub mod layer;
#[cfg(feature = "reqwest")]
pub mod middleware;
pub(crate) mod origin;
pub(crate) mod scope;

use crate::{AccessToken, Error, TokenManager};

/// The part of the front ends' 401 rule that needs no copy of the request: drop
/// `rejected` unless the 401 came from a redirect target on another origin, which
/// never got the token. Returns whether it was dropped.
pub(crate) fn note_rejection(manager: &TokenManager, rejected: &AccessToken, by: Rejector) -> bool {
    by != Rejector::OtherOrigin && manager.invalidate(rejected)
}

/// The first half of the front ends' 401 rule: [note](note_rejection) the
/// rejection, then say whether a different token is at hand to resend with, must be
/// awaited, or will not come now. A 401 at the end of a redirect is never resent:
/// the request that was redirected has already been processed.
#[cfg_attr(not(feature = "tower"), allow(dead_code))]
pub(crate) fn replace_rejected(
    manager: &TokenManager,
    rejected: &AccessToken,
    by: Rejector,
) -> Replacement {
    note_rejection(manager, rejected, by);
    if by != Rejector::Request {
        return Replacement::None;
    }
    match manager.cached() {
        Some(token) if token.same_token(rejected) => Replacement::None,
        Some(token) => Replacement::Ready(token),
        None => Replacement::Wait,
    }
}

/// The whole 401 rule: the token to resend with, or `None` to hand the 401 back
/// (throttled, no new token, the IDM failed, or the 401 came from a redirect target;
/// an IDM failure shows on the next call).
#[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
pub(crate) async fn replacement_for(
    manager: &TokenManager,
    rejected: &AccessToken,
    by: Rejector,
) -> Option<AccessToken> {
    match replace_rejected(manager, rejected, by) {
        Replacement::Ready(token) => Some(token),
        Replacement::None => None,
        Replacement::Wait => Replacement::filter(manager.access_token().await, rejected),
    }
}

/// Who answered a 401, as far as a front end can tell from the final URL of the response
/// (reqwest's `Response::url()`, or the `RequestUri` that tower-http's `FollowRedirect`
/// below a layer records).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejector {
    /// The request itself: no redirect was followed, or none can be seen.
    Request,
    /// A redirect target on the request's own origin: it got the token (redirect
    /// followers keep `Authorization` within an origin) and refused it, but the request
    /// that was redirected has been processed, so it is not sent again.
    SameOriginRedirect,
    /// A redirect target on another origin: redirect followers drop `Authorization` on
    /// such a hop, so its 401 says nothing about our token.
    OtherOrigin,
}

impl Rejector {
    /// From a copy of the request: whether the final URL is the request's, and whether
    /// its origin is.
    pub(crate) fn after(same_url: bool, same_origin: bool) -> Rejector {
        if same_url {
            Rejector::Request
        } else if same_origin {
            Rejector::SameOriginRedirect
        } else {
            Rejector::OtherOrigin
        }
    }

    /// When only the request's origin was kept (no copy, so no resend either way): the
    /// origin alone decides whether the token is dropped.
    pub(crate) fn by_origin(same_origin: bool) -> Rejector {
        if same_origin {
            Rejector::Request
        } else {
            Rejector::OtherOrigin
        }
    }
}

/// What a front end does after a 401 (see [`replace_rejected`]).
pub(crate) enum Replacement {
    /// Resend with this token.
    Ready(AccessToken),
    /// Await [`TokenManager::access_token`] and pass the result to [`Replacement::filter`].
    Wait,
    /// Hand the 401 back.
    None,
}

impl Replacement {
    /// A token worth resending with: a new one, not the rejected one.
    pub(crate) fn filter(
        result: Result<AccessToken, Error>,
        rejected: &AccessToken,
    ) -> Option<AccessToken> {
        match result {
            Ok(token) if !token.same_token(rejected) => Some(token),
            Ok(_) => None,
            Err(error) => {
                tracing::debug!(target: "bodhi_auth", %error, "no new token after a 401; returning the 401");
                None
            }
        }
    }
}
