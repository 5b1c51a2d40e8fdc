//! `BufferBodyLayer`: bodies of any type made replayable up to a limit. Step by step with
//! `tower_test` under paused time, then a gateway over real HTTP whose bodies are hyper's
//! `Incoming` (real time: counts and bytes, never durations).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bodhi_auth::testing::{FakeApi, FakeIdm, FakeServer};
use bodhi_auth::{
    BufferBodyLayer, BufferedBodies, IdmAuthLayer, ReplayBody, ReplayableBody, TokenManager,
    TokenScope,
};
use bytes::Bytes;
use http::header::{AUTHORIZATION, HOST};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Either, Empty};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use tower_test::mock;

mod support;
use support::manager;

/// A body type this crate cannot know, without `Default`: frames given in advance, a
/// size hint of the test's choosing, and a count of the times it was polled.
struct TestBody {
    frames: VecDeque<Result<Frame<Bytes>, io::Error>>,
    hint: SizeHint,
    polls: Arc<AtomicUsize>,
}

impl TestBody {
    /// Data chunks, with no length announced (like a chunked upload).
    fn chunks(chunks: &[&'static str]) -> TestBody {
        TestBody {
            frames: chunks
                .iter()
                .map(|c| Ok(Frame::data(Bytes::from_static(c.as_bytes()))))
                .collect(),
            hint: SizeHint::new(),
            polls: Arc::default(),
        }
    }

    fn hint(mut self, hint: SizeHint) -> TestBody {
        self.hint = hint;
        self
    }

    fn then(mut self, frame: Result<Frame<Bytes>, io::Error>) -> TestBody {
        self.frames.push_back(frame);
        self
    }
}

impl Body for TestBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        Poll::Ready(self.frames.pop_front())
    }

    fn size_hint(&self) -> SizeHint {
        self.hint
    }
}

type Buffered = ReplayableBody<TestBody>;

fn scope() -> TokenScope {
    TokenScope::origins(["https://api.bodhi.example"]).unwrap()
}

fn post(body: TestBody) -> Request<TestBody> {
    Request::post("https://api.bodhi.example/stores")
        .body(body)
        .unwrap()
}

fn status(code: StatusCode) -> Response<()> {
    let mut response = Response::new(());
    *response.status_mut() = code;
    response
}

fn bearer<B>(request: &Request<B>) -> String {
    request.headers()[AUTHORIZATION]
        .to_str()
        .unwrap()
        .to_owned()
}

async fn bytes_of(body: Buffered) -> Bytes {
    body.collect().await.unwrap().to_bytes()
}

/// Sends `body` through `BufferBody` alone and returns what the service below received.
async fn through_buffer(limit: usize, body: TestBody) -> Buffered {
    let (mock, mut handle) = mock::pair::<Request<Buffered>, Response<()>>();
    let mut service = BufferBodyLayer::new(limit).layer(mock);
    let call = tokio::spawn(service.ready().await.unwrap().call(post(body)));
    let (request, respond) = handle.next_request().await.unwrap();
    respond.send_response(status(StatusCode::OK));
    call.await.unwrap().unwrap();
    request.into_body()
}

