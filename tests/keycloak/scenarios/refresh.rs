//! The refresh grant at refresh-due, with the vendor's `Authorization: Bearer <refresh
//! token>` header, seen on the wire and accepted by Keycloak.

use std::sync::Arc;

use super::{manager_for, userinfo};
use crate::admin::{Admin, Event};
use crate::harness::Outcome;
use crate::proxy::RecordingProxy;
use crate::realm::{self, Endpoints};
use crate::wait;

pub async fn refresh_grant_with_the_bearer_header_runs_at_refresh_due(
    keycloak: Arc<Endpoints>,
) -> Outcome {
    let user = realm::user("kc-refresh");
    let admin = Admin::new(&keycloak.base_url);
    let proxy = RecordingProxy::start().await?;
    // The default 30 s margin is capped at half of the 10 s lifetime: due at ~5 s.
    let manager = manager_for(&keycloak, &user)
        .http_client(proxy.client()?)
        .build()?;
    let first = manager.access_token().await?;

    // Refresh-due comes at most half the lifetime after the login was sent (the 30 s
    // margin is capped at half of 10 s); wake up halfway between it and expiry, 2.5 s
    // from each. The call there is served the current token at once, and the refresh
    // runs in the background.
    let due = tokio::time::Instant::now() + first.expires_in() - realm::access_token_lifespan() / 4;
    wait::sleep_until(due, "refresh-due").await?;
    let at_due = manager.access_token().await?;
    assert!(
        at_due.same_token(&first),
        "served the current token at refresh-due, without waiting"
    );
    manager.settled().await;
    let refreshed = manager
        .cached()
        .ok_or("no token cached after the background refresh")?;
    assert!(
        !refreshed.same_token(&first),
        "the background refresh landed"
    );
    assert_eq!(refreshed.identity()?.username(), user.name);
    let info = userinfo(&keycloak, &refreshed).await?;
    assert_eq!(info.status, 200, "userinfo: {}", info.challenge);

    let exchanges = proxy.exchanges();
    let grants: Vec<(&str, u16)> = exchanges
        .iter()
        .map(|e| (e.grant_type.as_str(), e.status))
        .collect();
    assert_eq!(grants, [("password", 200), ("refresh_token", 200)]);
    assert!(
        !exchanges[0].has_authorization,
        "no header on the password grant"
    );
    assert!(
        exchanges[1].bearer_is_the_refresh_token,
        "the refresh grant carried `Authorization: Bearer <refresh token>`"
    );
    // Keycloak counted it as a refresh of this user, not a new login.
    assert_eq!(
        admin
            .settled_event_count(Event::RefreshToken, Some(&user), 1)
            .await?,
        1
    );
    assert_eq!(admin.event_count(Event::Login, Some(&user)).await?, 1);
    Ok(())
}
