//! Per-request cost of `IdmAuthLayer` around an in-memory service that answers 200,
//! against `tower_http::auth::AddAuthorizationLayer::bearer` (the floor: a static header).
//!
//! `cargo bench -p bodhi-auth-benches --bench tower_overhead`

use std::convert::Infallible;
use std::hint::black_box;

use bodhi_auth::testing::FakeIdm;
use bodhi_auth::{Credentials, IdmAuthLayer, TokenManager, TokenScope};
use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
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
> + Clone {
    tower::service_fn(|_request: Request<Body>| {
        std::future::ready(Ok(Response::new(Body::default())))
    })
}

fn request() -> Request<Body> {
    Request::get("https://api.bodhi.example/stores")
        .body(Body::default())
        .unwrap()
}

/// Times one request through a ready service, polled once (everything here is ready at
/// once). Building the request is outside the timing.
fn once<S>(b: &mut criterion::Bencher<'_>, service: &mut S)
where
    S: Service<Request<Body>>,
    S::Response: 'static,
{
    b.iter_batched(
        request,
        |request| black_box(service.call(request).now_or_never().is_some()),
        BatchSize::SmallInput,
    )
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let idm = FakeIdm::new();
    let manager = TokenManager::builder(Credentials::new("user", "secret"))
        .fake_idm(&idm)
        .build()
        .unwrap();
    let token = runtime.block_on(manager.access_token()).unwrap();

    let mut floor = AddAuthorizationLayer::bearer(token.secret()).layer(ok_service());
    let mut ours_no_resend = IdmAuthLayer::with_manager(
        manager.clone(),
        TokenScope::origins(["https://api.bodhi.example"]).unwrap(),
    )
    .resend(false)
    .layer(ok_service());
    let mut ours_resend = IdmAuthLayer::with_manager(
        manager.clone(),
        TokenScope::origins(["https://api.bodhi.example"]).unwrap(),
    )
    .layer(ok_service());
    let mut bare = ok_service();
    // The least any expiry-checking layer does: read the cache (lock + clock) and set
    // the header, with no 401 handling at all.
    let mut check_only = {
        let manager = manager.clone();
        let mut inner = ok_service();
        tower::service_fn(move |mut request: Request<Body>| {
            let token = manager.cached().expect("cached for 30 h");
            request
                .headers_mut()
                .insert(http::header::AUTHORIZATION, token.header_value().clone());
            inner.call(request)
        })
    };

    let mut group = c.benchmark_group("tower_per_request");
    group.bench_function("no auth (the service alone)", |b| once(b, &mut bare));
    group.bench_function("floor: AddAuthorizationLayer::bearer", |b| {
        once(b, &mut floor)
    });
    group.bench_function("floor + expiry check (cached(), no 401 handling)", |b| {
        once(b, &mut check_only)
    });
    group.bench_function("IdmAuthLayer, resend off", |b| once(b, &mut ours_no_resend));
    group.bench_function("IdmAuthLayer, resend on", |b| once(b, &mut ours_resend));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
