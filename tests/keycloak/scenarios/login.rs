//! The password grant as the vendor document describes it, and the identity the crate
//! reads from Keycloak's id token.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{manager_for, userinfo};
use crate::admin::{Admin, Event};
use crate::harness::Outcome;
use crate::realm::{self, Endpoints};

pub async fn password_login_reads_user_and_namespace_from_the_id_token(
    keycloak: Arc<Endpoints>,
) -> Outcome {
    let user = realm::user("kc-login");
    let admin = Admin::new(&keycloak.base_url);
    let manager = manager_for(&keycloak, &user).build()?;

    let sent = Instant::now();
    let token = manager.access_token().await?;
    let identity = token.identity()?;
    assert_eq!(identity.username(), user.name);
    // The hardcoded-claim mapper writes `otherClaims.bodhiapi`, nested as in the
    // vendor's sample id token.
    assert_eq!(identity.namespace(), Some(realm::NAMESPACE));
    let scope = token.scope().unwrap_or_default();
    assert!(scope.split(' ').any(|s| s == "openid"), "scope {scope:?}");
    // expires_in is the realm's access-token lifespan (a second less when Keycloak's
    // clock ticks while it answers), counted by the crate from when it sent the login.
    let lifetime = Instant::now() + token.expires_in() - sent;
    let lifespan = realm::access_token_lifespan();
    let second = Duration::from_secs(1);
    assert!(
        lifetime >= lifespan - second && lifetime <= lifespan + second,
        "lifetime {lifetime:?}, realm lifespan {lifespan:?}"
    );

    let info = userinfo(&keycloak, &token).await?;
    assert_eq!(info.status, 200, "userinfo: {}", info.challenge);
    assert_eq!(info.body["preferred_username"], user.name);

    let again = manager.access_token().await?;
    assert!(
        again.same_token(&token),
        "the second call is served from the cache"
    );
    assert_eq!(
        admin
            .settled_event_count(Event::Login, Some(&user), 1)
            .await?,
        1
    );
    Ok(())
}
