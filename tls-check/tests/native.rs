//! bodhi-auth with `native-tls`: an IDM certificate the platform does not trust is a
//! configuration error (not retried), as it is with rustls.
#![cfg(feature = "native")]

use bodhi_auth::testing::FakeIdm;
use bodhi_auth::{Credentials, ErrorKind, TokenManager};
use bodhi_auth_tls_check::{https_fake_idm, test_pki};

#[tokio::test]
async fn with_native_tls_an_untrusted_idm_certificate_is_a_config_error() {
    let idm = FakeIdm::new();
    let pki = test_pki();
    let (token_url, _server) = https_fake_idm(&idm, &pki).await;
    let manager = TokenManager::builder(Credentials::new("user", "secret"))
        .token_url(&token_url)
        .build()
        .unwrap();
    let err = manager.access_token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("not trusted"), "{err}");
    assert_eq!(idm.token_requests(), 0, "nothing reached the IDM");
}
