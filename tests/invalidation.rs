//! A 401 drops exactly the rejected token, and 401-driven re-logins are throttled.
//!
//! The token manager against the in-memory fake IDM, under paused Tokio time.

use std::time::Duration;

use bodhi_auth::testing::FakeIdm;
use tokio::time::advance;

mod support;
use support::{builder, manager};

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
