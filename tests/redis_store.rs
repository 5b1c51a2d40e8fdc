//! `RedisStore` against a real `redis-server` that each test starts on a loopback port
//! of its own. Several stores on one server stand for several processes: each has its
//! own connection, and only Redis connects them. Time is real (Redis expires keys in
//! real time); tokens live long, and expiry is caused on purpose.
//!
//! The log-asserting tests (outage and reconnection, unreadable entries) are in
//! `redis_store_logs.rs`, which owns its binary's global subscriber.
//!
//! For `bodhi_auth::testing::store_conformance`: `RedisServer::start()` gives a server,
//! and `redis.store()` a fresh store (its own connection) on one shared session at each
//! call; `redis.store_builder().prefix(..)` gives each case a namespace of its own.

#[path = "support/redis.rs"]
mod redis_server;
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bodhi_auth::store::{Session, TokenStore};
use bodhi_auth::testing::{FakeIdm, Fault};
use bodhi_auth::{AccessToken, Credentials, ErrorKind, TokenManager};
use redis_server::{KEY, RedisServer};
use support::{all_same, builder, everyone};

const FLEET: usize = 50;

/// A session record of version `version` for the fake IDM's `user`, with no tokens.
fn session(version: u64) -> Session {
    let json = serde_json::json!({
        "format": 1,
        "version": version,
        "token_url": FakeIdm::IN_MEMORY_TOKEN_URL,
        "client_id": bodhi_auth::DEFAULT_CLIENT_ID,
        "username": "user",
        "access": null,
        "refresh": null,
        "cooldown": null,
        "not_before": null,
        "last_forced_relogin": null,
        "credentials_fingerprint": null,
    });
    Session::from_json(json.to_string().as_bytes()).unwrap()
}

/// `n` managers, each with a store of its own (its own connection) on `redis`.
fn fleet(idm: &FakeIdm, redis: &RedisServer, n: usize) -> Vec<TokenManager> {
    (0..n)
        .map(|_| builder(idm).store(redis.store()).build().unwrap())
        .collect()
}

#[tokio::test]
async fn of_two_concurrent_saves_of_one_version_exactly_one_lands() {
    let redis = RedisServer::start();
    let (a, b) = (redis.store(), redis.store());
    assert!(a.load().await.unwrap().is_none());
    for version in 1..=20 {
        let (mine, theirs) = (session(version), session(version));
        let (one, other) = tokio::join!(a.save(&mine), b.save(&theirs));
        assert!(
            one.unwrap() ^ other.unwrap(),
            "exactly one save of version {version} landed"
        );
        assert_eq!(b.load().await.unwrap().unwrap().version(), version);
    }
    // A stale writer (made from version 5) changes nothing.
    assert!(!a.save(&session(6)).await.unwrap());
    assert_eq!(a.load().await.unwrap().unwrap().version(), 20);
    a.delete().await.unwrap();
    assert!(b.load().await.unwrap().is_none());
    assert!(
        b.save(&session(1)).await.unwrap(),
        "after delete, version 1 again"
    );
}

#[tokio::test]
async fn the_lease_is_exclusive_across_connections_renewable_and_released_by_drop() {
    let redis = RedisServer::start();
    let (a, b) = (redis.store(), redis.store());
    let lease = a.try_lease(Duration::from_millis(1500)).await.unwrap();
    let lease = lease.expect("the first taker gets it");
    assert!(b.try_lease(Duration::from_secs(5)).await.unwrap().is_none());
    assert!(a.try_lease(Duration::from_secs(5)).await.unwrap().is_none());

    // Renewed past its first lifetime, it is still held.
    assert!(lease.renew(Duration::from_secs(30)).await.unwrap());
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(b.try_lease(Duration::from_secs(5)).await.unwrap().is_none());

    // Dropped: released (by a spawned task), so another can take it at once.
    drop(lease);
    b.wait_for_release(Duration::from_secs(5)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if b.try_lease(Duration::from_secs(5)).await.unwrap().is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "the dropped lease was released");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_late_release_does_not_free_a_lease_another_holder_took_after_expiry() {
    let redis = RedisServer::start();
    let (a, b, c) = (redis.store(), redis.store(), redis.store());
    let stale = a
        .try_lease(Duration::from_millis(200))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let current = b.try_lease(Duration::from_secs(10)).await.unwrap();
    assert!(current.is_some(), "taken after the first expired");

    // The stale holder learns it lost the lease, and its release deletes nothing.
    assert!(!stale.renew(Duration::from_secs(10)).await.unwrap());
    drop(stale);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        c.try_lease(Duration::from_secs(10))
            .await
            .unwrap()
            .is_none()
    );
    let lease_key = redis.keys("bodhi-auth:*:lease").pop().unwrap();
    let left: i64 = redis.cli(&["PTTL", &lease_key]).parse().unwrap();
    assert!(left > 5_000, "B's lease is intact ({left} ms left)");
    drop(current);
}

