//! The environment variables, one rule for all of them.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `BODHI_USERNAME`, `BODHI_PASSWORD` | credentials | required |
//! | `BODHI_ENV` | `dev` or `prod` | `prod` |
//! | `BODHI_TOKEN_URL` | token endpoint; overrides `BODHI_ENV`; https, or http on loopback | from `BODHI_ENV` |
//! | `BODHI_API_URL` | the API origin(s) the token may be sent to, comma-separated: the front ends' [`TokenScope`](crate::TokenScope) | none |
//!
//! An empty value counts as unset. A value that cannot be used (not UTF-8, an unknown
//! environment, a URL that is not one) is an [`ErrorKind::Config`] error naming the
//! variable and what it accepts.

use crate::{Error, ErrorKind};

/// The value of `name`, or `None` when it is unset or empty.
pub(crate) fn read(name: &str) -> Result<Option<String>, Error> {
    match std::env::var(name) {
        Ok(value) if value.is_empty() => Ok(None),
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(Error::new(
            ErrorKind::Config,
            format!("environment variable {name} is not valid UTF-8"),
        )),
    }
}

/// The value of `name`; unset or empty is an error saying what it is for.
pub(crate) fn required(name: &str, what: &str) -> Result<String, Error> {
    read(name)?.ok_or_else(|| {
        Error::new(
            ErrorKind::Config,
            format!("environment variable {name} is not set ({what})"),
        )
    })
}
