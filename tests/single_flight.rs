//! One flight however many callers: one login, one shared token, one shared error.
//!
//! The token manager against the in-memory fake IDM, under paused Tokio time.

use std::time::Duration;

use bodhi_auth::ErrorKind;
use bodhi_auth::testing::{FakeIdm, Fault};

mod support;
use support::{concurrent_callers, manager};

#[tokio::test(start_paused = true)]
async fn thousand_concurrent_callers_cause_one_login_and_share_its_token() {
    let idm = FakeIdm::new();
    idm.set_latency(Duration::from_millis(100));
    let manager = manager(&idm);
    let tokens: Vec<_> = concurrent_callers(&manager, 1000)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(idm.token_requests(), 1);
    assert!(tokens.iter().all(|t| t.same_token(&tokens[0])));
}

#[tokio::test(start_paused = true)]
async fn thousand_concurrent_callers_share_one_error() {
    let idm = FakeIdm::new();
    idm.set_latency(Duration::from_millis(100));
    idm.set_persistent_fault(Some(Fault::body(
        401,
        r#"{"error":"invalid_grant","error_description":"Invalid user credentials"}"#,
    )));
    let manager = manager(&idm);
    let errors: Vec<_> = concurrent_callers(&manager, 1000)
        .await
        .into_iter()
        .map(Result::unwrap_err)
        .collect();
    assert_eq!(idm.token_requests(), 1);
    assert!(errors.iter().all(|e| e.same_as(&errors[0])));
    assert_eq!(errors[0].kind(), ErrorKind::InvalidCredentials);
}
