//! `bodhi_auth::blocking::TokenManager` from plain sync code: no `#[tokio::test]`, the
//! tests are the sync program. A runtime appears only to serve the fake IDM over
//! loopback or to wait for one of its events, never to drive the manager.
//!
//! Real time, but no assertion depends on speed: tests wait for the IDM's requests
//! (`wait_for_requests`) and for flights to land (`settled`), and the bounds around
//! those waits only turn a hang into a failure with a message. The two tests that reach
//! refresh-due leave 4 s between refresh-due and expiry for the one call they make there.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bodhi_auth::blocking;
use bodhi_auth::store::MemoryStore;
use bodhi_auth::testing::{FakeIdm, Fault};
use bodhi_auth::{Credentials, ErrorKind, TokenManager, TokenManagerBuilder, TokenState};
use tokio::runtime::{Builder, Runtime};

mod support;

/// Only turns a hang into a failure.
const HANG: Duration = Duration::from_secs(30);
/// Refresh-due comes after half of it, expiry 10 s later: the one call made between
/// the two has 10 s to be made, which no machine that runs the suite at all misses
/// (real time: the manager's own runtime cannot be paused).
const SHORT_TTL: Duration = Duration::from_secs(20);
const HOUR: Duration = Duration::from_secs(3600);

/// A runtime of the test's own, to wait for the fake IDM's events (in memory) or to
/// serve it (on loopback). The manager never runs on it.
fn helper() -> Runtime {
    Builder::new_current_thread().enable_all().build().unwrap()
}

/// A runtime that serves fakes on its own worker thread while the test blocks.
fn server_runtime() -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

fn blocking_manager(builder: TokenManagerBuilder) -> blocking::TokenManager {
    blocking::TokenManager::from_builder(builder).unwrap()
}

/// Waits on `helper` for `event`, failing with `what` instead of hanging.
fn wait_for<T>(helper: &Runtime, what: &str, event: impl Future<Output = T>) -> T {
    helper
        .block_on(async { tokio::time::timeout(HANG, event).await })
        .unwrap_or_else(|_| panic!("waited {HANG:?} for {what}"))
}

fn grants(idm: &FakeIdm) -> Vec<String> {
    idm.requests()
        .iter()
        .map(|r| r.grant_type().unwrap_or("logout").to_owned())
        .collect()
}

#[test]
fn the_runtime_thread_refreshes_at_refresh_due_with_no_caller() {
    let idm = FakeIdm::new();
    idm.set_access_ttl(SHORT_TTL);
    let manager = blocking_manager(support::builder(&idm));
    let first = manager.access_token().unwrap();
    idm.set_access_ttl(HOUR); // the refreshed token: no second refresh in this test

    // Nobody calls the manager: the refresh goes out at refresh-due all the same.
    let helper = helper();
    wait_for(&helper, "the refresh at refresh-due", async {
        idm.wait_for_requests(2).await;
        manager.async_manager().settled().await;
    });
    assert_eq!(grants(&idm), ["password", "refresh_token"]);

    let token = manager.access_token().unwrap();
    assert!(!token.same_token(&first), "the refreshed token");
    assert_eq!(idm.validate(token.secret()).as_deref(), Some("user"));
    assert_eq!(idm.token_requests(), 2, "served from the cache");
}

#[test]
fn at_refresh_due_the_valid_token_is_served_without_waiting_for_the_refresh() {
    let idm = FakeIdm::new();
    idm.set_access_ttl(SHORT_TTL);
    let manager = blocking_manager(support::builder(&idm));
    // A token async code got through the shared cache: the runtime thread refreshes
    // only what its own callers got, so here the call at refresh-due is what starts
    // the refresh.
    let helper = helper();
    let first = helper
        .block_on(manager.async_manager().access_token())
        .unwrap();
    // The refresh never answers: a caller that waited for it would get, after the
    // request time-out, a token from the password grant instead of `first`.
    idm.push_faults([Fault::Hang]);
    idm.set_access_ttl(HOUR);

    std::thread::sleep(manager.stats().refresh_due_in.unwrap());
    assert!(
        manager.async_manager().cached().is_none(),
        "refresh-due: `cached()` sees no token, although it is valid"
    );
    let served = manager.access_token().unwrap();
    assert!(served.same_token(&first), "the still-valid token, at once");

    // The refresh it started runs on the manager's thread, with no caller driving it.
    wait_for(&helper, "the refresh started at refresh-due", async {
        idm.wait_for_requests(2).await
    });
    assert_eq!(grants(&idm), ["password", "refresh_token"]);
    // Dropping the manager abandons the hanging refresh instead of waiting for it.
    drop(manager);
}

