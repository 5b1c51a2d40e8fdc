//! Per-request cost of `IdmAuthLayer` around an in-memory service that answers 200,
//! against `tower_http::auth::AddAuthorizationLayer::bearer` (the floor: a static
//! header), on one thread and on 2 threads at once (each with its own clone of the
//! service, as a server's connections have).
//!
//! Every `IdmAuth` row but one matches the request against a real `TokenScope` (one
//! origin); that one admits any origin (`TokenScope::any_origin()`). Building the request is outside the timings.
//!
//! `cargo bench -p bodhi-auth-benches --bench tower_overhead`

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use bodhi_auth::testing::FakeIdm;
use bodhi_auth::{AccessToken, Credentials, IdmAuthLayer, TokenManager, TokenScope};
use bodhi_auth_benches::{Comparison, clock_read, cpu_now, on_threads, threads_name, two_and_one};
use bytes::Bytes;
use futures_util::FutureExt;
use http::{Request, Response};
use http_body_util::Full;
use tower::{Layer, Service};
use tower_http::auth::AddAuthorizationLayer;

type Body = Full<Bytes>;

fn ok_service() -> impl Service<
    Request<Body>,
    Response = Response<Body>,
    Error = Infallible,
    Future = std::future::Ready<Result<Response<Body>, Infallible>>,
> + Clone
+ Send
+ Sync {
    tower::service_fn(|_request: Request<Body>| {
        std::future::ready(Ok(Response::new(Body::default())))
    })
}

/// The least a layer with a lock-free token cache and the 401 rule can do per request:
/// borrow the current header and its deadline from an `ArcSwap` (no token clone, no
/// lock), one clock read, set the header, and look at the status of the answer; nothing
/// kept for the 401 beyond the check itself. With `contract_checks`, also the two checks
/// the layer's contract requires before it adds a token: the request is for the scope's
/// origin (compared as written, the quick test), and it has no `Authorization` of its own.
fn lock_free_model(
    token: &AccessToken,
    contract_checks: bool,
) -> impl Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone {
    let cache = Arc::new(ArcSwap::from_pointee((
        token.header_value().clone(),
        clock_read() + token.expires_in(),
    )));
    let inner = ok_service();
    tower::service_fn(move |mut request: Request<Body>| {
        if contract_checks {
            let uri = request.uri();
            let admitted = uri
                .scheme_str()
                .is_some_and(|s| s.eq_ignore_ascii_case("https"))
                && uri
                    .authority()
                    .is_some_and(|a| a.as_str().eq_ignore_ascii_case("api.bodhi.example"));
            let own = request.headers().contains_key(http::header::AUTHORIZATION);
            assert!(black_box(admitted && !own));
        }
        let current = cache.load();
        assert!(clock_read() < current.1);
        request
            .headers_mut()
            .insert(http::header::AUTHORIZATION, current.0.clone());
        drop(current);
        inner.clone().call(request).map(|answer| {
            if let Ok(response) = &answer
                && response.status() == http::StatusCode::UNAUTHORIZED
            {
                black_box(());
            }
            answer
        })
    })
}

fn request() -> Request<Body> {
    Request::get("https://api.bodhi.example/stores")
        .body(Body::default())
        .unwrap()
}

/// `iters` requests, built before the clock starts.
fn batch_of(iters: u64) -> Vec<Request<Body>> {
    (0..iters).map(|_| request()).collect()
}

/// Sends `requests` through a ready service, each polled once (everything here is ready
/// at once).
fn send<S>(service: &mut S, requests: Vec<Request<Body>>)
where
    S: Service<Request<Body>>,
{
    for request in requests {
        black_box(service.call(request).now_or_never().is_some());
    }
}

/// Times `iters` requests through `service`; building them is outside the time.
fn requests<S>(service: &mut S, iters: u64) -> Duration
where
    S: Service<Request<Body>>,
{
    let requests = batch_of(iters);
    let start = cpu_now();
    send(service, requests);
    cpu_now() - start
}

/// The same on `threads` threads at once, each with its own clone of `service`.
fn on_threads_each<S>(threads: usize, iters: u64, service: &S) -> Duration
where
    S: Service<Request<Body>> + Clone + Sync,
{
    on_threads(
        threads,
        iters,
        |iters| Some((service.clone(), batch_of(iters))),
        |state, _| {
            if let Some((mut service, requests)) = state.take() {
                send(&mut service, requests);
            }
        },
    )
}

const BARE: &str = "no auth (the service alone)";
const FLOOR: &str = "floor: AddAuthorizationLayer::bearer";
const CHECK: &str = "floor + expiry check (cached(), no 401 handling)";
const CLOCK: &str = "floor + one clock read and compare";
const COPY: &str = "floor + a copy of the request kept (what resending needs)";
const LEAST: &str = "floor + lock-free cache load + clock + 401 check (no scope)";
const CHECKED: &str = "that + the scope match and the Authorization presence check";
const OFF: &str = "IdmAuthLayer, resend off";
const ANY: &str = "IdmAuthLayer, resend off, TokenScope::any_origin()";
const ON: &str = "IdmAuthLayer, resend on";

