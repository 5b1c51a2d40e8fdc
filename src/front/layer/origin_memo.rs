//! [`OriginMemo`]: the origin key of the last request a service instance sent, so a
//! run of requests to one origin (what a client usually sends) hashes it once.
//!
//! A request sent without a copy keeps only its origin's key, for the 401 rule to tell
//! a redirect target's 401 from the request's own. A scope that lists origins hands over
//! the key it computed when it was made; with `TokenScope::any_origin()` the key would
//! be a keyed hash of the parsed origin on every request. The memo compares the URI's
//! scheme and authority, as written, with the last ones instead. It is inline and
//! fixed-size: cloning a service copies it, and nothing is allocated.

use http::Uri;

use crate::front::origin::{Origin, OriginKey};

/// Longest `scheme/authority` remembered; longer ones are hashed every time.
const CAPACITY: usize = 96;

/// The last origin's `scheme/authority` as written, and its key.
#[derive(Debug, Clone)]
pub(super) struct OriginMemo {
    written: [u8; CAPACITY],
    /// 0: nothing remembered.
    len: usize,
    key: Option<OriginKey>,
}

impl Default for OriginMemo {
    fn default() -> Self {
        OriginMemo {
            written: [0; CAPACITY],
            len: 0,
            key: None,
        }
    }
}

impl OriginMemo {
    /// The key of `uri`'s origin: the remembered one when `uri` writes the same scheme
    /// and authority, byte for byte (equal strings are equal origins), else computed and
    /// remembered.
    pub(super) fn key(&mut self, uri: &Uri) -> OriginKey {
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return OriginKey::of(Origin::of_uri(uri));
        };
        let (scheme, authority) = (scheme.as_bytes(), authority.as_str().as_bytes());
        // A scheme has no `/`, so `scheme/authority` reads back one way only.
        let len = scheme.len() + 1 + authority.len();
        if len > CAPACITY {
            return OriginKey::of(Origin::of_uri(uri));
        }
        if let Some(key) = self.key
            && self.len == len
            && &self.written[..scheme.len()] == scheme
            && self.written[scheme.len()] == b'/'
            && &self.written[scheme.len() + 1..len] == authority
        {
            return key;
        }
        let key = OriginKey::of(Origin::of_uri(uri));
        self.written[..scheme.len()].copy_from_slice(scheme);
        self.written[scheme.len()] = b'/';
        self.written[scheme.len() + 1..len].copy_from_slice(authority);
        self.len = len;
        self.key = Some(key);
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn the_memo_gives_the_key_of_each_uri_s_own_origin() {
        let mut memo = OriginMemo::default();
        let key = |uri: &Uri| OriginKey::of(Origin::of_uri(uri));
        let uris = [
            "https://api.example/a",
            "https://api.example/b?x=1",
            "https://API.example/c",
            "http://api.example/a",
            "https://api.example:8443/a",
            "https://api.exampl/a",
            "https://api.example/a",
            "/relative",
            "https://user@api.example/a",
            &format!("https://{}.example/", "h".repeat(200)),
            "https://api.example/a",
        ];
        for s in uris {
            let u = uri(s);
            assert_eq!(memo.key(&u), key(&u), "{s}");
        }
        // The same origin written otherwise (case, default port) has the same key.
        assert_eq!(
            memo.key(&uri("https://API.example/")),
            memo.key(&uri("https://api.example:443/"))
        );
        assert_ne!(
            memo.key(&uri("https://api.example/")),
            memo.key(&uri("https://api.example.evil/"))
        );
    }
}
