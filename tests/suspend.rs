//! A machine that sleeps past a token's expiry. The cached path reads only the
//! monotonic clock, which may not count the sleep: the first request after waking can
//! still carry the expired token, and the 401 path recovers with one resend. Anything
//! read from a store is judged by the wall clock, which does count it.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bodhi_auth::store::MemoryStore;
use bodhi_auth::testing::{FakeApi, FakeIdm};
use bodhi_auth::{IdmAuthLayer, TokenScope};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use tower::{Layer, ServiceExt};

fn request() -> Request<Full<Bytes>> {
    Request::get("https://api.bodhi.example/stores")
        .body(Full::new(Bytes::from_static(b"payload")))
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_token_that_expired_during_sleep_costs_one_resend() {
    let idm = FakeIdm::new();
    let manager = support::manager(&idm);
    let api = FakeApi::new(&idm);
    let scope = TokenScope::origins(["https://api.bodhi.example"]).unwrap();
    let service = IdmAuthLayer::with_manager(manager.clone(), scope).layer(api.clone());
    let before = manager.access_token().await.unwrap();

    // The IDM's clock (and so the API's) counted the sleep; ours did not move.
    idm.revoke_access_token(before.secret());
    assert!(manager.cached().unwrap().same_token(&before));

    let response = service.oneshot(request()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(api.unauthorized(), 1, "one request with the expired token");
    assert_eq!(api.requests(), 2, "and one resend");
    assert_eq!(idm.token_requests(), 2);
    assert!(!manager.cached().unwrap().same_token(&before));
}

#[tokio::test(start_paused = true)]
async fn a_stored_token_is_judged_by_the_wall_clock() {
    let idm = FakeIdm::new();
    idm.set_access_ttl(Duration::from_secs(600));
    let store = Arc::new(MemoryStore::new());
    let first = support::builder(&idm).store(store.clone()).build().unwrap();
    let token = first.access_token().await.unwrap();
    assert!(token.expires_at() > std::time::SystemTime::now());
    drop(first);

    // Ten minutes pass while no process runs; the next one does not adopt it.
    tokio::time::sleep(Duration::from_secs(600)).await;
    let next = support::builder(&idm).store(store).build().unwrap();
    assert!(!next.access_token().await.unwrap().same_token(&token));
    assert_eq!(idm.token_requests(), 2);
}
