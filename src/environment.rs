//! [`Environment`]: which Bodhi IDM to talk to.

use crate::{Error, ErrorKind};

/// The environment variable [`Environment::from_env_or`] reads: `dev` or `prod`.
pub const ENVIRONMENT_ENV: &str = "BODHI_ENV";

/// A Bodhi deployment, each with its own IDM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Environment {
    /// `login.bodhi-dev.io`.
    Dev,
    /// `login.hotschedules.io`, the default.
    #[default]
    Prod,
}

impl Environment {
    /// The IDM token endpoint of this environment.
    pub fn token_url(self) -> &'static str {
        match self {
            Environment::Dev => {
                "https://login.bodhi-dev.io/auth/realms/hotschedules/protocol/openid-connect/token"
            }
            Environment::Prod => {
                "https://login.hotschedules.io/auth/realms/hotschedules/protocol/openid-connect/token"
            }
        }
    }

    /// Reads `BODHI_ENV` (`dev` or `prod`, any case); unset or empty means the given
    /// default. Anything else is an [`ErrorKind::Config`] error naming the variable.
    pub fn from_env_or(default: Environment) -> Result<Environment, Error> {
        match crate::env::read(ENVIRONMENT_ENV)? {
            None => Ok(default),
            Some(value) if value.eq_ignore_ascii_case("dev") => Ok(Environment::Dev),
            Some(value) if value.eq_ignore_ascii_case("prod") => Ok(Environment::Prod),
            Some(value) => Err(Error::new(
                ErrorKind::Config,
                format!("{ENVIRONMENT_ENV} is {value:?}; expected `dev` or `prod`"),
            )),
        }
    }
}
