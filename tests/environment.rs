//! The environment table: one rule for every variable (empty counts as unset; a bad
//! value is a `Config` error naming the variable), read by `TokenManager::from_env` and
//! `TokenScope::from_env`.
//!
//! The environment is process-wide, so this binary holds one test that walks through
//! every case in order.

use bodhi_auth::testing::{FakeApi, FakeIdm};
use bodhi_auth::{
    Environment, ErrorKind, IdmAuthMiddleware, TokenManager, TokenManagerBuilder, TokenScope,
};

const VARIABLES: [&str; 5] = [
    "BODHI_USERNAME",
    "BODHI_PASSWORD",
    "BODHI_ENV",
    "BODHI_TOKEN_URL",
    "BODHI_API_URL",
];

fn set(name: &str, value: &str) {
    // SAFETY: this test binary has one test and no other thread reads the environment
    // while it changes.
    unsafe { std::env::set_var(name, value) }
}

fn clear() {
    for name in VARIABLES {
        // SAFETY: as in `set`.
        unsafe { std::env::remove_var(name) }
    }
}

/// The `Config` error's message, which must name `variable`.
fn config_error_naming(result: Result<impl std::fmt::Debug, bodhi_auth::Error>, variable: &str) {
    let err = result.expect_err("a configuration error");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains(variable), "{err}");
}

#[test]
fn the_environment_table_is_read_by_one_rule() {
    clear();
    config_error_naming(TokenManager::from_env(), "BODHI_USERNAME");
    set("BODHI_USERNAME", "");
    config_error_naming(TokenManager::from_env(), "BODHI_USERNAME");
    set("BODHI_USERNAME", "user");
    config_error_naming(TokenManager::from_env(), "BODHI_PASSWORD");
    set("BODHI_PASSWORD", "secret");

    // BODHI_ENV: unset or empty is Prod; dev in any case is Dev; anything else names it.
    let prod = Environment::Prod.token_url();
    assert_eq!(TokenManager::from_env().unwrap().token_url(), prod);
    set("BODHI_ENV", "");
    assert_eq!(TokenManager::from_env().unwrap().token_url(), prod);
    set("BODHI_ENV", "DEV");
    let dev = Environment::Dev.token_url();
    assert_eq!(TokenManager::from_env().unwrap().token_url(), dev);
    set("BODHI_ENV", "staging");
    config_error_naming(TokenManager::from_env(), "BODHI_ENV");
    set("BODHI_ENV", "dev");

    // BODHI_TOKEN_URL overrides BODHI_ENV, under the https-or-loopback rule.
    set("BODHI_TOKEN_URL", "http://idm.example/token");
    config_error_naming(TokenManager::from_env(), "BODHI_TOKEN_URL");
    set("BODHI_TOKEN_URL", "https://svc:hunter2@idm.example/token");
    config_error_naming(TokenManager::from_env(), "BODHI_TOKEN_URL");
    let err = TokenManager::from_env().unwrap_err().to_string();
    assert!(
        !err.contains("hunter2"),
        "a password in the URL is never echoed: {err}"
    );
    set("BODHI_TOKEN_URL", "");
    assert_eq!(TokenManager::from_env().unwrap().token_url(), dev);

    // BODHI_API_URL: the scope, one origin or several.
    config_error_naming(TokenScope::from_env(), "BODHI_API_URL");
    set("BODHI_API_URL", "https://api.example, not an origin");
    config_error_naming(TokenScope::from_env(), "BODHI_API_URL");

    // All of it together, against the fake IDM and API on loopback.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let idm = FakeIdm::new();
        let idm_server = idm.serve().await.unwrap();
        let api = FakeApi::new(&idm);
        let api_server = api.serve().await.unwrap();
        let other = api.serve().await.unwrap(); // another origin, not in the scope
        set("BODHI_TOKEN_URL", &idm_server.token_url());
        set(
            "BODHI_API_URL",
            &format!("https://files.example,{}", api_server.url("")),
        );
        let manager = TokenManagerBuilder::from_env().unwrap().build().unwrap();
        let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
            .with(IdmAuthMiddleware::with_manager(
                manager,
                TokenScope::from_env().unwrap(),
            ))
            .build();
        let ours = client.get(api_server.url("/stores")).send().await.unwrap();
        assert_eq!(ours.status(), 200, "the token went to BODHI_API_URL");
        let theirs = client.get(other.url("/stores")).send().await.unwrap();
        assert_eq!(theirs.status(), 401, "and nowhere else");
        assert_eq!(idm.token_requests(), 1);
    });
    clear();
}
