//! `TokenManager::logout` ends the Keycloak session, as the admin API sees it.

use std::sync::Arc;

use super::{manager_for, userinfo};
use crate::admin::{Admin, Event};
use crate::harness::Outcome;
use crate::realm::{self, Endpoints};
use crate::wait;

pub async fn logout_ends_the_keycloak_session(keycloak: Arc<Endpoints>) -> Outcome {
    let user = realm::user("kc-logout");
    let admin = Admin::new(&keycloak.base_url);
    let manager = manager_for(&keycloak, &user).build()?;
    let token = manager.access_token().await?;
    assert_eq!(
        admin.session_count(&user).await?,
        1,
        "sessions after the login"
    );

    manager.logout().await?;
    assert!(manager.cached().is_none(), "the cache is cleared");
    wait::until("the session to end", || async {
        Ok((admin.session_count(&user).await? == 0).then_some(()))
    })
    .await?;
    assert_eq!(
        admin
            .settled_event_count(Event::Logout, Some(&user), 1)
            .await?,
        1
    );
    let info = userinfo(&keycloak, &token).await?;
    assert_eq!(info.status, 401, "userinfo with the logged-out token");

    // Nothing left to end: no request, no error.
    manager.logout().await?;
    assert_eq!(admin.event_count(Event::Logout, Some(&user)).await?, 1);
    Ok(())
}
