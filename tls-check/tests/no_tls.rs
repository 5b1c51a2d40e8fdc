//! bodhi-auth built with no TLS feature: loopback `http://` works, an https token URL is
//! a clear configuration error naming the features, and nothing is sent.
#![cfg(not(any(feature = "ring", feature = "native")))]

use bodhi_auth::testing::FakeIdm;
use bodhi_auth::{Credentials, ErrorKind, TokenManager};

#[tokio::test]
async fn without_tls_only_loopback_http_works_and_https_is_a_config_error() {
    let idm = FakeIdm::new();
    let server = idm.serve().await.unwrap();
    let credentials = || Credentials::new("user", "secret");

    // Loopback, so that even a wrong build could not reach out: nothing listens there.
    let https = TokenManager::builder(credentials())
        .token_url(format!("https://127.0.0.1:9{}", FakeIdm::TOKEN_PATH))
        .build()
        .unwrap();
    let err = https.access_token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("`rustls`"), "{err}");

    let loopback = TokenManager::builder(credentials())
        .token_url(server.token_url())
        .build()
        .unwrap();
    let token = loopback.access_token().await.unwrap();
    assert_eq!(idm.validate(token.secret()).as_deref(), Some("user"));
    assert_eq!(idm.token_requests(), 1);
}
