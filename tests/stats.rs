//! `TokenManager::stats()` after scripted scenarios: exact counter values, under paused
//! time against the in-memory fake IDM and API.

mod support;

use std::time::Duration;

use bodhi_auth::testing::{FakeApi, FakeIdm, Fault};
use bodhi_auth::{ErrorKind, IdmAuthLayer, Stats, TokenManager, TokenScope, TokenState};
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use tower::{Layer, ServiceExt};

fn request() -> Request<Full<Bytes>> {
    Request::get("https://api.bodhi.example/stores")
        .body(Full::new(Bytes::from_static(b"payload")))
        .unwrap()
}

async fn through_layer(manager: &TokenManager, api: &FakeApi) -> u16 {
    let scope = TokenScope::origins(["https://api.bodhi.example"]).unwrap();
    let service = IdmAuthLayer::with_manager(manager.clone(), scope).layer(api.clone());
    service.oneshot(request()).await.unwrap().status().as_u16()
}

#[tokio::test(start_paused = true)]
async fn a_new_manager_has_counted_nothing() {
    let stats = support::manager(&FakeIdm::new()).stats();
    assert_eq!(stats.state, TokenState::Empty);
    assert_eq!(
        (
            stats.logins,
            stats.refreshes,
            stats.rejections,
            stats.resends
        ),
        (0, 0, 0, 0)
    );
    assert_eq!(stats.idm_failures.total(), 0);
    assert_eq!((stats.expires_in, stats.refresh_due_in), (None, None));
}

#[tokio::test(start_paused = true)]
async fn cold_start_and_a_refresh_count_one_login_and_one_refresh() {
    let idm = FakeIdm::new();
    idm.set_access_ttl(Duration::from_secs(100));
    let manager = support::manager(&idm);
    support::concurrent_callers(&manager, 20).await;
    let stats = manager.stats();
    assert_eq!((stats.logins, stats.refreshes), (1, 0));
    assert_eq!(stats.state, TokenState::Valid);
    assert_eq!(stats.expires_in, Some(Duration::from_secs(100)));
    assert_eq!(stats.refresh_due_in, Some(Duration::from_secs(70)));
    assert!(stats.expires_at.is_some());

    tokio::time::advance(Duration::from_secs(71)).await;
    manager.access_token().await.unwrap();
    assert_eq!(manager.stats().state, TokenState::RefreshingWhileValid);
    manager.settled().await;
    let stats = manager.stats();
    assert_eq!((stats.logins, stats.refreshes), (1, 1));
    assert_eq!(stats.expires_in, Some(Duration::from_secs(100)));
}

#[tokio::test(start_paused = true)]
async fn a_401_with_a_resend_then_a_throttled_401() {
    let idm = FakeIdm::new();
    let api = FakeApi::new(&idm);
    let manager = support::manager(&idm);
    assert_eq!(through_layer(&manager, &api).await, 200);

    api.reject_next(1);
    assert_eq!(through_layer(&manager, &api).await, 200);
    let stats = manager.stats();
    assert_eq!(
        (stats.rejections, stats.throttled, stats.resends),
        (1, 0, 1)
    );
    assert_eq!(
        stats.logins, 1,
        "the rejection was answered by the refresh grant"
    );
    assert_eq!(stats.refreshes, 1);

    // Within the re-login interval: the 401 is counted, kept, and not resent.
    api.reject_next(1);
    assert_eq!(through_layer(&manager, &api).await, 401);
    let stats = manager.stats();
    assert_eq!(
        (stats.rejections, stats.throttled, stats.resends),
        (2, 1, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn an_idm_outage_counts_one_failure_per_flight_and_shows_the_cooldown() {
    let idm = FakeIdm::new();
    idm.set_persistent_fault(Some(Fault::status(503)));
    let manager = support::builder(&idm).max_attempts(2).build().unwrap();
    for _ in 0..5 {
        let error = manager.access_token().await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unavailable);
    }
    let stats: Stats = manager.stats();
    assert_eq!(
        stats.idm_failures.unavailable, 1,
        "one failed flight; then cooldown"
    );
    assert_eq!(stats.idm_failures.total(), 1);
    assert_eq!(stats.state, TokenState::CoolingDown);
    assert!(stats.cooldown_remaining.is_some_and(|d| d > Duration::ZERO));
    assert_eq!(idm.token_requests(), 2, "two attempts in the one flight");

    let wrong = TokenManager::builder(bodhi_auth::Credentials::new("user", "wrong"))
        .fake_idm(&idm)
        .build()
        .unwrap();
    idm.set_persistent_fault(None);
    wrong.access_token().await.unwrap_err();
    assert_eq!(wrong.stats().idm_failures.invalid_credentials, 1);
    assert_eq!(wrong.stats().logins, 0);
}
