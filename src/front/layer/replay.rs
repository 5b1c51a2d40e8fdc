//! [`ReplayBody`]: which request bodies can be copied for a resend after a 401.

use std::any::Any;
use std::fmt;

use bytes::Bytes;
use http_body::Body;
use http_body_util::{Empty, Full};

use super::body::ReplayableBody;

/// Makes a copy of a request body so the request can be sent a second time.
///
/// Decided before the first send (as `tower::retry::Policy::clone_request` is): a
/// streaming body cannot be copied after it was consumed.
pub trait ReplayBody<B> {
    /// A copy of `body`, or `None` if it cannot be copied.
    fn clone_body(&self, body: &B) -> Option<B>;
}

/// The default: copies the bodies known to be replayable — `Full<Bytes>`,
/// `Empty<Bytes>`, `String`, `Vec<u8>`, `Bytes` and `()` — and no others (hyper's
/// `Incoming`, `axum::body::Body`, boxed and streaming bodies are not copied).
///
/// Recognising the type needs `B: 'static`; for a body type that is not `'static`, use
/// [`NoReplay`] or [`CloneBodyFn`]. To resend requests whose body is read as it is sent
/// (`Incoming`, axum's `Body`, streams), put a [`BufferBodyLayer`](super::BufferBodyLayer)
/// outside the layer and use [`BufferedBodies`].
#[derive(Debug, Clone, Copy, Default)]
pub struct KnownBodies;

impl<B: 'static> ReplayBody<B> for KnownBodies {
    fn clone_body(&self, body: &B) -> Option<B> {
        let body = body as &dyn Any;
        // Each arm copies a concrete type, then hands it back as `B` through `Any`:
        // no allocation, no unsafe, and a type that matches no arm is simply `None`.
        fn cast<T: 'static, B: 'static>(copy: T) -> Option<B> {
            let mut slot = Some(copy);
            (&mut slot as &mut dyn Any)
                .downcast_mut::<Option<B>>()
                .and_then(Option::take)
        }
        if let Some(full) = body.downcast_ref::<Full<Bytes>>() {
            cast(full.clone())
        } else if body.is::<Empty<Bytes>>() {
            cast(Empty::<Bytes>::new())
        } else if let Some(s) = body.downcast_ref::<String>() {
            cast(s.clone())
        } else if let Some(v) = body.downcast_ref::<Vec<u8>>() {
            cast(v.clone())
        } else if let Some(b) = body.downcast_ref::<Bytes>() {
            cast(b.clone())
        } else if body.is::<()>() {
            cast(())
        } else {
            None
        }
    }
}

/// Copies the [`ReplayableBody`] bodies that a [`BufferBodyLayer`](super::BufferBodyLayer)
/// outside the auth layer collected, and empty ones of any type; a body it streamed on
/// (over its limit) is not copied, and a 401 to it is returned (after the token is
/// invalidated, with a `debug` event "not resent: the body cannot be copied").
///
/// ```
/// use bodhi_auth::{BufferBodyLayer, BufferedBodies, Credentials, IdmAuthLayer, TokenScope};
///
/// let scope = TokenScope::origins(["https://api.bodhi.example"])?;
/// let layers = tower::ServiceBuilder::new()
///     .layer(BufferBodyLayer::new(64 * 1024))
///     .layer(IdmAuthLayer::new(Credentials::new("user", "secret"), scope).replay(BufferedBodies));
/// # let _ = layers;
/// # Ok::<(), bodhi_auth::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct BufferedBodies;

impl<B: Body> ReplayBody<ReplayableBody<B>> for BufferedBodies {
    fn clone_body(&self, body: &ReplayableBody<B>) -> Option<ReplayableBody<B>> {
        body.try_clone()
    }
}

/// Never copies a body: a 401 is always returned (after invalidating the token).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoReplay;

impl<B> ReplayBody<B> for NoReplay {
    fn clone_body(&self, _body: &B) -> Option<B> {
        None
    }
}

/// A body copier written by the user, for body types this crate cannot know and that can
/// be copied from a shared reference: a type of your own that is `Clone`, or one that
/// holds its bytes.
///
/// It gets `&B` before the request is sent, so it cannot copy a body that is read as it
/// is sent (hyper's `Incoming`, axum's `Body`, a stream): reading it would consume it.
/// For those, use [`BufferBodyLayer`](super::BufferBodyLayer) and [`BufferedBodies`].
///
/// ```
/// use bodhi_auth::{CloneBodyFn, Credentials, IdmAuthLayer, TokenScope};
///
/// #[derive(Clone)]
/// struct MyBody(Vec<u8>);
///
/// let scope = TokenScope::origins(["https://api.bodhi.example"])?;
/// let layer = IdmAuthLayer::new(Credentials::new("user", "secret"), scope)
///     .replay(CloneBodyFn::new(|body: &MyBody| Some(body.clone())));
/// # Ok::<(), bodhi_auth::Error>(())
/// ```
#[derive(Clone)]
pub struct CloneBodyFn<F>(F);

impl<F> CloneBodyFn<F> {
    /// Wraps `f`, which returns a copy of a body or `None`.
    pub fn new(f: F) -> Self {
        CloneBodyFn(f)
    }
}

impl<B, F: Fn(&B) -> Option<B>> ReplayBody<B> for CloneBodyFn<F> {
    fn clone_body(&self, body: &B) -> Option<B> {
        (self.0)(body)
    }
}

impl<F> fmt::Debug for CloneBodyFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CloneBodyFn(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_bodies_are_copied_and_others_are_not() {
        let full = Full::new(Bytes::from_static(b"x"));
        assert!(KnownBodies.clone_body(&full).is_some());
        assert!(KnownBodies.clone_body(&Empty::<Bytes>::new()).is_some());
        assert_eq!(
            KnownBodies.clone_body(&"s".to_owned()).as_deref(),
            Some("s")
        );
        assert_eq!(KnownBodies.clone_body(&vec![1u8]), Some(vec![1u8]));
        assert_eq!(KnownBodies.clone_body(&()), Some(()));
        struct Stream;
        assert!(KnownBodies.clone_body(&Stream).is_none());
        assert!(NoReplay.clone_body(&"s".to_owned()).is_none());
    }
}
