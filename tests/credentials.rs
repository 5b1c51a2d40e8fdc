//! Replacing the credentials: new values end a cooldown and detach a login using the old ones; the same values change nothing.
//!
//! The token manager against the in-memory fake IDM, under paused Tokio time.

use std::time::Duration;

use bodhi_auth::testing::FakeIdm;
use bodhi_auth::{Credentials, ErrorKind, TokenManager};
use tokio::time::sleep;

mod support;
use support::{manager, spawn_caller};

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
    let login = spawn_caller(&manager);
    idm.wait_for_requests(1).await; // the login is in flight
    manager.set_credentials(Credentials::new("user", "secret"));
    let token = manager.access_token().await.unwrap();
    assert!(login.await.unwrap().unwrap().same_token(&token));
    assert_eq!(idm.password_grants(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_new_password_detaches_a_login_still_using_the_old_one() {
    let idm = FakeIdm::new();
    idm.set_latency(Duration::from_secs(1));
    let manager = TokenManager::builder(Credentials::new("user", "old-password"))
        .fake_idm(&idm)
        .build()
        .unwrap();
    let old_login = spawn_caller(&manager);
    idm.wait_for_requests(1).await; // the login is in flight
    manager.set_credentials(Credentials::new("user", "secret"));
    let refused = old_login.await.unwrap().unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::InvalidCredentials);
    // The refusal belonged to the old password: no cooldown for the new one.
    manager.access_token().await.unwrap();
    assert_eq!(idm.password_grants(), 2);
}
