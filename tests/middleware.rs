//! The reqwest middleware against the fake IDM and API on loopback HTTP. Real time:
//! counts, never durations.

use std::time::Duration;

use bodhi_auth::testing::{FakeApi, FakeIdm, FakeServer};
use bodhi_auth::{
    Credentials, ErrorKind, IdmAuthMiddleware, TokenManager, TokenManagerBuilder, TokenScope,
};
use http::header::AUTHORIZATION;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};

struct Fixture {
    idm: FakeIdm,
    api: FakeApi,
    manager: TokenManager,
    client: ClientWithMiddleware,
    api_server: FakeServer,
    _idm_server: FakeServer,
}

async fn fixture(configure: impl FnOnce(TokenManagerBuilder) -> TokenManagerBuilder) -> Fixture {
    let idm = FakeIdm::new();
    let idm_server = idm.serve().await.unwrap();
    let api = FakeApi::new(&idm);
    let api_server = api.serve().await.unwrap();
    let manager = configure(
        TokenManager::builder(Credentials::new("user", "secret")).token_url(idm_server.token_url()),
    )
    .build()
    .unwrap();
    let scope = TokenScope::origins([api_server.url("")]).unwrap();
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(IdmAuthMiddleware::with_manager(manager.clone(), scope))
        .build();
    Fixture {
        idm,
        api,
        manager,
        client,
        api_server,
        _idm_server: idm_server,
    }
}

impl Fixture {
    fn url(&self) -> String {
        self.api_server.url("/stores")
    }
}

#[tokio::test]
async fn sets_the_token_and_resends_once_after_a_401() {
    let f = fixture(|b| b).await;
    let response = f.client.get(f.url()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), r#"{"user":"user"}"#);
    let first = f.manager.cached().unwrap();

    f.api.reject_next(1);
    let response = f
        .client
        .post(f.url())
        .body("replayable")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(f.api.requests(), 3);
    assert_eq!(f.idm.token_requests(), 2);
    assert!(!f.manager.cached().unwrap().same_token(&first));
    let stats = f.manager.stats();
    assert_eq!((stats.rejections, stats.resends), (1, 1));
}

#[tokio::test]
async fn a_second_401_is_returned_as_it_is() {
    let f = fixture(|b| b).await;
    f.api.reject_next(2);
    let response = f.client.get(f.url()).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(f.api.requests(), 2);
}

#[tokio::test]
async fn a_callers_own_authorization_header_passes_untouched_without_a_login() {
    let f = fixture(|b| b).await;
    let response = f
        .client
        .get(f.url())
        .header(AUTHORIZATION, "Bearer not-ours")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(f.api.requests(), 1, "not resent");
    assert_eq!(f.idm.token_requests(), 0);
}

#[tokio::test]
async fn a_streaming_body_gets_the_401_back_and_the_next_request_a_new_token() {
    let f = fixture(|b| b).await;
    f.client.get(f.url()).send().await.unwrap();
    let rejected = f.manager.cached().unwrap();
    f.api.reject_next(1);
    let chunks: Vec<Result<&'static str, std::io::Error>> = vec![Ok("a"), Ok("b")];
    let stream = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let response = f.client.post(f.url()).body(stream).send().await.unwrap();
    assert_eq!(response.status(), 401, "a stream cannot be resent");
    assert_eq!(f.api.requests(), 2);
    assert!(f.manager.cached().is_none_or(|t| !t.same_token(&rejected)));
    assert_eq!(f.client.get(f.url()).send().await.unwrap().status(), 200);
    assert_eq!(f.idm.token_requests(), 2);
}

#[tokio::test]
async fn a_token_failure_is_a_middleware_error_wrapping_a_bodhi_auth_error() {
    let f = fixture(|b| b).await;
    f.manager.set_credentials(Credentials::new("user", "wrong"));
    let error = f.client.get(f.url()).send().await.unwrap_err();
    let reqwest_middleware::Error::Middleware(error) = error else {
        panic!("expected a middleware error, got {error:?}");
    };
    let error = error.downcast_ref::<bodhi_auth::Error>().unwrap();
    assert_eq!(error.kind(), ErrorKind::InvalidCredentials);
    assert_eq!(f.api.requests(), 0);
}

// Counts ----------------------------------------------------------------------------------

async fn send_concurrently(f: &Fixture, n: usize) -> Vec<u16> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let client = f.client.clone();
            let url = f.url();
            tokio::spawn(async move { client.get(url).send().await.unwrap().status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_requests_at_cold_start_cause_one_login() {
    let f = fixture(|b| b).await;
    f.idm.set_latency(Duration::from_millis(100));
    let statuses = send_concurrently(&f, 1000).await;
    assert!(statuses.iter().all(|&s| s == 200));
    assert_eq!(f.idm.token_requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_401s_for_one_token_cause_one_new_login() {
    let f = fixture(|b| b).await;
    let token = f.manager.access_token().await.unwrap();
    f.idm.revoke_access_token(token.secret());
    let statuses = send_concurrently(&f, 1000).await;
    assert!(statuses.iter().all(|&s| s == 200));
    assert_eq!(f.idm.token_requests(), 2, "the login, then one refresh");
    assert!(
        (1001..=2000).contains(&f.api.requests()),
        "{}",
        f.api.requests()
    );
}

#[tokio::test]
async fn an_api_that_rejects_every_token_costs_one_relogin_per_interval() {
    let f = fixture(|b| b.min_relogin_interval(Duration::from_secs(3600))).await;
    f.api.set_reject_all(true);
    for _ in 0..100 {
        assert_eq!(f.client.get(f.url()).send().await.unwrap().status(), 401);
    }
    assert_eq!(
        f.idm.token_requests(),
        2,
        "the login and one re-login in the interval"
    );
}