#[tokio::test(start_paused = true)]
async fn a_streamed_body_within_the_limit_is_resent_intact_after_a_401() {
    let idm = FakeIdm::new();
    let (mock, mut handle) = mock::pair::<Request<Buffered>, Response<()>>();
    let mut service = ServiceBuilder::new()
        .layer(BufferBodyLayer::new(64))
        .layer(IdmAuthLayer::with_manager(manager(&idm), scope()).replay(BufferedBodies))
        .service(mock);
    let body = TestBody::chunks(&["hello ", "world"]);
    let call = tokio::spawn(service.ready().await.unwrap().call(post(body)));

    let (first, respond) = handle.next_request().await.unwrap();
    respond.send_response(status(StatusCode::UNAUTHORIZED));
    let (second, respond) = handle.next_request().await.unwrap();
    respond.send_response(status(StatusCode::OK));
    assert_eq!(call.await.unwrap().unwrap().status(), StatusCode::OK);

    assert_ne!(bearer(&first), bearer(&second), "resent with a new token");
    assert_eq!(bytes_of(first.into_body()).await, "hello world");
    assert_eq!(bytes_of(second.into_body()).await, "hello world");
    assert_eq!(idm.token_requests(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_limit_is_inclusive_and_a_longer_body_streams_on_intact() {
    let at_limit = through_buffer(11, TestBody::chunks(&["hello", " ", "world"])).await;
    assert!(at_limit.is_replayable());
    assert_eq!(bytes_of(at_limit).await, "hello world");

    let over = through_buffer(11, TestBody::chunks(&["hello", " ", "world", "!", "?"])).await;
    assert!(!over.is_replayable());
    assert!(over.try_clone().is_none());
    // What was read while trying comes first, then the rest, in order.
    assert_eq!(bytes_of(over).await, "hello world!?");
}

#[tokio::test(start_paused = true)]
async fn a_body_declared_over_the_limit_is_not_read_before_it_is_sent() {
    let body = TestBody::chunks(&["0123456789", "0123456789"]).hint(SizeHint::with_exact(20));
    let polls = body.polls.clone();
    let received = through_buffer(10, body).await;
    assert_eq!(polls.load(Ordering::SeqCst), 0, "not read by the layer");
    assert!(!received.is_replayable());
    assert_eq!(received.size_hint().exact(), Some(20));
    assert_eq!(bytes_of(received).await, "01234567890123456789");
}

#[tokio::test(start_paused = true)]
async fn an_empty_body_of_any_type_is_passed_on_unread_and_resent_after_a_401() {
    let idm = FakeIdm::new();
    let (mock, mut handle) = mock::pair::<Request<Buffered>, Response<()>>();
    let mut service = ServiceBuilder::new()
        .layer(BufferBodyLayer::new(0))
        .layer(IdmAuthLayer::with_manager(manager(&idm), scope()).replay(BufferedBodies))
        .service(mock);
    // `TestBody` has no `Default`; its hint says there is nothing to read.
    let body = TestBody::chunks(&[]).hint(SizeHint::with_exact(0));
    let polls = body.polls.clone();
    let call = tokio::spawn(service.ready().await.unwrap().call(post(body)));

    let (first, respond) = handle.next_request().await.unwrap();
    assert_eq!(polls.load(Ordering::SeqCst), 0, "not read by the layer");
    respond.send_response(status(StatusCode::UNAUTHORIZED));
    let (second, respond) = handle.next_request().await.unwrap();
    respond.send_response(status(StatusCode::OK));
    assert_eq!(call.await.unwrap().unwrap().status(), StatusCode::OK);
    assert_ne!(bearer(&first), bearer(&second));
    assert_eq!(bytes_of(first.into_body()).await, "");
    assert_eq!(
        polls.load(Ordering::SeqCst),
        1,
        "the first send read the original"
    );
    assert_eq!(bytes_of(second.into_body()).await, "");
}

#[tokio::test(start_paused = true)]
async fn trailers_are_kept_and_copied() {
    let mut trailers = HeaderMap::new();
    trailers.insert("x-checksum", HeaderValue::from_static("abc"));
    let body = TestBody::chunks(&["data"]).then(Ok(Frame::trailers(trailers)));
    let received = through_buffer(64, body).await;
    let copy = BufferedBodies.clone_body(&received).unwrap();
    for body in [received, copy] {
        let collected = body.collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["x-checksum"], "abc");
        assert_eq!(collected.to_bytes(), "data");
    }
}

#[tokio::test(start_paused = true)]
async fn a_body_that_fails_while_read_reaches_the_service_as_it_would_have() {
    let body = TestBody::chunks(&["ab"]).then(Err(io::Error::other("client went away")));
    let mut received = through_buffer(64, body).await;
    assert!(!received.is_replayable());
    let first = received.frame().await.unwrap().unwrap();
    assert_eq!(first.into_data().unwrap(), "ab");
    let error = received.frame().await.unwrap().unwrap_err();
    assert_eq!(error.to_string(), "client went away");
    assert!(received.frame().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn copies_share_the_collected_bytes_and_show_no_content_in_debug() {
    let received = through_buffer(64, TestBody::chunks(&["secret-ish payload"])).await;
    let shown = format!("{received:?}");
    assert!(!shown.contains("payload"), "{shown}");
    assert!(shown.contains("buffered"), "{shown}");
    let copy = received.try_clone().unwrap();
    let (a, b) = (bytes_of(received).await, bytes_of(copy).await);
    assert_eq!(a.as_ptr(), b.as_ptr(), "one buffer, shared");
}

// A gateway over real HTTP ------------------------------------------------------------------

/// The caller's request, addressed to the API: the caller's `Authorization` and `Host`
/// were for the gateway.
fn to_api<B>(mut request: Request<B>, api: &Uri) -> Result<Request<B>, http::Error> {
    request.headers_mut().remove(AUTHORIZATION);
    request.headers_mut().remove(HOST);
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let uri = Uri::builder()
        .scheme(api.scheme_str().unwrap_or("https"))
        .authority(api.authority().map_or("", |a| a.as_str()))
        .path_and_query(path)
        .build()?;
    *request.uri_mut() = uri;
    Ok(request)
}

struct Gateway {
    url: String,
    idm: FakeIdm,
    api: FakeApi,
    api_server: FakeServer,
    manager: TokenManager,
    _server: tokio::task::JoinHandle<()>,
}

/// A gateway on loopback: hyper serves callers (`Incoming` bodies), and forwards each
/// request through `BufferBodyLayer` and `IdmAuthLayer` to a `FakeApi` with a
/// hyper-util client.
async fn gateway(limit: usize) -> Gateway {
    let idm = FakeIdm::new();
    let api = FakeApi::new(&idm);
    api.set_recording(true);
    let api_server = api.serve().await.unwrap();
    let manager = manager(&idm);
    let api_uri: Uri = api_server.url("/").parse().unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<ReplayableBody<Incoming>>();
    let forward = ServiceBuilder::new()
        .layer(BufferBodyLayer::new(limit))
        .layer(
            IdmAuthLayer::with_manager(
                manager.clone(),
                TokenScope::origins([api_server.url("")]).unwrap(),
            )
            .replay(BufferedBodies),
        )
        .service(client);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/stores", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let forward = forward.clone();
            let api_uri = api_uri.clone();
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let forward = forward.clone();
                let api_uri = api_uri.clone();
                async move {
                    let answer = match to_api(request, &api_uri) {
                        Ok(request) => forward.oneshot(request).await,
                        Err(error) => Err(error.into()),
                    };
                    // A failure to reach the API is the gateway's 502.
                    Ok::<_, Infallible>(match answer {
                        Ok(response) => response.map(Either::Left),
                        Err(_) => {
                            let mut response = Response::new(Either::Right(Empty::new()));
                            *response.status_mut() = StatusCode::BAD_GATEWAY;
                            response
                        }
                    })
                }
            });
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Gateway {
        url,
        idm,
        api,
        api_server,
        manager,
        _server: server,
    }
}

#[tokio::test]
async fn a_gateway_resends_incoming_bodies_within_the_limit_after_a_401() {
    let caller = reqwest::Client::new();
    let chunks: Vec<Result<&'static str, io::Error>> = vec![Ok("chunked "), Ok("upload")];
    let bodies = [
        // With a Content-Length, and without one (chunked): both are collected.
        reqwest::Body::from("sized upload"),
        reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)),
    ];
    for (body, expected) in bodies.into_iter().zip(["sized upload", "chunked upload"]) {
        // A gateway each: a second 401-driven login would wait for the re-login throttle.
        let g = gateway(1024).await;
        g.api.reject_next(1); // the API refuses the gateway's first token
        let response = caller
            .post(&g.url)
            .header(AUTHORIZATION, "Basic Z2F0ZXdheTp1c2Vy") // for the gateway, not the API
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{expected}");
        assert_eq!(response.text().await.unwrap(), r#"{"user":"user"}"#);

        let log = g.api.recorded();
        assert_eq!(log.len(), 2, "the 401, then the resend: {log:?}");
        assert_eq!(log[0].status, StatusCode::UNAUTHORIZED);
        assert_eq!(log[1].status, StatusCode::OK);
        assert_ne!(log[0].bearer(), log[1].bearer(), "a new token");
        for request in &log {
            assert_eq!(request.body.as_deref(), Some(expected.as_bytes()));
            assert!(request.bearer().is_some(), "our token, not the caller's");
            assert_eq!(request.headers[HOST], g.api_server.addr().to_string());
            assert_eq!(request.path(), "/stores");
        }
        assert_eq!(g.idm.token_requests(), 2, "a login, and one after the 401");
    }
}

#[tokio::test]
async fn a_gateway_streams_a_body_over_the_limit_and_hands_its_401_back() {
    let g = gateway(1024).await;
    let caller = reqwest::Client::new();
    assert_eq!(caller.get(&g.url).send().await.unwrap().status(), 200);
    let rejected = g.manager.cached().unwrap();
    let large = "x".repeat(4096);

    g.api.reject_next(1);
    let response = caller
        .post(&g.url)
        .body(large.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "not resent: the body was not kept");
    let log = g.api.recorded();
    assert_eq!(log.len(), 2);
    assert_eq!(
        log[1].body.as_deref(),
        Some(large.as_bytes()),
        "streamed intact"
    );
    assert!(g.manager.cached().is_none_or(|t| !t.same_token(&rejected)));

    // The next request gets a new token. Its body has no length: the gateway reads it up
    // to the limit, then sends what it read and streams the rest.
    let chunks: Vec<Result<String, io::Error>> =
        vec![Ok(large[..1000].into()), Ok(large[1000..].into())];
    let stream = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let response = caller.post(&g.url).body(stream).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(g.api.recorded()[2].body.as_deref(), Some(large.as_bytes()));
    assert_eq!(g.idm.token_requests(), 2);
}
