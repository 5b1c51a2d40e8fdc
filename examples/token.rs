//! Prints a fresh access token for shell use:
//!
//! ```text
//! curl -H "Authorization: Bearer $(cargo run -q --example token)" https://...
//! cargo run -q --example token -- --id-token   # the id token instead
//! cargo run -q --example token -- --claims     # user name and namespace
//! ```
//! Reads `BODHI_USERNAME`, `BODHI_PASSWORD`, `BODHI_ENV` (`dev` or `prod`, Prod by default)
//! and `BODHI_TOKEN_URL` (the README's environment table).

use bodhi_auth::TokenManager;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let manager = TokenManager::from_env()?; // the README's environment table
    let token = manager.access_token().await?;
    match mode.as_str() {
        "" => println!("{}", token.secret()),
        "--id-token" => println!("{}", token.id_token().ok_or("the IDM sent no id token")?),
        "--claims" => {
            let who = token.identity()?;
            println!("username: {}", who.username());
            println!("namespace: {}", who.namespace().unwrap_or(""));
        }
        other => return Err(format!("unknown option {other}; use --id-token or --claims").into()),
    }
    Ok(())
}
