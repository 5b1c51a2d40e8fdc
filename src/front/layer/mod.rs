//! The Tower front end: [`IdmAuthLayer`], [`IdmAuth`] and their [`ResponseFuture`].
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tower::BoxError> {
//! use bodhi_auth::testing::{FakeApi, FakeIdm};
//! use bodhi_auth::{Credentials, IdmAuthLayer, TokenManager, TokenScope};
//! use http_body_util::Full;
//! use tower::{ServiceBuilder, ServiceExt};
//!
//! // A fake IDM and a fake Bodhi API stand in for the real ones (feature `testing`).
//! let idm = FakeIdm::new();
//! let api = FakeApi::new(&idm);
//! let manager = TokenManager::builder(Credentials::new("user", "secret"))
//!     .fake_idm(&idm) // in a real program: TokenManager::from_env()?
//!     .build()?;
//! let scope = TokenScope::origins(["https://api.example"])?; // where the token may go
//! let service = ServiceBuilder::new()
//!     .layer(IdmAuthLayer::with_manager(manager, scope))
//!     .service(api); // a hyper-util client, a tonic channel, ... (see below: `Clone`)
//! let request = http::Request::get("https://api.example/stores").body(Full::<bytes::Bytes>::default())?;
//! let response = service.oneshot(request).await?;
//! assert_eq!(response.status(), 200);
//! # Ok(()) }
//! ```
//!
//! # Rules
//! - Every request for an origin of the layer's [`TokenScope`](crate::TokenScope) gets
//!   `Authorization: Bearer <access token>` (marked sensitive); any other request
//!   passes through untouched and causes no login. A scope is required to make a layer;
//!   [`TokenScope::any_origin`](crate::TokenScope::any_origin) is the explicit opt-out.
//! - A request that already has an `Authorization` header passes through untouched and
//!   causes no login: that is how a caller opts out per request.
//! - On a 401 to a request that carried our token (never on 403, never for a caller's own
//!   header), the token is [invalidated](crate::TokenManager::invalidate), the current
//!   token is fetched (joining any login in flight) and the request is resent once if
//!   that token differs from the rejected one. A second 401 is returned as it is.
//! - Redirects followed *below* the layer (tower-http's `FollowRedirectLayer` inside it,
//!   which records the last URI it requested as `RequestUri` in the response): a 401
//!   from a redirect target is never answered with a resend, because the request that
//!   was redirected has already been processed. The token is invalidated only when that
//!   target is on the request's own origin; another origin never got the token (with its
//!   default `Standard` policy, tower-http drops `Authorization` on such a hop; a policy
//!   that keeps credentials across origins defeats that), so its 401 comes back as it is.
//! - Redirects followed *above* the layer (`FollowRedirectLayer` outside it) pass each
//!   hop through the layer again: a hop gets the token only if its origin is in the
//!   scope. With `any_origin()`, every hop gets it, whatever origin the `Location` names.
//! - Resending needs a copy of the request, made before it is sent. See [`ReplayBody`]
//!   for which bodies can be copied; without a copy, the 401 is returned after the
//!   token was invalidated, so the next request gets a fresh token, and a `debug` event
//!   says "not resent: the body cannot be copied". A body read as it is sent (hyper's
//!   `Incoming`, axum's `Body`, a stream) can be copied when a [`BufferBodyLayer`]
//!   outside this layer collected it: use [`BufferedBodies`] then.
//! - Errors are [`BoxError`]; a token failure is a [`crate::Error`] inside it, found
//!   with [`Error::find_in(&*error)`](crate::Error::find_in) however other layers wrapped it.
//!
//! # The inner service must be `Clone`
//! [`IdmAuth<S>`] is a `Service` only when `S: Service<http::Request<_>> + Clone`: a
//! request that waits for a login, or is resent after a 401, is sent by its response
//! future, which needs its own handle on the service. Clients (hyper-util's, tonic's
//! channels) are cheap to clone. A middleware that is not `Clone` (tower's `RateLimit`,
//! `ConcurrencyLimit`) goes *below* a `.buffer(n)`:
//!
//! ```text
//! ServiceBuilder::new()
//!     .layer(IdmAuthLayer::with_manager(manager, scope))
//!     .buffer(1024)          // makes what follows Clone
//!     .rate_limit(100, Duration::from_secs(1))
//!     .service(client)
//! ```

mod body;
mod buffer;
mod future;
#[allow(clippy::module_inception)]
mod layer;
mod origin_memo;
mod replay;
mod service;

pub use body::ReplayableBody;
pub use buffer::{BufferBody, BufferBodyFuture, BufferBodyLayer};
pub use future::ResponseFuture;
pub use layer::IdmAuthLayer;
pub use replay::{BufferedBodies, CloneBodyFn, KnownBodies, NoReplay, ReplayBody};
pub use service::IdmAuth;

/// The error type of [`IdmAuth`]: the same type as `tower::BoxError`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
