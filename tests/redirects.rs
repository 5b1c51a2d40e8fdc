//! Redirects through both front ends: who gets the token, and what a 401 from a redirect
//! target means. Tower with tower-http's `FollowRedirectLayer` below and above the layer
//! (in memory, paused time); reqwest, which follows redirects below the middleware, over
//! loopback sites. Every count here is of sequential requests: no timing involved.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bodhi_auth::testing::FakeIdm;
use bodhi_auth::{IdmAuthLayer, IdmAuthMiddleware, TokenScope};
use bytes::Bytes;
use http::header::{AUTHORIZATION, LOCATION};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_http::follow_redirect::FollowRedirectLayer;

mod support;
use support::manager;

/// Every request a web of sites received, as `"<method> <uri> <with token|no token>"`.
type Seen = Arc<Mutex<Vec<String>>>;

fn line(method: &Method, uri: &str, headers: &HeaderMap) -> String {
    let token = if headers.contains_key(AUTHORIZATION) {
        "with token"
    } else {
        "no token"
    };
    format!("{method} {uri} {token}")
}

/// An answer: a status and, for a redirect, its `Location`.
type Route = fn(&Method, &str) -> (StatusCode, Option<&'static str>);

fn answer(status: StatusCode, location: Option<&str>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::<Bytes>::default());
    *response.status_mut() = status;
    if let Some(location) = location {
        response
            .headers_mut()
            .insert(LOCATION, location.parse().unwrap());
    }
    response
}

/// In-memory sites: `route` answers each absolute URI; every request is recorded.
fn web(
    seen: &Seen,
    route: Route,
) -> impl tower::Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    let seen = seen.clone();
    tower::service_fn(move |request: Request<Full<Bytes>>| {
        let uri = request.uri().to_string();
        seen.lock()
            .unwrap()
            .push(line(request.method(), &uri, request.headers()));
        let (status, location) = route(request.method(), &uri);
        std::future::ready(Ok::<_, Infallible>(answer(status, location)))
    })
}

fn seen(seen: &Seen) -> Vec<String> {
    seen.lock().unwrap().clone()
}

const REPORT: &str = "https://api.bodhi.example/report";
const ELSEWHERE: &str = "https://files.elsewhere.example/report";

/// `REPORT` redirects to another origin, which answers 401.
fn report_elsewhere(_: &Method, uri: &str) -> (StatusCode, Option<&'static str>) {
    if uri == REPORT {
        (StatusCode::FOUND, Some(ELSEWHERE))
    } else {
        (StatusCode::UNAUTHORIZED, None)
    }
}

/// Post/Redirect/Get on one origin: the POST is accepted (303), the GET answers 401.
fn post_redirect_get(method: &Method, uri: &str) -> (StatusCode, Option<&'static str>) {
    if method == Method::POST && uri == "https://api.bodhi.example/orders" {
        (StatusCode::SEE_OTHER, Some("/orders/1"))
    } else {
        (StatusCode::UNAUTHORIZED, None)
    }
}

fn post(uri: &str) -> Request<Full<Bytes>> {
    Request::post(uri)
        .body(Full::new(Bytes::from_static(b"order")))
        .unwrap()
}

fn get(uri: &str) -> Request<Full<Bytes>> {
    Request::get(uri).body(Full::default()).unwrap()
}

// Tower, FollowRedirect below the layer: the layer sees the final URI in the response's
// `RequestUri` extension.

fn bodhi() -> TokenScope {
    TokenScope::origins(["https://api.bodhi.example"]).unwrap()
}

// With resend on, the layer compares the final URI with its copy of the request; with
// resend off it keeps no copy, only the request's origin: both are tested.

