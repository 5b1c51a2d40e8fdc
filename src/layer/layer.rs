//! [`IdmAuthLayer`]: wraps any `Service<http::Request<_>>` in [`IdmAuth`].

use tower_layer::Layer;

use super::replay::KnownBodies;
use super::service::IdmAuth;
use crate::{Credentials, TokenManager, TokenScope};

/// A Tower layer that authenticates every request with a Bodhi access token.
///
/// See [the module docs](crate::layer) for the rules. Clones share one
/// [`TokenManager`]; so do layers made with [`with_manager`](Self::with_manager) from
/// one manager, and an [`IdmAuthMiddleware`](crate::IdmAuthMiddleware) made from it.
#[derive(Debug, Clone)]
pub struct IdmAuthLayer<R = KnownBodies> {
    manager: TokenManager,
    replay: R,
    resend: bool,
    scope: Option<TokenScope>,
}

impl IdmAuthLayer {
    /// A layer with its own manager for the Prod IDM and every default. Infallible.
    pub fn new(credentials: Credentials) -> Self {
        Self::with_manager(TokenManager::new(credentials))
    }

    /// A layer over an existing manager (shared cache, shared login).
    pub fn with_manager(manager: TokenManager) -> Self {
        IdmAuthLayer {
            manager,
            replay: KnownBodies,
            resend: true,
            scope: None,
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

    /// Sends the token only to these origins; other requests pass through untouched.
    pub fn scope(mut self, scope: TokenScope) -> Self {
        self.scope = Some(scope);
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
