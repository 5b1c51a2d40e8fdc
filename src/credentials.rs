//! [`Credentials`]: the IDM user name and password, kept out of logs and zeroized on drop.
//!
//! ```
//! use bodhi_auth::Credentials;
//!
//! let creds = Credentials::new("travis", "s3cr3t&more");
//! assert_eq!(creds.username(), "travis");
//! assert!(!format!("{creds:?}").contains("s3cr3t"));
//! ```

use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::Error;

/// The environment variable [`Credentials::from_env`] reads the user name from.
pub const USERNAME_ENV: &str = "BODHI_USERNAME";
/// The environment variable [`Credentials::from_env`] reads the password from.
pub const PASSWORD_ENV: &str = "BODHI_PASSWORD";

/// A Bodhi global-profile user name and password.
///
/// The password is held in zeroizing storage (overwritten when the last clone is
/// dropped) and never printed: `Debug` shows `<redacted>`. Cloning is cheap.
#[derive(Clone)]
pub struct Credentials {
    username: Arc<str>,
    password: Arc<Zeroizing<String>>,
}

impl Credentials {
    /// Credentials from a user name and a password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: username.into().into(),
            password: Arc::new(Zeroizing::new(password.into())),
        }
    }

    /// Credentials from `BODHI_USERNAME` and `BODHI_PASSWORD`.
    ///
    /// Fails with [`ErrorKind::Config`](crate::ErrorKind::Config) when either is unset,
    /// empty or not UTF-8.
    pub fn from_env() -> Result<Self, Error> {
        Ok(Credentials::new(
            crate::env::required(USERNAME_ENV, "the Bodhi user name")?,
            crate::env::required(PASSWORD_ENV, "the Bodhi password")?,
        ))
    }

    /// The user name (not a secret).
    pub fn username(&self) -> &str {
        &self.username
    }

    pub(crate) fn password(&self) -> &str {
        &self.password
    }

    /// Same user name and same password. The passwords are compared in place (no copy
    /// that would outlive the comparison) and in a time that depends only on their
    /// lengths, not on where they differ.
    /// A keyed MAC (HMAC-SHA-256) of the user name and password: equal for equal
    /// credentials under one key, and telling nothing about the password without it.
    pub(crate) fn fingerprint(&self, key: &[u8]) -> String {
        use hmac::{Hmac, Mac};
        let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(key) else {
            // HMAC takes a key of any length.
            unreachable!("HMAC accepts every key length")
        };
        // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
        for part in [self.username(), self.password()] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    pub(crate) fn same_values(&self, other: &Credentials) -> bool {
        self.username == other.username
            && (Arc::ptr_eq(&self.password, &other.password)
                || constant_time_eq(self.password.as_bytes(), other.password.as_bytes()))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keeps the optimiser from turning the fold into an early-exit comparison.
    std::hint::black_box(difference) == 0
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_values_needs_the_same_user_name_and_password() {
        let creds = Credentials::new("ann", "pw");
        assert!(creds.same_values(&creds.clone()));
        assert!(creds.same_values(&Credentials::new("ann", "pw")));
        assert!(!creds.same_values(&Credentials::new("ann", "px")));
        assert!(!creds.same_values(&Credentials::new("ann", "pw2")));
        assert!(!creds.same_values(&Credentials::new("bob", "pw")));
    }
}
