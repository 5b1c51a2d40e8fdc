//! The password and refresh grants as the vendor document describes them, and the fallback from one to the other.
//!
//! The token manager against the in-memory fake IDM, under paused Tokio time.

use std::time::Duration;

use bodhi_auth::testing::{FakeIdm, Fault};
use bodhi_auth::{Credentials, ErrorKind, TokenManager};
use tokio::time::{Instant, advance};

mod support;
use support::manager;

#[tokio::test(start_paused = true)]
async fn password_grant_posts_the_documented_form() {
    let idm = FakeIdm::new();
    let token = manager(&idm).access_token().await.unwrap();
    let requests = idm.requests();
    assert_eq!(requests.len(), 1);
    let login = &requests[0];
    assert_eq!(login.path, FakeIdm::TOKEN_PATH);
    assert_eq!(login.grant_type(), Some("password"));
    assert_eq!(
        login.field("client_id"),
        Some("urn:mace:oidc:hotschedules.com")
    );
    assert_eq!(login.field("username"), Some("user"));
    assert_eq!(login.field("password"), Some("secret"));
    assert_eq!(login.field("scope"), Some("openid"));
    assert!(
        login
            .raw_form
            .contains("client_id=urn%3Amace%3Aoidc%3Ahotschedules.com")
    );
    assert!(login.authorization.is_none());
    assert_eq!(idm.validate(token.secret()).as_deref(), Some("user"));
}

#[tokio::test(start_paused = true)]
async fn passwords_with_form_metacharacters_are_encoded() {
    let idm = FakeIdm::new();
    let password = "p&ss+w=rd%20 x?#é";
    idm.add_user("ann", password, None);
    let manager = TokenManager::builder(Credentials::new("ann", password))
        .fake_idm(&idm)
        .build()
        .unwrap();
    manager.access_token().await.unwrap();
    let login = &idm.requests()[0];
    assert_eq!(login.field("password"), Some(password));
    assert!(
        login
            .raw_form
            .contains("password=p%26ss%2Bw%3Drd%2520+x%3F%23%C3%A9"),
        "{}",
        login.raw_form
    );
}

#[tokio::test(start_paused = true)]
async fn the_vendor_documents_sample_response_is_understood() {
    let sample = include_str!("fixtures/idm-sample-response.json");
    let idm = FakeIdm::new();
    idm.push_faults([Fault::body(200, sample)]);
    let manager = manager(&idm);
    let sent = Instant::now();
    let token = manager.access_token().await.unwrap();
    assert!(token.secret().starts_with("eyJhbGciOiJSUzI1NiIs"));
    assert_eq!(
        Instant::now() + token.expires_in(),
        sent + Duration::from_secs(108_000)
    );
    let who = token.identity().unwrap();
    assert_eq!(who.username(), "travisjohnsonmxdev");
    assert_eq!(who.namespace(), Some("travisjohnsonmxdev"));
}

#[tokio::test(start_paused = true)]
async fn unknown_and_missing_optional_fields_are_tolerated() {
    let idm = FakeIdm::new();
    idm.push_faults([Fault::body(
        200,
        r#"{"access_token":"opaque","expires_in":60,"surprise":{"nested":[1,2]},"not-before-policy":"x"}"#,
    )]);
    let manager = manager(&idm);
    let token = manager.access_token().await.unwrap();
    assert_eq!(token.secret(), "opaque");
    assert_eq!(token.id_token(), None);
    // Not a JWT and no id token: an error for identity() only, never for requests.
    assert_eq!(
        token.identity().unwrap_err().kind(),
        ErrorKind::InvalidResponse
    );
}

#[tokio::test(start_paused = true)]
async fn refresh_grant_sends_the_refresh_token_in_form_and_header() {
    let idm = FakeIdm::new();
    idm.set_access_ttl(Duration::from_secs(100));
    let manager = manager(&idm);
    manager.access_token().await.unwrap();
    advance(Duration::from_secs(71)).await;
    manager.access_token().await.unwrap();
    manager.settled().await;
    let requests = idm.requests();
    assert_eq!(requests.len(), 2);
    let refresh = &requests[1];
    assert_eq!(refresh.grant_type(), Some("refresh_token"));
    assert_eq!(
        refresh.field("client_id"),
        Some("urn:mace:oidc:hotschedules.com")
    );
    let refresh_token = refresh.field("refresh_token").unwrap();
    assert!(!refresh_token.is_empty());
    assert_eq!(
        refresh.authorization.as_deref(),
        Some(format!("Bearer {refresh_token}").as_str())
    );
    assert_eq!(refresh.field("password"), None);
}

#[tokio::test(start_paused = true)]
async fn a_dead_refresh_token_means_a_password_login_without_a_refresh_attempt() {
    // The vendor's numbers: the refresh token dies long before the access token.
    let idm = FakeIdm::new();
    let manager = manager(&idm);
    let first = manager.access_token().await.unwrap();
    advance(Duration::from_secs(108_000 - 29)).await; // refresh-due; refresh token long dead
    assert!(manager.access_token().await.unwrap().same_token(&first));
    manager.settled().await;
    assert_eq!(idm.refresh_grants(), 0);
    assert_eq!(idm.password_grants(), 2);
    assert!(!manager.cached().unwrap().same_token(&first));
}

