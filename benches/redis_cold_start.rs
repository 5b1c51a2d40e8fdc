//! A cold-start login through a `RedisStore` (a fresh session each time: read, lease,
//! read, IDM, save, release) beside one without a store, against the in-memory fake IDM
//! and a real `redis-server` on loopback. The difference is the store's round trips and
//! the connection handshake a process pays once. Prints that it skipped when
//! `redis-server` is not installed.
//!
//! `cargo bench -p bodhi-auth-benches --bench redis_cold_start`

#[path = "../tests/support/redis.rs"]
mod redis_server;

use std::process::{Command, Stdio};

use bodhi_auth::testing::FakeIdm;
use bodhi_auth::{Credentials, TokenManager, TokenManagerBuilder};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use redis_server::RedisServer;

fn builder(idm: &FakeIdm) -> TokenManagerBuilder {
    TokenManager::builder(Credentials::new("user", "secret")).fake_idm(idm)
}

fn cold_start(c: &mut Criterion) {
    let installed = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        eprintln!("redis_cold_start: skipped (redis-server is not installed)");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let redis = RedisServer::start();
    let idm = FakeIdm::new();
    idm.set_recording(false);
    let mut group = c.benchmark_group("cold_start_login");
    group.bench_function("no store", |b| {
        b.iter_batched(
            || builder(&idm).build().unwrap(),
            |manager| runtime.block_on(manager.access_token()).unwrap(),
            BatchSize::SmallInput,
        )
    });
    let mut session = 0u64;
    group.bench_function("RedisStore, new connection", |b| {
        b.iter_batched(
            || {
                session += 1;
                let store = redis
                    .store_builder()
                    .prefix(format!("bench-{session}:"))
                    .build()
                    .unwrap();
                builder(&idm).store(store).build().unwrap()
            },
            |manager| runtime.block_on(manager.access_token()).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, cold_start);
criterion_main!(benches);
