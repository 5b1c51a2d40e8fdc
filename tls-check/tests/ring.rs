//! bodhi-auth with `rustls-no-provider` in a program that uses ring: no aws-lc-sys is
//! built (`.ci/run` checks the graph), no provider clash, and a login over HTTPS.
#![cfg(feature = "ring")]

use bodhi_auth::testing::FakeIdm;
use bodhi_auth::{Credentials, ErrorKind, TokenManager};
use bodhi_auth_tls_check::{https_fake_idm, test_pki};

#[tokio::test]
async fn with_ring_installed_by_the_program_the_crate_logs_in_over_https() {
    let idm = FakeIdm::new();
    let pki = test_pki();
    let (token_url, _server) = https_fake_idm(&idm, &pki).await;
    let credentials = || Credentials::new("user", "secret");

    // No process-level provider yet: a clear configuration error, not reqwest's panic,
    // and nothing sent.
    let with_own_client = || async {
        let manager = TokenManager::builder(credentials())
            .token_url(&token_url)
            .build()
            .unwrap();
        let err = manager.access_token().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{err}");
        err.to_string()
    };
    let message = with_own_client().await;
    assert!(message.contains("CryptoProvider"), "{message}");
    assert_eq!(idm.token_requests(), 0);

    // What a program on ring does at start-up. Then the crate's own client works, and
    // (as it does not trust the test CA) reports the refusal as configuration.
    rustls::crypto::ring::default_provider()
        .install_default()
        .unwrap();
    let message = with_own_client().await;
    assert!(message.contains("not trusted"), "{message}");

    let trusting = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_der(&pki.ca).unwrap()])
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let manager = TokenManager::builder(credentials())
        .token_url(&token_url)
        .http_client(trusting)
        .build()
        .unwrap();
    let token = manager.access_token().await.unwrap();
    assert_eq!(token.identity().unwrap().username(), "user");
    assert_eq!(idm.validate(token.secret()).as_deref(), Some("user"));
    assert_eq!(idm.token_requests(), 1);
}
