//! [`Session`]: the record a [`TokenStore`](super::TokenStore) keeps.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::wiped_buffer::WipedBuffer;

use crate::{AccessToken, Error, ErrorKind};

/// Everything processes sharing one Bodhi session need to agree on: the tokens and
/// their wall-clock expiry, and the fleet state (cooldown, the IDM's `Retry-After`, the
/// last 401-driven re-login) that keeps a fleet from hammering the IDM.
///
/// Never holds the password. Its `Debug` shows no secret. A store keeps it as the bytes
/// of [`to_json`](Session::to_json) (or encrypts those), and only compares
/// [`version`](Session::version)s.
#[derive(Clone, Serialize, Deserialize)]
pub struct Session {
    /// The record's format, so a later version of the crate can tell old records.
    format: u32,
    pub(crate) version: u64,
    /// Whose session this is: a manager only adopts a session of its own token URL,
    /// client and user name.
    pub(crate) token_url: String,
    pub(crate) client_id: String,
    pub(crate) username: String,
    pub(crate) access: Option<StoredAccess>,
    pub(crate) refresh: Option<StoredRefresh>,
    pub(crate) cooldown: Option<StoredCooldown>,
    /// No IDM request before this (the IDM's `Retry-After`), in Unix milliseconds.
    pub(crate) not_before: Option<u64>,
    /// When a process last dropped a token after a 401 and logged in again.
    pub(crate) last_forced_relogin: Option<u64>,
    /// A keyed MAC of the credentials, so a shared wrong-password cooldown only holds
    /// for the password that earned it. Left out when the store has no key.
    pub(crate) credentials_fingerprint: Option<String>,
}

/// The access token, with what came with it.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct StoredAccess {
    pub(crate) token: Zeroizing<String>,
    /// When the IDM issued it (the request's send time), in Unix milliseconds: every
    /// process computes the same refresh-due from it.
    pub(crate) issued_at: u64,
    /// Unix milliseconds.
    pub(crate) expires_at: u64,
    pub(crate) id_token: Option<Zeroizing<String>>,
    pub(crate) scope: Option<String>,
    /// The API answered 401 to it: no process adopts it again.
    pub(crate) rejected: bool,
}

/// The refresh token and when it dies (`None`: the IDM gave no expiry).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct StoredRefresh {
    pub(crate) token: Zeroizing<String>,
    pub(crate) expires_at: Option<u64>,
    /// A lease holder is presenting it to the IDM. Should that holder die before it
    /// saves the answer, the token may be spent (Keycloak can make refresh tokens
    /// single-use and revokes the session on reuse): the next holder logs in instead.
    pub(crate) presented: bool,
}

/// A failed flight's cooldown, shared so other processes do not repeat it at once.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct StoredCooldown {
    pub(crate) until: u64,
    pub(crate) failures: u32,
    pub(crate) kind: StoredKind,
    pub(crate) message: String,
}

/// [`ErrorKind`] as stored: a closed list, so a record from a newer crate still reads.
#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StoredKind {
    InvalidCredentials,
    Unavailable,
    InvalidResponse,
    Config,
    #[serde(other)]
    Other,
}

impl From<ErrorKind> for StoredKind {
    fn from(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::InvalidCredentials => StoredKind::InvalidCredentials,
            ErrorKind::Unavailable => StoredKind::Unavailable,
            ErrorKind::InvalidResponse => StoredKind::InvalidResponse,
            ErrorKind::Config => StoredKind::Config,
        }
    }
}

impl StoredKind {
    pub(crate) fn kind(self) -> ErrorKind {
        match self {
            StoredKind::InvalidCredentials => ErrorKind::InvalidCredentials,
            StoredKind::InvalidResponse => ErrorKind::InvalidResponse,
            StoredKind::Config => ErrorKind::Config,
            StoredKind::Unavailable | StoredKind::Other => ErrorKind::Unavailable,
        }
    }
}

/// The format this crate writes and reads.
const FORMAT: u32 = 1;

impl Session {
    /// An empty session for this subject, one version after `previous`.
    pub(crate) fn new(previous: u64, token_url: &str, client_id: &str, username: &str) -> Session {
        Session {
            format: FORMAT,
            version: previous.saturating_add(1),
            token_url: token_url.to_owned(),
            client_id: client_id.to_owned(),
            username: username.to_owned(),
            access: None,
            refresh: None,
            cooldown: None,
            not_before: None,
            last_forced_relogin: None,
            credentials_fingerprint: None,
        }
    }

