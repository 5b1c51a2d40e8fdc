//! Heap allocations per request on the cached-token path, counted by a global
//! allocator: `IdmAuthLayer` against `AddAuthorizationLayer`, and `IdmAuthMiddleware`
//! against a no-op middleware (loopback, so the counts include reqwest and the server,
//! equally on both rows). Counts, not times: repeatable on a noisy machine.
//!
//! `cargo bench -p bodhi-auth-benches --bench allocations`

use std::alloc::{GlobalAlloc, Layout, System};
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};

use bodhi_auth::testing::{FakeApi, FakeIdm};
use bodhi_auth::{Credentials, IdmAuthLayer, IdmAuthMiddleware, TokenManager, TokenScope};
use bytes::Bytes;
use futures_util::FutureExt;
use http::{Extensions, Request, Response};
use http_body_util::Full;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};
use tower::{Layer, Service};
use tower_http::auth::AddAuthorizationLayer;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

type Body = Full<Bytes>;
const REQUESTS: u64 = 10_000;

fn per_request(mut one: impl FnMut()) -> f64 {
    for _ in 0..100 {
        one(); // warm caches and pools
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..REQUESTS {
        one();
    }
    (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / REQUESTS as f64
}

fn tower_row<S>(mut service: S) -> f64
where
    S: Service<Request<Body>>,
{
    per_request(move || {
        let request = Request::get("https://api.example/")
            .body(Body::default())
            .unwrap();
        assert!(service.call(request).now_or_never().is_some());
    })
}

struct NoOp;

#[async_trait::async_trait]
impl Middleware for NoOp {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        next.run(request, extensions).await
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let idm = FakeIdm::new();
    idm.set_recording(false);
    let manager = TokenManager::builder(Credentials::new("user", "secret"))
        .fake_idm(&idm)
        .build()
        .unwrap();
    let token = runtime.block_on(manager.access_token()).unwrap();
    let ok = || {
        tower::service_fn(|_request: Request<Body>| {
            std::future::ready(Ok::<_, Infallible>(Response::new(Body::default())))
        })
    };

    // Real scopes, not `any_origin()`: the rows include matching the request's origin.
    let scope = TokenScope::origins(["https://api.example"]).unwrap();
    let bare = tower_row(ok());
    let floor = tower_row(AddAuthorizationLayer::bearer(token.secret()).layer(ok()));
    let no_resend = tower_row(
        IdmAuthLayer::with_manager(manager.clone(), scope.clone())
            .resend(false)
            .layer(ok()),
    );
    let resend = tower_row(IdmAuthLayer::with_manager(manager.clone(), scope.clone()).layer(ok()));

    let (noop, ours_no_resend, ours) = runtime.block_on(async {
        let api = FakeApi::new(&idm);
        let server = api.serve().await.unwrap();
        let url = server.url("/stores");
        let api_scope = TokenScope::origins([server.url("")]).unwrap();
        let noop_client = ClientBuilder::new(reqwest::Client::new())
            .with(NoOp)
            .build();
        let ours_client = ClientBuilder::new(reqwest::Client::new())
            .with(IdmAuthMiddleware::with_manager(
                manager.clone(),
                api_scope.clone(),
            ))
            .build();
        let ours_no_resend = ClientBuilder::new(reqwest::Client::new())
            .with(IdmAuthMiddleware::with_manager(manager.clone(), api_scope).resend(false))
            .build();
        let header = token.header_value().clone();
        async fn count(
            client: &ClientWithMiddleware,
            url: &str,
            header: Option<&http::HeaderValue>,
        ) -> f64 {
            let send = || async {
                let mut request = client.get(url);
                if let Some(header) = header {
                    request = request.header(http::header::AUTHORIZATION, header.clone());
                }
                assert_eq!(request.send().await.unwrap().status(), 200);
            };
            for _ in 0..100 {
                send().await;
            }
            let before = ALLOCATIONS.load(Ordering::Relaxed);
            for _ in 0..REQUESTS / 10 {
                send().await;
            }
            (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / (REQUESTS / 10) as f64
        }
        // The no-op row sends the same header by hand, so both requests are alike.
        (
            count(&noop_client, &url, Some(&header)).await,
            count(&ours_no_resend, &url, None).await,
            count(&ours_client, &url, None).await,
        )
    });

    println!("| path | allocations per request | added over its floor |");
    println!("|---|---|---|");
    println!("| Tower: service alone | {bare:.2} | |");
    println!("| Tower: AddAuthorizationLayer (floor) | {floor:.2} | |");
    println!(
        "| Tower: IdmAuthLayer, resend off | {no_resend:.2} | {:+.2} |",
        no_resend - floor
    );
    println!(
        "| Tower: IdmAuthLayer, resend on (request copy kept) | {resend:.2} | {:+.2} |",
        resend - floor
    );
    println!("| reqwest: no-op middleware, header set by caller (floor) | {noop:.2} | |");
    println!(
        "| reqwest: IdmAuthMiddleware, resend off | {ours_no_resend:.2} | {:+.2} |",
        ours_no_resend - noop
    );
    println!(
        "| reqwest: IdmAuthMiddleware, resend on (`try_clone` copy kept) | {ours:.2} | {:+.2} |",
        ours - noop
    );
}
