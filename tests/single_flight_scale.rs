//! 10,000 concurrent callers, three situations, both front ends: exactly one IDM
//! request each time. (How long it takes is a benchmark: `benches/single_flight.rs`.)

use std::convert::Infallible;
use std::time::Duration;

use bodhi_auth::testing::{FakeApi, FakeIdm};
use bodhi_auth::{Credentials, IdmAuthLayer, IdmAuthMiddleware, TokenManager};
use bytes::Bytes;
use http::Request;
use http::header::AUTHORIZATION;
use http_body_util::Full;
use tower::{ServiceBuilder, ServiceExt};

const CALLERS: usize = 10_000;

/// The API answers after 10 ms, so every caller is in flight before the first answer.
fn slow_api(
    api: &FakeApi,
) -> impl tower::Service<
    Request<Full<Bytes>>,
    Response = http::Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone
+ Send
+ 'static {
    let api = api.clone();
    tower::service_fn(move |request: Request<Full<Bytes>>| {
        let api = api.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok::<_, Infallible>(api.respond(request.headers().get(AUTHORIZATION)))
        }
    })
}

async fn tower_burst(idm: &FakeIdm, api: &FakeApi, manager: &TokenManager) {
    let service = ServiceBuilder::new()
        .layer(IdmAuthLayer::with_manager(manager.clone()))
        .service(slow_api(api));
    let calls: Vec<_> = (0..CALLERS)
        .map(|_| {
            let request = Request::get("https://api.example/")
                .body(Full::default())
                .unwrap();
            tokio::spawn(service.clone().oneshot(request))
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap().status(), 200);
    }
    let _ = idm;
}

#[tokio::test(start_paused = true)]
async fn tower_ten_thousand_callers_one_idm_request_in_each_situation() {
    let idm = FakeIdm::new();
    idm.set_access_ttl(Duration::from_secs(100));
    idm.set_latency(Duration::from_millis(50));
    let api = FakeApi::new(&idm);
    let manager = TokenManager::builder(Credentials::new("user", "secret"))
        .fake_idm(&idm)
        .build()
        .unwrap();

    tower_burst(&idm, &api, &manager).await;
    assert_eq!(idm.token_requests(), 1, "cold start");

    tokio::time::advance(Duration::from_secs(101)).await;
    tower_burst(&idm, &api, &manager).await;
    assert_eq!(idm.token_requests(), 2, "all expired at once");

    let token = manager.cached().unwrap();
    idm.revoke_access_token(token.secret());
    tower_burst(&idm, &api, &manager).await;
    assert_eq!(
        idm.token_requests(),
        3,
        "every request 401 for the same token"
    );
    assert_eq!(api.unauthorized(), CALLERS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reqwest_over_http2_ten_thousand_callers_one_idm_request_in_each_situation() {
    let idm = FakeIdm::new();
    // Lives 5 s, refresh-due 1 ms before expiry: no refresh during a burst.
    idm.set_access_ttl(Duration::from_secs(5));
    idm.set_latency(Duration::from_millis(50));
    let idm_server = idm.serve().await.unwrap();
    let api = FakeApi::new(&idm);
    let api_server = api.serve().await.unwrap();
    let manager = TokenManager::builder(Credentials::new("user", "secret"))
        .token_url(idm_server.token_url())
        .refresh_margin(Duration::from_millis(1))
        .build()
        .unwrap();
    // One HTTP/2 connection, many streams: 10,000 HTTP/1.1 sockets would exceed the
    // open-files limit.
    let client = reqwest_middleware::ClientBuilder::new(
        reqwest::Client::builder()
            .http2_prior_knowledge()
            .build()
            .unwrap(),
    )
    .with(IdmAuthMiddleware::with_manager(manager.clone()))
    .build();
    let url = api_server.url("/stores");
    let burst = || async {
        let calls: Vec<_> = (0..CALLERS)
            .map(|_| {
                let client = client.clone();
                let url = url.clone();
                tokio::spawn(async move { client.get(url).send().await.map(|r| r.status()) })
            })
            .collect();
        for call in calls {
            assert_eq!(call.await.unwrap().unwrap(), 200);
        }
    };

    burst().await;
    assert_eq!(idm.token_requests(), 1, "cold start");

    // Wait (polling, real time) until the token has expired.
    let token = manager.access_token().await.unwrap();
    while tokio::time::Instant::now() < token.expires_at() + Duration::from_millis(50) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    idm.set_access_ttl(Duration::from_secs(3600)); // the next token outlives the test
    burst().await;
    assert_eq!(idm.token_requests(), 2, "all expired at once");

    let token = manager.access_token().await.unwrap();
    idm.revoke_access_token(token.secret());
    burst().await;
    assert_eq!(
        idm.token_requests(),
        3,
        "every request 401 for the same token"
    );
}
