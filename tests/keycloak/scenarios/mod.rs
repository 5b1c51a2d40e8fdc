//! The scenarios: the crate's public API against the real server, one user each.

mod admin_logout;
mod concurrency;
mod fleet;
mod https;
mod login;
mod logout;
mod refresh;
mod refused;
mod session_idle;
mod wrong_password;

use bodhi_auth::{AccessToken, Credentials, TokenManager, TokenManagerBuilder};
use http::header::WWW_AUTHENTICATE;
use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{BoxError, Scenario};
use crate::realm::{self, Endpoints, User};

/// A [`Scenario`] named `module::function`.
macro_rules! scenario {
    ($module:ident :: $function:ident) => {
        Scenario {
            name: concat!(stringify!($module), "::", stringify!($function)),
            run: |endpoints| Box::pin($module::$function(endpoints)),
        }
    };
}

/// Every scenario, in the order they run.
pub fn all() -> Vec<Scenario> {
    vec![
        scenario!(login::password_login_reads_user_and_namespace_from_the_id_token),
        scenario!(refresh::refresh_grant_with_the_bearer_header_runs_at_refresh_due),
        scenario!(session_idle::dead_refresh_token_means_password_login_without_refresh_attempt),
        scenario!(admin_logout::tower_layer_recovers_from_an_admin_logout),
        scenario!(admin_logout::reqwest_middleware_recovers_from_an_admin_logout),
        scenario!(wrong_password::wrong_password_reaches_keycloak_once_then_cools_down),
        scenario!(refused::disabled_user_is_invalid_credentials),
        scenario!(refused::client_without_direct_grants_is_a_config_error),
        scenario!(concurrency::two_hundred_requests_share_one_login_and_one_refresh),
        scenario!(logout::logout_ends_the_keycloak_session),
        scenario!(fleet::ten_processes_share_single_use_refresh_tokens_without_reuse),
        scenario!(https::https_trusting_only_the_test_ca),
        scenario!(https::plain_http_off_loopback_is_refused_by_build),
    ]
}

/// Sends a login, a refresh and a logout for a user no scenario counts, until one round
/// works: a freshly started server compiles its code paths on the first requests, and a
/// first login slower than a short token's lifetime would fail whichever scenario came
/// first. Never a failure itself; the scenarios report what is still wrong.
pub async fn warm_up(keycloak: &Endpoints) {
    let user = realm::user("kc-warm-up");
    for attempt in 1..=5 {
        let manager = manager_for(keycloak, &user).build();
        let round = async {
            let manager = manager?;
            let token = manager.access_token().await?;
            manager.invalidate(&token);
            manager.access_token().await?;
            manager.logout().await?;
            Ok::<_, BoxError>(())
        };
        match round.await {
            Ok(()) => return,
            Err(error) => eprintln!("keycloak: warm-up round {attempt}: {error}"),
        }
    }
}

/// A manager for `user` (right password) on the server's plain-HTTP token endpoint.
fn manager_for(keycloak: &Endpoints, user: &User) -> TokenManagerBuilder {
    TokenManager::builder(Credentials::new(user.name, realm::PASSWORD))
        .token_url(keycloak.token_url())
}

/// What Keycloak's own protected resource says about `token`.
struct UserInfo {
    status: StatusCode,
    /// `WWW-Authenticate`, where Keycloak puts its errors (the body is then empty).
    challenge: String,
    body: Value,
}

async fn userinfo(keycloak: &Endpoints, token: &AccessToken) -> Result<UserInfo, BoxError> {
    let response = reqwest::Client::new()
        .get(keycloak.userinfo_url())
        .header(http::header::AUTHORIZATION, token.header_value().clone())
        .send()
        .await?;
    let status = response.status();
    let challenge = response
        .headers()
        .get(WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await?;
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(UserInfo {
        status,
        challenge,
        body,
    })
}
