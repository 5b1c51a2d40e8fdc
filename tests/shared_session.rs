//! Managers sharing one session through a store. Several managers in one process, on
//! one `MemoryStore`, stand for several processes: each has its own cache and single
//! flight, and only the store connects them.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bodhi_auth::store::{MemoryStore, Session, TokenStore};
use bodhi_auth::testing::{FakeIdm, Fault};
use bodhi_auth::{Credentials, ErrorKind, TokenManager};
use support::{all_same, builder, everyone};

const FLEET: usize = 50;

fn fleet(idm: &FakeIdm, store: &Arc<MemoryStore>, n: usize) -> Vec<TokenManager> {
    (0..n)
        .map(|_| builder(idm).store(store.clone()).build().unwrap())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_fleet_logs_in_once_at_cold_start() {
    let idm = FakeIdm::new();
    idm.set_latency(Duration::from_millis(200));
    let store = Arc::new(MemoryStore::new());
    let managers = fleet(&idm, &store, FLEET);
    let tokens = everyone(&managers).await;
    assert!(all_same(&tokens));
    assert_eq!(idm.token_requests(), 1);
    assert_eq!(idm.password_grants(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_fleet_refreshes_once_at_expiry() {
    let idm = FakeIdm::new();
    idm.set_access_ttl(Duration::from_secs(600));
    idm.set_refresh_ttl(Some(Duration::from_secs(3600)));
    idm.set_latency(Duration::from_millis(200));
    let store = Arc::new(MemoryStore::new());
    let managers = fleet(&idm, &store, FLEET);
    let first = everyone(&managers).await;
    tokio::time::sleep(first[0].expires_in() + Duration::from_secs(1)).await;

    let renewed = everyone(&managers).await;
    assert!(all_same(&renewed));
    assert!(!renewed[0].same_token(&first[0]));
    assert_eq!(idm.token_requests(), 2);
    assert_eq!(idm.refresh_grants(), 1, "the stored refresh token was used");
}

#[tokio::test(start_paused = true)]
async fn a_401_to_the_whole_fleet_costs_one_login() {
    let idm = FakeIdm::new();
    idm.set_latency(Duration::from_millis(200));
    let store = Arc::new(MemoryStore::new());
    let managers = fleet(&idm, &store, FLEET);
    let first = everyone(&managers).await;
    for (manager, token) in managers.iter().zip(&first) {
        assert!(manager.invalidate(token));
    }
    let renewed = everyone(&managers).await;
    assert!(all_same(&renewed));
    assert!(
        !renewed[0].same_token(&first[0]),
        "no one adopted the rejected token"
    );
    assert_eq!(idm.token_requests(), 2);

    // A process starting now does not adopt the rejected token either.
    let late = builder(&idm).store(store.clone()).build().unwrap();
    assert!(late.access_token().await.unwrap().same_token(&renewed[0]));
    assert_eq!(idm.token_requests(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_stalled_lease_holder_delays_the_others_only_until_its_lease_ends() {
    let idm = FakeIdm::new();
    let store = Arc::new(MemoryStore::new());
    // A holder that neither renews nor releases (a process frozen mid-flight).
    let lease = store.try_lease(Duration::from_secs(10)).await.unwrap();
    std::mem::forget(lease);

    let manager = builder(&idm).store(store.clone()).build().unwrap();
    let started = tokio::time::Instant::now();
    manager.access_token().await.unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(10) && waited < Duration::from_secs(11),
        "took over when the lease ended: {waited:?}"
    );
    assert_eq!(idm.token_requests(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_aborted_lease_holder_releases_the_lease_at_once() {
    let idm = FakeIdm::new();
    let store = Arc::new(MemoryStore::new());
    let holder = {
        let store = store.clone();
        let (held, is_held) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let _lease = store.try_lease(Duration::from_secs(10)).await.unwrap();
            held.send(()).unwrap();
            std::future::pending::<()>().await
        });
        is_held.await.unwrap();
        task
    };
    let manager = builder(&idm).store(store.clone()).build().unwrap();
    let waiter = support::spawn_caller(&manager);
    tokio::task::yield_now().await;
    let started = tokio::time::Instant::now();
    holder.abort();
    waiter.await.unwrap().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "woken by the release, not by the lease's end"
    );
    assert_eq!(idm.token_requests(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_holder_that_lost_the_race_does_not_overwrite_a_newer_session() {
    let idm = FakeIdm::new();
    let store = Arc::new(MemoryStore::new());
    let manager = builder(&idm).store(store.clone()).build().unwrap();
    let first = manager.access_token().await.unwrap();
    assert_eq!(store.load().await.unwrap().unwrap().version(), 1);

    // A 401; the refresh that follows is slow, and meanwhile another writer (a process
    // that took the lease after this one lost it) stores a newer session.
    idm.set_latency(Duration::from_secs(5));
    assert!(manager.invalidate(&first));
    let caller = support::spawn_caller(&manager);
    idm.wait_for_requests(2).await;
    let marked = store.load().await.unwrap().unwrap();
    // Version 2 marked the rejected token; 3, the refresh token being presented.
    assert_eq!(marked.version(), 3);
    let newer = bump(&marked);
    assert!(store.save(&newer).await.unwrap());

    let fresh = caller.await.unwrap().unwrap();
    assert!(
        !fresh.same_token(&first),
        "the caller still gets its new token"
    );
    let stored = store.load().await.unwrap().unwrap();
    assert_eq!(stored.version(), 4, "the newer session was not overwritten");
    assert_eq!(stored.to_json(), newer.to_json());
}

/// `session` as its next version, unchanged otherwise.
fn bump(session: &Session) -> Session {
    let mut json: serde_json::Value = serde_json::from_slice(&session.to_json()).unwrap();
    json["version"] = (session.version() + 1).into();
    Session::from_json(json.to_string().as_bytes()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_failure_is_not_repeated_by_every_process() {
    let idm = FakeIdm::new();
    idm.set_persistent_fault(Some(Fault::status(503)));
    let store = Arc::new(MemoryStore::new());
    let first = builder(&idm)
        .store(store.clone())
        .max_attempts(1)
        .build()
        .unwrap();
    assert_eq!(
        first.access_token().await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    assert_eq!(idm.token_requests(), 1);

    // Another process during the cooldown: the stored error, no IDM request.
    let second = builder(&idm).store(store.clone()).build().unwrap();
    let error = second.access_token().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert!(
        error.to_string().contains("sharing this session"),
        "{error}"
    );
    assert_eq!(idm.token_requests(), 1);

    // After it, one of them tries again.
    idm.set_persistent_fault(None);
    tokio::time::sleep(Duration::from_secs(6)).await;
    second.access_token().await.unwrap();
    assert_eq!(idm.token_requests(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_wrong_password_cooldown_is_not_shared_without_a_fingerprint() {
    let idm = FakeIdm::new();
    let store = Arc::new(MemoryStore::new());
    let wrong = TokenManager::builder(Credentials::new("user", "wrong"))
        .fake_idm(&idm)
        .store(store.clone())
        .build()
        .unwrap();
    assert_eq!(
        wrong.access_token().await.unwrap_err().kind(),
        ErrorKind::InvalidCredentials
    );
    // A process with the right password is not held back by it.
    let right = builder(&idm).store(store.clone()).build().unwrap();
    right.access_token().await.unwrap();
    assert_eq!(idm.password_grants(), 2);
}

#[tokio::test(start_paused = true)]
async fn logout_ends_the_shared_session_for_everyone() {
    let idm = FakeIdm::new();
    let store = Arc::new(MemoryStore::new());
    let managers = fleet(&idm, &store, 2);
    let tokens = everyone(&managers).await;
    assert!(all_same(&tokens));
    assert_eq!(idm.active_sessions(), 1);

    managers[0].logout().await.unwrap();
    assert_eq!(idm.logouts(), 1);
    assert_eq!(idm.active_sessions(), 0);
    assert!(
        store.load().await.unwrap().is_none(),
        "the stored session is gone"
    );
    // The other process still holds the token in memory until the API rejects it;
    // a new process logs in afresh.
    let fresh = builder(&idm).store(store.clone()).build().unwrap();
    assert!(!fresh.access_token().await.unwrap().same_token(&tokens[0]));
    assert_eq!(idm.password_grants(), 2);
}

#[tokio::test(start_paused = true)]
async fn dropping_a_manager_leaves_the_shared_session_alive() {
    let idm = FakeIdm::new();
    let store = Arc::new(MemoryStore::new());
    let first = builder(&idm).store(store.clone()).build().unwrap();
    let token = first.access_token().await.unwrap();
    drop(first);
    assert_eq!(idm.logouts(), 0);
    let next = builder(&idm).store(store.clone()).build().unwrap();
    assert!(next.access_token().await.unwrap().same_token(&token));
    assert_eq!(idm.token_requests(), 1);
}

#[tokio::test(start_paused = true)]
async fn without_a_store_every_process_logs_in() {
    // The baseline the tests above improve on.
    let idm = FakeIdm::new();
    let managers: Vec<_> = (0..3).map(|_| support::manager(&idm)).collect();
    everyone(&managers).await;
    assert_eq!(idm.token_requests(), 3);
}

/// A `MemoryStore` that counts every call, and may have a fingerprint key as a store
/// with a key would.
#[derive(Debug, Default)]
struct Wrapped {
    inner: MemoryStore,
    calls: std::sync::atomic::AtomicUsize,
    keyed: bool,
}

impl Wrapped {
    fn keyed() -> Wrapped {
        Wrapped {
            keyed: true,
            ..Wrapped::default()
        }
    }
    fn calls(&self) -> usize {
        self.calls.load(std::sync::atomic::Ordering::SeqCst)
    }
    fn count(&self) -> &MemoryStore {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        &self.inner
    }
}

#[async_trait::async_trait]
impl TokenStore for Wrapped {
    async fn load(&self) -> Result<Option<Session>, bodhi_auth::Error> {
        self.count().load().await
    }
    async fn save(&self, session: &Session) -> Result<bool, bodhi_auth::Error> {
        self.count().save(session).await
    }
    async fn delete(&self) -> Result<(), bodhi_auth::Error> {
        self.count().delete().await
    }
    async fn try_lease(
        &self,
        ttl: Duration,
    ) -> Result<Option<Box<dyn bodhi_auth::store::Lease>>, bodhi_auth::Error> {
        self.count().try_lease(ttl).await
    }
    async fn wait_for_release(&self, at_most: Duration) -> Result<(), bodhi_auth::Error> {
        self.count().wait_for_release(at_most).await
    }
    fn fingerprint_key(&self) -> Option<&[u8]> {
        self.keyed
            .then_some(&b"a key the store keeps apart from the record"[..])
    }
}

#[tokio::test(start_paused = true)]
async fn the_cached_path_never_touches_the_store() {
    let idm = FakeIdm::new();
    let store = Arc::new(Wrapped::default());
    let manager = builder(&idm).store(store.clone()).build().unwrap();
    let callers = support::concurrent_callers(&manager, 100).await;
    assert!(callers.iter().all(Result::is_ok));
    let after_login = store.calls();
    assert!(after_login > 0, "the login went through the store");
    for _ in 0..1000 {
        manager.access_token().await.unwrap();
        manager.cached().unwrap();
    }
    assert_eq!(store.calls(), after_login);
    // In one process at most one caller at a time consults the store: 100 callers at
    // cold start made one load, one lease, one more load and one save.
    assert_eq!(after_login, 4);
}

#[tokio::test(start_paused = true)]
async fn a_wrong_password_is_tried_once_per_cooldown_by_the_fleet_when_the_store_has_a_key() {
    let idm = FakeIdm::new();
    let store = Arc::new(Wrapped::keyed());
    let wrong = |idm: &FakeIdm| {
        TokenManager::builder(Credentials::new("user", "wrong"))
            .fake_idm(idm)
            .store(store.clone())
            .build()
            .unwrap()
    };
    let fleet: Vec<_> = (0..20).map(|_| wrong(&idm)).collect();
    for manager in &fleet {
        let error = manager.access_token().await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidCredentials);
    }
    assert_eq!(
        idm.password_grants(),
        1,
        "one failed login for 20 processes"
    );

    // The record names the password by a MAC, never in clear.
    let stored = store.load().await.unwrap().unwrap();
    assert!(!String::from_utf8_lossy(&stored.to_json()).contains("wrong"));

    // Corrected credentials are not held back by the cooldown.
    let right = builder(&idm).store(store.clone()).build().unwrap();
    right.access_token().await.unwrap();
    assert_eq!(idm.password_grants(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_cooldown_longer_than_the_policy_allows_is_not_believed() {
    let idm = FakeIdm::new();
    idm.set_persistent_fault(Some(Fault::status(503)));
    let store = Arc::new(MemoryStore::new());
    let first = builder(&idm)
        .store(store.clone())
        .max_attempts(1)
        .build()
        .unwrap();
    first.access_token().await.unwrap_err();
    // Whoever can write to the store pushes the cooldown a year ahead.
    let stored = store.load().await.unwrap().unwrap();
    let mut json: serde_json::Value = serde_json::from_slice(&stored.to_json()).unwrap();
    json["version"] = (stored.version() + 1).into();
    json["cooldown"]["until"] =
        (json["cooldown"]["until"].as_u64().unwrap() + 365 * 86_400_000).into();
    json["not_before"] = json["cooldown"]["until"].clone();
    assert!(
        store
            .save(&Session::from_json(json.to_string().as_bytes()).unwrap())
            .await
            .unwrap()
    );
    idm.set_persistent_fault(None);

    // Beyond what the policy allows, it is not believed: the next process logs in.
    let second = builder(&idm).store(store.clone()).build().unwrap();
    second.access_token().await.unwrap();
    assert_eq!(idm.token_requests(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_401_throttle_holds_across_the_fleet() {
    let idm = FakeIdm::new();
    let store = Arc::new(MemoryStore::new());
    let a = builder(&idm).store(store.clone()).build().unwrap();
    let first = a.access_token().await.unwrap();
    // A's 401 re-logs in.
    assert!(a.invalidate(&first));
    let second = a.access_token().await.unwrap();
    assert_eq!(idm.token_requests(), 2);

    // A moment later, another process gets a 401 for the new token: its own throttle
    // has never fired, but the fleet re-logged in too recently, so it keeps the token.
    let c = builder(&idm).store(store.clone()).build().unwrap();
    assert!(c.access_token().await.unwrap().same_token(&second));
    assert!(c.invalidate(&second), "dropped from its own cache");
    let kept = c.access_token().await.unwrap();
    assert!(
        kept.same_token(&second),
        "throttled: the stored token is kept"
    );
    assert_eq!(idm.token_requests(), 2);

    // After the interval, a 401 re-logs in again.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(c.invalidate(&kept));
    assert!(!c.access_token().await.unwrap().same_token(&second));
    assert_eq!(idm.token_requests(), 3);
}

/// A store that is down.
#[derive(Debug)]
struct Down;

#[async_trait::async_trait]
impl TokenStore for Down {
    async fn load(&self) -> Result<Option<Session>, bodhi_auth::Error> {
        Err(down())
    }
    async fn save(&self, _: &Session) -> Result<bool, bodhi_auth::Error> {
        Err(down())
    }
    async fn delete(&self) -> Result<(), bodhi_auth::Error> {
        Err(down())
    }
    async fn try_lease(
        &self,
        _: Duration,
    ) -> Result<Option<Box<dyn bodhi_auth::store::Lease>>, bodhi_auth::Error> {
        Err(down())
    }
}

fn down() -> bodhi_auth::Error {
    // A connection failure: any kind but `Config` means "carry on without it".
    bodhi_auth::Error::store_unavailable("store is down")
}

#[tokio::test(start_paused = true)]
async fn a_store_that_is_down_is_a_miss_and_shared_refresh_tokens_are_not_trusted() {
    let idm = FakeIdm::new();
    idm.set_access_ttl(Duration::from_secs(600));
    idm.set_refresh_ttl(Some(Duration::from_secs(3600)));
    let manager = builder(&idm).store(Down).build().unwrap();
    let first = manager.access_token().await.unwrap();
    tokio::time::sleep(first.expires_in()).await;
    let second = manager.access_token().await.unwrap();
    assert!(!second.same_token(&first));
    // Both went to the IDM, and the renewal used the password: a refresh token that
    // other processes could have spent is not presented while the store cannot tell.
    assert_eq!(idm.password_grants(), 2);
    assert_eq!(idm.refresh_grants(), 0);
}
