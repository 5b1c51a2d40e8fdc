//! The API blocks from the issues, compiled as written (the IDM calls are never run).

#![allow(unused_variables, clippy::no_effect_underscore_binding)]

use bodhi_auth::testing::{FakeApi, FakeIdm};

#[allow(dead_code)]
async fn core_api(err: bodhi_auth::Error) -> Result<(), bodhi_auth::Error> {
    use bodhi_auth::{AccessToken, Credentials, Environment, Error, ErrorKind, TokenManager};
    let creds = Credentials::new("user", "secret");
    let creds: Result<Credentials, Error> = Credentials::from_env(); // BODHI_USERNAME, BODHI_PASSWORD
    let creds = creds?;
    let manager: TokenManager = TokenManager::builder(creds)
        .environment(Environment::Dev) // Dev | Prod; Prod is the default
        .token_url("http://127.0.0.1:8080/auth/realms/hotschedules/protocol/openid-connect/token") // overrides environment
        .refresh_margin(std::time::Duration::from_secs(30))
        .build()?; // Result<TokenManager, Error>; does no I/O
    let token: AccessToken = manager.access_token().await?; // cheap when cached
    let bearer: &str = token.secret();
    let who = token.identity()?; // Identity: username(), namespace()
    manager.invalidate(&token); // "the API rejected exactly this token"
    match err.kind() {
        ErrorKind::InvalidCredentials
        | ErrorKind::Unavailable
        | ErrorKind::InvalidResponse
        | ErrorKind::Config => {}
        _ => {}
    }
    Ok(())
}

#[test]
fn front_end_snippets_compile_and_share_one_manager() {
    use bodhi_auth::{Credentials, IdmAuthLayer, IdmAuthMiddleware, TokenManager, TokenScope};
    let creds = Credentials::new("user", "secret");
    let inner = FakeApi::new(&FakeIdm::new());
    let scope = TokenScope::origins(["https://api.bodhi.example"]).unwrap(); // required
    let svc = tower::ServiceBuilder::new()
        .layer(IdmAuthLayer::new(creds.clone(), scope.clone()))
        .service(inner); // Prod defaults, infallible
    let manager = TokenManager::new(creds.clone());
    let layer = IdmAuthLayer::with_manager(manager.clone(), TokenScope::any_origin()); // share a manager
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(IdmAuthMiddleware::new(creds, scope)) // or IdmAuthMiddleware::with_manager(manager.clone(), scope)
        .build();
    assert_eq!(layer.manager().token_url(), svc.manager().token_url());
    fn traits<T: Clone + Send + Sync + std::fmt::Debug>() {}
    traits::<TokenManager>();
    traits::<bodhi_auth::AccessToken>();
    traits::<IdmAuthLayer>();
    traits::<IdmAuthMiddleware>();
    traits::<TokenScope>();
    traits::<bodhi_auth::IdmAuth<FakeApi, bodhi_auth::KnownBodies>>();
    let _ = client;
}

#[test]
fn the_response_future_is_send_when_the_inner_future_is() {
    fn send<T: Send>(_: &T) {}
    use tower::Service;
    let idm = FakeIdm::new();
    let mut svc = bodhi_auth::IdmAuthLayer::new(
        bodhi_auth::Credentials::new("u", "p"),
        bodhi_auth::TokenScope::any_origin(),
    )
    .layer_onto(FakeApi::new(&idm));
    let request = http::Request::new(http_body_util::Full::<bytes::Bytes>::default());
    // `FakeApi` is always ready; calling it without `poll_ready` is fine here.
    let future = svc.call(request);
    send(&future);
}

trait LayerOnto {
    fn layer_onto<S>(self, inner: S) -> bodhi_auth::IdmAuth<S, bodhi_auth::KnownBodies>;
}

impl LayerOnto for bodhi_auth::IdmAuthLayer {
    fn layer_onto<S>(self, inner: S) -> bodhi_auth::IdmAuth<S, bodhi_auth::KnownBodies> {
        tower::Layer::layer(&self, inner)
    }
}
