//! `FakeApi` scripting: queued and routed replies, and the request log, in memory under
//! paused time and over loopback HTTP.

use bodhi_auth::testing::{FakeApi, FakeIdm, Reply};
use bodhi_auth::{AccessToken, IdmAuthLayer, IdmAuthMiddleware, TokenScope};
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{Layer, ServiceExt};

mod support;
use support::manager;

fn get(path: &str, token: Option<&AccessToken>) -> Request<()> {
    let mut request = Request::get(path);
    if let Some(token) = token {
        request = request.header(AUTHORIZATION, token.header_value());
    }
    request.body(()).unwrap()
}

async fn body_of(response: http::Response<Full<Bytes>>) -> Bytes {
    response.into_body().collect().await.unwrap().to_bytes()
}

#[tokio::test(start_paused = true)]
async fn queued_replies_answer_the_next_requests_in_order_whatever_their_token() {
    let idm = FakeIdm::new();
    let api = FakeApi::new(&idm);
    let token = manager(&idm).access_token().await.unwrap();
    api.enqueue(Reply::status(503).header(RETRY_AFTER, HeaderValue::from(30)));
    api.enqueue(Reply::json(200, "[]"));

    let busy = api.answer(&get("/stores", Some(&token)));
    assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(busy.headers()[RETRY_AFTER], "30");
    let without_token = api.answer(&get("/anything", None));
    assert_eq!(without_token.status(), StatusCode::OK, "the script wins");
    assert_eq!(without_token.headers()[CONTENT_TYPE], "application/json");
    assert_eq!(body_of(without_token).await, "[]");

    // The queue is empty: the usual answers again.
    assert_eq!(
        api.answer(&get("/", None)).status(),
        StatusCode::UNAUTHORIZED
    );
    let usual = api.answer(&get("/", Some(&token)));
    assert_eq!(body_of(usual).await, r#"{"user":"user"}"#);
    assert_eq!(api.requests(), 4);
    assert_eq!(api.unauthorized(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_route_answers_its_method_and_path_for_a_live_token_only() {
    let idm = FakeIdm::new();
    let api = FakeApi::new(&idm);
    let token = manager(&idm).access_token().await.unwrap();
    api.route(Method::GET, "/stores", Reply::json(200, "old"));
    api.route(Method::GET, "/stores", Reply::json(200, r#"[{"id":7}]"#)); // replaces

    let routed = api.answer(&get("/stores?page=2", Some(&token)));
    assert_eq!(
        body_of(routed).await,
        r#"[{"id":7}]"#,
        "the query is ignored"
    );
    let no_token = api.answer(&get("/stores", None));
    assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        no_token.headers()[WWW_AUTHENTICATE],
        r#"Bearer realm="bodhi", error="invalid_token""#
    );
    let other_path = api.answer(&get("/employees", Some(&token)));
    assert_eq!(body_of(other_path).await, r#"{"user":"user"}"#);
    let post = Request::post("/stores")
        .header(AUTHORIZATION, token.header_value())
        .body(())
        .unwrap();
    assert_eq!(body_of(api.answer(&post)).await, r#"{"user":"user"}"#);
    // A forced 401 comes before the route, as it did before routes existed.
    api.reject_next(1);
    let forced = api.answer(&get("/stores", Some(&token)));
    assert_eq!(forced.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(start_paused = true)]
async fn a_status_that_is_not_one_becomes_500() {
    let idm = FakeIdm::new();
    let api = FakeApi::new(&idm);
    api.enqueue(Reply::status(1000));
    assert_eq!(
        api.answer(&get("/", None)).status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

#[tokio::test(start_paused = true)]
async fn the_log_is_off_by_default_and_records_each_request_with_its_answer() {
    let idm = FakeIdm::new();
    let api = FakeApi::new(&idm);
    let token = manager(&idm).access_token().await.unwrap();
    api.answer(&get("/before", Some(&token)));
    assert!(api.recorded().is_empty());

    api.set_recording(true);
    api.enqueue(Reply::status(503));
    api.answer(&get("/a", Some(&token)));
    tokio::time::advance(std::time::Duration::from_secs(3)).await;
    api.answer(&get("/b", None));
    let log = api.recorded();
    assert_eq!(log.len(), 2);
    assert_eq!((log[0].path(), log[0].status.as_u16()), ("/a", 503));
    assert_eq!(log[0].bearer(), Some(token.secret()));
    assert_eq!(log[0].body, None, "in memory, the body is not read");
    assert_eq!((log[1].path(), log[1].status.as_u16()), ("/b", 401));
    assert_eq!(log[1].bearer(), None);
    assert_eq!(log[1].at - log[0].at, std::time::Duration::from_secs(3));

    let shown = format!("{log:?}");
    assert!(!shown.contains(token.secret()), "{shown}");
    assert!(
        shown.contains("authorization"),
        "the header's name is shown"
    );

    api.set_recording(false);
    assert!(api.recorded().is_empty());
}

#[tokio::test]
async fn over_http_the_log_holds_each_body_and_the_middleware_resends_after_a_scripted_401() {
    let idm = FakeIdm::new();
    let api = FakeApi::new(&idm);
    api.set_recording(true);
    api.route(Method::POST, "/stores", Reply::json(201, r#"{"id":8}"#));
    let server = api.serve().await.unwrap();
    let scope = TokenScope::origins([server.url("")]).unwrap();
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(IdmAuthMiddleware::with_manager(manager(&idm), scope))
        .build();

    api.enqueue(Reply::unauthorized());
    let response = client
        .post(server.url("/stores"))
        .body("new store")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.text().await.unwrap(), r#"{"id":8}"#);

    let log = api.recorded();
    assert_eq!(log.len(), 2, "the 401, then the resend");
    assert_eq!(log[0].status, StatusCode::UNAUTHORIZED);
    assert_eq!(log[1].status, StatusCode::CREATED);
    for request in &log {
        assert_eq!(request.method, Method::POST);
        assert_eq!(request.body.as_deref(), Some(&b"new store"[..]));
    }
    assert_ne!(log[0].bearer(), log[1].bearer(), "resent with a new token");
    assert_eq!(idm.token_requests(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_layer_hands_a_scripted_503_back_and_recovers_from_a_scripted_401() {
    let idm = FakeIdm::new();
    let api = FakeApi::new(&idm);
    api.set_recording(true);
    let scope = TokenScope::origins(["https://api.bodhi.example"]).unwrap();
    let service = IdmAuthLayer::with_manager(manager(&idm), scope).layer(api.clone());
    let request = || {
        Request::get("https://api.bodhi.example/stores")
            .body(Full::<Bytes>::default())
            .unwrap()
    };

    api.enqueue(Reply::status(503));
    let response = service.clone().oneshot(request()).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    api.enqueue(Reply::unauthorized());
    let response = service.clone().oneshot(request()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let statuses: Vec<u16> = api.recorded().iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses, [503, 401, 200]);
    assert_eq!(idm.token_requests(), 2);
}
