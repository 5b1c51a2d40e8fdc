//! Property tests: no input from the network panics the token-response parser, the
//! error classifier or the JWT claims decoder.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::transport::IdmReply;
use super::wire::{GrantKind, parse_retry_after, parse_token_response, read_token_reply};
use crate::token::{base64url_encode, decode_identity, decode_payload};

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::hash_map(".{0,10}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A JSON object using the token response's own field names with arbitrary values:
/// far more likely than random JSON to reach the parser's deeper branches.
fn token_shaped_json() -> impl Strategy<Value = Value> {
    const FIELDS: [&str; 12] = [
        "access_token",
        "expires_in",
        "refresh_token",
        "refresh_expires_in",
        "id_token",
        "token_type",
        "scope",
        "not-before-policy",
        "session_state",
        "error",
        "error_description",
        "preferred_username",
    ];
    prop::collection::vec((prop::sample::select(&FIELDS[..]), any_json()), 0..12).prop_map(
        |pairs| {
            let mut map = Map::new();
            for (key, value) in pairs {
                map.insert(key.to_owned(), value);
            }
            Value::Object(map)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_the_parsers(bytes in prop::collection::vec(any::<u8>(), 0..512), status in 100u16..600) {
        let _ = parse_token_response(&bytes);
        let reply = IdmReply {
            status: http::StatusCode::from_u16(status).unwrap(),
            retry_after: None,
            body: bytes.clone().into(),
        };
        let _ = read_token_reply(&reply, GrantKind::Password);
        let _ = read_token_reply(&reply, GrantKind::Refresh);
        let text = String::from_utf8_lossy(&bytes);
        let _ = decode_identity(&text);
        if let Ok(value) = http::HeaderValue::from_bytes(&bytes) {
            let _ = parse_retry_after(&value);
        }
    }

    #[test]
    fn arbitrary_json_never_panics_the_parsers(value in prop_oneof![any_json(), token_shaped_json()], status in prop::sample::select(vec![200u16, 400, 401, 429, 500, 503])) {
        let body = value.to_string();
        let parsed = parse_token_response(body.as_bytes());
        if let Ok(token) = parsed {
            // Whatever was accepted is usable: a non-empty token and a positive lifetime.
            prop_assert!(!token.access_token.is_empty());
            prop_assert!(!token.expires_in.is_zero());
        }
        let reply = IdmReply {
            status: http::StatusCode::from_u16(status).unwrap(),
            retry_after: None,
            body: body.clone().into(),
        };
        let _ = read_token_reply(&reply, GrantKind::Password);
    }

    #[test]
    fn arbitrary_claims_never_panic_the_decoder(claims in prop_oneof![any_json(), token_shaped_json()], header in ".{0,20}", signature in ".{0,20}") {
        let payload = base64url_encode(claims.to_string().as_bytes());
        let jwt = format!("{header}.{payload}.{signature}");
        let decoded = decode_payload(&jwt);
        if !header.contains('.') && !signature.contains('.') {
            prop_assert_eq!(decoded.is_ok(), claims.is_object());
        }
        let _ = decode_identity(&jwt);
    }
}
