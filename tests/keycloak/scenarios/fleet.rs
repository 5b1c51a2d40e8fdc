//! A fleet sharing one session through Redis, against a realm whose refresh tokens are
//! single-use (`revokeRefreshToken`, reuse 0): presenting one twice would be refused
//! (`invalid_grant`) and end the session. Ten managers, each with its own Redis
//! connection, stand for ten processes; Keycloak's own event log is the judge.
//!
//! Renewals are caused on purpose (every manager reports its token rejected, as after a
//! fleet-wide 401), not by waiting for expiry; tokens live five minutes, so no manager
//! can find the new token already due for refresh, however slow the machine.

use std::sync::Arc;
use std::time::Duration;

use bodhi_auth::store::RedisStore;
use bodhi_auth::{Credentials, TokenManager};

use crate::admin::{Admin, Event};
use crate::harness::{BoxError, Outcome};
use crate::realm::{self, Endpoints, ROTATING_REALM, ROTATING_USER};
use crate::redis_server::{KEY, RedisServer};

const FLEET: usize = 10;
const RENEWALS: usize = 3;

pub async fn ten_processes_share_single_use_refresh_tokens_without_reuse(
    keycloak: Arc<Endpoints>,
) -> Outcome {
    let redis = RedisServer::start();
    let token_url = keycloak.rotating_token_url();
    let fleet = (0..FLEET)
        .map(|_| {
            let store = RedisStore::builder(&redis.url())
                .keys(KEY)
                .session_for(&token_url, bodhi_auth::DEFAULT_CLIENT_ID, ROTATING_USER)
                .build()?;
            Ok(
                TokenManager::builder(Credentials::new(ROTATING_USER, realm::PASSWORD))
                    .token_url(&token_url)
                    .store(store)
                    // Every round is a fleet-wide 401 on purpose: no throttle between.
                    .min_relogin_interval(Duration::ZERO)
                    .build()?,
            )
        })
        .collect::<Result<Vec<_>, BoxError>>()?;
    let admin = Admin::new(&keycloak.base_url);
    let count = |event| admin.realm_event_count(ROTATING_REALM, event);

    let mut tokens = everyone(&fleet).await?;
    assert_eq!(
        count(Event::Login).await?,
        1,
        "one login for {FLEET} processes"
    );
    for round in 1..=RENEWALS {
        for (manager, token) in fleet.iter().zip(&tokens) {
            assert!(
                manager.invalidate(token),
                "round {round}: the token is dropped"
            );
        }
        let renewed = everyone(&fleet).await?;
        assert!(
            !renewed[0].same_token(&tokens[0]),
            "round {round}: a new token"
        );
        tokens = renewed;
        assert_eq!(
            count(Event::RefreshToken).await?,
            round,
            "one REFRESH_TOKEN per renewal (round {round})"
        );
    }
    assert_eq!(
        count(Event::RefreshTokenError).await?,
        0,
        "no refresh token was presented twice"
    );
    assert_eq!(count(Event::Login).await?, 1, "no fallback to the password");
    Ok(())
}

/// One `access_token()` per manager at once; all must succeed with one token.
async fn everyone(fleet: &[TokenManager]) -> Result<Vec<bodhi_auth::AccessToken>, BoxError> {
    let calls: Vec<_> = fleet
        .iter()
        .map(|m| {
            let m = m.clone();
            tokio::spawn(async move { m.access_token().await })
        })
        .collect();
    let mut tokens = Vec::new();
    for call in calls {
        tokens.push(call.await??);
    }
    if !tokens.iter().all(|t| t.same_token(&tokens[0])) {
        return Err("the fleet did not share one token".into());
    }
    Ok(tokens)
}
