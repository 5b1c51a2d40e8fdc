//! Two instants per token: from refresh-due callers keep the token while one refresh runs; after expiry they wait.
//!
//! The token manager against the in-memory fake IDM, under paused Tokio time.

use std::time::Duration;

use bodhi_auth::testing::FakeIdm;
use tokio::time::{Instant, advance, sleep};

mod support;
use support::manager;

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
    assert_eq!(
        Instant::now() + token.expires_in(),
        sent + Duration::from_secs(100)
    );
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

#[tokio::test]
async fn time_paused_after_the_first_token_still_brings_the_refresh() {
    // The runtime starts on the real clock; the token is cached before time is paused.
    // The cached path must follow the paused clock from then on all the same.
    let idm = FakeIdm::new();
    idm.set_access_ttl(Duration::from_secs(100));
    let manager = manager(&idm);
    let first = manager.access_token().await.unwrap();
    tokio::time::pause();
    assert!(manager.cached().unwrap().same_token(&first));

    advance(Duration::from_secs(3600)).await; // long past expiry
    assert!(
        manager.cached().is_none(),
        "an expired token is not served from the cache"
    );
    let second = manager.access_token().await.unwrap();
    assert!(!second.same_token(&first));
    assert_eq!(idm.token_requests(), 2);
}
