//! The refresh grant at refresh-due, with the vendor's `Authorization: Bearer <refresh
//! token>` header, seen on the wire and accepted by Keycloak.

use std::sync::Arc;

use tokio::time::Instant;

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
    // The default 30 s margin is capped at half of the 6 s lifetime: due at ~3 s.
    let manager = manager_for(&keycloak, &user)
        .http_client(proxy.client()?)
        .build()?;
    let first = manager.access_token().await?;

    // Callers keep the current token from refresh-due until the background refresh
    // lands; poll like a busy caller until a different token comes back.
    let refreshed = wait::until("the background refresh", || {
        let (manager, first) = (manager.clone(), first.clone());
        async move {
            let token = manager.access_token().await?;
            Ok((!token.same_token(&first)).then_some(token))
        }
    })
    .await?;
    assert!(
        Instant::now() < first.expires_at(),
        "the refresh landed before the first token expired (a background refresh)"
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
