//! [`IdmAuthLayer`]: wraps any `Service<http::Request<_>>` in [`IdmAuth`].

use tower_layer::Layer;

use super::replay::KnownBodies;
use super::service::IdmAuth;
use crate::{Credentials, TokenManager, TokenScope};

/// A Tower layer that authenticates requests for the origins of its [`TokenScope`]
/// with a Bodhi access token.
///
/// See [the module docs](crate::layer) for the rules. Clones share one
/// [`TokenManager`]; so do layers made with [`with_manager`](Self::with_manager) from
/// one manager, and an [`IdmAuthMiddleware`](crate::IdmAuthMiddleware) made from it.
#[derive(Debug, Clone)]
pub struct IdmAuthLayer<R = KnownBodies> {
    manager: TokenManager,
    replay: R,
    resend: bool,
    scope: TokenScope,
}

impl IdmAuthLayer {
    /// A layer with its own manager for the Prod IDM and every default, sending the
    /// token only to the origins of `scope`. Infallible.
    pub fn new(credentials: Credentials, scope: TokenScope) -> Self {
        Self::with_manager(TokenManager::new(credentials), scope)
    }

    /// A layer over an existing manager (shared cache, shared login), sending the token
    /// only to the origins of `scope`.
    pub fn with_manager(manager: TokenManager, scope: TokenScope) -> Self {
        IdmAuthLayer {
            manager,
            replay: KnownBodies,
            resend: true,
            scope,
        }
    }
}

impl<R> IdmAuthLayer<R> {
    /// The manager this layer gets its tokens from.
    pub fn manager(&self) -> &TokenManager {
        &self.manager
    }

    /// Whether to resend a request after a 401 when a new token is available (on by
    /// default). Off, a 401 is returned after the token is invalidated and no copy of
    /// the request is made.
    pub fn resend(mut self, resend: bool) -> Self {
        self.resend = resend;
        self
    }

    /// How request bodies are copied for a resend ([`KnownBodies`] by default).
    pub fn replay<P>(self, replay: P) -> IdmAuthLayer<P> {
        IdmAuthLayer {
            manager: self.manager,
            replay,
            resend: self.resend,
            scope: self.scope,
        }
    }
}

impl<S, R: Clone> Layer<S> for IdmAuthLayer<R> {
    type Service = IdmAuth<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        IdmAuth::new(
            inner,
            self.manager.clone(),
            self.replay.clone(),
            self.resend,
            self.scope.clone(),
        )
    }
}
