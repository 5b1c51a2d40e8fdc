//! The reqwest front end: [`IdmAuthMiddleware`] for `reqwest-middleware`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use bodhi_auth::testing::{FakeApi, FakeIdm};
//! use bodhi_auth::{Credentials, IdmAuthMiddleware, TokenManager, TokenScope};
//!
//! // A fake IDM and a fake Bodhi API on loopback stand in for the real ones.
//! let idm = FakeIdm::new();
//! let api = FakeApi::new(&idm).serve().await?;
//! let manager = TokenManager::builder(Credentials::new("user", "secret"))
//!     .fake_idm(&idm) // in a real program: TokenManager::from_env()?
//!     .build()?;
//! let scope = TokenScope::origins([api.url("")])?; // where the token may go
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(IdmAuthMiddleware::with_manager(manager, scope))
//!     .build();
//! let response = client.get(api.url("/stores")).send().await?;
//! assert_eq!(response.status(), 200);
//! # Ok(()) }
//! ```
//!
//! The rules are the Tower layer's ([`crate::layer`]): the header is set on requests for
//! the origins of the middleware's [`TokenScope`] unless the request
//! has one; on a 401 to our token, the token is invalidated and the request is resent
//! once when `Request::try_clone()` succeeds (not for streaming bodies) and the token
//! changed. Token failures are `reqwest_middleware::Error::Middleware` wrapping a
//! [`crate::Error`]: find it with [`Error::find_in(&error)`](crate::Error::find_in),
//! not a `downcast_ref` on the outermost error, which misses it as soon as another
//! middleware wraps it (reqwest-retry's `RetryTransientMiddleware` outside this one
//! does, and then needs the feature `reqwest-retry`).
//!
//! reqwest follows redirects below the middleware, so the scope is checked on the URL
//! the request was made for; on each hop to another origin (scheme, host or port),
//! reqwest drops the `Authorization` header itself, whatever the scope. A 401 whose
//! `Response::url()` differs from the request's came from a redirect target: it is
//! never answered with a resend (the redirected request has been processed), and the
//! token is invalidated only when that target is on the request's own origin.

use http::Extensions;
use http::header::AUTHORIZATION;
use reqwest::{Request, Response, StatusCode};
use reqwest_middleware::{Middleware, Next};

use crate::front::origin::{Origin, OriginKey};
use crate::front::{Rejector, note_rejection, replacement_for};
use crate::{Credentials, TokenManager, TokenScope};

/// Authenticates reqwest requests for the origins of its [`TokenScope`] with a Bodhi
/// access token; see [the module docs](crate::middleware).
#[derive(Debug, Clone)]
pub struct IdmAuthMiddleware {
    manager: TokenManager,
    resend: bool,
    scope: TokenScope,
}

impl IdmAuthMiddleware {
    /// A middleware with its own manager for the Prod IDM and every default, sending the
    /// token only to the origins of `scope`. Infallible.
    pub fn new(credentials: Credentials, scope: TokenScope) -> Self {
        Self::with_manager(TokenManager::new(credentials), scope)
    }

    /// A middleware over an existing manager (shared cache, shared login), sending the
    /// token only to the origins of `scope`.
    pub fn with_manager(manager: TokenManager, scope: TokenScope) -> Self {
        IdmAuthMiddleware {
            manager,
            resend: true,
            scope,
        }
    }

    /// The manager this middleware gets its tokens from.
    pub fn manager(&self) -> &TokenManager {
        &self.manager
    }

    /// Whether to resend after a 401 (on by default).
    pub fn resend(mut self, resend: bool) -> Self {
        self.resend = resend;
        self
    }
}

#[async_trait::async_trait]
impl Middleware for IdmAuthMiddleware {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let admitted = match self.scope.admits_url(request.url()) {
            Some(admitted) if !request.headers().contains_key(AUTHORIZATION) => admitted,
            _ => return next.run(request, extensions).await,
        };
        let token = self
            .manager
            .access_token()
            .await
            .map_err(reqwest_middleware::Error::middleware)?;
        request
            .headers_mut()
            .insert(AUTHORIZATION, token.header_value().clone());
        // Decided before the first send: a streaming body cannot be copied afterwards.
        let copy = if self.resend {
            request.try_clone()
        } else {
            None
        };
        // With a copy, its URL says where the request went; without one, only the
        // origin's key is kept (the scope's own when it matched one of its origins), so
        // no `Url` is cloned on the cached path.
        let sent_to = copy.is_none().then(|| {
            admitted
                .origin_key()
                .unwrap_or_else(|| OriginKey::of(Origin::of_url(request.url())))
        });
        let response = next.clone().run(request, extensions).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        // reqwest follows redirects below this middleware: `url()` is where the 401
        // came from.
        let last = response.url();
        let Some(mut copy) = copy else {
            let same_origin = sent_to == Some(OriginKey::of(Origin::of_url(last)));
            note_rejection(&self.manager, &token, Rejector::by_origin(same_origin));
            return Ok(response);
        };
        let by = Rejector::after(
            copy.url() == last,
            Origin::same(Origin::of_url(copy.url()), Origin::of_url(last)),
        );
        let Some(fresh) = replacement_for(&self.manager, &token, by).await else {
            return Ok(response);
        };
        drop(response);
        copy.headers_mut()
            .insert(AUTHORIZATION, fresh.header_value().clone());
        tracing::debug!(target: "bodhi_auth", "resending the request after a 401");
        self.manager.count(crate::manager::Event::Resend);
        next.run(copy, extensions).await
    }
}
