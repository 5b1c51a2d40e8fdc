//! Errors, not panics: IDM answers map to error kinds, absurd values are clamped, insecure or impossible configurations are clear errors.
//!
//! The token manager against the in-memory fake IDM, under paused Tokio time.

use std::time::Duration;

use bodhi_auth::testing::{FakeIdm, Fault};
use bodhi_auth::{Credentials, ErrorKind, TokenManager};

mod support;
use support::{manager, paused_runtime};

#[tokio::test(start_paused = true)]
async fn idm_answers_map_to_error_kinds() {
    let long_html = "<html>".repeat(1000);
    let cases: Vec<(Fault, ErrorKind)> = vec![
        (
            Fault::body(
                400,
                r#"{"error":"invalid_grant","error_description":"Invalid user credentials"}"#,
            ),
            ErrorKind::InvalidCredentials,
        ),
        (
            Fault::body(
                401,
                r#"{"error":"invalid_grant","error_description":"Invalid user credentials"}"#,
            ),
            ErrorKind::InvalidCredentials,
        ),
        (
            Fault::body(401, r#"{"error":"invalid_client"}"#),
            ErrorKind::Config,
        ),
        (
            Fault::body(
                400,
                r#"{"error":"unauthorized_client","error_description":"Client not allowed for direct access grants"}"#,
            ),
            ErrorKind::Config,
        ),
        (
            Fault::body(
                400,
                r#"{"error":"invalid_request","error_description":"Missing form parameter: grant_type"}"#,
            ),
            ErrorKind::Config,
        ),
        (Fault::Refuse, ErrorKind::Unavailable),
        (Fault::Hang, ErrorKind::Unavailable),
        (Fault::status(500), ErrorKind::Unavailable),
        (Fault::status(503), ErrorKind::Unavailable),
        (Fault::status(429), ErrorKind::Unavailable),
        (Fault::body(200, long_html), ErrorKind::InvalidResponse),
        (
            Fault::body(200, r#"{"access_token":"abc","expires_in":6"#),
            ErrorKind::InvalidResponse,
        ),
        (
            Fault::body(200, r#"{"expires_in":60,"token_type":"Bearer"}"#),
            ErrorKind::InvalidResponse,
        ),
        (
            Fault::body(
                200,
                r#"{"access_token":"a","expires_in":60,"token_type":"mac"}"#,
            ),
            ErrorKind::InvalidResponse,
        ),
        (
            Fault::body(200, r#"{"access_token":"a","expires_in":-5}"#),
            ErrorKind::InvalidResponse,
        ),
        (
            Fault::body(200, r#"{"access_token":"a b\n","expires_in":60}"#),
            ErrorKind::InvalidResponse,
        ),
        (Fault::body(200, "[]"), ErrorKind::InvalidResponse),
    ];
    for (fault, kind) in cases {
        let idm = FakeIdm::new();
        idm.set_persistent_fault(Some(fault.clone()));
        let err = manager(&idm).access_token().await.unwrap_err();
        assert_eq!(err.kind(), kind, "{fault:?}: {err}");
    }
}

#[tokio::test(start_paused = true)]
async fn absurd_lifetimes_are_clamped_not_overflowed() {
    let idm = FakeIdm::new();
    idm.push_faults([Fault::body(
        200,
        r#"{"access_token":"a","expires_in":1e308,"refresh_token":"r","refresh_expires_in":18446744073709551615}"#,
    )]);
    let manager = manager(&idm);
    let token = manager.access_token().await.unwrap();
    assert!(token.expires_in() > Duration::from_secs(365 * 24 * 3600));
}

#[tokio::test(start_paused = true)]
async fn wrong_password_error_carries_keycloaks_description() {
    let idm = FakeIdm::new();
    let manager = TokenManager::builder(Credentials::new("user", "wrong"))
        .fake_idm(&idm)
        .build()
        .unwrap();
    let err = manager.access_token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidCredentials);
    assert_eq!(err.idm_error(), Some("invalid_grant"));
    assert!(
        err.to_string().contains("Invalid user credentials"),
        "{err}"
    );
    assert!(!err.to_string().contains("wrong"));
}

#[test]
fn plain_http_is_refused_unless_loopback() {
    let build = |url: &str| {
        TokenManager::builder(Credentials::new("u", "p"))
            .token_url(url)
            .build()
    };
    for url in [
        "http://localhost.example.com/t/token",
        "http://192.168.1.1/t/token",
    ] {
        assert_eq!(build(url).unwrap_err().kind(), ErrorKind::Config, "{url}");
    }
    for url in [
        "http://127.0.0.1:8080/t/token",
        "http://localhost/t/token",
        "http://[::1]/t/token",
    ] {
        assert!(build(url).is_ok(), "{url}");
    }
}

#[tokio::test(start_paused = true)]
async fn header_values_built_from_tokens_are_sensitive() {
    let idm = FakeIdm::new();
    let token = manager(&idm).access_token().await.unwrap();
    assert!(token.header_value().is_sensitive());
    assert_eq!(
        token.header_value().to_str().unwrap(),
        format!("Bearer {}", token.secret())
    );
}

#[test]
fn absurd_configuration_durations_do_not_overflow() {
    let runtime = paused_runtime();
    runtime.block_on(async {
        let idm = FakeIdm::new();
        let manager = TokenManager::builder(Credentials::new("user", "secret"))
            .fake_idm(&idm)
            .min_relogin_interval(Duration::MAX)
            .cooldown(Duration::MAX, Duration::MAX)
            .refresh_margin(Duration::MAX)
            .build()
            .unwrap();
        let a = manager.access_token().await.unwrap();
        assert!(manager.invalidate(&a));
        let b = manager.access_token().await.unwrap();
        assert!(!manager.invalidate(&b), "throttled for 'ever'");
        idm.set_persistent_fault(Some(Fault::status(503)));
        manager.set_credentials(Credentials::new("other", "x"));
        assert!(manager.access_token().await.is_err());
    });
}

#[test]
fn a_runtime_without_timers_is_a_config_error_naming_enable_time() {
    let idm = FakeIdm::new();
    let manager = manager(&idm);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let err = runtime.block_on(manager.access_token()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("enable_time"), "{err}");
    let err = runtime.block_on(manager.logout()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert_eq!(idm.token_requests(), 0);
}
