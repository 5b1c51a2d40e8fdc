//! A refused password: Keycloak's own error reaches the caller, and the cooldown keeps
//! further calls from reaching Keycloak (no burst of failed logins to lock an account).

use std::sync::Arc;
use std::time::Duration;

use bodhi_auth::{Credentials, ErrorKind, TokenManager};
use futures_util::future::join_all;
use tokio::time::Instant;

use crate::admin::{Admin, Event};
use crate::harness::Outcome;
use crate::realm::{self, Endpoints};

pub async fn wrong_password_reaches_keycloak_once_then_cools_down(
    keycloak: Arc<Endpoints>,
) -> Outcome {
    let user = realm::user("kc-wrong-password");
    let admin = Admin::new(&keycloak.base_url);
    // The default cooldown after refused credentials (60 s) outlasts this scenario.
    let manager = TokenManager::builder(Credentials::new(user.name, "not-the-password"))
        .token_url(keycloak.token_url())
        .build()?;

    let error = manager
        .access_token()
        .await
        .err()
        .ok_or("Keycloak accepted a wrong password")?;
    eprintln!("    wrong password: {error}");
    assert_eq!(error.kind(), ErrorKind::InvalidCredentials, "{error:?}");
    assert_eq!(error.idm_error(), Some("invalid_grant"));
    assert_eq!(
        error.idm_error_description(),
        Some("Invalid user credentials")
    );

    let started = Instant::now();
    let burst = join_all((0..50).map(|_| manager.access_token())).await;
    for _ in 0..20 {
        burst_check(manager.access_token().await)?;
    }
    for result in burst {
        burst_check(result)?;
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "70 calls during the cooldown took {:?}: they waited on something",
        started.elapsed()
    );
    assert_eq!(
        admin
            .settled_event_count(Event::LoginError, Some(&user), 1)
            .await?,
        1,
        "failed logins that reached Keycloak"
    );
    assert_eq!(admin.event_count(Event::Login, Some(&user)).await?, 0);
    Ok(())
}

fn burst_check(result: Result<bodhi_auth::AccessToken, bodhi_auth::Error>) -> Outcome {
    let error = result.err().ok_or("a token during the cooldown")?;
    assert_eq!(error.kind(), ErrorKind::InvalidCredentials, "{error:?}");
    Ok(())
}
