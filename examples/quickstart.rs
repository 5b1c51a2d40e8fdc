//! The main job: log in to Bodhi's IDM and show what the token manager does.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! With `BODHI_USERNAME` and `BODHI_PASSWORD` set, it logs in to the Dev IDM (or Prod
//! with `BODHI_ENV=prod`) and prints the user name and namespace. Without them it runs
//! an embedded fake IDM on 127.0.0.1 with short token lifetimes and walks through a
//! login, a refresh and a 401, counting IDM requests.

use std::time::Duration;

use bodhi_auth::testing::FakeIdm;
use bodhi_auth::{Credentials, Environment, TokenManager};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    match Credentials::from_env() {
        Ok(credentials) => real_idm(credentials).await,
        Err(_) => demo().await,
    }
}

async fn real_idm(credentials: Credentials) -> Result<(), Box<dyn std::error::Error>> {
    let environment = Environment::from_env_or(Environment::Dev)?;
    let manager = TokenManager::builder(credentials)
        .environment(environment)
        .build()?;
    println!("logging in to {}", manager.token_url());
    let token = manager.access_token().await?;
    let who = token.identity()?;
    println!("user name: {}", who.username());
    println!("namespace: {}", who.namespace().unwrap_or("(none)"));
    manager.logout().await?;
    println!("logged out");
    Ok(())
}

async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    println!("BODHI_USERNAME/BODHI_PASSWORD not set: using an embedded fake IDM on 127.0.0.1");
    let idm = FakeIdm::new();
    idm.set_access_ttl(Duration::from_secs(4));
    let server = idm.serve().await?;
    let manager = TokenManager::builder(Credentials::new("user", "secret"))
        .token_url(server.token_url())
        .refresh_margin(Duration::from_secs(1))
        .build()?;

    let first = manager.access_token().await?;
    println!(
        "1. login: {} ({} IDM request)",
        first.identity()?.username(),
        idm.token_requests()
    );

    let waves: Vec<_> = (0..100)
        .map(|_| {
            let manager = manager.clone();
            tokio::spawn(async move { manager.access_token().await })
        })
        .collect();
    for wave in waves {
        wave.await??;
    }
    println!(
        "2. 100 concurrent callers: still {} IDM request",
        idm.token_requests()
    );

    tokio::time::sleep(Duration::from_millis(3100)).await;
    let during = manager.access_token().await?;
    println!(
        "3. refresh-due: served the current token at once ({}), refresh runs in the background",
        during.same_token(&first)
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    println!(
        "   refresh grants: {}, IDM requests: {}",
        idm.refresh_grants(),
        idm.token_requests()
    );

    let current = manager.access_token().await?;
    manager.invalidate(&current);
    let replaced = manager.access_token().await?;
    println!(
        "4. 401: the rejected token was dropped and replaced ({}); IDM requests: {}",
        !replaced.same_token(&current),
        idm.token_requests()
    );
    Ok(())
}
