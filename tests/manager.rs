//! The token manager against the in-memory fake IDM, under paused Tokio time.

use std::time::Duration;

use bodhi_auth::testing::{FakeIdm, Fault};
use bodhi_auth::{AccessToken, Credentials, ErrorKind, TokenManager, TokenManagerBuilder};
use tokio::time::{Instant, advance, sleep};

fn builder(idm: &FakeIdm) -> TokenManagerBuilder {
    TokenManager::builder(Credentials::new("user", "secret")).fake_idm(idm)
}

fn manager(idm: &FakeIdm) -> TokenManager {
    builder(idm).build().unwrap()
}

/// A runtime of its own under paused time, for tests that need more than one runtime or
/// none at all between steps.
fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

// 1. Password grant -------------------------------------------------------------------

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
    assert_eq!(token.expires_at(), sent + Duration::from_secs(108_000));
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

// 2. Single flight --------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn thousand_concurrent_callers_cause_one_login_and_share_its_token() {
    let idm = FakeIdm::new();
    idm.set_latency(Duration::from_millis(100));
    let manager = manager(&idm);
    let callers: Vec<_> = (0..1000)
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

#[tokio::test(start_paused = true)]
async fn thousand_concurrent_callers_share_one_error() {
    let idm = FakeIdm::new();
    idm.set_latency(Duration::from_millis(100));
    idm.set_persistent_fault(Some(Fault::body(
        401,
        r#"{"error":"invalid_grant","error_description":"Invalid user credentials"}"#,
    )));
    let manager = manager(&idm);
    let callers: Vec<_> = (0..1000)
        .map(|_| {
            let manager = manager.clone();
            tokio::spawn(async move { manager.access_token().await })
        })
        .collect();
    let mut errors = Vec::new();
    for caller in callers {
        errors.push(caller.await.unwrap().unwrap_err());
    }
    assert_eq!(idm.token_requests(), 1);
    assert!(errors.iter().all(|e| e.same_as(&errors[0])));
    assert_eq!(errors[0].kind(), ErrorKind::InvalidCredentials);
}

// 3. Two instants per token -----------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn refresh_due_serves_the_current_token_while_one_refresh_runs() {
    let idm = FakeIdm::new();
    idm.set_access_ttl(Duration::from_secs(100));
    idm.set_latency(Duration::from_secs(1));
    let manager = manager(&idm);
    let first = manager.access_token().await.unwrap(); // sent at t=0, answered at t=1
    assert_eq!(idm.token_requests(), 1);

    // Refresh-due is sent_at + 100 s - 30 s = t=70.
    advance(Duration::from_secs(68)).await; // t=69
    assert!(manager.access_token().await.unwrap().same_token(&first));
    assert_eq!(idm.token_requests(), 1);

    advance(Duration::from_secs(2)).await; // t=71: due, not expired
    let before = Instant::now();
    for _ in 0..50 {
        let token = manager.access_token().await.unwrap();
        assert!(
            token.same_token(&first),
            "callers must not wait for the refresh"
        );
    }
    assert_eq!(Instant::now(), before, "no caller waited");
    sleep(Duration::from_secs(2)).await; // the background refresh answers
    assert_eq!(idm.token_requests(), 2);
    assert_eq!(idm.refresh_grants(), 1);
    let second = manager.cached().expect("refreshed token cached");
    assert!(!second.same_token(&first));
}

#[tokio::test(start_paused = true)]
async fn after_expiry_callers_wait_for_the_flight() {
    let idm = FakeIdm::new();
    idm.set_access_ttl(Duration::from_secs(100));
    let manager = manager(&idm);
    let first = manager.access_token().await.unwrap();
    idm.set_latency(Duration::from_secs(1));
    advance(Duration::from_secs(101)).await;
    assert!(manager.cached().is_none());
    let before = Instant::now();
    let second = manager.access_token().await.unwrap();
    assert!(!second.same_token(&first));
    assert!(
        Instant::now() - before >= Duration::from_secs(1),
        "waited for the flight"
    );
    assert_eq!(idm.token_requests(), 2);
}

#[tokio::test(start_paused = true)]
async fn margin_never_exceeds_half_a_short_tokens_lifetime() {
    let idm = FakeIdm::new();
    idm.set_access_ttl(Duration::from_secs(10));
    let manager = manager(&idm); // default margin 30 s > 10 s lifetime
    let first = manager.access_token().await.unwrap();
    advance(Duration::from_millis(4900)).await;
    assert!(manager.access_token().await.unwrap().same_token(&first));
    assert_eq!(idm.token_requests(), 1, "a 10 s token is used for 5 s");
    advance(Duration::from_millis(200)).await; // t=5.1: due
    assert!(manager.access_token().await.unwrap().same_token(&first));
    manager.settled().await;
    assert_eq!(idm.token_requests(), 2);
}

