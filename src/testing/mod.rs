//! Test doubles for Bodhi's IDM and API (feature `testing`).
//!
//! The same code serves this crate's tests, its examples, its benchmarks and your own
//! tests: a [`FakeIdm`] in memory (for paused-time tests) or on loopback HTTP, and a
//! [`FakeApi`] that accepts only live tokens from it, and can be scripted with
//! [`Reply`]s (a 503, a 401, a route's JSON) and keep a log of [`ApiRequest`]s, to test
//! your own parsing and error handling. [`store_conformance`] checks a
//! [`TokenStore`](crate::store::TokenStore) of your own.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use bodhi_auth::testing::{FakeApi, FakeIdm};
//! use bodhi_auth::{Credentials, TokenManager};
//!
//! let idm = FakeIdm::new();
//! let api = FakeApi::new(&idm);
//! let manager = TokenManager::builder(Credentials::new("user", "secret"))
//!     .fake_idm(&idm)
//!     .build()?;
//! let token = manager.access_token().await?;
//! assert_eq!(api.respond(Some(token.header_value())).status(), 200);
//! assert_eq!(api.respond(None).status(), 401);
//! # Ok(()) }
//! ```

mod api;
mod idm;
mod server;
mod store_conformance;

pub use api::{ApiRequest, FakeApi, Reply};
pub use idm::{FakeIdm, Fault, RecordedRequest};
pub use server::FakeServer;
pub use store_conformance::store_conformance;
