//! The IDM's wire format: the forms this crate posts and how it reads the answers.
//!
//! Everything the IDM sends is untrusted input: every path here returns an [`Error`],
//! none panics, and no error message repeats a token or a password.

use std::time::Duration;

use http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use zeroize::Zeroizing;

use super::transport::{IdmReply, IdmRequest};
use crate::error::IdmError;
use crate::{Credentials, Error, ErrorKind};

/// The longest lifetime believed from the IDM; larger values are clamped so that
/// adding them to an `Instant` cannot overflow.
const MAX_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How much of an `error_description` goes into an error message.
const MAX_DESCRIPTION_CHARS: usize = 300;

/// Which grant a token request uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GrantKind {
    Password,
    Refresh,
}

impl GrantKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            GrantKind::Password => "password",
            GrantKind::Refresh => "refresh_token",
        }
    }
}

/// What the request needs besides the grant.
#[derive(Debug, Clone)]
pub(crate) struct Client<'a> {
    pub(crate) token_url: &'a reqwest::Url,
    pub(crate) client_id: &'a str,
    pub(crate) scope: Option<&'a str>,
}

fn form(fields: &[(&str, &str)]) -> Zeroizing<String> {
    // The worst case of URL encoding (3 bytes per input byte), so the string never
    // grows: growing would free the old buffer, with the password in it, unwiped.
    let capacity = fields
        .iter()
        .map(|(k, v)| 3 * (k.len() + v.len()) + 2)
        .sum();
    let mut serializer = form_urlencoded::Serializer::new(String::with_capacity(capacity));
    for (key, value) in fields {
        serializer.append_pair(key, value);
    }
    Zeroizing::new(serializer.finish())
}

/// `grant_type=password`, as the vendor document shows, plus `scope`.
pub(crate) fn password_request(client: &Client<'_>, credentials: &Credentials) -> IdmRequest {
    let mut fields = vec![
        ("grant_type", "password"),
        ("client_id", client.client_id),
        ("username", credentials.username()),
        ("password", credentials.password()),
    ];
    if let Some(scope) = client.scope {
        fields.push(("scope", scope));
    }
    IdmRequest::new(client.token_url.clone(), form(&fields), None)
}

/// `grant_type=refresh_token` with the refresh token both in the form and, as the
/// vendor document shows, in `Authorization: Bearer`.
pub(crate) fn refresh_request(client: &Client<'_>, refresh_token: &str) -> IdmRequest {
    let fields = [
        ("grant_type", "refresh_token"),
        ("client_id", client.client_id),
        ("refresh_token", refresh_token),
    ];
    // Sized up front: `format!` would grow the string, freeing copies unwiped.
    let mut bearer = Zeroizing::new(String::with_capacity(7 + refresh_token.len()));
    bearer.push_str("Bearer ");
    bearer.push_str(refresh_token);
    IdmRequest::new(client.token_url.clone(), form(&fields), Some(bearer))
}

/// Keycloak's end-session call for a public client: `client_id` and `refresh_token`.
pub(crate) fn logout_request(
    logout_url: &reqwest::Url,
    client_id: &str,
    refresh_token: &str,
) -> IdmRequest {
    let fields = [("client_id", client_id), ("refresh_token", refresh_token)];
    IdmRequest::new(logout_url.clone(), form(&fields), None)
}

/// A successful token answer, checked.
pub(crate) struct TokenResponse {
    pub(crate) access_token: Zeroizing<String>,
    pub(crate) expires_in: Duration,
    pub(crate) refresh_token: Option<Zeroizing<String>>,
    /// `None`: no refresh expiry given, or 0 (Keycloak's "no expiry").
    pub(crate) refresh_expires_in: Option<Duration>,
    pub(crate) id_token: Option<Zeroizing<String>>,
    pub(crate) scope: Option<String>,
}

#[derive(Deserialize)]
struct RawTokenResponse {
    access_token: Option<Value>,
    expires_in: Option<Value>,
    refresh_token: Option<Value>,
    refresh_expires_in: Option<Value>,
    id_token: Option<Value>,
    token_type: Option<Value>,
    scope: Option<Value>,
    // Read so that a wrong type is tolerated rather than an error; nothing uses them.
    #[serde(rename = "not-before-policy")]
    _not_before_policy: Option<Value>,
    #[serde(rename = "session_state")]
    _session_state: Option<Value>,
}