#[tokio::test(start_paused = true)]
async fn lifetime_is_measured_from_when_the_request_was_sent() {
    let idm = FakeIdm::new();
    idm.set_access_ttl(Duration::from_secs(100));
    idm.set_latency(Duration::from_secs(5));
    let manager = manager(&idm);
    let sent = Instant::now();
    let token = manager.access_token().await.unwrap();
    assert_eq!(token.expires_at(), sent + Duration::from_secs(100));
}

// 4. Refresh grant, then fall back -----------------------------------------------------

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

// 5. Precise invalidation ---------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn many_invalidations_of_one_token_cause_one_new_login() {
    let idm = FakeIdm::new();
    let manager = manager(&idm);
    let rejected = manager.access_token().await.unwrap();
    let invalidators: Vec<_> = (0..500)
        .map(|_| {
            let manager = manager.clone();
            let rejected = rejected.clone();
            tokio::spawn(async move { manager.invalidate(&rejected) })
        })
        .collect();
    let mut dropped = 0;
    for task in invalidators {
        dropped += usize::from(task.await.unwrap());
    }
    assert_eq!(dropped, 1, "only the first invalidation drops the token");
    let fresh = manager.access_token().await.unwrap();
    assert!(!fresh.same_token(&rejected));
    assert_eq!(idm.token_requests(), 2);
}

#[tokio::test(start_paused = true)]
async fn invalidating_an_older_token_keeps_the_current_one() {
    let idm = FakeIdm::new();
    let manager = builder(&idm)
        .min_relogin_interval(Duration::ZERO)
        .build()
        .unwrap();
    let old = manager.access_token().await.unwrap();
    assert!(manager.invalidate(&old));
    let current = manager.access_token().await.unwrap();
    assert!(!manager.invalidate(&old), "a late 401 for an old token");
    assert!(manager.cached().unwrap().same_token(&current));
    assert_eq!(idm.token_requests(), 2);
}

#[tokio::test(start_paused = true)]
async fn invalidation_during_a_background_refresh_joins_that_refresh() {
    let idm = FakeIdm::new();
    idm.set_access_ttl(Duration::from_secs(100));
    let manager = manager(&idm);
    let first = manager.access_token().await.unwrap();
    idm.set_latency(Duration::from_secs(1));
    advance(Duration::from_secs(71)).await;
    manager.access_token().await.unwrap(); // starts the background refresh
    assert!(manager.invalidate(&first));
    let fresh = manager.access_token().await.unwrap();
    assert!(!fresh.same_token(&first));
    assert_eq!(
        idm.token_requests(),
        2,
        "the 401 joined the refresh already in flight"
    );
}

#[tokio::test(start_paused = true)]
async fn repeated_401_relogins_are_throttled() {
    let idm = FakeIdm::new();
    let manager = builder(&idm)
        .min_relogin_interval(Duration::from_secs(5))
        .build()
        .unwrap();
    let a = manager.access_token().await.unwrap();
    assert!(
        manager.invalidate(&a),
        "the first 401-driven re-login is immediate"
    );
    let b = manager.access_token().await.unwrap();
    assert!(!manager.invalidate(&b), "a second within 5 s is throttled");
    assert!(manager.access_token().await.unwrap().same_token(&b));
    advance(Duration::from_secs(5)).await;
    assert!(manager.invalidate(&b));
    manager.access_token().await.unwrap();
    assert_eq!(idm.token_requests(), 3);
}

