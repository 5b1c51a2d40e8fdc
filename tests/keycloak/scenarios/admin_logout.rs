//! An administrator ends the user's session; Keycloak's userinfo then answers 401,
//! and each front end recovers with one resend: a refused refresh, one password grant.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bodhi_auth::{AccessToken, IdmAuthLayer, IdmAuthMiddleware, TokenManager, TokenScope};
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use reqwest_middleware::{ClientBuilder, Middleware, Next};
use tower::{ServiceBuilder, ServiceExt};

use super::{manager_for, userinfo};
use crate::admin::{Admin, Event};
use crate::harness::{BoxError, Outcome};
use crate::proxy::RecordingProxy;
use crate::realm::{self, Endpoints, User};

pub async fn tower_layer_recovers_from_an_admin_logout(keycloak: Arc<Endpoints>) -> Outcome {
    let user = realm::user("kc-layer");
    let proxy = RecordingProxy::start().await?;
    let manager = manager(&keycloak, &user, &proxy)?;
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    let service = ServiceBuilder::new()
        .layer(IdmAuthLayer::with_manager(
            manager.clone(),
            TokenScope::origins([keycloak.userinfo_url()])?,
        ))
        // Inside the layer: counts every request that goes out, resends included.
        .map_request(move |request: Request<Full<Bytes>>| {
            counter.fetch_add(1, Ordering::SeqCst);
            request
        })
        .service(Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>());
    let get = || -> Result<Request<Full<Bytes>>, BoxError> {
        Ok(Request::get(keycloak.userinfo_url()).body(Full::new(Bytes::new()))?)
    };
    let call = || async { Ok::<_, BoxError>(service.clone().oneshot(get()?).await?.status()) };
    recover(&keycloak, &user, &manager, &proxy, &sent, call).await
}

pub async fn reqwest_middleware_recovers_from_an_admin_logout(keycloak: Arc<Endpoints>) -> Outcome {
    let user = realm::user("kc-middleware");
    let proxy = RecordingProxy::start().await?;
    let manager = manager(&keycloak, &user, &proxy)?;
    let sent = Arc::new(AtomicUsize::new(0));
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(IdmAuthMiddleware::with_manager(
            manager.clone(),
            TokenScope::origins([keycloak.userinfo_url()])?,
        ))
        .with(CountSends(sent.clone()))
        .build();
    let url = keycloak.userinfo_url();
    let call = || async { Ok::<_, BoxError>(client.get(&url).send().await?.status()) };
    recover(&keycloak, &user, &manager, &proxy, &sent, call).await
}

/// Zero margin: the token is served until it expires, so the scenario runs within one
/// lifetime and only the 401 (not expiry, not an early refresh) makes the next login.
/// Its IDM requests go through `proxy`.
fn manager(
    keycloak: &Endpoints,
    user: &User,
    proxy: &RecordingProxy,
) -> Result<TokenManager, BoxError> {
    Ok(manager_for(keycloak, user)
        .refresh_margin(Duration::ZERO)
        .http_client(proxy.client()?)
        .build()?)
}

/// The scenario both front ends share; `call` makes one request to userinfo through
/// the front end, `sent` counts what left it, `proxy` saw the manager's IDM requests.
async fn recover<F, Fut>(
    keycloak: &Endpoints,
    user: &User,
    manager: &TokenManager,
    proxy: &RecordingProxy,
    sent: &AtomicUsize,
    call: F,
) -> Outcome
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<http::StatusCode, BoxError>>,
{
    let admin = Admin::new(&keycloak.base_url);
    assert_eq!(call().await?, 200, "the first request, with a fresh login");
    let rejected: AccessToken = manager.cached().ok_or("no token cached after a 200")?;
    let refresh_errors = admin.event_count(Event::RefreshTokenError, None).await?;

    admin.log_user_out(user).await?;
    let info = userinfo(keycloak, &rejected).await?;
    assert_eq!(info.status, 401, "userinfo after the admin logout");
    assert!(
        info.challenge.contains(r#"error="invalid_token""#),
        "WWW-Authenticate: {}",
        info.challenge
    );

    sent.store(0, Ordering::SeqCst);
    assert_eq!(
        call().await?,
        200,
        "the caller sees the resent request's answer"
    );
    assert_eq!(sent.load(Ordering::SeqCst), 2, "sent, refused, resent once");
    assert!(
        !rejected.expires_in().is_zero(),
        "all within the first token's lifetime, so the 401 caused the new login"
    );
    let fresh = manager
        .cached()
        .ok_or("no token cached after the recovery")?;
    assert!(!fresh.same_token(&rejected));

    // At most two IDM requests after the 401: the refresh token of the ended session,
    // refused, then one password grant.
    let exchanges = proxy.exchanges();
    let after_401 = exchanges.get(1..).unwrap_or_default();
    for exchange in after_401 {
        eprintln!(
            "    after the 401: {} -> {} {}",
            exchange.grant_type, exchange.status, exchange.error_body
        );
    }
    let grants: Vec<(&str, u16)> = after_401
        .iter()
        .map(|e| (e.grant_type.as_str(), e.status))
        .collect();
    assert_eq!(grants, [("refresh_token", 400), ("password", 200)]);
    assert!(
        after_401[0]
            .error_body
            .contains(r#""error":"invalid_grant""#),
        "{}",
        after_401[0].error_body
    );
    // Keycloak's side: one more login for the user; the refused refresh is recorded
    // without a user, so it is counted realm-wide.
    assert_eq!(
        admin
            .settled_event_count(Event::Login, Some(user), 2)
            .await?,
        2
    );
    let refused = admin
        .event_count(Event::RefreshTokenError, None)
        .await?
        .saturating_sub(refresh_errors);
    assert_eq!(refused, 1, "refused refreshes");
    assert_eq!(admin.event_count(Event::RefreshToken, Some(user)).await?, 0);
    Ok(())
}

/// Counts the requests the auth middleware sends on (resends included).
struct CountSends(Arc<AtomicUsize>);

#[async_trait::async_trait]
impl Middleware for CountSends {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        self.0.fetch_add(1, Ordering::SeqCst);
        next.run(request, extensions).await
    }
}
