//! [`WipedBuffer`]: a growable byte buffer that leaves no unwiped copy of its bytes
//! behind.
//!
//! A `Vec` (or `BytesMut`, or `serde_json`'s writer) that grows moves its bytes to a
//! larger allocation and frees the old one as it is. For a buffer that holds a token or
//! a password, every such move would leave a copy in freed memory; this one wipes the
//! old allocation when it grows, and the last one when it is dropped.

use std::io;

use bytes::Bytes;
use zeroize::Zeroizing;

/// Bytes that are wiped wherever they were, as the buffer grows and when it goes.
pub(crate) struct WipedBuffer(Zeroizing<Vec<u8>>);

impl WipedBuffer {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        WipedBuffer(Zeroizing::new(Vec::with_capacity(capacity)))
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn extend_from_slice(&mut self, bytes: &[u8]) {
        let needed = self.0.len() + bytes.len();
        if needed > self.0.capacity() {
            let mut grown = Zeroizing::new(Vec::with_capacity(needed.max(2 * self.0.capacity())));
            grown.extend_from_slice(&self.0);
            // The old buffer is wiped as it is dropped here.
            self.0 = grown;
        }
        self.0.extend_from_slice(bytes);
    }

    /// The bytes, still wiped when the last `Bytes` clone goes.
    pub(crate) fn freeze(self) -> Bytes {
        Bytes::from_owner(self.0)
    }

    /// The bytes, wiped when dropped.
    pub(crate) fn into_inner(self) -> Zeroizing<Vec<u8>> {
        self.0
    }
}

/// So a serializer can write into it (`serde_json::to_writer`).
impl io::Write for WipedBuffer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wiped_buffer_keeps_every_byte_across_growth() {
        let mut buffer = WipedBuffer::with_capacity(2);
        for chunk in [&b"ab"[..], b"cde", b"", b"fghijklmnop"] {
            buffer.extend_from_slice(chunk);
        }
        assert_eq!(buffer.len(), 16);
        assert_eq!(&buffer.freeze()[..], b"abcdefghijklmnop");
    }
}
