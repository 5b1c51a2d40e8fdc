//! Host scoping: the token goes only to the configured origins, and matching them costs
//! no allocation. Redirects are in `redirects.rs`.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bodhi_auth::testing::{FakeApi, FakeIdm};
use bodhi_auth::{Credentials, IdmAuthLayer, IdmAuthMiddleware, TokenManager, TokenScope};
use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{Request, Response};
use http_body_util::Full;
use tower::{ServiceBuilder, ServiceExt};

mod support;
use support::manager;

/// What each request reached the network with: (host, had an Authorization header).
type Seen = Arc<Mutex<Vec<(String, bool)>>>;

/// A service that records what it saw and answers 200.
fn recorder(
    seen: &Seen,
) -> impl tower::Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    let seen = seen.clone();
    tower::service_fn(move |request: Request<Full<Bytes>>| {
        let host = request.uri().host().unwrap_or_default().to_owned();
        let authorized = request.headers().contains_key(AUTHORIZATION);
        seen.lock().unwrap().push((host, authorized));
        std::future::ready(Ok::<_, Infallible>(Response::new(Full::<Bytes>::default())))
    })
}

#[tokio::test(start_paused = true)]
async fn the_layer_sends_no_token_to_other_hosts_and_logs_in_for_none() {
    let idm = FakeIdm::new();
    let seen = Seen::default();
    let inner = recorder(&seen);
    let scope = TokenScope::origins(["https://api.bodhi.example"]).unwrap();
    let service = ServiceBuilder::new()
        .layer(IdmAuthLayer::with_manager(manager(&idm), scope))
        .service(inner);
    let get = |uri: &str| Request::get(uri).body(Full::default()).unwrap();
    service
        .clone()
        .oneshot(get("https://third-party.example/x"))
        .await
        .unwrap();
    assert_eq!(
        idm.token_requests(),
        0,
        "no login for an out-of-scope request"
    );
    service
        .clone()
        .oneshot(get("https://api.bodhi.example/x"))
        .await
        .unwrap();
    service
        .clone()
        .oneshot(get("http://api.bodhi.example/x"))
        .await
        .unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            ("third-party.example".to_owned(), false),
            ("api.bodhi.example".to_owned(), true),
            ("api.bodhi.example".to_owned(), false),
        ]
    );
}

#[tokio::test]
async fn the_middleware_sends_no_token_to_other_origins() {
    let idm = FakeIdm::new();
    let idm_server = idm.serve().await.unwrap();
    let api = FakeApi::new(&idm);
    let ours = api.serve().await.unwrap();
    let theirs = api.serve().await.unwrap(); // same code, another port: another origin
    let manager = TokenManager::builder(Credentials::new("user", "secret"))
        .token_url(idm_server.token_url())
        .build()
        .unwrap();
    let scope = TokenScope::origins([ours.url("")]).unwrap();
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(IdmAuthMiddleware::with_manager(manager, scope))
        .build();
    assert_eq!(
        client.get(theirs.url("/x")).send().await.unwrap().status(),
        401
    );
    assert_eq!(
        idm.token_requests(),
        0,
        "no token, no login for another origin"
    );
    assert_eq!(
        client.get(ours.url("/x")).send().await.unwrap().status(),
        200
    );
    assert_eq!(idm.token_requests(), 1);
}

mod allocations {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    use futures_util::FutureExt;
    use tower::{Layer, Service};

    use super::*;

    /// Counts the allocations of the current thread only, so the test harness's other
    /// threads cannot change a count.
    struct PerThread;

    thread_local! {
        static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    }

    fn count() {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }

    // SAFETY: forwards to the system allocator unchanged; only counts calls.
    unsafe impl GlobalAlloc for PerThread {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            count();
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            count();
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static GLOBAL: PerThread = PerThread;

    /// Allocations of one call on the cached path (the request is built beforehand).
    fn allocations_per_call<S>(service: &mut S) -> u64
    where
        S: Service<Request<Full<Bytes>>>,
    {
        let request = Request::get("https://API.bodhi.example:443/stores")
            .body(Full::default())
            .unwrap();
        let before = ALLOCATIONS.with(Cell::get);
        assert!(service.call(request).now_or_never().is_some());
        ALLOCATIONS.with(Cell::get) - before
    }

    #[test]
    fn matching_a_request_against_a_scope_allocates_nothing() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let idm = FakeIdm::new();
        let manager = manager(&idm);
        runtime.block_on(manager.access_token()).unwrap();
        let ok = || {
            tower::service_fn(|_: Request<Full<Bytes>>| {
                std::future::ready(Ok::<_, Infallible>(Response::new(Full::<Bytes>::default())))
            })
        };
        let scope = TokenScope::origins(["https://api.bodhi.example"]).unwrap();
        let mut scoped = IdmAuthLayer::with_manager(manager.clone(), scope)
            .resend(false)
            .layer(ok());
        let mut any = IdmAuthLayer::with_manager(manager, TokenScope::any_origin())
            .resend(false)
            .layer(ok());
        allocations_per_call(&mut scoped); // warm up
        allocations_per_call(&mut any);
        assert_eq!(
            allocations_per_call(&mut scoped),
            allocations_per_call(&mut any),
            "matching the origin allocates nothing"
        );
    }
}