#[test]
fn a_blocking_call_from_async_code_is_a_config_error_not_a_deadlock() {
    // The IDM is served by the very runtime whose thread the call would block, so a
    // blocking wait there could never be answered.
    let helper = helper();
    let idm = FakeIdm::new();
    let server = helper.block_on(idm.serve()).unwrap();
    let manager = blocking_manager(
        TokenManager::builder(Credentials::new("user", "secret")).token_url(server.token_url()),
    );

    let in_block_on = helper.block_on(async { manager.access_token() });
    let err = in_block_on.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("async_manager"), "{err}");
    let in_a_task = helper.block_on({
        let manager = manager.clone();
        async move { tokio::spawn(async move { manager.logout() }).await.unwrap() }
    });
    assert_eq!(in_a_task.unwrap_err().kind(), ErrorKind::Config);
    assert_eq!(idm.requests().len(), 0, "nothing was sent");

    // There, the async manager is the way; `spawn_blocking` may block.
    let token = helper
        .block_on(manager.async_manager().access_token())
        .unwrap();
    let from_spawn_blocking = helper.block_on({
        let manager = manager.clone();
        async move {
            tokio::task::spawn_blocking(move || manager.access_token())
                .await
                .unwrap()
        }
    });
    assert!(from_spawn_blocking.unwrap().same_token(&token));
    // Refused although the token is cached: the mistake shows on the first call.
    let cached = helper.block_on(async { manager.access_token() });
    assert_eq!(cached.unwrap_err().kind(), ErrorKind::Config);
    assert_eq!(idm.token_requests(), 1);
}

#[test]
fn stats_count_what_the_manager_did() {
    let idm = FakeIdm::new();
    let manager = blocking_manager(support::builder(&idm));
    assert_eq!(manager.stats().state, TokenState::Empty);

    let first = manager.access_token().unwrap();
    let stats = manager.stats();
    assert_eq!((stats.logins, stats.refreshes), (1, 0));
    assert_eq!(stats.state, TokenState::Valid);
    assert!(stats.expires_in.unwrap() > Duration::from_secs(29 * 3600));

    assert!(manager.invalidate(&first), "the API's 401 drops the token");
    let second = manager.access_token().unwrap();
    assert!(!second.same_token(&first));
    let stats = manager.stats();
    assert_eq!((stats.logins, stats.refreshes, stats.rejections), (1, 1, 1));
    assert_eq!(stats.idm_failures.total(), 0);
}

#[test]
fn logout_ends_the_keycloak_session_over_loopback() {
    let servers = server_runtime();
    let idm = FakeIdm::new();
    let server = servers.block_on(idm.serve()).unwrap();
    let manager = blocking_manager(
        TokenManager::builder(Credentials::new("user", "secret")).token_url(server.token_url()),
    );
    let token = manager.access_token().unwrap();
    assert_eq!(idm.validate(token.secret()).as_deref(), Some("user"));

    manager.logout().unwrap();
    assert_eq!(idm.logouts(), 1);
    assert_eq!(idm.active_sessions(), 0);
    assert_eq!(manager.stats().state, TokenState::Empty);

    // The next call logs in again.
    manager.access_token().unwrap();
    assert_eq!(grants(&idm), ["password", "logout", "password"]);
}

#[test]
fn dropping_the_last_clone_stops_the_runtime_thread() {
    let idm = FakeIdm::new();
    // Only the async manager holds the store: it is freed once every task of the
    // runtime thread that holds that manager is gone.
    let store = Arc::new(MemoryStore::new());
    let freed = Arc::downgrade(&store);
    let manager = blocking_manager(support::builder(&idm).store(store));
    let first = manager.access_token().unwrap();

    let clone = manager.clone();
    drop(manager);
    assert!(clone.invalidate(&first));
    let second = clone
        .access_token()
        .expect("a clone keeps the runtime thread running");
    assert!(!second.same_token(&first));
    assert!(freed.upgrade().is_some());

    drop(clone);
    assert!(
        freed.upgrade().is_none(),
        "the runtime thread has ended and dropped its tasks by the time drop returns"
    );
    assert_eq!(idm.logouts(), 0, "dropping never logs out");
}

#[test]
fn threads_share_one_login() {
    let idm = FakeIdm::new();
    idm.set_latency(Duration::from_millis(100)); // callers pile up on the one login
    let manager = blocking_manager(support::builder(&idm));
    let start = Arc::new(std::sync::Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (manager, start) = (manager.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                manager.access_token().unwrap()
            })
        })
        .collect();
    let tokens: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(tokens.iter().all(|t| t.same_token(&tokens[0])));
    assert_eq!(idm.token_requests(), 1);
}

#[test]
fn debug_shows_no_secret() {
    fn shareable<T: Send + Sync + Clone + std::fmt::Debug + 'static>() {}
    shareable::<blocking::TokenManager>();
    let idm = FakeIdm::new();
    let manager = blocking_manager(support::builder(&idm));
    let token = manager.access_token().unwrap();
    let debug = format!("{manager:?}");
    assert!(debug.contains("\"user\""), "{debug}");
    assert!(!debug.contains("secret"), "no password: {debug}");
    assert!(!debug.contains(token.secret()), "no token: {debug}");
}
