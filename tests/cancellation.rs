//! A flight belongs to no caller: cancelled callers cancel nothing, strand no one and jam nothing.
//!
//! The token manager against the in-memory fake IDM, under paused Tokio time.

use std::time::Duration;

use bodhi_auth::AccessToken;
use bodhi_auth::testing::FakeIdm;
use tokio::time::{advance, sleep};

mod support;
use support::{manager, paused_runtime, spawn_caller};

#[tokio::test(start_paused = true)]
async fn aborting_the_caller_that_started_a_login_strands_no_waiter() {
    let idm = FakeIdm::new();
    idm.set_latency(Duration::from_secs(1));
    let manager = manager(&idm);
    let starter = spawn_caller(&manager);
    sleep(Duration::from_millis(10)).await;
    assert_eq!(idm.token_requests(), 1);
    let waiters: Vec<_> = (0..10).map(|_| spawn_caller(&manager)).collect();
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
    let caller = spawn_caller(&manager);
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
