//! 10,000 concurrent callers, three situations, both front ends: exactly one IDM
//! request each time. (How long it takes is a benchmark: `benches/single_flight.rs`.)

use std::convert::Infallible;
use std::time::Duration;

use bodhi_auth::testing::{FakeApi, FakeIdm};
use bodhi_auth::{Credentials, IdmAuthLayer, IdmAuthMiddleware, TokenManager, TokenScope};
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
        .layer(IdmAuthLayer::with_manager(
            manager.clone(),
            TokenScope::origins(["https://api.example"]).unwrap(),
        ))
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
    // Real time over real sockets: no burst may be long enough for a token to reach
    // refresh-due, however slow the machine. Every token a burst can see lives an hour;
    // expiry is made to happen on purpose, between bursts.
    let idm = FakeIdm::new();
    idm.set_access_ttl(Duration::from_secs(3600));
    idm.set_latency(Duration::from_millis(50));
    let idm_server = idm.serve().await.unwrap();
    let api = FakeApi::new(&idm);
    let api_server = api.serve().await.unwrap();
    let manager = TokenManager::builder(Credentials::new("user", "secret"))
        .token_url(idm_server.token_url())
        .build()
        .unwrap();
    // One HTTP/2 connection, many streams: 10,000 HTTP/1.1 sockets would exceed the
    // open-files limit.
    let http = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let client = reqwest_middleware::ClientBuilder::new(http.clone())
        .with(IdmAuthMiddleware::with_manager(
            manager.clone(),
            TokenScope::origins([api_server.url("")]).unwrap(),
        ))
        .build();
    let url = api_server.url("/stores");
    // Open the connection before the first burst, so the client knows the server's
    // stream limit: streams opened before its SETTINGS arrive are refused, and hyper
    // ends a connection with too many refusals (a race a slower machine loses).
    let unauthenticated = http.get(&url).send().await.unwrap().status();
    assert_eq!(unauthenticated, 401, "the connection is up");
    let burst = || async {
        let calls: Vec<_> = (0..CALLERS)
            .map(|_| {
                let client = client.clone();
                let url = url.clone();
                // Read each body to its end, as a program does: a response dropped
                // unread cancels its stream, and DATA arriving for thousands of
                // cancelled streams makes the client's HTTP/2 end the connection.
                tokio::spawn(async move {
                    let response = client.get(url).send().await?;
                    let status = response.status();
                    response.bytes().await?;
                    Ok::<_, reqwest_middleware::Error>(status)
                })
            })
            .collect();
        for call in calls {
            let status = call.await.unwrap().expect("the API answered over HTTP/2");
            assert_eq!(status, 200);
        }
    };

    burst().await;
    assert_eq!(idm.token_requests(), 1, "cold start");

    // A token that expires soon, taken outside any burst: log out (no token request),
    // log in again with a 2 s lifetime, and let it expire with nothing in flight.
    manager.logout().await.unwrap();
    idm.set_access_ttl(Duration::from_secs(2));
    let short = manager.access_token().await.unwrap();
    assert_eq!(idm.token_requests(), 2, "the login after logout");
    idm.set_access_ttl(Duration::from_secs(3600)); // the next token outlives the test
    tokio::time::sleep(short.expires_in()).await;
    assert!(
        manager.cached().is_none(),
        "the 2 s token has not expired by its own expiry instant"
    );
    burst().await;
    assert_eq!(idm.token_requests(), 3, "all expired at once");

    let token = manager.access_token().await.unwrap();
    idm.revoke_access_token(token.secret());
    burst().await;
    assert_eq!(
        idm.token_requests(),
        4,
        "every request 401 for the same token"
    );
}
