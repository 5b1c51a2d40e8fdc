//! Logins Keycloak refuses for what they are, not for the password: a disabled user,
//! and a client that may not use the password grant.

use std::sync::Arc;

use bodhi_auth::ErrorKind;

use super::manager_for;
use crate::admin::{Admin, Event};
use crate::harness::Outcome;
use crate::realm::{self, Endpoints};

pub async fn disabled_user_is_invalid_credentials(keycloak: Arc<Endpoints>) -> Outcome {
    let user = realm::user("kc-disabled");
    let admin = Admin::new(&keycloak.base_url);
    let manager = manager_for(&keycloak, &user).build()?;
    let error = manager
        .access_token()
        .await
        .err()
        .ok_or("a disabled user got a token")?;
    eprintln!("    disabled user: {error}");
    // Keycloak answers 400 invalid_grant "Account disabled": permanent until someone
    // changes the account, which the crate treats as refused credentials.
    assert_eq!(error.kind(), ErrorKind::InvalidCredentials, "{error:?}");
    assert_eq!(error.status().map(|s| s.as_u16()), Some(400));
    assert_eq!(error.idm_error(), Some("invalid_grant"));
    assert_eq!(error.idm_error_description(), Some("Account disabled"));
    assert_eq!(
        admin
            .settled_event_count(Event::LoginError, Some(&user), 1)
            .await?,
        1
    );
    Ok(())
}

pub async fn client_without_direct_grants_is_a_config_error(keycloak: Arc<Endpoints>) -> Outcome {
    let user = realm::user("kc-no-direct-grants");
    let cases = [
        (
            realm::NO_DIRECT_GRANTS_CLIENT,
            400,
            "unauthorized_client",
            "Client not allowed for direct access grants",
        ),
        (
            "no-such-client",
            401,
            "invalid_client",
            "Invalid client or Invalid client credentials",
        ),
    ];
    for (client_id, status, code, description) in cases {
        let manager = manager_for(&keycloak, &user).client_id(client_id).build()?;
        let error = manager
            .access_token()
            .await
            .err()
            .ok_or_else(|| format!("client {client_id:?} got a token"))?;
        eprintln!("    client {client_id}: {error}");
        assert_eq!(error.kind(), ErrorKind::Config, "{client_id}: {error:?}");
        assert_eq!(
            error.status().map(|s| s.as_u16()),
            Some(status),
            "{client_id}"
        );
        assert_eq!(error.idm_error(), Some(code), "{client_id}");
        assert_eq!(
            error.idm_error_description(),
            Some(description),
            "{client_id}"
        );
    }
    Ok(())
}
