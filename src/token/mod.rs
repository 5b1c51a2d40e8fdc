//! The token manager: one cache, one flight to the IDM at a time.

mod access_token;
mod builder;
mod claims;
mod environment;
mod flight;
#[cfg(test)]
mod fuzz;
pub(crate) mod idm;
mod manager;
pub mod policy;
mod state;
pub(crate) mod transport;

pub use access_token::AccessToken;
pub use builder::{
    DEFAULT_CLIENT_ID, DEFAULT_REFRESH_MARGIN, DEFAULT_SCOPE, TOKEN_URL_ENV, TokenManagerBuilder,
};
pub use claims::Identity;
#[cfg(feature = "testing")]
pub(crate) use claims::base64url_encode;
pub use environment::{ENVIRONMENT_ENV, Environment};
#[cfg(any(feature = "tower", feature = "reqwest"))]
pub(crate) use manager::Rejector;
#[cfg(feature = "tower")]
pub(crate) use manager::Replacement;
pub use manager::TokenManager;
