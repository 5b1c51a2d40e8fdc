//! The smallest reqwest program: GET a Bodhi API URL with a token.
//!
//! ```text
//! BODHI_USERNAME=... BODHI_PASSWORD=... cargo run --example reqwest_client -- <url>
//! ```
//! `BODHI_ENV=dev` uses the Dev IDM (Prod by default); `BODHI_TOKEN_URL` names any other
//! token endpoint. The token goes only to the origin of `<url>`.

use bodhi_auth::{IdmAuthMiddleware, TokenManager, TokenScope};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .ok_or("usage: reqwest_client <url>")?;
    let manager = TokenManager::from_env()?; // the README's environment table
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
