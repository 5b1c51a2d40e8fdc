//! The layer over real HTTP: a hyper-util client, and a server-side service whose
//! request body is hyper's `Incoming`. Real time: counts, never durations.

use std::convert::Infallible;

use bodhi_auth::testing::{FakeApi, FakeIdm};
use bodhi_auth::{Credentials, IdmAuthLayer, TokenManager, TokenScope};
use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tower::{ServiceBuilder, ServiceExt};

#[tokio::test]
async fn a_hyper_util_client_gets_tokens_and_recovers_from_a_401() {
    let idm = FakeIdm::new();
    let idm_server = idm.serve().await.unwrap();
    let api = FakeApi::new(&idm);
    let api_server = api.serve().await.unwrap();
    let manager = TokenManager::builder(Credentials::new("user", "secret"))
        .token_url(idm_server.token_url())
        .build()
        .unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let scope = TokenScope::origins([api_server.url("")]).unwrap();
    let service = ServiceBuilder::new()
        .layer(IdmAuthLayer::with_manager(manager, scope))
        .service(client);
    let get = || {
        Request::get(api_server.url("/stores"))
            .body(Full::new(Bytes::new()))
            .unwrap()
    };

    let response = service.clone().oneshot(get()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, r#"{"user":"user"}"#);

    api.reject_next(1);
    let response = service.clone().oneshot(get()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "resent after the 401");
    assert_eq!(api.requests(), 3);
    assert_eq!(idm.token_requests(), 2);
}

#[tokio::test]
async fn the_layer_serves_incoming_bodies_and_returns_their_401_after_invalidating() {
    let idm = FakeIdm::new();
    let idm_server = idm.serve().await.unwrap();
    let api = FakeApi::new(&idm);
    let manager = TokenManager::builder(Credentials::new("user", "secret"))
        .token_url(idm_server.token_url())
        .build()
        .unwrap();
    // A server whose handler sits behind the layer: its requests carry `Incoming`.
    let inner_api = api.clone();
    let handler = tower::service_fn(move |request: Request<Incoming>| {
        let api = inner_api.clone();
        async move {
            let response = api.respond(request.headers().get(AUTHORIZATION));
            let _ = request.into_body().collect().await;
            Ok::<Response<Full<Bytes>>, Infallible>(response)
        }
    });
    // Server side, a request's URI is its path alone (`/stores`): no origin to match, so
    // the layer is told to authenticate every request.
    let service = ServiceBuilder::new()
        .layer(IdmAuthLayer::with_manager(
            manager.clone(),
            TokenScope::any_origin(),
        ))
        .service(handler);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/stores");
    assert_eq!(
        client.post(&url).body("x").send().await.unwrap().status(),
        200
    );

    let before = manager.cached().unwrap();
    api.reject_next(1);
    // `Incoming` cannot be copied: the 401 comes back, and the token is gone.
    assert_eq!(
        client.post(&url).body("x").send().await.unwrap().status(),
        401
    );
    assert!(manager.cached().is_none_or(|t| !t.same_token(&before)));
    assert_eq!(
        client.post(&url).body("x").send().await.unwrap().status(),
        200
    );
    assert_eq!(idm.token_requests(), 2);
}
