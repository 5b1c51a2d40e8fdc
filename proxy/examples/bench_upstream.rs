//! The loopback upstream for `scripts/bench-proxy`: the library's fake IDM and fake API,
//! plus a live token for the nginx baseline's static header. Prints `KEY=value` lines,
//! then serves until killed.

use bodhi_auth::testing::{FakeApi, FakeIdm};
use bodhi_auth::{Credentials, TokenManager};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let idm = FakeIdm::new();
    idm.set_recording(false);
    let api = FakeApi::new(&idm);
    let idm_server = idm.serve().await?;
    let api_server = api.serve().await?;
    let manager = TokenManager::builder(Credentials::new("user", "secret"))
        .token_url(idm_server.token_url())
        .build()?;
    let token = manager.access_token().await?;
    println!("BODHI_API_URL={}", api_server.url(""));
    println!("BODHI_TOKEN_URL={}", idm_server.token_url());
    // The bench's nginx gets it in its config file (a throwaway token of a fake IDM).
    println!("STATIC_TOKEN={}", token.secret());
    println!("ready");
    std::future::pending::<()>().await;
    Ok(())
}
