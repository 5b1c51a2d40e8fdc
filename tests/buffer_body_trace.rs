//! The `debug` event that says why a 401 came back without a resend. One test: it owns
//! the global tracing subscriber.

use std::time::Duration;

use bodhi_auth::testing::{FakeApi, FakeIdm};
use bodhi_auth::{BufferBodyLayer, BufferedBodies, IdmAuthLayer, TokenScope};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body::Frame;
use http_body_util::StreamBody;
use tower::{ServiceBuilder, ServiceExt};

mod support;
use support::{CapturedLogs, builder};

const NOT_RESENT: &str = "not resent: the body cannot be copied";

fn post(
    body: &'static str,
) -> Request<
    StreamBody<impl futures_util::Stream<Item = Result<Frame<Bytes>, std::io::Error>> + Unpin>,
> {
    let chunks = vec![Ok(Frame::data(Bytes::from_static(body.as_bytes())))];
    Request::post("https://api.bodhi.example/stores")
        .body(StreamBody::new(futures_util::stream::iter(chunks)))
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_401_to_a_body_over_the_limit_says_why_it_was_not_resent() {
    let captured = CapturedLogs::install();
    let idm = FakeIdm::new();
    let api = FakeApi::new(&idm);
    let scope = TokenScope::origins(["https://api.bodhi.example"]).unwrap();
    // No re-login throttle: every 401 here may bring a new token.
    let manager = builder(&idm)
        .min_relogin_interval(Duration::ZERO)
        .build()
        .unwrap();
    let layer = IdmAuthLayer::with_manager(manager, scope).replay(BufferedBodies);
    let service = ServiceBuilder::new()
        .layer(BufferBodyLayer::new(4))
        .layer(layer.clone())
        .service(api.clone());
    let count = || captured.text().matches(NOT_RESENT).count();

    api.reject_next(1);
    let response = service.clone().oneshot(post("12345")).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(count(), 1, "{}", captured.text());

    // Within the limit: resent, and no such event.
    api.reject_next(1);
    let response = service.clone().oneshot(post("1234")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(count(), 1);
    assert!(
        captured
            .text()
            .contains("resending the request after a 401")
    );

    // Resending turned off: the body is not the reason, so the event does not say it is.
    let no_resend = ServiceBuilder::new()
        .layer(BufferBodyLayer::new(4))
        .layer(layer.resend(false))
        .service(api.clone());
    api.reject_next(1);
    let response = no_resend.oneshot(post("12345")).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(count(), 1);
}
