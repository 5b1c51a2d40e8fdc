//! Host scoping: the token goes only to the configured origins, also across redirects.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bodhi_auth::testing::{FakeApi, FakeIdm};
use bodhi_auth::{Credentials, IdmAuthLayer, IdmAuthMiddleware, TokenManager, TokenScope};
use bytes::Bytes;
use http::header::{AUTHORIZATION, LOCATION};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::{ServiceBuilder, ServiceExt};
use tower_http::follow_redirect::FollowRedirectLayer;

fn manager(idm: &FakeIdm) -> TokenManager {
    TokenManager::builder(Credentials::new("user", "secret"))
        .fake_idm(idm)
        .build()
        .unwrap()
}

/// What each request reached the network with: (host, had an Authorization header).
type Seen = Arc<Mutex<Vec<(String, bool)>>>;

/// A service that records what it saw and answers 200, or 302 to
/// `https://files.elsewhere.example/report` for `redirecting_host`.
fn recorder(
    seen: &Seen,
    redirecting_host: Option<&'static str>,
) -> impl tower::Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    let seen = seen.clone();
    tower::service_fn(move |request: Request<Full<Bytes>>| {
        let host = request.uri().host().unwrap_or_default().to_owned();
        let authorized = request.headers().contains_key(AUTHORIZATION);
        seen.lock().unwrap().push((host.clone(), authorized));
        let mut response = Response::new(Full::<Bytes>::default());
        if Some(host.as_str()) == redirecting_host {
            *response.status_mut() = StatusCode::FOUND;
            response.headers_mut().insert(
                LOCATION,
                "https://files.elsewhere.example/report".parse().unwrap(),
            );
        }
        async move { Ok::<_, Infallible>(response) }
    })
}

#[tokio::test(start_paused = true)]
async fn the_layer_sends_no_token_to_other_hosts_and_logs_in_for_none() {
    let idm = FakeIdm::new();
    let seen = Seen::default();
    let inner = recorder(&seen, None);
    let scope = TokenScope::origins(["https://api.bodhi.example"]).unwrap();
    let service = ServiceBuilder::new()
        .layer(IdmAuthLayer::with_manager(manager(&idm)).scope(scope))
        .service(inner);
    let get = |uri: &str| Request::get(uri).body(Full::default()).unwrap();
    service
        .clone()
        .oneshot(get("https://third-party.example/x"))
        .await
        .unwrap();
    assert_eq!(
        idm.token_requests(),
        0,
        "no login for an out-of-scope request"
    );
    service
        .clone()
        .oneshot(get("https://api.bodhi.example/x"))
        .await
        .unwrap();
    service
        .clone()
        .oneshot(get("http://api.bodhi.example/x"))
        .await
        .unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            ("third-party.example".to_owned(), false),
            ("api.bodhi.example".to_owned(), true),
            ("api.bodhi.example".to_owned(), false),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_redirect_followed_outside_the_layer_never_carries_the_token_to_another_host() {
    let idm = FakeIdm::new();
    let seen = Seen::default();
    let inner = recorder(&seen, Some("api.bodhi.example"));
    let scope = TokenScope::origins(["https://api.bodhi.example"]).unwrap();
    let service = ServiceBuilder::new()
        .layer(FollowRedirectLayer::new())
        .layer(IdmAuthLayer::with_manager(manager(&idm)).scope(scope))
        .service(inner);
    let request = Request::get("https://api.bodhi.example/report")
        .body(Full::default())
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            ("api.bodhi.example".to_owned(), true),
            ("files.elsewhere.example".to_owned(), false),
        ]
    );
}

#[tokio::test]
async fn the_middleware_sends_no_token_to_other_origins() {
    let idm = FakeIdm::new();
    let idm_server = idm.serve().await.unwrap();
    let api = FakeApi::new(&idm);
    let ours = api.serve().await.unwrap();
    let theirs = api.serve().await.unwrap(); // same code, another port: another origin
    let manager = TokenManager::builder(Credentials::new("user", "secret"))
        .token_url(idm_server.token_url())
        .build()
        .unwrap();
    let scope = TokenScope::origins([ours.url("")]).unwrap();
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(IdmAuthMiddleware::with_manager(manager).scope(scope))
        .build();
    assert_eq!(
        client.get(theirs.url("/x")).send().await.unwrap().status(),
        401
    );
    assert_eq!(
        idm.token_requests(),
        0,
        "no token, no login for another origin"
    );
    assert_eq!(
        client.get(ours.url("/x")).send().await.unwrap().status(),
        200
    );
    assert_eq!(idm.token_requests(), 1);
}
