//! The Tower layer: step-by-step 401 sequences with `tower_test`, and counts over the
//! in-memory fake API, under paused time.

use std::time::Duration;

use bodhi_auth::testing::{FakeApi, FakeIdm};
use bodhi_auth::{
    AccessToken, BoxError, CloneBodyFn, Credentials, ErrorKind, IdmAuthLayer, TokenManager,
    TokenScope,
};
use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use tower_test::mock;

mod support;
use support::manager;

type Body = Full<Bytes>;

/// The origin every request here goes to.
fn scope() -> TokenScope {
    TokenScope::origins(["https://api.bodhi.example"]).unwrap()
}

fn request() -> Request<Body> {
    Request::get("https://api.bodhi.example/stores")
        .body(Full::new(Bytes::from_static(b"payload")))
        .unwrap()
}

fn status(code: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::default());
    *response.status_mut() = code;
    response
}

fn bearer<B>(request: &Request<B>) -> String {
    request.headers()[AUTHORIZATION]
        .to_str()
        .unwrap()
        .to_owned()
}

fn header_of(token: &AccessToken) -> String {
    format!("Bearer {}", token.secret())
}

#[tokio::test(start_paused = true)]
async fn a_401_invalidates_token_a_and_resends_once_with_token_b() {
    let idm = FakeIdm::new();
    let manager = manager(&idm);
    let (mock, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let mut service = IdmAuthLayer::with_manager(manager.clone(), scope()).layer(mock);
    let call = tokio::spawn(service.ready().await.unwrap().call(request()));

    let (first, respond) = handle.next_request().await.unwrap();
    let token_a = manager.cached().unwrap();
    assert_eq!(bearer(&first), header_of(&token_a));
    assert!(first.headers()[AUTHORIZATION].is_sensitive());
    respond.send_response(status(StatusCode::UNAUTHORIZED));

    let (second, respond) = handle.next_request().await.unwrap();
    let token_b = manager.cached().unwrap();
    assert!(!token_b.same_token(&token_a));
    assert_eq!(bearer(&second), header_of(&token_b));
    assert_eq!(second.uri(), first.uri());
    assert_eq!(second.method(), first.method());
    assert_eq!(
        http_body_util::BodyExt::collect(second.into_body())
            .await
            .unwrap()
            .to_bytes(),
        "payload"
    );
    respond.send_response(status(StatusCode::OK));

    assert_eq!(call.await.unwrap().unwrap().status(), StatusCode::OK);
    assert_eq!(idm.token_requests(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_second_401_is_returned_as_it_is() {
    let idm = FakeIdm::new();
    let (mock, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let mut service = IdmAuthLayer::with_manager(manager(&idm), scope()).layer(mock);
    let call = tokio::spawn(service.ready().await.unwrap().call(request()));
    for _ in 0..2 {
        let (_, respond) = handle.next_request().await.unwrap();
        respond.send_response(status(StatusCode::UNAUTHORIZED));
    }
    assert_eq!(
        call.await.unwrap().unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    // The call has ended, so anything it sent is already queued: one poll tells.
    assert!(
        !matches!(handle.poll_request(), std::task::Poll::Ready(Some(_))),
        "no third send"
    );
    assert_eq!(idm.token_requests(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_403_is_not_a_reason_to_log_in_again() {
    let idm = FakeIdm::new();
    let manager = manager(&idm);
    let (mock, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let mut service = IdmAuthLayer::with_manager(manager.clone(), scope()).layer(mock);
    let call = tokio::spawn(service.ready().await.unwrap().call(request()));
    let (_, respond) = handle.next_request().await.unwrap();
    let token = manager.cached().unwrap();
    respond.send_response(status(StatusCode::FORBIDDEN));
    assert_eq!(call.await.unwrap().unwrap().status(), StatusCode::FORBIDDEN);
    assert!(manager.cached().unwrap().same_token(&token));
    assert_eq!(idm.token_requests(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_callers_own_authorization_header_passes_untouched_without_a_login() {
    let idm = FakeIdm::new();
    let (mock, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let mut service = IdmAuthLayer::with_manager(manager(&idm), scope()).layer(mock);
    let mut own = request();
    own.headers_mut()
        .insert(AUTHORIZATION, "Basic dXNlcjpwYXNz".parse().unwrap());
    let call = tokio::spawn(service.ready().await.unwrap().call(own));
    let (seen, respond) = handle.next_request().await.unwrap();
    assert_eq!(bearer(&seen), "Basic dXNlcjpwYXNz");
    respond.send_response(status(StatusCode::UNAUTHORIZED));
    assert_eq!(
        call.await.unwrap().unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(idm.token_requests(), 0);
}

/// A body type the crate cannot know, so it cannot be copied by default.
#[derive(Clone)]
struct Opaque;

fn opaque() -> Request<Opaque> {
    Request::get("https://api.bodhi.example/stores")
        .body(Opaque)
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_body_that_cannot_be_copied_gets_the_401_back_and_the_next_request_a_new_token() {
    let idm = FakeIdm::new();
    let manager = manager(&idm);
    let (mock, mut handle) = mock::pair::<Request<Opaque>, Response<Body>>();
    let mut service = IdmAuthLayer::with_manager(manager.clone(), scope()).layer(mock);
    let call = tokio::spawn(service.ready().await.unwrap().call(opaque()));
    let (first, respond) = handle.next_request().await.unwrap();
    respond.send_response(status(StatusCode::UNAUTHORIZED));
    assert_eq!(
        call.await.unwrap().unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    let call = tokio::spawn(service.ready().await.unwrap().call(opaque()));
    let (second, respond) = handle.next_request().await.unwrap();
    assert_ne!(
        bearer(&second),
        bearer(&first),
        "the rejected token was dropped"
    );
    respond.send_response(status(StatusCode::OK));
    assert_eq!(call.await.unwrap().unwrap().status(), StatusCode::OK);
    assert_eq!(idm.token_requests(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_clone_body_hook_makes_any_body_resendable() {
    let idm = FakeIdm::new();
    let (mock, mut handle) = mock::pair::<Request<Opaque>, Response<Body>>();
    let mut service = IdmAuthLayer::with_manager(manager(&idm), scope())
        .replay(CloneBodyFn::new(|body: &Opaque| Some(body.clone())))
        .layer(mock);
    let call = tokio::spawn(service.ready().await.unwrap().call(opaque()));
    let (_, respond) = handle.next_request().await.unwrap();
    respond.send_response(status(StatusCode::UNAUTHORIZED));
    let (_, respond) = handle.next_request().await.unwrap();
    respond.send_response(status(StatusCode::OK));
    assert_eq!(call.await.unwrap().unwrap().status(), StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn resending_can_be_turned_off() {
    let idm = FakeIdm::new();
    let manager = manager(&idm);
    let (mock, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let mut service = IdmAuthLayer::with_manager(manager.clone(), scope())
        .resend(false)
        .layer(mock);
    let call = tokio::spawn(service.ready().await.unwrap().call(request()));
    let (_, respond) = handle.next_request().await.unwrap();
    let rejected = manager.cached().unwrap();
    respond.send_response(status(StatusCode::UNAUTHORIZED));
    assert_eq!(
        call.await.unwrap().unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert!(
        manager.cached().is_none_or(|t| !t.same_token(&rejected)),
        "still invalidated"
    );
}

#[tokio::test(start_paused = true)]
async fn a_token_failure_is_a_bodhi_auth_error_inside_the_box_error() {
    let idm = FakeIdm::new();
    let manager = TokenManager::builder(Credentials::new("user", "wrong"))
        .fake_idm(&idm)
        .build()
        .unwrap();
    let service = IdmAuthLayer::with_manager(manager, scope()).layer(FakeApi::new(&idm));
    let error: BoxError = service.oneshot(request()).await.unwrap_err();
    let error = error.downcast::<bodhi_auth::Error>().unwrap();
    assert_eq!(error.kind(), ErrorKind::InvalidCredentials);
}

// Counts ----------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn thousand_concurrent_requests_at_cold_start_cause_one_login() {
    let idm = FakeIdm::new();
    idm.set_latency(Duration::from_millis(50));
    let api = FakeApi::new(&idm);
    let service = ServiceBuilder::new()
        .layer(IdmAuthLayer::with_manager(manager(&idm), scope()))
        .service(api.clone());
    let calls: Vec<_> = (0..1000)
        .map(|_| tokio::spawn(service.clone().oneshot(request())))
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap().status(), StatusCode::OK);
    }
    assert_eq!(idm.token_requests(), 1);
    assert_eq!(api.requests(), 1000);
}

#[tokio::test(start_paused = true)]
async fn thousand_concurrent_401s_for_one_token_cause_one_new_login_and_one_resend_each() {
    let idm = FakeIdm::new();
    idm.set_latency(Duration::from_millis(50));
    let api = FakeApi::new(&idm);
    let api_for_service = api.clone();
    let manager = manager(&idm);
    // The API answers after 10 ms, so all 1,000 are sent with the old token first.
    let slow_api = tower::service_fn(move |request: Request<Body>| {
        let api = api_for_service.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok::<_, std::convert::Infallible>(api.respond(request.headers().get(AUTHORIZATION)))
        }
    });
    let service = ServiceBuilder::new()
        .layer(IdmAuthLayer::with_manager(manager.clone(), scope()))
        .service(slow_api);
    let token = manager.access_token().await.unwrap();
    idm.revoke_access_token(token.secret());
    let calls: Vec<_> = (0..1000)
        .map(|_| tokio::spawn(service.clone().oneshot(request())))
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap().status(), StatusCode::OK);
    }
    assert_eq!(
        idm.token_requests(),
        2,
        "the login, then one refresh for all 1,000"
    );
    assert!(
        (1001..=2000).contains(&api.requests()),
        "{}",
        api.requests()
    );
    assert_eq!(api.unauthorized(), 1000);
}

#[tokio::test(start_paused = true)]
async fn an_api_that_rejects_every_token_costs_one_relogin_per_interval() {
    let idm = FakeIdm::new();
    let api = FakeApi::new(&idm);
    api.set_reject_all(true);
    let manager = TokenManager::builder(Credentials::new("user", "secret"))
        .fake_idm(&idm)
        .min_relogin_interval(Duration::from_secs(5))
        .build()
        .unwrap();
    let service = ServiceBuilder::new()
        .layer(IdmAuthLayer::with_manager(manager, scope()))
        .service(api.clone());
    for _ in 0..100 {
        let response = service.clone().oneshot(request()).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        idm.token_requests(),
        2,
        "the login and one immediate re-login"
    );
    for _ in 0..3 {
        tokio::time::advance(Duration::from_secs(5)).await;
        for _ in 0..10 {
            service.clone().oneshot(request()).await.unwrap();
        }
    }
    assert_eq!(idm.token_requests(), 5, "plus one per 5 s interval");
}

#[tokio::test(start_paused = true)]
async fn a_layer_and_a_middleware_on_one_manager_share_one_login() {
    let idm = FakeIdm::new();
    let manager = manager(&idm);
    let layer = IdmAuthLayer::with_manager(manager.clone(), scope());
    let middleware = bodhi_auth::IdmAuthMiddleware::with_manager(manager, scope());
    let a = layer.manager().access_token().await.unwrap();
    let b = middleware.manager().access_token().await.unwrap();
    assert!(a.same_token(&b));
    assert_eq!(idm.token_requests(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_oneshot_service_that_owns_the_only_manager_still_resends_after_a_401() {
    // Nothing outside the service keeps the manager: `oneshot` drops the service right
    // after `call`, before the 401 arrives.
    let idm = FakeIdm::new();
    let api = FakeApi::new(&idm);
    for cold in [true, false] {
        let manager = manager(&idm);
        if !cold {
            manager.access_token().await.unwrap(); // the cached path, not the waiting one
        }
        let service = IdmAuthLayer::with_manager(manager, scope()).layer(api.clone());
        api.reject_next(1);
        let response = service.oneshot(request()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "cold start: {cold}");
    }
}
