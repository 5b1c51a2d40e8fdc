//! [`BearerText`]: a token's `Bearer <token>` text in one heap block, wiped when the
//! last holder lets go.
//!
//! The token string and the `Authorization` header value a request carries are the same
//! bytes: the header is a [`Bytes`] whose owner is this block, so cloning the header (as
//! every request does) copies nothing, and when the token, every header cloned from it
//! and every request that carried one are gone, the bytes are zeroed before the memory
//! is freed.

use std::sync::Arc;

use bytes::Bytes;
use http::HeaderValue;
use zeroize::{Zeroize, Zeroizing};

/// `Bearer <token>`, shared by the token and its header values.
pub(super) struct BearerText {
    text: Arc<Wiped>,
    header: HeaderValue,
}

/// The text; zeroed on drop.
struct Wiped(Box<str>);

impl Drop for Wiped {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// What a header's [`Bytes`] hold on to: the block, not a copy of it.
struct Owner(Arc<Wiped>);

impl AsRef<[u8]> for Owner {
    fn as_ref(&self) -> &[u8] {
        self.0.0.as_bytes()
    }
}

const PREFIX: &str = "Bearer ";

impl BearerText {
    /// `Bearer <secret>`, or `None` if the secret cannot go in a header (a control
    /// character, say). The header value is marked sensitive.
    pub(super) fn new(secret: &str) -> Option<BearerText> {
        // Built at its final size, so no larger copy is freed unwiped on the way.
        let mut text = Zeroizing::new(String::with_capacity(PREFIX.len() + secret.len()));
        text.push_str(PREFIX);
        text.push_str(secret);
        // Exact capacity: the box keeps this block (no reallocation, nothing left behind).
        let text = Arc::new(Wiped(std::mem::take(&mut *text).into_boxed_str()));
        let mut header =
            HeaderValue::from_maybe_shared(Bytes::from_owner(Owner(text.clone()))).ok()?;
        // So HTTP/2 HPACK never indexes it and loggers that honour the flag (tower-http's
        // trace layer among them) print it as sensitive.
        header.set_sensitive(true);
        Some(BearerText { text, header })
    }

    /// The token alone.
    pub(super) fn secret(&self) -> &str {
        &self.text.0[PREFIX.len()..]
    }

    /// `Bearer <token>` as a header value.
    pub(super) fn header(&self) -> &HeaderValue {
        &self.header
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_and_the_secret_are_one_block() {
        let bearer = BearerText::new("abc.def").unwrap();
        assert_eq!(bearer.secret(), "abc.def");
        assert_eq!(bearer.header().as_bytes(), b"Bearer abc.def");
        assert!(bearer.header().is_sensitive());
        let secret = bearer.secret().as_ptr();
        let header = bearer.header().clone();
        assert_eq!(header.as_bytes()[PREFIX.len()..].as_ptr(), secret);
    }

    #[test]
    fn a_secret_that_cannot_be_a_header_is_refused() {
        assert!(BearerText::new("abc\ndef").is_none());
        assert!(BearerText::new("abc\u{7f}").is_none());
    }
}
