//! `logout()` ends the Keycloak session the manager opened, whatever is in flight.
//!
//! The token manager against the in-memory fake IDM, under paused Tokio time.

use std::time::Duration;

use bodhi_auth::ErrorKind;
use bodhi_auth::testing::FakeIdm;

mod support;
use support::{builder, manager, paused_runtime, spawn_caller};

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

#[tokio::test(start_paused = true)]
async fn logout_during_a_login_ends_the_session_that_login_opens() {
    let idm = FakeIdm::new();
    idm.set_latency(Duration::from_secs(1));
    let manager = manager(&idm);
    let login = spawn_caller(&manager);
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
