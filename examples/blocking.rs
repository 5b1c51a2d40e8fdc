//! The token manager from sync code: `bodhi_auth::blocking::TokenManager` with
//! `reqwest::blocking`, no `async` and no runtime in the program's own code.
//!
//! ```text
//! cargo run --example blocking
//! BODHI_USERNAME=... BODHI_PASSWORD=... cargo run --example blocking -- <url>
//! ```
//!
//! Without `BODHI_USERNAME` and `BODHI_PASSWORD` it starts a fake IDM and a fake Bodhi
//! API on 127.0.0.1 and shows each step: a login, a refresh at refresh-due that nobody
//! called for, a 401 answered with a new token, and a logout. With them, it GETs `<url>`
//! with a token from the IDM the README's environment table names (Prod by default).

use std::io;
use std::time::Duration;

use bodhi_auth::Credentials;
use bodhi_auth::blocking::TokenManager;
use bodhi_auth::testing::{FakeApi, FakeIdm, Reply};
use http::Method;
use reqwest::StatusCode;
use reqwest::blocking::{Client, Response};
use reqwest::header::AUTHORIZATION;

type BoxError = Box<dyn std::error::Error>;

fn main() -> Result<(), BoxError> {
    // No credentials in the environment: the demo, which needs no account.
    if Credentials::from_env().is_err() {
        return demo();
    }
    let url = std::env::args()
        .nth(1)
        .ok_or("usage: blocking <url> (or no BODHI_USERNAME/BODHI_PASSWORD for the demo)")?;
    let manager = TokenManager::from_env()?; // the README's environment table
    let response = get(&Client::new(), &manager, &url)?;
    println!("{}", response.status());
    println!("{}", response.text()?);
    Ok(())
}

/// GETs `url` with a token; after a 401 to it, once more with a new one. Send the token
/// only to the API: reqwest drops `Authorization` on a redirect to another host.
fn get(client: &Client, manager: &TokenManager, url: &str) -> Result<Response, BoxError> {
    let token = manager.access_token()?;
    let response = client
        .get(url)
        .header(AUTHORIZATION, token.header_value().clone())
        .send()?;
    // `invalidate` is false when the token was already replaced, or the previous 401
    // re-login was under 5 s ago: then the 401 is the answer.
    if response.status() == StatusCode::UNAUTHORIZED && manager.invalidate(&token) {
        let token = manager.access_token()?;
        return Ok(client
            .get(url)
            .header(AUTHORIZATION, token.header_value().clone())
            .send()?);
    }
    Ok(response)
}

fn demo() -> Result<(), BoxError> {
    println!(
        "BODHI_USERNAME/BODHI_PASSWORD not set: starting a fake IDM and a fake Bodhi API on 127.0.0.1"
    );
    // The fakes are async servers: they get a runtime of their own, as the real IDM and
    // API run elsewhere. The program itself stays sync.
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let idm = FakeIdm::new();
    idm.set_access_ttl(Duration::from_secs(4)); // refresh-due 2 s after the login
    let api = FakeApi::new(&idm);
    api.route(
        Method::GET,
        "/stores",
        Reply::json(200, r#"[{"id":1,"name":"Downtown"}]"#),
    );
    let (idm_server, api_server) =
        servers.block_on(async { Ok::<_, io::Error>((idm.serve().await?, api.serve().await?)) })?;
    let url = api_server.url("/stores");

    let manager = TokenManager::from_builder(
        bodhi_auth::TokenManager::builder(Credentials::new("user", "secret"))
            .token_url(idm_server.token_url()),
    )?;
    let client = Client::builder().no_proxy().build()?; // loopback only

    let response = get(&client, &manager, &url)?;
    let status = response.status();
    println!("- GET {url}: {status} {}", response.text()?);
    step(&idm, "login");

    // Nobody calls the manager now: its runtime thread starts the refresh at
    // refresh-due by itself. Wait for that event (and for its answer to land).
    idm.set_access_ttl(Duration::from_secs(3600)); // the new token lives an hour
    servers.block_on(async {
        idm.wait_for_requests(2).await;
        manager.async_manager().settled().await;
    });
    step(
        &idm,
        "refresh-due (2 s): refreshed in the background, with no caller",
    );
    let status = get(&client, &manager, &url)?.status();
    println!("- GET again: {status}, with the refreshed token");
    step(&idm, "no IDM request for it");

    api.reject_next(1);
    let status = get(&client, &manager, &url)?.status();
    println!("- the API answered 401 to the token: invalidated, new token, resent: {status}");
    step(&idm, "one more IDM request");

    let stats = manager.stats();
    println!(
        "- stats: {} login(s), {} refresh(es), {} rejection(s)",
        stats.logins, stats.refreshes, stats.rejections
    );
    manager.logout()?;
    println!(
        "- logout: Keycloak sessions left: {}",
        idm.active_sessions()
    );
    Ok(())
}

fn step(idm: &FakeIdm, what: &str) {
    println!(
        "   {what}; IDM requests so far: {} ({} password, {} refresh)",
        idm.token_requests(),
        idm.password_grants(),
        idm.refresh_grants(),
    );
}
