//! The refresh token dies with the idle session: the crate knows it from
//! `refresh_expires_in` and logs in with the password grant without trying it.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::manager_for;
use crate::admin::{Admin, Event};
use crate::harness::Outcome;
use crate::proxy::RecordingProxy;
use crate::realm::{self, Endpoints};
use crate::wait;

pub async fn dead_refresh_token_means_password_login_without_refresh_attempt(
    keycloak: Arc<Endpoints>,
) -> Outcome {
    let user = realm::user("kc-idle");
    let admin = Admin::new(&keycloak.base_url);
    let refresh_errors = admin.event_count(Event::RefreshTokenError, None).await?;
    let proxy = RecordingProxy::start().await?;
    let manager = manager_for(&keycloak, &user)
        .http_client(proxy.client()?)
        .build()?;
    let sent = Instant::now();
    let first = manager.access_token().await?;

    // No call in between, so no refresh keeps the session alive.
    let dead = sent + realm::session_idle_timeout() + Duration::from_secs(1);
    wait::sleep_until(dead, "the end of the idle session").await?;
    let second = manager.access_token().await?;
    assert!(!second.same_token(&first));
    assert_eq!(second.identity()?.username(), user.name);

    assert_eq!(
        admin
            .settled_event_count(Event::Login, Some(&user), 2)
            .await?,
        2
    );
    assert_eq!(
        admin.event_count(Event::RefreshToken, Some(&user)).await?,
        0
    );
    assert_eq!(
        admin
            .event_count(Event::RefreshTokenError, None)
            .await?
            .saturating_sub(refresh_errors),
        0,
        "no refresh grant was tried with the dead refresh token"
    );
    Ok(())
}
