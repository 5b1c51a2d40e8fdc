//! The smallest Tower program: a hyper-util client behind `IdmAuthLayer`.
//!
//! ```text
//! BODHI_USERNAME=... BODHI_PASSWORD=... cargo run --example tower_client -- <https url>
//! ```
//! `BODHI_ENV=dev` uses the Dev IDM (Prod by default); `BODHI_TOKEN_URL` names any other
//! token endpoint. The token goes only to the origin of `<url>`.

use bodhi_auth::{IdmAuthLayer, TokenManager, TokenScope};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{ServiceBuilder, ServiceExt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let url = std::env::args().nth(1).ok_or("usage: tower_client <url>")?;
    let manager = TokenManager::from_env()?; // the README's environment table
    // Bodhi is HTTPS only: a rustls connector with the system's root certificates.
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()?
        .https_or_http()
        .enable_http1()
        .build();
    let client = Client::builder(TokioExecutor::new()).build::<_, Full<Bytes>>(https);
    let service = ServiceBuilder::new()
        .layer(IdmAuthLayer::with_manager(
            manager,
            TokenScope::origins([&url])?,
        ))
        .service(client);
    let request = http::Request::get(url).body(Full::default())?;
    let response = service.oneshot(request).await?;
    println!("{}", response.status());
    let body = response.into_body().collect().await?.to_bytes();
    println!("{}", String::from_utf8_lossy(&body));
    Ok(())
}