fn invalid(message: &str) -> Error {
    Error::new(ErrorKind::InvalidResponse, message)
}

/// Seconds as an integer, a float or a numeric string; negative or non-finite is `None`.
fn seconds(value: &Value) -> Option<Duration> {
    let secs = match value {
        Value::Number(n) => n.as_u64().map(|s| s as f64).or_else(|| n.as_f64())?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    Some(Duration::from_secs_f64(
        secs.min(MAX_LIFETIME.as_secs_f64()),
    ))
}

fn string(value: Option<Value>, field: &str) -> Result<Option<String>, Error> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(&format!("`{field}` is not a string"))),
    }
}

/// Reads a 2xx answer of the token endpoint.
pub(super) fn parse_token_response(body: &[u8]) -> Result<TokenResponse, Error> {
    let raw: RawTokenResponse = serde_json::from_slice(body).map_err(|e| {
        // serde_json's message names a line and column, never the input itself.
        invalid("the token endpoint's answer is not a JSON token response").with_source(e)
    })?;
    // Every secret into a wiped string before anything can return early, so an answer
    // refused below leaves no unwiped copy of its tokens behind.
    let secret = |value, field| string(value, field).map(|s| s.map(Zeroizing::new));
    let access_token = secret(raw.access_token, "access_token");
    let refresh_token = secret(raw.refresh_token, "refresh_token");
    let id_token = secret(raw.id_token, "id_token");
    let access_token = access_token?
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid("the token endpoint's answer has no access_token"))?;
    if let Some(token_type) = string(raw.token_type, "token_type")?
        && !token_type.eq_ignore_ascii_case("bearer")
    {
        return Err(invalid(&format!(
            "the token type is {:?}, not bearer",
            sanitize(&token_type, 40)
        )));
    }
    let expires_in = raw
        .expires_in
        .as_ref()
        .and_then(seconds)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| invalid("the token endpoint's answer has no positive expires_in"))?;
    let refresh_expires_in = match &raw.refresh_expires_in {
        None | Some(Value::Null) => None,
        Some(value) => {
            let d = seconds(value)
                .ok_or_else(|| invalid("refresh_expires_in is not a number of seconds"))?;
            (!d.is_zero()).then_some(d)
        }
    };
    let refresh_token = refresh_token?.filter(|t| !t.is_empty());
    Ok(TokenResponse {
        access_token,
        expires_in,
        refresh_token,
        refresh_expires_in,
        id_token: id_token?,
        scope: string(raw.scope, "scope")?,
    })
}

/// Turns any answer of the token endpoint into a token or a classified error.
pub(crate) fn read_token_reply(reply: &IdmReply, grant: GrantKind) -> Result<TokenResponse, Error> {
    if reply.status.is_success() {
        return parse_token_response(&reply.body).map_err(|e| e.with_status(reply.status));
    }
    Err(error_from_reply(reply, grant))
}

/// Classifies a non-2xx answer.
pub(crate) fn error_from_reply(reply: &IdmReply, grant: GrantKind) -> Error {
    let status = reply.status;
    let idm = oauth_error(&reply.body);
    let code = idm.as_ref().map(|e| e.code.as_str());
    let (kind, message) = if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        (ErrorKind::Unavailable, "the IDM is unavailable")
    } else {
        match (code, grant) {
            (Some("invalid_grant"), GrantKind::Password) => (
                ErrorKind::InvalidCredentials,
                "the IDM refused the user name or password",
            ),
            (Some("invalid_grant"), GrantKind::Refresh) => (
                ErrorKind::InvalidCredentials,
                "the IDM refused the refresh token",
            ),
            (Some("invalid_client" | "unauthorized_client" | "unsupported_grant_type"), _) => (
                ErrorKind::Config,
                "the IDM refused this client; check client_id and the token URL",
            ),
            (Some("invalid_request" | "invalid_scope"), _) => {
                (ErrorKind::Config, "the IDM refused the request")
            }
            (Some(_), _) => (ErrorKind::Config, "the IDM refused the request"),
            (None, _)
                if status.is_client_error()
                    && status != StatusCode::BAD_REQUEST
                    && status != StatusCode::UNAUTHORIZED =>
            {
                (
                    ErrorKind::Config,
                    "the token URL answered with an HTTP error",
                )
            }
            (None, _) => (
                ErrorKind::InvalidResponse,
                "the IDM answered with an error that is not an OAuth error",
            ),
        }
    };
    let mut error = Error::new(kind, message)
        .with_status(status)
        .with_retry_after(reply.retry_after);
    if let Some(idm) = idm {
        error = error.with_idm(idm);
    }
    error
}

