//! The layer composed with tower-http's trace and set-header layers and tower's timeout;
//! the trace layer, logging request headers, never shows the token. One test: it owns
//! the global tracing subscriber.

use std::time::Duration;

mod support;

use bodhi_auth::testing::{FakeApi, FakeIdm};
use bodhi_auth::{Credentials, IdmAuthLayer, TokenManager, TokenScope};
use bytes::Bytes;
use http::header::USER_AGENT;
use http::{HeaderValue, Request, StatusCode};
use http_body_util::Full;
use support::CapturedLogs;
use tower::timeout::TimeoutLayer;
use tower::{ServiceBuilder, ServiceExt};
use tower_http::set_header::SetRequestHeaderLayer;
use tower_http::trace::{DefaultMakeSpan, DefaultOnRequest, TraceLayer};
use tracing::Level;

#[tokio::test(start_paused = true)]
async fn composes_with_trace_set_header_and_timeout_and_the_trace_never_shows_the_token() {
    let captured = CapturedLogs::install();

    let idm = FakeIdm::new();
    let api = FakeApi::new(&idm);
    api.reject_next(1); // one 401, so the resend is traced too
    let manager = TokenManager::builder(Credentials::new("user", "secret"))
        .fake_idm(&idm)
        .build()
        .unwrap();
    let service = ServiceBuilder::new()
        .layer(TimeoutLayer::new(Duration::from_secs(10)))
        .layer(SetRequestHeaderLayer::overriding(
            USER_AGENT,
            HeaderValue::from_static("bodhi-auth-test"),
        ))
        .layer(IdmAuthLayer::with_manager(
            manager.clone(),
            TokenScope::origins(["https://api.bodhi.example"]).unwrap(),
        ))
        // Inside the auth layer, so it sees the Authorization header.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(
                    DefaultMakeSpan::new()
                        .level(Level::INFO)
                        .include_headers(true),
                )
                .on_request(DefaultOnRequest::new().level(Level::INFO)),
        )
        .service(api.clone());

    for _ in 0..3 {
        let request = Request::get("https://api.bodhi.example/stores")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = service.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(api.requests(), 4, "three requests and one resend");
    assert_eq!(idm.token_requests(), 2);

    let log = captured.text();
    assert!(log.contains("authorization"), "headers were logged:\n{log}");
    assert!(
        log.contains("bodhi-auth-test"),
        "the set-header layer ran:\n{log}"
    );
    assert!(log.contains("Sensitive"), "{log}");
    let token = manager.cached().unwrap();
    let signature = token.secret().rsplit('.').next().unwrap();
    assert!(!log.contains(signature), "the token leaked:\n{log}");
    for request in idm.requests() {
        if let Some(refresh) = request.field("refresh_token") {
            assert!(!log.contains(refresh));
        }
    }
}