    /// The version this record was saved as: 1 for the first save, one more for each
    /// save after it. [`TokenStore::save`](super::TokenStore::save) stores a session
    /// only over version `version() - 1`.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The record as JSON, in a buffer wiped when dropped. It holds the tokens in
    /// clear: keep it where only the user can read it, or encrypt it.
    pub fn to_json(&self) -> Zeroizing<Vec<u8>> {
        // A buffer that wipes what it leaves behind as it grows: `serde_json::to_vec`
        // would free each smaller copy of the tokens unwiped.
        let mut buffer = WipedBuffer::with_capacity(1024);
        match serde_json::to_writer(&mut buffer, self) {
            Ok(()) => buffer.into_inner(),
            // Every field is a string, a number, a bool or an option of those.
            Err(_) => unreachable!("a session always serializes"),
        }
    }

    /// Reads a record written by [`to_json`](Session::to_json). Anything else (corrupt,
    /// truncated, another format) is an [`ErrorKind::InvalidResponse`] error that
    /// names no content.
    pub fn from_json(bytes: &[u8]) -> Result<Session, Error> {
        let session: Session = serde_json::from_slice(bytes).map_err(|e| {
            Error::new(
                ErrorKind::InvalidResponse,
                format!(
                    "not a bodhi-auth session record ({} at line {} column {})",
                    classify(&e),
                    e.line(),
                    e.column()
                ),
            )
        })?;
        if session.format != FORMAT {
            return Err(Error::new(
                ErrorKind::InvalidResponse,
                format!("a session record of unknown format {}", session.format),
            ));
        }
        if session.version == 0 {
            return Err(Error::new(
                ErrorKind::InvalidResponse,
                "a session record with version 0",
            ));
        }
        Ok(session)
    }

    /// Whether this session belongs to this token URL, client and user.
    pub(crate) fn is_for(&self, token_url: &str, client_id: &str, username: &str) -> bool {
        self.token_url == token_url && self.client_id == client_id && self.username == username
    }

    /// The next version of this record with its access token marked rejected, or `None`
    /// if `token` is not its access token (or is already marked).
    pub(crate) fn marked_rejected(&self, token: &AccessToken) -> Option<Session> {
        let access = self.access.as_ref()?;
        if access.rejected || !token.has_secret(&access.token) {
            return None;
        }
        let mut next = self.clone();
        next.version = self.version.saturating_add(1);
        if let Some(access) = next.access.as_mut() {
            access.rejected = true;
        }
        Some(next)
    }
}

/// serde_json's category, without its message (which may quote the input).
fn classify(error: &serde_json::Error) -> &'static str {
    match error.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax => "not JSON",
        serde_json::error::Category::Data => "unexpected fields",
        serde_json::error::Category::Eof => "truncated",
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("version", &self.version)
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("access", &self.access.as_ref().map(|a| a.expires_at))
            .field("refresh", &self.refresh.as_ref().map(|r| r.expires_at))
            .field("cooldown", &self.cooldown.as_ref().map(|c| c.until))
            .finish_non_exhaustive()
    }
}

/// `time` as Unix milliseconds (0 before the epoch; saturating far in the future).
pub(crate) fn to_unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Unix milliseconds as a time.
pub(crate) fn from_unix_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_millis(ms))
        .unwrap_or(UNIX_EPOCH + Duration::from_secs(u32::MAX.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_and_garbage_is_refused_without_echo() {
        let mut session = Session::new(0, "https://idm/token", "client", "user");
        session.refresh = Some(StoredRefresh {
            token: Zeroizing::new("refresh-secret".into()),
            expires_at: Some(5),
            presented: false,
        });
        let bytes = session.to_json();
        let back = Session::from_json(&bytes).unwrap();
        assert_eq!(back.version(), 1);
        assert!(back.is_for("https://idm/token", "client", "user"));
        assert!(!back.is_for("https://idm/token", "client", "other"));
        assert!(!format!("{back:?}").contains("refresh-secret"));

        for bad in [
            &b""[..],
            b"{",
            b"[1,2]",
            b"{\"format\":1}",
            b"refresh-secret",
        ] {
            let error = Session::from_json(bad).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidResponse);
            assert!(!error.to_string().contains("refresh-secret"));
        }
        let truncated = &bytes[..bytes.len() / 2];
        assert!(Session::from_json(truncated).is_err());
        let other_format = String::from_utf8(bytes.to_vec())
            .unwrap()
            .replace("\"format\":1", "\"format\":9");
        assert!(Session::from_json(other_format.as_bytes()).is_err());
    }

    #[test]
    fn unix_milliseconds_round_trip_and_saturate() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(from_unix_ms(to_unix_ms(t)), t);
        assert_eq!(to_unix_ms(UNIX_EPOCH - Duration::from_secs(1)), 0);
        let _ = from_unix_ms(u64::MAX);
    }
}