/// True when the IDM refused a refresh token: time to fall back to the password grant.
pub(crate) fn is_invalid_grant(error: &Error) -> bool {
    error.idm_error() == Some("invalid_grant")
}

fn oauth_error(body: &[u8]) -> Option<IdmError> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let code = value.get("error")?.as_str()?;
    let description = value.get("error_description").and_then(Value::as_str);
    Some(IdmError {
        code: sanitize(code, 80),
        description: description.map(|d| sanitize(d, MAX_DESCRIPTION_CHARS)),
    })
}

/// Keeps IDM text printable and short before it goes into an error message.
fn sanitize(text: &str, max_chars: usize) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(max_chars)
        .collect()
}

/// Reads `Retry-After` as delta-seconds or an HTTP date.
pub(super) fn parse_retry_after(value: &http::HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs.min(MAX_LIFETIME.as_secs())));
    }
    let date = httpdate::parse_http_date(text).ok()?;
    Some(
        date.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn reply(status: u16, body: &str) -> IdmReply {
        IdmReply {
            status: StatusCode::from_u16(status).unwrap(),
            retry_after: None,
            body: Bytes::copy_from_slice(body.as_bytes()),
        }
    }

    #[test]
    fn token_type_is_case_insensitive_and_optional() {
        for body in [
            r#"{"access_token":"a","expires_in":60,"token_type":"Bearer"}"#,
            r#"{"access_token":"a","expires_in":60,"token_type":"bearer"}"#,
            r#"{"access_token":"a","expires_in":60}"#,
        ] {
            assert!(parse_token_response(body.as_bytes()).is_ok(), "{body}");
        }
        let err =
            parse_token_response(br#"{"access_token":"a","expires_in":60,"token_type":"mac"}"#)
                .err()
                .unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidResponse);
    }

    #[test]
    fn refresh_expires_in_zero_means_no_expiry() {
        let t = parse_token_response(
            br#"{"access_token":"a","expires_in":"60","refresh_token":"r","refresh_expires_in":0}"#,
        )
        .unwrap();
        assert_eq!(t.expires_in, Duration::from_secs(60));
        assert_eq!(t.refresh_expires_in, None);
        assert_eq!(t.refresh_token.as_deref().map(String::as_str), Some("r"));
    }

    #[test]
    fn errors_are_classified_by_oauth_code_then_status() {
        let cases = [
            (
                400,
                r#"{"error":"invalid_grant","error_description":"Invalid user credentials"}"#,
                ErrorKind::InvalidCredentials,
            ),
            (
                401,
                r#"{"error":"invalid_grant","error_description":"Invalid user credentials"}"#,
                ErrorKind::InvalidCredentials,
            ),
            (401, r#"{"error":"invalid_client"}"#, ErrorKind::Config),
            (400, r#"{"error":"unauthorized_client"}"#, ErrorKind::Config),
            (400, r#"{"error":"invalid_request"}"#, ErrorKind::Config),
            (500, "oops", ErrorKind::Unavailable),
            (502, "<html>bad gateway</html>", ErrorKind::Unavailable),
            (429, "", ErrorKind::Unavailable),
            (404, "<html>not found</html>", ErrorKind::Config),
            (400, "<html>no</html>", ErrorKind::InvalidResponse),
        ];
        for (status, body, kind) in cases {
            let err = read_token_reply(&reply(status, body), GrantKind::Password)
                .err()
                .unwrap();
            assert_eq!(err.kind(), kind, "{status} {body}");
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let secs = http::HeaderValue::from_static("7");
        assert_eq!(parse_retry_after(&secs), Some(Duration::from_secs(7)));
        let past = http::HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT");
        assert_eq!(parse_retry_after(&past), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after(&http::HeaderValue::from_static("soon")),
            None
        );
    }
}
