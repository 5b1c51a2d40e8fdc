//! [`AccessToken`]: one access token from the IDM, cheap to clone, redacted in `Debug`.

use std::fmt;
use std::sync::{Arc, Weak};

use http::HeaderValue;
use tokio::time::Instant;

mod claims;

pub use claims::Identity;
#[cfg(any(test, feature = "testing"))]
pub(crate) use claims::base64url_encode;
#[cfg(test)]
pub(crate) use claims::{decode_identity, decode_payload};

use crate::manager::{self, TokenManager};
use crate::{Error, ErrorKind};

/// An access token issued by the IDM, with what came with it.
///
/// Cloning is a reference-count increment. Two `AccessToken`s are the same token when
/// they come from the same IDM answer: [`TokenManager::invalidate`] compares that
/// identity, never the time, so a late 401 for an old token cannot drop a new one.
///
/// `Debug` never shows the token; use [`secret`](AccessToken::secret) on purpose.
///
/// [`TokenManager::invalidate`]: crate::TokenManager::invalidate
#[derive(Clone)]
pub struct AccessToken {
    inner: Arc<Inner>,
}

struct Inner {
    secret: Box<str>,
    header: HeaderValue,
    id_token: Option<Box<str>>,
    scope: Option<Box<str>>,
    expires_at: Instant,
    /// The manager that issued it, so a front end that only kept the token can report
    /// a 401 (weak: the manager's cache holds the token).
    issuer: Weak<manager::Inner>,
}

impl AccessToken {
    pub(crate) fn new(
        secret: String,
        id_token: Option<String>,
        scope: Option<String>,
        expires_at: Instant,
        issuer: Weak<manager::Inner>,
    ) -> Result<Self, Error> {
        let mut header = HeaderValue::try_from(format!("Bearer {secret}")).map_err(|_| {
            Error::new(
                ErrorKind::InvalidResponse,
                "the access token has characters that cannot go in an HTTP header",
            )
        })?;
        // Marks the value so HTTP/2 HPACK never indexes it and loggers that honour the
        // flag (tower-http's trace layer among them) print it as sensitive.
        header.set_sensitive(true);
        Ok(AccessToken {
            inner: Arc::new(Inner {
                secret: secret.into(),
                header,
                id_token: id_token.map(Into::into),
                scope: scope.map(Into::into),
                expires_at,
                issuer,
            }),
        })
    }

    /// The raw access token (a JWT), for when you build the request yourself.
    pub fn secret(&self) -> &str {
        &self.inner.secret
    }

    /// `Bearer <token>` as a header value already marked sensitive.
    pub fn header_value(&self) -> &HeaderValue {
        &self.inner.header
    }

    /// The raw id token, if the IDM sent one (it does when the scope includes `openid`).
    pub fn id_token(&self) -> Option<&str> {
        self.inner.id_token.as_deref()
    }

    /// The scope the IDM granted, if it said.
    pub fn scope(&self) -> Option<&str> {
        self.inner.scope.as_deref()
    }

    /// When the token expires: the time the request was sent plus `expires_in`.
    pub fn expires_at(&self) -> Instant {
        self.inner.expires_at
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

    /// The manager that issued this token, while it exists.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn issuer(&self) -> Option<TokenManager> {
        self.inner.issuer.upgrade().map(TokenManager::from_inner)
    }

    /// True if both values are the same token (the same IDM answer).
    pub fn same_token(&self, other: &AccessToken) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
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
