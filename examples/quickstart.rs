//! The main job: log in to Bodhi's IDM and show what the token manager does.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! With `BODHI_USERNAME` and `BODHI_PASSWORD` set, it logs in to the IDM the README's
//! environment table names (Prod by default, `BODHI_ENV=dev` for Dev) and prints the
//! user name and namespace. Without them it runs
//! an embedded fake IDM and a fake Bodhi API on 127.0.0.1 with short token lifetimes,
//! calls the API through both front ends (reqwest and Tower) and prints each step:
//! login, refresh-due with a background refresh, expiry, and a 401 answered by a
//! re-login and a resend, with the number of IDM requests.

use std::time::Duration;

use bodhi_auth::testing::{FakeApi, FakeIdm};
use bodhi_auth::{
    BoxError, Credentials, IdmAuth, IdmAuthLayer, IdmAuthMiddleware, TokenManager, TokenScope,
};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{ServiceBuilder, ServiceExt};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // No credentials in the environment: the demo, which needs no account.
    if Credentials::from_env().is_err() {
        return demo().await;
    }
    real_idm(TokenManager::from_env()?).await
}

async fn real_idm(manager: TokenManager) -> Result<(), BoxError> {
    println!("logging in to {}", manager.token_url());
    let token = manager.access_token().await?;
    let who = token.identity()?;
    println!("user name: {}", who.username());
    println!("namespace: {}", who.namespace().unwrap_or("(none)"));
    manager.logout().await?;
    println!("logged out");
    Ok(())
}

async fn demo() -> Result<(), BoxError> {
    println!(
        "BODHI_USERNAME/BODHI_PASSWORD not set: starting a fake IDM and a fake Bodhi API on 127.0.0.1"
    );
    let idm = FakeIdm::new();
    idm.set_access_ttl(Duration::from_secs(4)); // short, so expiry happens in the demo
    let idm_server = idm.serve().await?;
    let api = FakeApi::new(&idm);
    let api_server = api.serve().await?;
    let url = api_server.url("/stores");

    // One manager, two front ends: they share one token and one login. Both send it
    // only to the fake API's origin.
    let scope = TokenScope::origins([api_server.url("")])?;
    let manager = TokenManager::builder(Credentials::new("user", "secret"))
        .token_url(idm_server.token_url())
        .refresh_margin(Duration::from_secs(1)) // refresh-due 1 s before expiry
        .build()?;
    let reqwest_client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(IdmAuthMiddleware::with_manager(
            manager.clone(),
            scope.clone(),
        ))
        .build();
    let tower_client = ServiceBuilder::new()
        .layer(IdmAuthLayer::with_manager(manager.clone(), scope))
        .service(Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>());
    let via_tower = |tower_client: &_| {
        let service: &IdmAuth<_, _> = tower_client;
        let request = http::Request::get(&url).body(Full::default());
        let service = service.clone();
        async move { Ok::<_, BoxError>(service.oneshot(request?).await?.status()) }
    };

    let mut calls = Vec::new();
    for _ in 0..25 {
        let client = reqwest_client.clone();
        let url = url.clone();
        calls.push(tokio::spawn(async move {
            Ok::<_, BoxError>(client.get(url).send().await?.status())
        }));
        calls.push(tokio::spawn(via_tower(&tower_client)));
    }
    let mut ok = 0;
    for call in calls {
        ok += usize::from(call.await??.is_success());
    }
    step(
        &idm,
        &api,
        &format!("login: 50 concurrent requests (25 reqwest, 25 Tower), {ok} answered 200"),
    );
    let who = manager.access_token().await?.identity()?;
    println!(
        "   logged in as {} in namespace {}",
        who.username(),
        who.namespace().unwrap_or("-")
    );

    tokio::time::sleep(Duration::from_millis(3100)).await;
    let status = reqwest_client.get(&url).send().await?.status();
    step(
        &idm,
        &api,
        &format!(
            "refresh-due (t=3.1 s): answered {status} at once with the current token; one refresh grant went out in the background"
        ),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    tokio::time::sleep(Duration::from_millis(4500)).await;
    let status = via_tower(&tower_client).await?;
    step(
        &idm,
        &api,
        &format!(
            "expiry: the token had expired; the request waited for a new one and got {status}"
        ),
    );

    api.reject_next(1);
    let status = via_tower(&tower_client).await?;
    step(
        &idm,
        &api,
        &format!(
            "401: the API rejected the token; the layer dropped it, got a new one and resent: {status}"
        ),
    );
    api.reject_next(1);
    let status = reqwest_client.get(&url).send().await?.status();
    step(
        &idm,
        &api,
        &format!(
            "401 again within 5 s, through reqwest: re-logins are throttled to one per 5 s, so the API's answer comes back as is: {status}"
        ),
    );

    manager.logout().await?;
    step(
        &idm,
        &api,
        &format!("logout: Keycloak sessions left: {}", idm.active_sessions()),
    );
    Ok(())
}

fn step(idm: &FakeIdm, api: &FakeApi, what: &str) {
    println!(
        "- {what}\n   IDM requests so far: {} ({} password, {} refresh); API requests: {} ({} answered 401)",
        idm.token_requests(),
        idm.password_grants(),
        idm.refresh_grants(),
        api.requests(),
        api.unauthorized(),
    );
}
