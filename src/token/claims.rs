//! [`Identity`]: who a token belongs to, read from the id token's claims.

use serde_json::Value;

use crate::{Error, ErrorKind};

/// The user name and Bodhi namespace from an id token (see [`AccessToken::identity`]).
///
/// [`AccessToken::identity`]: crate::AccessToken::identity
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    username: String,
    namespace: Option<String>,
}

impl Identity {
    /// The `preferred_username` claim: the global-profile user name.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The Bodhi namespace: `otherClaims.bodhiapi` as in the vendor's sample, or a
    /// top-level `bodhiapi` claim as some Keycloak mappers write it.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }
}

fn invalid(message: &str) -> Error {
    Error::new(ErrorKind::InvalidResponse, message)
}

/// Reads the payload of a JWT without verifying it.
pub(crate) fn decode_payload(jwt: &str) -> Result<Value, Error> {
    let mut parts = jwt.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid(
            "the token is not a JWT (expected three dot-separated parts)",
        ));
    };
    let bytes =
        base64url_decode(payload).ok_or_else(|| invalid("the token's payload is not base64url"))?;
    let value: Value =
        serde_json::from_slice(&bytes).map_err(|_| invalid("the token's payload is not JSON"))?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(invalid("the token's payload is not a JSON object"))
    }
}

pub(crate) fn decode_identity(id_token: &str) -> Result<Identity, Error> {
    let claims = decode_payload(id_token)?;
    let username = claims
        .get("preferred_username")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("the id token has no preferred_username claim"))?
        .to_owned();
    let namespace = claims
        .get("otherClaims")
        .and_then(|other| other.get("bodhiapi"))
        .or_else(|| claims.get("bodhiapi"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Ok(Identity {
        username,
        namespace,
    })
}

/// Decodes unpadded or padded base64url; `None` on any invalid input.
pub(super) fn base64url_decode(input: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        } as u32)
    }
    let input = input.trim_end_matches('=').as_bytes();
    if input.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    for chunk in input.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// Encodes base64url without padding (used by the fake IDM to mint JWTs).
#[cfg_attr(not(feature = "testing"), allow(dead_code))]
pub(crate) fn base64url_encode(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let mut acc = 0u32;
        for (i, &b) in chunk.iter().enumerate() {
            acc |= u32::from(b) << (16 - 8 * i);
        }
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((acc >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips_every_length() {
        let data: Vec<u8> = (0..=255).collect();
        for len in 0..data.len() {
            let encoded = base64url_encode(&data[..len]);
            assert_eq!(base64url_decode(&encoded).as_deref(), Some(&data[..len]));
        }
        assert_eq!(base64url_decode("aGk="), Some(b"hi".to_vec()));
        assert_eq!(base64url_decode("a"), None);
        assert_eq!(base64url_decode("a+b/"), None);
    }

    #[test]
    fn namespace_is_read_from_other_claims_or_top_level() {
        let jwt = |claims: &str| format!("e30.{}.sig", base64url_encode(claims.as_bytes()));
        let nested = decode_identity(&jwt(
            r#"{"preferred_username":"ann","otherClaims":{"bodhiapi":"ns1"}}"#,
        ))
        .unwrap();
        assert_eq!(
            (nested.username(), nested.namespace()),
            ("ann", Some("ns1"))
        );
        let top =
            decode_identity(&jwt(r#"{"preferred_username":"bob","bodhiapi":"ns2"}"#)).unwrap();
        assert_eq!((top.username(), top.namespace()), ("bob", Some("ns2")));
        let none = decode_identity(&jwt(r#"{"preferred_username":"cy"}"#)).unwrap();
        assert_eq!(none.namespace(), None);
    }

    #[test]
    fn non_jwt_input_is_an_invalid_response_error() {
        for bad in [
            "",
            "opaque-token",
            "a.b",
            "a.!!!.c",
            "a.e30.c.d",
            "a.WzFd.c",
        ] {
            let err = decode_identity(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidResponse, "{bad}");
        }
    }
}
