//! Authentication for the HotSchedules **Bodhi** REST API.
//!
//! Bodhi's identity service (IDM) is a Keycloak server: a program logs in with the
//! OAuth2 password grant and renews its JWT with the refresh grant. This crate does that
//! dance once for a whole program:
//!
//! - [`TokenManager`]: a single-flight token cache. One login however many requests
//!   need a token at once; a background refresh before expiry; on a 401, only the
//!   rejected token is dropped; safe when callers are cancelled; a documented
//!   [resilience policy](policy) so a sick IDM is never hammered.
//! - [`IdmAuthLayer`] (feature `tower`): a Tower layer for any `Service<http::Request<_>>`.
//! - [`IdmAuthMiddleware`] (feature `reqwest`): a reqwest-middleware middleware.
//! - [`store`]: a session that outlives the process or is shared by a fleet
//!   ([`FileStore`](store::FileStore) for CLIs and cron jobs, `RedisStore` with the
//!   `redis` feature), behind the [`TokenStore`](store::TokenStore) seam.
//! - [`TokenManager::stats`]: counters and the token's state for operators, also through
//!   the `metrics` facade (feature `metrics`).
//! - `blocking` (feature `blocking`): the manager for sync code, on a runtime of its own.
//! - `testing` (feature `testing`): a fake IDM and API for your own tests.
//!
//! ```no_run
//! # async fn run() -> Result<(), bodhi_auth::Error> {
//! use bodhi_auth::TokenManager;
//!
//! // BODHI_USERNAME, BODHI_PASSWORD, BODHI_ENV (prod by default), BODHI_TOKEN_URL.
//! let manager = TokenManager::from_env()?;
//! let token = manager.access_token().await?;
//! let who = token.identity()?;
//! println!("{} in namespace {:?}", who.username(), who.namespace());
//! # Ok(()) }
//! ```
//!
//! No secret (password, access, refresh or id token) appears in any `Debug` or
//! `Display` output, error message or log event of this crate.

#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod credentials;
mod env;
mod environment;
mod error;
mod idm;
mod manager;
pub mod policy;
pub mod store;
mod token;
mod wiped_buffer;

mod front;

#[cfg(feature = "tower")]
#[doc(inline)]
pub use front::layer;
#[cfg(feature = "reqwest")]
#[doc(inline)]
pub use front::middleware;

#[cfg(feature = "blocking")]
pub mod blocking;
#[cfg(feature = "testing")]
pub mod testing;

/// The reqwest this crate is built on (0.13): its `Client` is what
/// [`TokenManagerBuilder::http_client`] takes and what the middleware wraps. Name
/// `bodhi_auth::reqwest` to be sure the versions match.
pub use reqwest;
/// The reqwest-middleware [`IdmAuthMiddleware`] implements (0.5).
#[cfg(feature = "reqwest")]
pub use reqwest_middleware;

pub use credentials::{Credentials, PASSWORD_ENV, USERNAME_ENV};
pub use environment::{ENVIRONMENT_ENV, Environment};
pub use error::{Error, ErrorKind};
pub use front::scope::{API_URL_ENV, TokenScope};
#[cfg(feature = "tower")]
pub use layer::{
    BoxError, BufferBody, BufferBodyLayer, BufferedBodies, CloneBodyFn, IdmAuth, IdmAuthLayer,
    KnownBodies, NoReplay, ReplayBody, ReplayableBody,
};
pub use manager::{
    DEFAULT_CLIENT_ID, DEFAULT_REFRESH_MARGIN, DEFAULT_SCOPE, IdmFailures, Stats, TOKEN_URL_ENV,
    TokenManager, TokenManagerBuilder, TokenState,
};
#[cfg(feature = "reqwest")]
pub use middleware::IdmAuthMiddleware;
pub use token::{AccessToken, Identity};

// Compiles the README's examples as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
