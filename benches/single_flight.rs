//! 10,000 concurrent callers in three situations: cold start, every token expired at
//! once, every request answered 401 for the same token. Each iteration asserts that the
//! IDM saw exactly one request for the situation; criterion reports the time for all
//! 10,000 to complete.
//!
//! `cargo bench -p bodhi-auth-benches --bench single_flight`

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bodhi_auth::testing::{FakeApi, FakeIdm};
use bodhi_auth::{Credentials, IdmAuthLayer, IdmAuthMiddleware, TokenManager, TokenScope};
use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use http::header::AUTHORIZATION;
use http_body_util::Full;
use tower::{ServiceBuilder, ServiceExt};

const CALLERS: usize = 10_000;

#[derive(Clone, Copy, Debug)]
enum Situation {
    ColdStart,
    AllExpired,
    All401,
}

/// Prepares the manager for the situation, returning the IDM count before the burst.
async fn prepare(situation: Situation, idm: &FakeIdm, manager: &TokenManager) -> usize {
    match situation {
        Situation::ColdStart => {}
        Situation::AllExpired => {
            idm.set_access_ttl(Duration::from_secs(1)); // Keycloak counts whole seconds
            let token = manager.access_token().await.unwrap();
            idm.set_access_ttl(Duration::from_secs(3600));
            tokio::time::sleep(token.expires_in()).await;
        }
        Situation::All401 => {
            let token = manager.access_token().await.unwrap();
            idm.revoke_access_token(token.secret());
        }
    }
    idm.token_requests()
}

fn manager(idm: &FakeIdm) -> TokenManager {
    TokenManager::builder(Credentials::new("user", "secret"))
        .fake_idm(idm)
        .refresh_margin(Duration::from_millis(1))
        .build()
        .unwrap()
}

async fn tower_burst(situation: Situation) -> Duration {
    let idm = FakeIdm::new();
    idm.set_recording(false);
    let api = FakeApi::new(&idm);
    let manager = manager(&idm);
    let before = prepare(situation, &idm, &manager).await;
    // The API answers after a yield, so every caller is in flight before the first answer.
    let service = ServiceBuilder::new()
        .layer(IdmAuthLayer::with_manager(
            manager,
            TokenScope::origins(["https://api.example"]).unwrap(),
        ))
        .service(tower::service_fn(move |request: Request<Full<Bytes>>| {
            let api = api.clone();
            async move {
                tokio::task::yield_now().await;
                Ok::<_, Infallible>(api.respond(request.headers().get(AUTHORIZATION)))
            }
        }));
    let start = Instant::now();
    let calls: Vec<_> = (0..CALLERS)
        .map(|_| {
            let request = Request::get("https://api.example/")
                .body(Full::default())
                .unwrap();
            tokio::spawn(service.clone().oneshot(request))
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap().status(), 200);
    }
    let elapsed = start.elapsed();
    assert_eq!(idm.token_requests() - before, 1, "{situation:?}");
    elapsed
}

async fn reqwest_burst(situation: Situation) -> Duration {
    let idm = FakeIdm::new();
    idm.set_recording(false);
    let api = FakeApi::new(&idm);
    let server = api.serve().await.unwrap();
    let manager = manager(&idm);
    let before = prepare(situation, &idm, &manager).await;
    let client = reqwest_middleware::ClientBuilder::new(
        reqwest::Client::builder()
            .http2_prior_knowledge()
            .build()
            .unwrap(),
    )
    .with(IdmAuthMiddleware::with_manager(
        manager,
        TokenScope::origins([server.url("")]).unwrap(),
    ))
    .build();
    let url = server.url("/stores");
    // Open the one HTTP/2 connection outside the measurement.
    client
        .get(&url)
        .header(AUTHORIZATION, "Bearer warm-up")
        .send()
        .await
        .unwrap();
    let start = Instant::now();
    let calls: Vec<_> = (0..CALLERS)
        .map(|_| {
            let client = client.clone();
            let url = url.clone();
            tokio::spawn(async move { client.get(url).send().await.unwrap().status() })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), 200);
    }
    let elapsed = start.elapsed();
    assert_eq!(idm.token_requests() - before, 1, "{situation:?}");
    elapsed
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for (face, reqwest) in [("tower_in_memory", false), ("reqwest_http2", true)] {
        let mut group = c.benchmark_group(format!("single_flight_10k/{face}"));
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(5));
        for situation in [
            Situation::ColdStart,
            Situation::AllExpired,
            Situation::All401,
        ] {
            group.bench_function(format!("{situation:?}"), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += runtime.block_on(async {
                            if reqwest {
                                reqwest_burst(situation).await
                            } else {
                                tower_burst(situation).await
                            }
                        });
                    }
                    total
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
