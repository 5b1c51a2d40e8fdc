//! [`Keyring`]: the user's store keys, and the sealed envelope a shared store keeps a
//! session in (XChaCha20-Poly1305, a random nonce per seal).
//!
//! An envelope is `format (1 byte) | key id (4) | nonce (24) | ciphertext and tag`. Its
//! associated data is the header plus the caller's context (for Redis: the key name and
//! the record's version), so an envelope opens only where and as what it was sealed:
//! copied under another key name (another account, another environment) or given
//! another version, it no longer opens.
//!
//! Keys come as the value of `BODHI_STORE_KEY`: one or more 32-byte keys in base64,
//! comma-separated. The first seals; every one opens (rotation). A key is named in logs
//! by its id: the first four bytes of an HMAC under the key, which tell nothing about
//! it.

use std::fmt;

use base64::Engine as _;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use zeroize::Zeroizing;

use crate::Error;

/// The name errors give the keys.
pub(crate) use super::STORE_KEY_ENV as KEY_ENV;

/// The envelope format this crate writes and reads.
const FORMAT: u8 = 1;
const KEY_LEN: usize = 32;
const ID_LEN: usize = 4;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + ID_LEN + NONCE_LEN;
/// Domain separation for what is derived from a key.
const ID_LABEL: &[u8] = b"bodhi-auth store key id";
const FINGERPRINT_LABEL: &[u8] = b"bodhi-auth credentials fingerprint";
const AAD_LABEL: &[u8] = b"bodhi-auth sealed session";

/// A key's public name: the first bytes of `HMAC-SHA-256(key, "bodhi-auth store key
/// id")`, shown as hex.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct KeyId([u8; ID_LEN]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

struct Key {
    id: KeyId,
    secret: Zeroizing<[u8; KEY_LEN]>,
}

/// The store keys: the first seals, all open. Its `Debug` shows key ids only.
pub(super) struct Keyring {
    keys: Vec<Key>,
    /// `HMAC-SHA-256(first key, "bodhi-auth credentials fingerprint")`: never the
    /// sealing key itself.
    fingerprint_key: Zeroizing<[u8; 32]>,
}

/// Why an envelope did not open. Names keys by id only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unsealed {
    /// Shorter than a header and a tag.
    Truncated,
    /// Another envelope format (an older or newer crate).
    Format(u8),
    /// Sealed with a key that is not among ours.
    UnknownKey(KeyId),
    /// The key is ours but the envelope does not open: tampered with, or moved to
    /// another key name or version.
    Rejected(KeyId),
}

impl fmt::Display for Unsealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unsealed::Truncated => f.write_str("it is truncated"),
            Unsealed::Format(format) => {
                write!(f, "it is in envelope format {format}, not {FORMAT}")
            }
            Unsealed::UnknownKey(id) => write!(
                f,
                "it is sealed with key {id}, which is not among {KEY_ENV}'s keys"
            ),
            Unsealed::Rejected(id) => write!(
                f,
                "it does not open with key {id}: tampered with, or copied from another \
                 account's or environment's key"
            ),
        }
    }
}

