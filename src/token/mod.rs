//! [`AccessToken`]: one access token from the IDM, cheap to clone, redacted in `Debug`.

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use http::HeaderValue;
use tokio::time::Instant;
use zeroize::Zeroizing;

mod bearer;
mod claims;

pub use claims::Identity;
#[cfg(any(test, feature = "testing"))]
pub(crate) use claims::base64url_encode;
#[cfg(test)]
pub(crate) use claims::{decode_identity, decode_payload};

use crate::{Error, ErrorKind};
use bearer::BearerText;

/// An access token issued by the IDM, with what came with it.
///
/// Cloning is a reference-count increment. Two `AccessToken`s are the same token when
/// they hold the same token string, whichever process or manager got it:
/// [`TokenManager::invalidate`] compares that identity, never the time, so a late 401
/// for an old token cannot drop a new one.
///
/// `Debug` never shows the token; use [`secret`](AccessToken::secret) on purpose.
///
/// [`TokenManager::invalidate`]: crate::TokenManager::invalidate
#[derive(Clone)]
pub struct AccessToken {
    inner: Arc<Inner>,
}

struct Inner {
    /// The token and its header value, in memory wiped when the last clone goes.
    bearer: BearerText,
    id_token: Option<Zeroizing<String>>,
    scope: Option<Box<str>>,
    /// Wall-clock expiry: what is stored and shared with other processes.
    expires_at: SystemTime,
    /// The same instant on this process's monotonic clock, which local scheduling (and
    /// paused-time tests) use.
    deadline: Instant,
    /// Where to report a 401 when nothing else is at hand: an opaque handle the issuing
    /// cache gives out (weak: the cache holds the token, not the other way round).
    issuer: Weak<dyn Issuer>,
}

/// What a token can tell the cache that issued it.
pub(crate) trait Issuer: Send + Sync {
    /// The API rejected `token`: drop it if it is still current. Returns whether it was
    /// dropped.
    fn rejected(&self, token: &AccessToken) -> bool;
}

impl AccessToken {
    pub(crate) fn new(
        secret: &str,
        id_token: Option<Zeroizing<String>>,
        scope: Option<String>,
        expires_at: SystemTime,
        deadline: Instant,
        issuer: Weak<dyn Issuer>,
    ) -> Result<Self, Error> {
        let bearer = BearerText::new(secret).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidResponse,
                "the access token has characters that cannot go in an HTTP header",
            )
        })?;
        Ok(AccessToken {
            inner: Arc::new(Inner {
                bearer,
                id_token,
                scope: scope.map(Into::into),
                expires_at,
                deadline,
                issuer,
            }),
        })
    }

    /// The raw access token (a JWT), for when you build the request yourself.
    pub fn secret(&self) -> &str {
        self.inner.bearer.secret()
    }

    /// `Bearer <token>` as a header value already marked sensitive.
    pub fn header_value(&self) -> &HeaderValue {
        self.inner.bearer.header()
    }

    /// The raw id token, if the IDM sent one (it does when the scope includes `openid`).
    pub fn id_token(&self) -> Option<&str> {
        self.inner.id_token.as_deref().map(String::as_str)
    }

    /// The scope the IDM granted, if it said.
    pub fn scope(&self) -> Option<&str> {
        self.inner.scope.as_deref()
    }

    /// When the token expires, by the wall clock: the time the request was sent plus
    /// the IDM's `expires_in`. This is what stores keep and other processes compare.
    pub fn expires_at(&self) -> SystemTime {
        self.inner.expires_at
    }

    /// How long the token has left by this process's monotonic clock (Tokio's, so
    /// paused-time tests see it shrink): zero once expired.
    pub fn expires_in(&self) -> Duration {
        self.inner
            .deadline
            .saturating_duration_since(Instant::now())
    }

    /// The expiry on this process's monotonic clock.
    pub(crate) fn deadline(&self) -> Instant {
        self.inner.deadline
    }

    /// The user name and Bodhi namespace, decoded from the id token.
    ///
    /// The id token is decoded without verifying its signature: it came straight from
    /// the IDM over the TLS connection this crate opened, and its claims are only read
    /// for display and routing, never to make an authorization decision (the Bodhi API
    /// verifies the access token itself). Fails with [`ErrorKind::InvalidResponse`] when
    /// there is no id token or it is not a readable JWT; requests never depend on it.
    pub fn identity(&self) -> Result<Identity, Error> {
        let id_token = self.id_token().ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidResponse,
                "the IDM sent no id_token (request the `openid` scope)",
            )
        })?;
        claims::decode_identity(id_token)
    }

    /// Reports a 401 to the cache that issued this token, while it exists: see
    /// [`TokenManager::invalidate`](crate::TokenManager::invalidate).
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn report_rejected(&self) -> bool {
        self.inner
            .issuer
            .upgrade()
            .is_some_and(|issuer| issuer.rejected(self))
    }

    /// True if both values are the same token: the same token string, whether they
    /// come from one IDM answer or from a store another process wrote.
    pub fn same_token(&self, other: &AccessToken) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner) || self.has_secret(other.secret())
    }

    /// Whether this token's string is `secret`, compared in time independent of where
    /// they differ.
    pub(crate) fn has_secret(&self, secret: &str) -> bool {
        let (a, b) = (self.secret().as_bytes(), secret.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("secret", &"<redacted>")
            .field(
                "id_token",
                &self.inner.id_token.as_ref().map(|_| "<redacted>"),
            )
            .field("scope", &self.inner.scope)
            .field("expires_at", &self.inner.expires_at)
            .finish()
    }
}