// 6. Cancellation safety -----------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn aborting_the_caller_that_started_a_login_strands_no_waiter() {
    let idm = FakeIdm::new();
    idm.set_latency(Duration::from_secs(1));
    let manager = manager(&idm);
    let starter = {
        let manager = manager.clone();
        tokio::spawn(async move { manager.access_token().await })
    };
    sleep(Duration::from_millis(10)).await;
    assert_eq!(idm.token_requests(), 1);
    let waiters: Vec<_> = (0..10)
        .map(|_| {
            let manager = manager.clone();
            tokio::spawn(async move { manager.access_token().await })
        })
        .collect();
    sleep(Duration::from_millis(10)).await;
    starter.abort();
    assert!(starter.await.unwrap_err().is_cancelled());
    let mut tokens: Vec<AccessToken> = Vec::new();
    for waiter in waiters {
        tokens.push(waiter.await.unwrap().unwrap());
    }
    assert!(tokens.iter().all(|t| t.same_token(&tokens[0])));
    assert_eq!(idm.token_requests(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_login_whose_only_caller_was_aborted_still_lands_in_the_cache() {
    let idm = FakeIdm::new();
    idm.set_latency(Duration::from_secs(1));
    let manager = manager(&idm);
    let caller = {
        let manager = manager.clone();
        tokio::spawn(async move { manager.access_token().await })
    };
    sleep(Duration::from_millis(10)).await;
    caller.abort();
    sleep(Duration::from_secs(2)).await;
    let cached = manager
        .cached()
        .expect("the abandoned login still completed");
    assert!(manager.access_token().await.unwrap().same_token(&cached));
    assert_eq!(idm.token_requests(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_access_token_future_cancels_nothing() {
    let idm = FakeIdm::new();
    idm.set_latency(Duration::from_secs(1));
    let manager = manager(&idm);
    let timed_out = tokio::time::timeout(Duration::from_millis(10), manager.access_token()).await;
    assert!(timed_out.is_err());
    let token = manager.access_token().await.unwrap();
    assert_eq!(idm.token_requests(), 1);
    assert_eq!(idm.validate(token.secret()).as_deref(), Some("user"));
}

// 7. Errors, not panics --------------------------------------------------------------------

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
    assert!(token.expires_at() > Instant::now() + Duration::from_secs(365 * 24 * 3600));
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

#[tokio::test(start_paused = true)]
async fn replacing_the_credentials_ends_the_cooldown() {
    let idm = FakeIdm::new();
    let manager = TokenManager::builder(Credentials::new("user", "old-password"))
        .fake_idm(&idm)
        .build()
        .unwrap();
    let first = manager.access_token().await.unwrap_err();
    let second = manager.access_token().await.unwrap_err();
    assert!(second.same_as(&first), "served from the cooldown");
    assert_eq!(idm.token_requests(), 1);
    manager.set_credentials(Credentials::new("user", "secret"));
    manager.access_token().await.unwrap();
    assert_eq!(idm.token_requests(), 2);
}

#[tokio::test(start_paused = true)]
async fn setting_the_same_wrong_password_again_keeps_the_cooldown() {
    // A vault re-delivering unchanged values every second must not turn the 60 s
    // wrong-password cooldown into a login per second.
    let idm = FakeIdm::new();
    let manager = TokenManager::builder(Credentials::new("user", "wrong"))
        .fake_idm(&idm)
        .build()
        .unwrap();
    let refused = manager.access_token().await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::InvalidCredentials);
    let mut errors = Vec::new();
    for _ in 0..59 {
        sleep(Duration::from_secs(1)).await;
        manager.set_credentials(Credentials::new("user", "wrong"));
        errors.push(manager.access_token().await.unwrap_err());
    }
    assert_eq!(idm.password_grants(), 1, "failed logins in 60 s");
    assert!(
        errors.iter().all(|e| e.same_as(&refused)),
        "served from the cooldown"
    );
}

#[tokio::test(start_paused = true)]
async fn setting_the_same_credentials_again_keeps_the_login_in_flight() {
    let idm = FakeIdm::new();
    idm.set_latency(Duration::from_secs(1));
    let manager = manager(&idm);
    let login = {
        let manager = manager.clone();
        tokio::spawn(async move { manager.access_token().await })
    };
    idm.wait_for_requests(1).await; // the login is in flight
    manager.set_credentials(Credentials::new("user", "secret"));
    let token = manager.access_token().await.unwrap();
    assert!(login.await.unwrap().unwrap().same_token(&token));
    assert_eq!(idm.password_grants(), 1);
}

// 8. HTTPS only --------------------------------------------------------------------------

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

// Logout --------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn logout_ends_the_session_and_clears_the_cache() {
    let idm = FakeIdm::new();
    let manager = manager(&idm);
    let token = manager.access_token().await.unwrap();
    assert_eq!(idm.active_sessions(), 1);
    manager.logout().await.unwrap();
    assert_eq!(idm.logouts(), 1);
    assert_eq!(idm.active_sessions(), 0);
    assert!(manager.cached().is_none());
    assert_eq!(idm.validate(token.secret()), None);
    let logout = idm.requests().pop().unwrap();
    assert_eq!(logout.path, FakeIdm::LOGOUT_PATH);
    assert_eq!(
        logout.field("client_id"),
        Some("urn:mace:oidc:hotschedules.com")
    );
    assert!(logout.field("refresh_token").is_some());
    manager.access_token().await.unwrap();
    assert_eq!(idm.password_grants(), 2);
}

#[test]
fn logout_outside_a_runtime_is_a_config_error_and_keeps_the_session() {
    use futures_util::FutureExt;

    let runtime = paused_runtime;
    let idm = FakeIdm::new();
    let manager = manager(&idm);
    runtime().block_on(manager.access_token()).unwrap();

    let outside = manager
        .logout()
        .now_or_never()
        .expect("answers at once without a runtime")
        .unwrap_err();
    let no_runtime = builder(&idm)
        .build()
        .unwrap()
        .access_token()
        .now_or_never()
        .unwrap()
        .unwrap_err();
    assert_eq!(outside.kind(), ErrorKind::Config);
    assert_eq!(outside.to_string(), no_runtime.to_string());
    assert!(manager.cached().is_some(), "nothing discarded");

    // The refresh token was kept: a logout inside a runtime still ends the session.
    runtime().block_on(manager.logout()).unwrap();
    assert_eq!((idm.logouts(), idm.active_sessions()), (1, 0));
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

#[tokio::test(start_paused = true)]
async fn logout_during_a_login_ends_the_session_that_login_opens() {
    let idm = FakeIdm::new();
    idm.set_latency(Duration::from_secs(1));
    let manager = manager(&idm);
    let login = {
        let manager = manager.clone();
        tokio::spawn(async move { manager.access_token().await })
    };
    idm.wait_for_requests(1).await; // the login is in flight
    assert_eq!(idm.password_grants(), 1);
    manager.logout().await.unwrap();
    assert_eq!(idm.logouts(), 1);
    assert_eq!(idm.active_sessions(), 0);
    assert!(manager.cached().is_none());
    // The caller that started the login still got its (now ended) token.
    login.await.unwrap().unwrap();
    assert_eq!((idm.logouts(), idm.active_sessions()), (1, 0));
}

// Found in review ---------------------------------------------------------------------

#[test]
fn a_refresh_whose_runtime_died_before_it_ran_does_not_jam_the_manager() {
    let paused = paused_runtime;
    let idm = FakeIdm::new();
    idm.set_access_ttl(Duration::from_secs(100));
    let manager = manager(&idm);
    let first = paused().block_on(async {
        let first = manager.access_token().await.unwrap();
        advance(Duration::from_secs(71)).await;
        // Starts the background refresh on this runtime, which is dropped before the
        // refresh task is ever polled.
        assert!(manager.access_token().await.unwrap().same_token(&first));
        first
    });
    paused().block_on(async {
        advance(Duration::from_secs(200)).await; // the old token has expired
        let fresh = manager.access_token().await.unwrap();
        assert!(!fresh.same_token(&first));
    });
}

#[tokio::test(start_paused = true)]
async fn a_new_password_detaches_a_login_still_using_the_old_one() {
    let idm = FakeIdm::new();
    idm.set_latency(Duration::from_secs(1));
    let manager = TokenManager::builder(Credentials::new("user", "old-password"))
        .fake_idm(&idm)
        .build()
        .unwrap();
    let old_login = {
        let manager = manager.clone();
        tokio::spawn(async move { manager.access_token().await })
    };
    idm.wait_for_requests(1).await; // the login is in flight
    manager.set_credentials(Credentials::new("user", "secret"));
    let refused = old_login.await.unwrap().unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::InvalidCredentials);
    // The refusal belonged to the old password: no cooldown for the new one.
    manager.access_token().await.unwrap();
    assert_eq!(idm.password_grants(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_slow_idm_and_short_tokens_do_not_make_refreshes_back_to_back() {
    let idm = FakeIdm::new();
    idm.set_access_ttl(Duration::from_secs(2));
    idm.set_latency(Duration::from_millis(1200));
    let manager = manager(&idm);
    let start = Instant::now();
    while Instant::now() - start < Duration::from_secs(10) {
        manager.access_token().await.unwrap();
        sleep(Duration::from_millis(100)).await;
    }
    let at: Vec<Duration> = idm.requests().iter().map(|r| r.at - start).collect();
    for pair in at.windows(2) {
        // Each answer takes 1.2 s; the next refresh waits at least half of what was
        // left of the new token's life (0.4 s) instead of starting on arrival.
        assert!(pair[1] - pair[0] >= Duration::from_millis(1500), "{at:?}");
    }
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

// The fake IDM itself -------------------------------------------------------------------

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