impl Keyring {
    /// Reads `BODHI_STORE_KEY`'s value: base64 keys of 32 bytes, comma-separated. The
    /// error names the variable and which key is wrong, never a key.
    pub(crate) fn parse(value: &str) -> Result<Keyring, Error> {
        let engine = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        );
        let mut keys = Vec::new();
        for (index, part) in value.split(',').enumerate() {
            let which = ordinal(index);
            let part = part.trim();
            if part.is_empty() {
                return Err(Error::store_misconfigured(format!(
                    "{KEY_ENV}: the {which} key is empty (keys are comma-separated base64; \
                     make one with `openssl rand -base64 32`)"
                )));
            }
            let bytes = Zeroizing::new(engine.decode(part).map_err(|_| {
                Error::store_misconfigured(format!(
                    "{KEY_ENV}: the {which} key is not base64 (make one with \
                     `openssl rand -base64 32`)"
                ))
            })?);
            if bytes.len() != KEY_LEN {
                return Err(Error::store_misconfigured(format!(
                    "{KEY_ENV}: the {which} key is {} bytes, not {KEY_LEN}",
                    bytes.len()
                )));
            }
            let mut secret = Zeroizing::new([0u8; KEY_LEN]);
            secret.copy_from_slice(&bytes);
            let id = {
                let derived = derive(&secret, ID_LABEL);
                let mut id = [0u8; ID_LEN];
                id.copy_from_slice(&derived[..ID_LEN]);
                KeyId(id)
            };
            keys.push(Key { id, secret });
        }
        let fingerprint_key = derive(&keys[0].secret, FINGERPRINT_LABEL);
        Ok(Keyring {
            keys,
            fingerprint_key,
        })
    }

    /// The ids of the keys, the sealing one first.
    pub(super) fn ids(&self) -> Vec<KeyId> {
        self.keys.iter().map(|k| k.id).collect()
    }

    /// The key a credentials fingerprint is computed under (derived from the first key).
    pub(crate) fn fingerprint_key(&self) -> &[u8] {
        &self.fingerprint_key[..]
    }

    /// Seals `plaintext` under the first key, bound to `context`.
    pub(super) fn seal(&self, plaintext: &[u8], context: &[&[u8]]) -> Result<Vec<u8>, Error> {
        let key = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| {
            Error::store_unavailable(format!("no randomness for a nonce from the OS: {e}"))
        })?;
        let mut envelope = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
        envelope.push(FORMAT);
        envelope.extend_from_slice(&key.id.0);
        envelope.extend_from_slice(&nonce);
        let aad = associated_data(&envelope[..HEADER_LEN], context);
        let mut body = Zeroizing::new(plaintext.to_vec());
        let tag = cipher(key)
            .encrypt_inout_detached(&XNonce::from(nonce), &aad, body.as_mut_slice().into())
            .map_err(|_| Error::store_unavailable("the session is too large to seal"))?;
        envelope.extend_from_slice(&body);
        envelope.extend_from_slice(&tag);
        Ok(envelope)
    }

    /// Opens an envelope sealed with `context` under any of the keys.
    pub(crate) fn open(
        &self,
        envelope: &[u8],
        context: &[&[u8]],
    ) -> Result<Zeroizing<Vec<u8>>, Unsealed> {
        if let Some(&format) = envelope.first()
            && format != FORMAT
        {
            return Err(Unsealed::Format(format));
        }
        if envelope.len() < HEADER_LEN + TAG_LEN {
            return Err(Unsealed::Truncated);
        }
        let (header, rest) = envelope.split_at(HEADER_LEN);
        let mut id = [0u8; ID_LEN];
        id.copy_from_slice(&header[1..1 + ID_LEN]);
        let id = KeyId(id);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&header[1 + ID_LEN..]);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        let tag = chacha20poly1305::Tag::try_from(tag).map_err(|_| Unsealed::Truncated)?;
        let aad = associated_data(header, context);
        // Every key with that id (two of 2^32 ids colliding is unlikely, not impossible).
        let mut candidates = self.keys.iter().filter(|k| k.id == id).peekable();
        if candidates.peek().is_none() {
            return Err(Unsealed::UnknownKey(id));
        }
        for key in candidates {
            let mut body = Zeroizing::new(ciphertext.to_vec());
            let opened = cipher(key).decrypt_inout_detached(
                &XNonce::from(nonce),
                &aad,
                body.as_mut_slice().into(),
                &tag,
            );
            if opened.is_ok() {
                return Ok(body);
            }
        }
        Err(Unsealed::Rejected(id))
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring").field("ids", &self.ids()).finish()
    }
}

fn cipher(key: &Key) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(&(*key.secret).into())
}

/// The label, the header, then each part of the context with its length in front (so
/// that no two contexts run together into the same bytes).
fn associated_data(header: &[u8], context: &[&[u8]]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_LABEL.len() + header.len() + 64);
    aad.extend_from_slice(AAD_LABEL);
    aad.extend_from_slice(header);
    for part in context {
        aad.extend_from_slice(&(part.len() as u64).to_be_bytes());
        aad.extend_from_slice(part);
    }
    aad
}

/// `HMAC-SHA-256(key, label)`.
fn derive(key: &[u8; KEY_LEN], label: &[u8]) -> Zeroizing<[u8; 32]> {
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(key) else {
        unreachable!("HMAC accepts every key length")
    };
    mac.update(label);
    Zeroizing::new(mac.finalize().into_bytes().into())
}