#[tokio::test(start_paused = true)]
async fn refresh_expires_in_zero_means_the_refresh_token_never_dies() {
    let idm = FakeIdm::new();
    idm.set_refresh_ttl(None);
    idm.set_access_ttl(Duration::from_secs(100));
    let manager = manager(&idm);
    manager.access_token().await.unwrap();
    advance(Duration::from_secs(10_000)).await;
    manager.access_token().await.unwrap();
    assert_eq!((idm.password_grants(), idm.refresh_grants()), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn refused_refresh_falls_back_to_the_password_grant_in_the_same_flight() {
    for (status, body) in [
        (
            400,
            r#"{"error":"invalid_grant","error_description":"Token is not active"}"#,
        ),
        (
            401,
            r#"{"error":"invalid_grant","error_description":"Session not active"}"#,
        ),
    ] {
        let idm = FakeIdm::new();
        idm.set_access_ttl(Duration::from_secs(100));
        let manager = manager(&idm);
        manager.access_token().await.unwrap();
        advance(Duration::from_secs(101)).await; // expired: callers wait for the flight
        idm.push_faults([Fault::body(status, body)]);
        let token = manager.access_token().await.unwrap();
        let grants: Vec<_> = idm
            .requests()
            .iter()
            .map(|r| r.grant_type().unwrap().to_owned())
            .collect();
        assert_eq!(
            grants,
            ["password", "refresh_token", "password"],
            "{status}"
        );
        assert_eq!(idm.validate(token.secret()).as_deref(), Some("user"));
    }
}

#[tokio::test(start_paused = true)]
async fn a_refresh_refused_for_a_lasting_reason_falls_back_to_the_password_grant_once() {
    // A gateway's HTML 401 or an OAuth error other than `invalid_grant` will not go away
    // by retrying: with a refresh token that never expires, keeping it would fail every
    // later flight too.
    for fault in [
        Fault::body(401, "<html>gateway</html>"),
        Fault::body(400, r#"{"error":"invalid_request"}"#),
    ] {
        let idm = FakeIdm::new();
        idm.set_refresh_ttl(None);
        idm.set_access_ttl(Duration::from_secs(100));
        let manager = manager(&idm);
        manager.access_token().await.unwrap();
        advance(Duration::from_secs(101)).await; // expired: callers wait for the flight
        idm.push_faults([fault.clone()]);
        let token = manager.access_token().await;
        let grants: Vec<_> = idm
            .requests()
            .iter()
            .map(|r| r.grant_type().unwrap().to_owned())
            .collect();
        assert_eq!(
            grants,
            ["password", "refresh_token", "password"],
            "{fault:?}"
        );
        let token = token.unwrap();
        assert_eq!(idm.validate(token.secret()).as_deref(), Some("user"));
    }
}

#[tokio::test(start_paused = true)]
async fn every_refresh_keeps_the_new_refresh_expiry() {
    let idm = FakeIdm::new();
    idm.set_access_ttl(Duration::from_secs(20)); // refresh-due every 10 s
    idm.set_refresh_ttl(Some(Duration::from_secs(30)));
    let manager = manager(&idm);
    manager.access_token().await.unwrap();
    for _ in 0..4 {
        // t = 11, 22, 33, 44: past the first refresh token's 30 s, so each refresh must
        // have moved the expiry forward for the refresh grant to still be chosen.
        advance(Duration::from_secs(11)).await;
        manager.access_token().await.unwrap();
        manager.settled().await;
    }
    assert_eq!((idm.password_grants(), idm.refresh_grants()), (1, 4));
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_refresh_is_never_presented_again() {
    // The IDM may have processed a refresh whose answer never came: with single-use
    // refresh tokens, presenting it again would revoke the session.
    let idm = FakeIdm::new();
    idm.set_access_ttl(Duration::from_secs(100));
    let manager = manager(&idm);
    manager.access_token().await.unwrap();
    advance(Duration::from_secs(101)).await; // expired: callers wait for the flight
    idm.push_faults([Fault::Delay(Duration::from_secs(3600))]);
    let token = manager.access_token().await.unwrap();
    assert_eq!(idm.validate(token.secret()).as_deref(), Some("user"));
    let grants: Vec<_> = idm
        .requests()
        .iter()
        .map(|r| r.grant_type().unwrap().to_owned())
        .collect();
    assert_eq!(grants, ["password", "refresh_token", "password"]);
}

#[tokio::test(start_paused = true)]
async fn the_fake_ends_idle_sessions_and_their_access_tokens_like_keycloak() {
    // Verified against Keycloak 26.5.6 (tests/keycloak.rs): once the session idles out,
    // userinfo rejects an access token that has not expired yet.
    let idm = FakeIdm::new(); // access 30 h, refresh (session idle) 30 min
    let token = manager(&idm).access_token().await.unwrap();
    advance(Duration::from_secs(1799)).await;
    assert_eq!(idm.validate(token.secret()).as_deref(), Some("user"));
    assert_eq!(idm.active_sessions(), 1);
    advance(Duration::from_secs(2)).await;
    assert_eq!(idm.validate(token.secret()), None);
    assert_eq!(idm.active_sessions(), 0);
}