#[tokio::test]
async fn a_waiter_is_woken_by_the_release_message_not_by_polling() {
    let redis = RedisServer::start();
    // The waiter never polls within this test: only the release message can wake it.
    let never = Duration::from_secs(3600);
    let a = redis.store();
    let b = Arc::new(redis.store_builder().poll_fallback(never).build().unwrap());
    let lease = a.try_lease(Duration::from_secs(30)).await.unwrap().unwrap();
    // A first wait subscribes to the release channel (and ends at once: a message, or
    // the short wait asked for).
    b.wait_for_release(Duration::from_millis(50)).await.unwrap();

    let waiter = {
        let b = b.clone();
        tokio::spawn(async move {
            b.wait_for_release(never).await.unwrap();
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished(), "the lease is held: the waiter waits");
    drop(lease);
    tokio::time::timeout(Duration::from_secs(60), waiter)
        .await
        .expect("woken by the PUBLISH (it would otherwise wait an hour)")
        .unwrap();
}

#[tokio::test]
async fn fifty_processes_log_in_once_relogin_once_after_a_401_and_refresh_once_at_expiry() {
    let redis = RedisServer::start();
    let idm = FakeIdm::new();
    idm.set_latency(Duration::from_millis(200));
    let managers: Vec<_> = (0..FLEET)
        .map(|_| {
            builder(&idm)
                .store(redis.store())
                // Each 401 below is a new one, not a repeat to throttle.
                .min_relogin_interval(Duration::ZERO)
                .build()
                .unwrap()
        })
        .collect();

    // Cold start. Every token a burst sees lives 30 hours.
    let first = everyone(&managers).await;
    assert!(all_same(&first));
    assert_eq!(idm.token_requests(), 1, "one login at cold start");
    assert_eq!(idm.password_grants(), 1);

    // The API rejects the token in every process: one re-login.
    for (manager, token) in managers.iter().zip(&first) {
        assert!(manager.invalidate(token));
    }
    let relogged = everyone(&managers).await;
    assert!(all_same(&relogged));
    assert!(
        !relogged[0].same_token(&first[0]),
        "nobody adopted the rejected token"
    );
    assert_eq!(idm.token_requests(), 2, "one re-login after the 401s");

    // Expiry, made on purpose with no burst in flight: every process takes a 10 s token
    // one after the other (one re-login, then adoptions), and waits it out.
    idm.set_access_ttl(Duration::from_secs(10));
    let mut short = Vec::new();
    for (manager, token) in managers.iter().zip(&relogged) {
        assert!(manager.invalidate(token));
        short.push(manager.access_token().await.unwrap());
    }
    assert!(all_same(&short));
    assert_eq!(idm.token_requests(), 3);
    idm.set_access_ttl(Duration::from_secs(108_000));
    let last = short.iter().map(AccessToken::expires_in).max().unwrap();
    tokio::time::sleep(last + Duration::from_millis(100)).await;

    let renewed = everyone(&managers).await;
    assert!(all_same(&renewed));
    assert!(!renewed[0].same_token(&short[0]));
    assert_eq!(idm.token_requests(), 4, "one refresh at expiry");
    // Every renewal after the first login presented the stored refresh token.
    assert_eq!(idm.password_grants(), 1);
    assert_eq!(idm.refresh_grants(), 3);

    // A process starting now adopts the session: no IDM request.
    let late = builder(&idm).store(redis.store()).build().unwrap();
    assert!(late.access_token().await.unwrap().same_token(&renewed[0]));
    assert_eq!(idm.token_requests(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_holder_killed_mid_flight_is_taken_over_when_its_lease_expires() {
    let redis = RedisServer::start();
    let idm = FakeIdm::new();
    idm.push_faults([Fault::Hang]);
    let lease_ttl = Duration::from_secs(2);

    // The holder is a process of its own: a runtime on a thread, dropped mid-flight.
    let (kill, killed) = std::sync::mpsc::channel::<()>();
    let holder = {
        let idm = idm.clone();
        let store = redis.store();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let manager = builder(&idm)
                .store(store)
                .lease_ttl(lease_ttl)
                .build()
                .unwrap();
            runtime.spawn(async move { manager.access_token().await });
            runtime
                .block_on(async {
                    tokio::task::spawn_blocking(move || killed.recv())
                        .await
                        .unwrap()
                })
                .unwrap();
            drop(runtime);
        })
    };
    idm.wait_for_requests(1).await;

    let managers: Vec<_> = (0..10)
        .map(|_| {
            builder(&idm)
                .store(redis.store())
                .lease_ttl(lease_ttl)
                .build()
                .unwrap()
        })
        .collect();
    let callers: Vec<_> = managers.iter().map(support::spawn_caller).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(idm.token_requests(), 1, "the others wait for the holder");
    kill.send(()).unwrap();
    tokio::task::spawn_blocking(move || holder.join().unwrap())
        .await
        .unwrap();

    let mut tokens = Vec::new();
    for caller in callers {
        tokens.push(caller.await.unwrap().expect("every caller gets a token"));
    }
    assert!(all_same(&tokens));
    assert!(
        idm.token_requests() <= 2,
        "{} IDM requests",
        idm.token_requests()
    );
}

#[tokio::test]
async fn a_wrong_password_costs_one_failed_login_per_cooldown_across_twenty_processes() {
    let redis = RedisServer::start();
    let idm = FakeIdm::new();
    // Long enough that 20 calls fit in it on any machine: the counts cannot change.
    let cooldown = Duration::from_secs(10);
    let store = Arc::new(redis.store());
    let wrong: Vec<_> = (0..20)
        .map(|_| {
            TokenManager::builder(Credentials::new("user", "wrong"))
                .fake_idm(&idm)
                .store(store.clone())
                .invalid_credentials_cooldown(cooldown)
                .build()
                .unwrap()
        })
        .collect();
    for round in 1..=2 {
        for manager in &wrong {
            let error = manager.access_token().await.unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidCredentials);
        }
        assert_eq!(
            idm.password_grants(),
            round,
            "one failed login in round {round}"
        );
        tokio::time::sleep(cooldown + Duration::from_millis(200)).await;
    }

    // The stored record names the password by a keyed MAC, never in clear.
    let raw = redis.cli_bytes(&["HGETALL", &redis.keys("bodhi-auth:*:session")[0]]);
    assert!(!raw.windows(5).any(|w| w == b"wrong"));

    // Corrected credentials are not held back by the cooldown.
    let right = builder(&idm).store(redis.store()).build().unwrap();
    right.access_token().await.unwrap();
    assert_eq!(idm.password_grants(), 3);
}

#[tokio::test]
async fn the_cached_path_sends_redis_no_command() {
    let redis = RedisServer::start();
    let idm = FakeIdm::new();
    let managers = fleet(&idm, &redis, 2);
    // Both managers went through the store, the second waiting on the lease (so its
    // release-channel subscription is open too).
    idm.set_latency(Duration::from_millis(100));
    everyone(&managers).await;
    let before = redis.command_calls();
    for _ in 0..100_000 {
        managers[0].access_token().await.unwrap();
    }
    for _ in 0..1000 {
        managers[1].access_token().await.unwrap();
    }
    let after = redis.command_calls();
    // Only the `INFO` that read the numbers differs.
    let without_info = |calls: Vec<(String, u64)>| -> Vec<(String, u64)> {
        calls
            .into_iter()
            .filter(|(name, _)| name != "info")
            .collect()
    };
    assert_eq!(without_info(before), without_info(after));
}

#[tokio::test]
async fn what_redis_holds_reveals_no_token_or_password_and_debug_no_key() {
    let redis = RedisServer::start();
    let idm = FakeIdm::new();
    idm.add_user("travis", "hunter2-password", None);
    let store = redis.store_builder_for("travis").build().unwrap();
    let manager = TokenManager::builder(Credentials::new("travis", "hunter2-password"))
        .fake_idm(&idm)
        .store(store)
        .build()
        .unwrap();
    let token = manager.access_token().await.unwrap();

    assert!(
        redis.keys("*").iter().all(|k| !k.contains("travis")),
        "the user name is in no key"
    );
    let keys = redis.keys("*:session");
    assert_eq!(keys.len(), 1, "{keys:?}");
    let raw = redis.cli_bytes(&["HGETALL", &keys[0]]);
    let contains = |needle: &str| raw.windows(needle.len()).any(|w| w == needle.as_bytes());
    // Every token the fake issues ends in `fake-signature-N`, the refresh token too.
    for secret in [
        token.secret(),
        token.id_token().unwrap(),
        "fake-signature",
        "hunter2-password",
        "travis",
    ] {
        assert!(!contains(secret), "{secret} is in Redis in clear");
    }
    // The refresh token, as the logout presents it.
    manager.logout().await.unwrap();
    let refresh = idm
        .requests()
        .iter()
        .find_map(|r| r.field("refresh_token").map(str::to_owned))
        .expect("the logout presented the refresh token");
    assert!(!contains(&refresh));
    assert!(
        redis.keys("*:session").is_empty(),
        "logout deleted the session"
    );

    let store = redis.store();
    let shown = format!("{store:?}");
    assert!(
        !shown.contains(KEY) && !shown.contains(&KEY[..20]),
        "{shown}"
    );
}

#[tokio::test]
async fn a_frozen_redis_is_a_miss_bounded_by_the_timeout_not_a_failure() {
    let redis = RedisServer::start();
    let idm = FakeIdm::new();
    let store = redis
        .store_builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let manager = builder(&idm)
        .store(store)
        .min_relogin_interval(Duration::ZERO)
        .build()
        .unwrap();
    let first = manager.access_token().await.unwrap();

    redis.signal("-STOP");
    assert!(manager.invalidate(&first));
    let started = Instant::now();
    let outcome = manager.access_token().await;
    let took = started.elapsed();
    redis.signal("-CONT");
    let second = outcome.expect("a token without the store");
    assert!(!second.same_token(&first));
    // Without the timeout it would wait for as long as Redis stays frozen (forever).
    assert!(
        took < Duration::from_secs(30),
        "bounded by the store's timeout: {took:?}"
    );
    assert_eq!(idm.token_requests(), 2);
}

#[tokio::test]
async fn the_redis_store_passes_the_store_conformance_suite() {
    let redis = RedisServer::start();
    bodhi_auth::testing::store_conformance(|| redis.store()).await;
}
