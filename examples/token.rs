//! Prints a fresh access token for shell use:
//!
//! ```text
//! curl -H "Authorization: Bearer $(cargo run -q --example token)" https://...
//! cargo run -q --example token -- --id-token   # the id token instead
//! cargo run -q --example token -- --claims     # user name and namespace
//! cargo run -q --example token -- --no-store   # log in without the file store
//! ```
//! Reads the README's environment table: `BODHI_USERNAME`, `BODHI_PASSWORD`, `BODHI_ENV`
//! (`dev` or `prod`, Prod by default), `BODHI_TOKEN_URL` and `BODHI_STORE`.
//!
//! The session is kept in a file in the user's cache directory (unless `BODHI_STORE`
//! says otherwise, or `--no-store`), so running it again within the token's 30 hours
//! makes no IDM request at all.

use bodhi_auth::TokenManagerBuilder;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut mode = String::new();
    let mut store = true;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--no-store" => store = false,
            "--id-token" | "--claims" => mode = arg,
            other => {
                return Err(format!(
                    "unknown option {other}; use --id-token, --claims or --no-store"
                )
                .into());
            }
        }
    }
    let mut builder = TokenManagerBuilder::from_env()?; // the README's environment table
    if !store {
        builder = builder.no_store();
    } else if std::env::var(bodhi_auth::store::STORE_ENV).map_or(true, |v| v.is_empty()) {
        // Unset (or empty, which counts as unset): the example's own default.
        builder = builder.default_file_store();
    }
    let manager = builder.build()?;
    let token = manager.access_token().await?;
    match mode.as_str() {
        "" => println!("{}", token.secret()),
        "--id-token" => println!("{}", token.id_token().ok_or("the IDM sent no id token")?),
        _ => {
            let who = token.identity()?;
            println!("username: {}", who.username());
            println!("namespace: {}", who.namespace().unwrap_or(""));
        }
    }
    Ok(())
}