#[tokio::test(start_paused = true)]
async fn a_401_from_another_origin_behind_a_redirect_keeps_the_token_and_is_not_resent() {
    // With a scope, the request's origin key is the scope's; with `any_origin()` the
    // service computes it and remembers it for the next request to the same origin: both
    // are tested, twice through one service instance so the second is the remembered key.
    for (resend, scope) in [
        (true, bodhi()),
        (false, bodhi()),
        (false, TokenScope::any_origin()),
    ] {
        let idm = FakeIdm::new();
        let manager = manager(&idm);
        let log = Seen::default();
        let mut service = ServiceBuilder::new()
            .layer(IdmAuthLayer::with_manager(manager.clone(), scope.clone()).resend(resend))
            .layer(FollowRedirectLayer::new())
            .service(web(&log, report_elsewhere));
        let token = manager.access_token().await.unwrap();

        for _ in 0..2 {
            let response = service.ready().await.unwrap().call(get(REPORT)).await;
            assert_eq!(response.unwrap().status(), StatusCode::UNAUTHORIZED);
        }
        let once = [
            format!("GET {REPORT} with token"),
            format!("GET {ELSEWHERE} no token"),
        ];
        assert_eq!(
            seen(&log),
            [once.clone(), once].concat(),
            "resend {resend}, {scope:?}: the other origin never saw the token, so its 401 is not about it"
        );
        assert!(
            manager.cached().unwrap().same_token(&token),
            "resend {resend}, {scope:?}: token kept"
        );
        assert_eq!(idm.token_requests(), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn a_post_redirected_to_a_401_on_its_own_origin_is_sent_once_and_drops_the_token() {
    for resend in [true, false] {
        let idm = FakeIdm::new();
        let manager = manager(&idm);
        let log = Seen::default();
        let service = ServiceBuilder::new()
            .layer(IdmAuthLayer::with_manager(manager.clone(), bodhi()).resend(resend))
            .layer(FollowRedirectLayer::new())
            .service(web(&log, post_redirect_get));
        let token = manager.access_token().await.unwrap();

        let response = service
            .oneshot(post("https://api.bodhi.example/orders"))
            .await
            .unwrap();

        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            seen(&log),
            [
                "POST https://api.bodhi.example/orders with token",
                "GET https://api.bodhi.example/orders/1 with token",
            ],
            "resend {resend}: the accepted POST is not sent again"
        );
        assert!(
            manager.cached().is_none_or(|t| !t.same_token(&token)),
            "resend {resend}: our own origin refused the token: it is dropped"
        );
    }
}

// Who gets the token when FollowRedirect sits above or below the layer, with a scope of
// Bodhi's origin and with `any_origin()`.

/// `REPORT` redirects to another origin, which answers 200.
fn report_moved(_: &Method, uri: &str) -> (StatusCode, Option<&'static str>) {
    if uri == REPORT {
        (StatusCode::FOUND, Some(ELSEWHERE))
    } else {
        (StatusCode::OK, None)
    }
}

#[derive(Debug, Clone, Copy)]
enum FollowRedirect {
    AboveTheLayer,
    BelowTheLayer,
}

/// What the sites saw of one GET of `REPORT`, which redirects to `ELSEWHERE`.
async fn follow(order: FollowRedirect, scope: TokenScope) -> Vec<String> {
    let idm = FakeIdm::new();
    let log = Seen::default();
    let layer = IdmAuthLayer::with_manager(manager(&idm), scope);
    let response = match order {
        FollowRedirect::AboveTheLayer => ServiceBuilder::new()
            .layer(FollowRedirectLayer::new())
            .layer(layer)
            .service(web(&log, report_moved))
            .oneshot(get(REPORT))
            .await
            .unwrap(),
        FollowRedirect::BelowTheLayer => ServiceBuilder::new()
            .layer(layer)
            .layer(FollowRedirectLayer::new())
            .service(web(&log, report_moved))
            .oneshot(get(REPORT))
            .await
            .unwrap(),
    };
    assert_eq!(response.status(), StatusCode::OK, "{order:?}");
    seen(&log)
}

#[tokio::test(start_paused = true)]
async fn with_a_scope_a_redirect_to_another_origin_never_carries_the_token_whatever_the_order() {
    for order in [FollowRedirect::AboveTheLayer, FollowRedirect::BelowTheLayer] {
        assert_eq!(
            follow(order, bodhi()).await,
            [
                format!("GET {REPORT} with token"),
                format!("GET {ELSEWHERE} no token"),
            ],
            "{order:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn with_any_origin_a_redirect_followed_above_the_layer_carries_the_token_to_the_other_origin()
{
    // The documented cost of the opt-out: each hop passes through the layer again.
    assert_eq!(
        follow(FollowRedirect::AboveTheLayer, TokenScope::any_origin()).await,
        [
            format!("GET {REPORT} with token"),
            format!("GET {ELSEWHERE} with token"),
        ]
    );
    // Below the layer, tower-http drops `Authorization` on the hop to another origin.
    assert_eq!(
        follow(FollowRedirect::BelowTheLayer, TokenScope::any_origin()).await,
        [
            format!("GET {REPORT} with token"),
            format!("GET {ELSEWHERE} no token"),
        ]
    );
}

// reqwest follows redirects below the middleware: the middleware sees `Response::url()`.

/// A loopback site that records what it receives, as `web` does, with paths for URIs.
struct Site {
    addr: SocketAddr,
    seen: Seen,
    task: tokio::task::JoinHandle<()>,
}

impl Site {
    async fn start(
        route: impl Fn(&Method, &str) -> (StatusCode, Option<String>) + Send + Sync + 'static,
    ) -> Site {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Seen::default();
        let route = Arc::new(route);
        let log = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (log, route) = (log.clone(), route.clone());
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let path = request.uri().path().to_owned();
                    log.lock()
                        .unwrap()
                        .push(line(request.method(), &path, request.headers()));
                    let (status, location) = route(request.method(), &path);
                    let response = answer(status, location.as_deref());
                    async move { Ok::<_, Infallible>(response) }
                });
                tokio::spawn(async move {
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    let _ = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Site { addr, seen, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn seen(&self) -> Vec<String> {
        seen(&self.seen)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn client(middleware: IdmAuthMiddleware) -> reqwest_middleware::ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(middleware)
        .build()
}

/// Our site, which redirects `/report` to `theirs`, a site on another origin (another
/// port) that answers every request with `status`.
async fn ours_and_theirs(status: StatusCode) -> (Site, Site) {
    let theirs = Site::start(move |_, _| (status, None)).await;
    let elsewhere = theirs.url("/report");
    let ours = Site::start(move |_, _| (StatusCode::FOUND, Some(elsewhere.clone()))).await;
    (ours, theirs)
}

// With resend on, the middleware compares `Response::url()` with its copy of the
// request; with resend off it keeps no copy, only the request's origin: both are tested.

#[tokio::test]
async fn the_middleware_keeps_the_token_when_a_redirect_target_on_another_origin_answers_401() {
    for resend in [true, false] {
        let idm = FakeIdm::new();
        let manager = manager(&idm);
        let (ours, theirs) = ours_and_theirs(StatusCode::UNAUTHORIZED).await;
        let scope = TokenScope::origins([ours.url("")]).unwrap();
        let client = client(IdmAuthMiddleware::with_manager(manager.clone(), scope).resend(resend));
        let token = manager.access_token().await.unwrap();

        let response = client.get(ours.url("/report")).send().await.unwrap();

        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            ours.seen(),
            ["GET /report with token"],
            "resend {resend}: not resent"
        );
        assert_eq!(theirs.seen(), ["GET /report no token"]);
        assert!(
            manager.cached().unwrap().same_token(&token),
            "resend {resend}: token kept"
        );
        assert_eq!(idm.token_requests(), 1);
    }
}

#[tokio::test]
async fn the_middleware_sends_a_post_once_when_its_redirect_on_the_same_origin_answers_401() {
    for resend in [true, false] {
        let idm = FakeIdm::new();
        let manager = manager(&idm);
        let api = Site::start(|method, path| match (method, path) {
            (&Method::POST, "/orders") => (StatusCode::SEE_OTHER, Some("/orders/1".to_owned())),
            _ => (StatusCode::UNAUTHORIZED, None),
        })
        .await;
        let scope = TokenScope::origins([api.url("")]).unwrap();
        let client = client(IdmAuthMiddleware::with_manager(manager.clone(), scope).resend(resend));
        let token = manager.access_token().await.unwrap();

        let response = client
            .post(api.url("/orders"))
            .body("order")
            .send()
            .await
            .unwrap();

        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            api.seen(),
            ["POST /orders with token", "GET /orders/1 with token"],
            "resend {resend}: the accepted POST is not sent again"
        );
        assert!(
            manager.cached().is_none_or(|t| !t.same_token(&token)),
            "resend {resend}: our own origin refused the token: it is dropped"
        );
    }
}

#[tokio::test]
async fn the_middleware_never_sends_the_token_across_a_redirect_to_another_origin() {
    // reqwest follows redirects below the middleware and drops `Authorization` on a hop
    // to another origin itself: the same with a scope and with `any_origin()`.
    let (ours, theirs) = ours_and_theirs(StatusCode::OK).await;
    for scope in [
        TokenScope::origins([ours.url("")]).unwrap(),
        TokenScope::any_origin(),
    ] {
        let idm = FakeIdm::new();
        let client = client(IdmAuthMiddleware::with_manager(manager(&idm), scope));
        let response = client.get(ours.url("/report")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(ours.seen(), ["GET /report with token"; 2]);
    assert_eq!(theirs.seen(), ["GET /report no token"; 2]);
}
