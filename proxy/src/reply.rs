//! The proxy's own answers: short JSON bodies saying why, with `Retry-After` when
//! waiting helps.

use std::time::Duration;

use bodhi_auth::{ErrorKind, TokenManager};
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;

use crate::guard::Refusal;

/// `{"error":code,"message":message[,"retry_after":seconds]}`.
pub(crate) fn json(
    status: StatusCode,
    code: &str,
    message: &str,
    retry_after: Option<Duration>,
) -> Response<Full<Bytes>> {
    let mut body = format!(
        r#"{{"error":"{}","message":"{}""#,
        escape(code),
        escape(message)
    );
    // Whole seconds, rounded up, at least 1: a client never retries too early.
    let seconds = retry_after.map(|d| (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1));
    if let Some(seconds) = seconds {
        body.push_str(&format!(r#","retry_after":{seconds}"#));
    }
    body.push_str("}\n");
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(seconds) = seconds {
        headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// A plain-text answer.
pub(crate) fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A request refused by the guard.
pub(crate) fn refusal(refusal: Refusal) -> Response<Full<Bytes>> {
    json(refusal.status, refusal.code, refusal.message, None)
}

/// 503: no valid token could be had. Says why, and when to try again: the IDM's own
/// `Retry-After`, else the manager's cooldown, else 1 s.
pub(crate) fn token_unavailable(
    error: &bodhi_auth::Error,
    manager: &TokenManager,
) -> Response<Full<Bytes>> {
    let (code, message) = match error.kind() {
        ErrorKind::InvalidCredentials => (
            "idm_invalid_credentials",
            "the IDM refused the proxy's credentials (BODHI_USERNAME, BODHI_PASSWORD)",
        ),
        ErrorKind::InvalidResponse => (
            "idm_invalid_response",
            "the IDM's answer was not understood",
        ),
        ErrorKind::Config => ("idm_config", "the proxy's IDM configuration is wrong"),
        _ => (
            "idm_unavailable",
            "the IDM could not be reached or was unwell",
        ),
    };
    let retry_after = error
        .retry_after()
        .or(manager.stats().cooldown_remaining)
        .unwrap_or(Duration::from_secs(1));
    json(
        StatusCode::SERVICE_UNAVAILABLE,
        code,
        message,
        Some(retry_after),
    )
}

/// 502: the upstream could not be reached, or failed mid-answer.
pub(crate) fn bad_gateway() -> Response<Full<Bytes>> {
    json(
        StatusCode::BAD_GATEWAY,
        "upstream_unavailable",
        "the upstream could not be reached or failed",
        None,
    )
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let r = json(
            StatusCode::SERVICE_UNAVAILABLE,
            "x",
            "y",
            Some(Duration::from_millis(1500)),
        );
        assert_eq!(r.headers()[RETRY_AFTER], "2");
        let r = json(
            StatusCode::SERVICE_UNAVAILABLE,
            "x",
            "y",
            Some(Duration::from_secs(3)),
        );
        assert_eq!(r.headers()[RETRY_AFTER], "3");
        let r = json(
            StatusCode::SERVICE_UNAVAILABLE,
            "x",
            "y",
            Some(Duration::ZERO),
        );
        assert_eq!(r.headers()[RETRY_AFTER], "1");
    }
}