fn main() {
    // Multi-thread, as `#[tokio::main]` starts: a token cached there is checked against
    // the coarse clock, as in a program (on a current-thread runtime, Tokio's).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let idm = FakeIdm::new();
    let manager = TokenManager::builder(Credentials::new("user", "secret"))
        .fake_idm(&idm)
        .build()
        .unwrap();
    let token = runtime.block_on(manager.access_token()).unwrap();
    let scope = TokenScope::origins(["https://api.bodhi.example"]).unwrap();

    let floor = AddAuthorizationLayer::bearer(token.secret()).layer(ok_service());
    let ours_any_origin = IdmAuthLayer::with_manager(manager.clone(), TokenScope::any_origin())
        .resend(false)
        .layer(ok_service());
    let ours_no_resend = IdmAuthLayer::with_manager(manager.clone(), scope.clone())
        .resend(false)
        .layer(ok_service());
    let ours_resend = IdmAuthLayer::with_manager(manager.clone(), scope).layer(ok_service());
    let bare = ok_service();
    // The least any expiry-checking layer does: read the cache (one clock read) and set
    // the header, with no 401 handling at all.
    let check_only = {
        let manager = manager.clone();
        let inner = ok_service();
        tower::service_fn(move |mut request: Request<Body>| {
            let token = manager.cached().expect("cached for 30 h");
            request
                .headers_mut()
                .insert(http::header::AUTHORIZATION, token.header_value().clone());
            inner.clone().call(request)
        })
    };

    let least = lock_free_model(&token, false);
    let checked = lock_free_model(&token, true);

    // The floor plus what any layer that can resend after a 401 must do before the first
    // send, since the inner service consumes the request: copy it (method, URI, headers,
    // extensions, body) and keep the copy with a service to resend through. No cache, no
    // clock, no 401 handling.
    let copying = {
        let header = token.header_value().clone();
        let inner = ok_service();
        tower::service_fn(move |mut request: Request<Body>| {
            let mut copy = Request::new(request.body().clone());
            *copy.method_mut() = request.method().clone();
            *copy.uri_mut() = request.uri().clone();
            *copy.version_mut() = request.version();
            *copy.headers_mut() = request.headers().clone();
            *copy.extensions_mut() = request.extensions().clone();
            let kept = black_box(Box::new((copy, inner.clone())));
            request
                .headers_mut()
                .insert(http::header::AUTHORIZATION, header.clone());
            let response = inner.clone().call(request);
            drop(kept);
            response
        })
    };

    // The floor plus the one thing no expiry-checking layer can skip: a clock read (the
    // clock the crate reads, through the harness's one `clock_read`).
    let clocked = {
        let header = token.header_value().clone();
        let expires_at = clock_read() + token.expires_in();
        let inner = ok_service();
        tower::service_fn(move |mut request: Request<Body>| {
            assert!(clock_read() < black_box(expires_at));
            request
                .headers_mut()
                .insert(http::header::AUTHORIZATION, header.clone());
            inner.clone().call(request)
        })
    };

    let mut comparison = Comparison::new("tower_per_request/one_thread");
    {
        let (mut bare, mut floor, mut check_only) =
            (bare.clone(), floor.clone(), check_only.clone());
        let mut clocked = clocked.clone();
        let mut copying = copying.clone();
        let mut least = least.clone();
        let mut checked = checked.clone();
        let (mut off, mut on) = (ours_no_resend.clone(), ours_resend.clone());
        let mut any = ours_any_origin.clone();
        comparison
            .variant(BARE, move |iters| requests(&mut bare, iters))
            .variant(FLOOR, move |iters| requests(&mut floor, iters))
            .variant(CLOCK, move |iters| requests(&mut clocked, iters))
            .variant(CHECK, move |iters| requests(&mut check_only, iters))
            .variant(COPY, move |iters| requests(&mut copying, iters))
            .variant(LEAST, move |iters| requests(&mut least, iters))
            .variant(CHECKED, move |iters| requests(&mut checked, iters))
            .variant(OFF, move |iters| requests(&mut off, iters))
            .variant(ANY, move |iters| requests(&mut any, iters))
            .variant(ON, move |iters| requests(&mut on, iters))
            .ratio(OFF, FLOOR)
            .ratio(ANY, FLOOR)
            .ratio(ON, FLOOR)
            .ratio(CLOCK, FLOOR)
            .ratio(CHECK, FLOOR)
            .ratio(COPY, FLOOR)
            .ratio(LEAST, FLOOR)
            .ratio(OFF, LEAST)
            .ratio(CHECKED, FLOOR)
            .ratio(OFF, CHECKED)
            .ratio(ON, COPY)
            .ratio(OFF, CLOCK)
            .ratio(OFF, CHECK)
            .ratio(FLOOR, BARE)
            .run();
    }

    let mut comparison = Comparison::new("tower_per_request/threads");
    for threads in [1, 2] {
        let name = |what: &str| threads_name(what, threads);
        let floor = &floor;
        comparison.variant(&name(FLOOR), move |iters| {
            on_threads_each(threads, iters, floor)
        });
        let off = &ours_no_resend;
        comparison.variant(&name(OFF), move |iters| {
            on_threads_each(threads, iters, off)
        });
        let on = &ours_resend;
        comparison.variant(&name(ON), move |iters| on_threads_each(threads, iters, on));
    }
    let (floor2, floor1) = two_and_one(FLOOR);
    comparison.ratio(&floor2, &floor1);
    for what in [OFF, ON] {
        let (two, one) = two_and_one(what);
        comparison.ratio(&two, &one);
        comparison.scaling(&two, &one, &floor2, &floor1);
    }
    comparison.run();
}
