//! The smallest reqwest program: GET a Bodhi API URL with a token.
//!
//! ```text
//! BODHI_USERNAME=... BODHI_PASSWORD=... cargo run --example reqwest_client -- <url>
//! ```
//! `BODHI_ENV=dev` uses the Dev IDM (Prod by default).

use bodhi_auth::{Credentials, Environment, IdmAuthMiddleware, TokenManager, TokenScope};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .ok_or("usage: reqwest_client <url>")?;
    let manager = TokenManager::builder(Credentials::from_env()?)
        .environment(Environment::from_env_or(Environment::Prod)?)
        .build()?;
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(IdmAuthMiddleware::with_manager(
            manager,
            TokenScope::origins([&url])?,
        ))
        .build();
    let response = client.get(&url).send().await?;
    println!("{}", response.status());
    println!("{}", response.text().await?);
    Ok(())
}