fn ordinal(index: usize) -> String {
    const WORDS: [&str; 10] = [
        "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
        "tenth",
    ];
    WORDS
        .get(index)
        .map_or_else(|| format!("number {}", index + 1), |w| (*w).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    const A: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    const B: &str = "ERERERERERERERERERERERERERERERERERERERERERE=";

    #[test]
    fn a_sealed_session_opens_only_with_its_context_and_a_known_key() {
        let ring = Keyring::parse(A).unwrap();
        let sealed = ring.seal(b"refresh-secret", &[b"key", b"1"]).unwrap();
        assert!(!sealed.windows(14).any(|w| w == b"refresh-secret"));
        assert_eq!(
            &*ring.open(&sealed, &[b"key", b"1"]).unwrap(),
            b"refresh-secret"
        );
        // Another key name, another version: does not open.
        let id = ring.ids()[0];
        assert_eq!(
            ring.open(&sealed, &[b"other", b"1"]),
            Err(Unsealed::Rejected(id))
        );
        assert_eq!(
            ring.open(&sealed, &[b"key", b"2"]),
            Err(Unsealed::Rejected(id))
        );
        // Contexts do not run together.
        assert!(ring.open(&sealed, &[b"ke", b"y1"]).is_err());
        // Two seals of one plaintext differ (a random nonce each).
        assert_ne!(
            sealed,
            ring.seal(b"refresh-secret", &[b"key", b"1"]).unwrap()
        );

        // Tampered anywhere: refused.
        for at in [0, 1, HEADER_LEN, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[at] ^= 1;
            assert!(ring.open(&bad, &[b"key", b"1"]).is_err(), "byte {at}");
        }
        assert_eq!(ring.open(&sealed[..10], &[]), Err(Unsealed::Truncated));
        assert_eq!(ring.open(&[], &[]), Err(Unsealed::Truncated));

        // Rotation: the new key first seals, the old one still opens.
        let rotated = Keyring::parse(&format!("{B}, {A}")).unwrap();
        assert_eq!(rotated.ids()[1], id);
        assert_eq!(
            &*rotated.open(&sealed, &[b"key", b"1"]).unwrap(),
            b"refresh-secret"
        );
        let new = rotated.seal(b"x", &[]).unwrap();
        assert_eq!(
            ring.open(&new, &[]),
            Err(Unsealed::UnknownKey(rotated.ids()[0]))
        );
        let message = Unsealed::UnknownKey(rotated.ids()[0]).to_string();
        assert!(message.contains(&rotated.ids()[0].to_string()), "{message}");
    }

    #[test]
    fn bad_keys_are_config_errors_naming_which_key_and_never_echoing_it() {
        let short = "eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"; // 24 bytes
        for (value, expected) in [
            (format!("{A},{short}"), "the second key is 24 bytes, not 32"),
            ("not base64!".to_owned(), "the first key is not base64"),
            (format!("{A},"), "the second key is empty"),
            (String::new(), "the first key is empty"),
        ] {
            let error = Keyring::parse(&value).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Config);
            let shown = error.to_string();
            assert!(shown.contains(KEY_ENV), "{shown}");
            assert!(shown.contains(expected), "{shown}");
            assert!(!shown.contains(short) && !shown.contains(A), "{shown}");
        }
        // Padding is optional; whitespace around a key is ignored.
        assert!(Keyring::parse(" AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA ").is_ok());
    }

    #[test]
    fn derived_keys_are_not_the_key_and_debug_shows_ids_only() {
        let ring = Keyring::parse(A).unwrap();
        assert_ne!(ring.fingerprint_key(), &[0u8; 32][..]);
        assert_eq!(ring.fingerprint_key().len(), 32);
        let shown = format!("{ring:?}");
        assert!(shown.contains(&ring.ids()[0].to_string()), "{shown}");
        assert!(!shown.contains(A) && !shown.contains("[0, 0"), "{shown}");
        assert_ne!(
            Keyring::parse(B).unwrap().fingerprint_key(),
            ring.fingerprint_key()
        );
    }
}
