//! TLS: the crate on Keycloak's HTTPS port trusting only this run's CA, and the
//! builder's refusal to send a password over plain HTTP off loopback.

use std::error::Error as _;
use std::sync::Arc;

use bodhi_auth::{Credentials, ErrorKind, TokenManager};

use crate::harness::Outcome;
use crate::realm::{self, Endpoints};

pub async fn https_trusting_only_the_test_ca(keycloak: Arc<Endpoints>) -> Outcome {
    let user = realm::user("kc-https");
    let token_url = realm::token_url(&keycloak.https_base_url);
    let credentials = Credentials::new(user.name, realm::PASSWORD);
    let only_test_ca = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&keycloak.ca_pem)?])
        .build()?;
    let manager = TokenManager::builder(credentials.clone())
        .token_url(&token_url)
        .http_client(only_test_ca)
        .build()?;
    let token = manager.access_token().await?;
    assert_eq!(token.identity()?.username(), user.name);
    manager.logout().await?;

    // The crate's default client (the platform's roots) does not know the test CA.
    let default_roots = TokenManager::builder(credentials)
        .token_url(&token_url)
        .build()?;
    let error = default_roots
        .access_token()
        .await
        .err()
        .ok_or("a client without the test CA trusted Keycloak's certificate")?;
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str(&format!(" <- {cause}"));
        source = cause.source();
    }
    eprintln!("    without the test CA: {chain}");
    // A refused certificate is a configuration problem, not an outage: no retries.
    assert_eq!(error.kind(), ErrorKind::Config, "{chain}");
    assert!(chain.to_lowercase().contains("certificate"), "{chain}");
    Ok(())
}

pub async fn plain_http_off_loopback_is_refused_by_build(_keycloak: Arc<Endpoints>) -> Outcome {
    for url in [
        "http://login.hotschedules.io/auth/realms/hotschedules/protocol/openid-connect/token",
        "http://10.1.2.3:8080/auth/realms/hotschedules/protocol/openid-connect/token",
        "http://localhost.example.com/auth/realms/hotschedules/protocol/openid-connect/token",
    ] {
        let error = TokenManager::builder(Credentials::new("kc-https", realm::PASSWORD))
            .token_url(url)
            .build()
            .err()
            .ok_or_else(|| format!("build() accepted {url}"))?;
        assert_eq!(error.kind(), ErrorKind::Config, "{url}: {error:?}");
    }
    Ok(())
}
