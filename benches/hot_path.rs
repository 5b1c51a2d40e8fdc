//! The cached-token path: `TokenManager::access_token()` against the floor (a header
//! clone, one clock read and a comparison) and the hand-written baseline people write
//! (`Arc<tokio::sync::Mutex<Option<Token>>>`, expiry checked inside the lock).
//!
//! `cargo bench -p bodhi-auth-benches --bench hot_path`

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use bodhi_auth::testing::FakeIdm;
use bodhi_auth::{Credentials, TokenManager};
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use http::HeaderValue;
use tokio::time::Instant;

/// The baseline as people write it by hand.
struct HandWritten {
    token: Arc<tokio::sync::Mutex<Option<(HeaderValue, Instant)>>>,
}

impl HandWritten {
    async fn header(&self) -> Option<HeaderValue> {
        let guard = self.token.lock().await;
        match &*guard {
            Some((header, expires_at)) if Instant::now() < *expires_at => Some(header.clone()),
            _ => None, // here a real one would log in while holding the lock
        }
    }
}

fn setup() -> (TokenManager, HeaderValue, Instant, HandWritten) {
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
    let header = token.header_value().clone();
    let expires_at = Instant::now() + token.expires_in();
    let baseline = HandWritten {
        token: Arc::new(tokio::sync::Mutex::new(Some((header.clone(), expires_at)))),
    };
    (manager, header, expires_at, baseline)
}

fn single_task(c: &mut Criterion) {
    let (manager, header, expires_at, baseline) = setup();
    let mut group = c.benchmark_group("cached_token/one_task");
    group.bench_function("floor: header clone + clock + compare", |b| {
        b.iter(|| {
            let fresh = Instant::now() < black_box(expires_at);
            black_box((fresh, header.clone()))
        })
    });
    // What a front end does with a cached token: get it and clone its header value, the
    // same work the floor and the baseline do.
    group.bench_function("bodhi-auth access_token() + header clone", |b| {
        b.iter(|| {
            let token = manager.access_token().now_or_never().unwrap().unwrap();
            black_box(token.header_value().clone())
        })
    });
    group.bench_function("bodhi-auth access_token()", |b| {
        b.iter(|| black_box(manager.access_token().now_or_never().unwrap().unwrap()))
    });
    group.bench_function("bodhi-auth cached()", |b| {
        b.iter(|| black_box(manager.cached().unwrap()))
    });
    group.bench_function("baseline: Arc<tokio Mutex<Option<Token>>>", |b| {
        b.iter(|| black_box(baseline.header().now_or_never().unwrap().unwrap()))
    });
    group.finish();
}

const TASKS: u64 = 4;

/// `iters` calls split over TASKS tasks on a 2-worker multi-thread runtime.
fn contended<F, Fut>(runtime: &tokio::runtime::Runtime, iters: u64, call: F) -> Duration
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    runtime.block_on(async move {
        let start = StdInstant::now();
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let call = call.clone();
                tokio::spawn(async move {
                    for _ in 0..iters / TASKS {
                        call().await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        start.elapsed()
    })
}

fn contention(c: &mut Criterion) {
    let (manager, _, _, baseline) = setup();
    let baseline = Arc::new(baseline);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("cached_token/4_tasks_2_workers");
    group.bench_function("bodhi-auth access_token() + header clone", |b| {
        b.iter_custom(|iters| {
            let manager = manager.clone();
            contended(&runtime, iters, move || {
                let manager = manager.clone();
                async move {
                    let token = manager.access_token().await.unwrap();
                    black_box(token.header_value().clone());
                }
            })
        })
    });
    group.bench_function("baseline: Arc<tokio Mutex<Option<Token>>>", |b| {
        b.iter_custom(|iters| {
            let baseline = baseline.clone();
            contended(&runtime, iters, move || {
                let baseline = baseline.clone();
                async move {
                    black_box(baseline.header().await.unwrap());
                }
            })
        })
    });
    group.finish();
}

criterion_group!(benches, single_task, contention);
criterion_main!(benches);
