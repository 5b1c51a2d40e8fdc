//! The real reqwest transport against the fake IDM on loopback HTTP. Real time: these
//! tests assert counts and outcomes, never durations.

use std::time::Duration;

use bodhi_auth::testing::{FakeIdm, Fault};
use bodhi_auth::{Credentials, ErrorKind, TokenManager, TokenManagerBuilder};

fn builder(token_url: &str) -> TokenManagerBuilder {
    TokenManager::builder(Credentials::new("user", "secret")).token_url(token_url)
}

#[tokio::test]
async fn password_and_refresh_grants_go_over_http_as_documented() {
    let idm = FakeIdm::new();
    idm.set_access_ttl(Duration::from_secs(2));
    let server = idm.serve().await.unwrap();
    let manager = builder(&server.token_url()).build().unwrap();
    let first = manager.access_token().await.unwrap();
    let login = &idm.requests()[0];
    assert_eq!(
        login.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(login.grant_type(), Some("password"));
    // Let the 2 s token expire with nothing in flight; the next caller then waits for
    // the one flight, which uses the (30-minute) refresh token.
    tokio::time::sleep_until(first.expires_at()).await;
    let second = manager.access_token().await.unwrap();
    assert!(!second.same_token(&first), "a new token after expiry");
    let requests = idm.requests();
    let refresh = requests
        .iter()
        .find(|r| r.grant_type() == Some("refresh_token"))
        .expect("a refresh grant among the IDM's requests");
    let refresh_token = refresh.field("refresh_token").unwrap();
    assert_eq!(
        refresh.authorization.as_deref(),
        Some(format!("Bearer {refresh_token}").as_str())
    );
    assert_eq!(
        refresh.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!((idm.password_grants(), idm.refresh_grants()), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_over_http_cause_one_login() {
    let idm = FakeIdm::new();
    idm.set_latency(Duration::from_millis(200));
    let server = idm.serve().await.unwrap();
    let manager = builder(&server.token_url()).build().unwrap();
    let callers: Vec<_> = (0..200)
        .map(|_| {
            let manager = manager.clone();
            tokio::spawn(async move { manager.access_token().await })
        })
        .collect();
    let mut tokens = Vec::new();
    for caller in callers {
        tokens.push(caller.await.unwrap().unwrap());
    }
    assert_eq!(idm.token_requests(), 1);
    assert!(tokens.iter().all(|t| t.same_token(&tokens[0])));
}

#[tokio::test]
async fn connection_refused_is_unavailable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }; // closed again: nothing listens there now
    let url = format!("http://127.0.0.1:{port}{}", FakeIdm::TOKEN_PATH);
    let manager = builder(&url).max_attempts(1).build().unwrap();
    let err = manager.access_token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
}

#[tokio::test]
async fn a_dropped_connection_is_unavailable() {
    let idm = FakeIdm::new();
    idm.set_persistent_fault(Some(Fault::Refuse));
    let server = idm.serve().await.unwrap();
    let manager = builder(&server.token_url())
        .max_attempts(1)
        .build()
        .unwrap();
    let err = manager.access_token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
}

#[tokio::test]
async fn an_8_mb_answer_is_refused_by_the_body_cap() {
    let idm = FakeIdm::new();
    let huge = format!(
        r#"{{"access_token":"{}","expires_in":60}}"#,
        "a".repeat(8 << 20)
    );
    idm.set_persistent_fault(Some(Fault::body(200, huge)));
    let server = idm.serve().await.unwrap();
    let manager = builder(&server.token_url()).build().unwrap();
    let err = manager.access_token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidResponse, "{err}");
    assert!(err.to_string().contains("limit"), "{err}");
    assert_eq!(idm.token_requests(), 1, "not retried");
}

#[tokio::test]
async fn retry_after_is_read_from_the_http_header() {
    let idm = FakeIdm::new();
    idm.set_persistent_fault(Some(Fault::retry_after(429, 120)));
    let server = idm.serve().await.unwrap();
    let manager = builder(&server.token_url()).build().unwrap();
    let err = manager.access_token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    // 120 s is past the 30 s flight deadline: no second request was sent.
    assert_eq!(idm.token_requests(), 1);
}
