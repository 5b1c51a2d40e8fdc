//! One manager used from several Tokio runtimes, as sync code does when it wraps the
//! crate in its own `current_thread` runtime and drives it only inside `block_on`.
//!
//! Real time, but no count depends on speed: each parked flight is parked on purpose
//! (its runtime stops being driven once the fake IDM has its request), flight deadlines
//! are 10x the fake's latency, and the bounds around each wait only turn a hang into a
//! failure with a message.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use bodhi_auth::testing::{FakeIdm, Fault};
use bodhi_auth::{AccessToken, Credentials, Error, TokenManager, TokenManagerBuilder};
use tokio::runtime::{Builder, Runtime};

mod support;

const LATENCY: Duration = Duration::from_millis(100);
const FLIGHT_DEADLINE: Duration = Duration::from_secs(1);
/// Only turns a hang into a failure; a working takeover answers in about 2 s.
const HANG: Duration = Duration::from_secs(60);

fn current_thread() -> Runtime {
    Builder::new_current_thread().enable_all().build().unwrap()
}

fn builder(idm: &FakeIdm) -> TokenManagerBuilder {
    support::builder(idm).flight_deadline(FLIGHT_DEADLINE)
}

/// `manager.access_token()` on `runtime`, failing the test instead of hanging.
fn token_on(runtime: &Runtime, manager: &TokenManager) -> Result<AccessToken, Error> {
    runtime
        .block_on(async { tokio::time::timeout(HANG, manager.access_token()).await })
        .expect("an answer within the flight deadline plus the grace, not a hang")
}

fn grants(idm: &FakeIdm) -> Vec<String> {
    idm.requests()
        .iter()
        .map(|r| r.grant_type().unwrap_or("logout").to_owned())
        .collect()
}

/// Starts `access_token` in a task on `runtime` and stops driving it once the fake IDM
/// has received `requests` requests in all: the flight is then parked mid-request.
fn park_a_flight(
    runtime: &Runtime,
    idm: &FakeIdm,
    manager: &TokenManager,
    requests: usize,
) -> tokio::task::JoinHandle<Result<AccessToken, Error>> {
    let manager = manager.clone();
    let caller = runtime.spawn(async move { manager.access_token().await });
    runtime.block_on(idm.wait_for_requests(requests));
    caller
}

/// A manager that logged in on a driven runtime and whose token was then rejected, so
/// the next flight presents the refresh token.
fn logged_in_then_rejected() -> (FakeIdm, TokenManager, Runtime) {
    let idm = FakeIdm::new();
    idm.set_latency(LATENCY);
    let manager = builder(&idm).build().unwrap();
    let driven = current_thread();
    let first = token_on(&driven, &manager).unwrap();
    assert!(manager.invalidate(&first));
    (idm, manager, driven)
}

#[test]
fn a_caller_on_another_runtime_takes_over_a_login_parked_in_an_idle_runtime() {
    let idm = FakeIdm::new();
    idm.set_latency(LATENCY);
    let manager = builder(&idm).build().unwrap();
    let idle = current_thread();
    let parked_caller = park_a_flight(&idle, &idm, &manager, 1);

    let driven = current_thread();
    let token = token_on(&driven, &manager).expect("a token from the takeover");
    assert_eq!(idm.validate(token.secret()).as_deref(), Some("user"));
    assert_eq!(
        grants(&idm),
        ["password", "password"],
        "parked, then taken over"
    );

    // The idle runtime runs again: its caller gets a working token, and its flight,
    // superseded, records nothing over the takeover's token.
    let late = idle.block_on(parked_caller).unwrap().unwrap();
    assert_eq!(idm.validate(late.secret()).as_deref(), Some("user"));
    assert!(manager.cached().unwrap().same_token(&token));
    assert_eq!(idm.password_grants(), 2);
}

#[test]
fn a_takeover_never_presents_a_refresh_token_the_parked_flight_already_sent() {
    let (idm, manager, driven) = logged_in_then_rejected();

    // The next flight presents the refresh token, then its runtime goes idle.
    let idle = current_thread();
    let _parked = park_a_flight(&idle, &idm, &manager, 2);
    let token = token_on(&driven, &manager).expect("a token from the takeover");
    assert_eq!(idm.validate(token.secret()).as_deref(), Some("user"));
    assert_eq!(
        grants(&idm),
        ["password", "refresh_token", "password"],
        "the refresh token the parked flight sent may be spent: the takeover logs in"
    );
}

#[test]
fn a_superseded_flight_sends_nothing_more_when_its_runtime_runs_again() {
    let (idm, manager, driven) = logged_in_then_rejected();

    // The parked flight's refresh will be refused; once it runs again it would fall
    // back to the password grant, had it not been superseded meanwhile.
    idm.push_faults([Fault::body(
        400,
        r#"{"error":"invalid_grant","error_description":"Session not active"}"#,
    )]);
    let idle = current_thread();
    let parked_caller = park_a_flight(&idle, &idm, &manager, 2);
    let token = token_on(&driven, &manager).expect("a token from the takeover");

    let late = idle.block_on(parked_caller).unwrap().unwrap();
    assert!(
        late.same_token(&token),
        "the parked caller gets the takeover's token"
    );
    assert_eq!(
        grants(&idm),
        ["password", "refresh_token", "password"],
        "nothing sent by the superseded flight after its refusal"
    );
}

#[test]
fn a_background_refresh_parked_in_an_idle_runtime_is_taken_over_after_expiry() {
    let idm = FakeIdm::new();
    idm.set_access_ttl(Duration::from_secs(10)); // refresh-due after 5 s
    let manager = builder(&idm).build().unwrap();
    let idle = current_thread();
    let first = token_on(&idle, &manager).unwrap();
    let expiry = idle.block_on(async { tokio::time::Instant::now() + first.expires_in() });

    // Past refresh-due (by 1 s, and 4 s before expiry: room for a slow wake-up) the
    // idle runtime's caller is served at once, and the refresh is spawned on that
    // runtime, which is not driven again.
    let due = expiry - Duration::from_secs(4);
    idle.block_on(async { tokio::time::sleep_until(due).await });
    let served = token_on(&idle, &manager).unwrap();
    assert!(served.same_token(&first), "served at refresh-due");
    assert_eq!(idm.token_requests(), 1, "the refresh has not gone out");

    let driven = current_thread();
    driven.block_on(async { tokio::time::sleep_until(expiry).await });
    let token = token_on(&driven, &manager).expect("a token after expiry");
    assert!(!token.same_token(&first));
    assert_eq!(
        grants(&idm),
        ["password", "refresh_token"],
        "the parked refresh never went out, so the takeover could use the refresh token"
    );
}

#[test]
fn a_runtime_that_shuts_down_mid_flight_leaves_the_waiters_of_another_runtime_a_token() {
    let idm = FakeIdm::new();
    idm.set_latency(Duration::from_secs(3600)); // the first flight never answers
    let manager = builder(&idm).build().unwrap();
    let doomed = current_thread();
    let _parked = park_a_flight(&doomed, &idm, &manager, 1);
    idm.set_latency(Duration::ZERO);

    let driven = current_thread();
    let token = driven.block_on(async {
        let mut waiter = std::pin::pin!(manager.access_token());
        // Join the parked flight first: poll once, then shut its runtime down.
        assert!(futures_util::poll!(waiter.as_mut()).is_pending(), "joined");
        tokio::task::spawn_blocking(move || drop(doomed))
            .await
            .unwrap();
        tokio::time::timeout(HANG, waiter)
            .await
            .expect("an answer, not a hang")
    });
    let token = token.expect("a token, although the other runtime went away");
    assert_eq!(idm.validate(token.secret()).as_deref(), Some("user"));
    assert_eq!(idm.password_grants(), 2);
}

#[test]
fn callers_on_several_healthy_runtimes_share_one_login() {
    let idm = FakeIdm::new();
    idm.set_latency(LATENCY);
    let manager = builder(&idm).build().unwrap();
    let start = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (manager, start) = (manager.clone(), start.clone());
            std::thread::spawn(move || {
                let runtime = current_thread();
                start.wait();
                token_on(&runtime, &manager).unwrap()
            })
        })
        .collect();
    let tokens: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(tokens.iter().all(|t| t.same_token(&tokens[0])));
    assert_eq!(idm.token_requests(), 1);
}

#[test]
fn a_flight_never_reuses_a_connection_pooled_by_an_idle_runtime() {
    let server_runtime = Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let idm = FakeIdm::new();
    let server = server_runtime.block_on(idm.serve()).unwrap();
    // One attempt within a 5 s deadline: a request stuck on a connection driven by an
    // idle runtime fails it, a fresh connection answers on loopback at once.
    let manager = TokenManager::builder(Credentials::new("user", "secret"))
        .token_url(server.token_url())
        .max_attempts(1)
        .request_timeout(Duration::from_secs(5))
        .flight_deadline(Duration::from_secs(5))
        .build()
        .unwrap();
    let idle = current_thread();
    let first = token_on(&idle, &manager).unwrap();
    assert!(manager.invalidate(&first));

    let driven = current_thread();
    let token = token_on(&driven, &manager).expect("a token over a fresh connection");
    assert!(!token.same_token(&first));
    assert_eq!(idm.token_requests(), 2);
    drop(server);
}

#[test]
fn joining_a_flight_from_a_runtime_without_timers_is_a_config_error() {
    let idm = FakeIdm::new();
    idm.set_latency(Duration::from_secs(3600)); // the flight stays in progress
    let manager = builder(&idm).build().unwrap();
    let driven = current_thread();
    let _parked = park_a_flight(&driven, &idm, &manager, 1);

    let no_timers = Builder::new_current_thread().build().unwrap();
    let err = no_timers.block_on(manager.access_token()).unwrap_err();
    assert_eq!(err.kind(), bodhi_auth::ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("enable_time"), "{err}");
    no_timers.block_on(manager.settled()); // returns at once, no panic
    assert_eq!(idm.token_requests(), 1);
}

#[test]
fn logout_ends_the_session_of_a_refresh_parked_in_an_idle_runtime() {
    let (idm, manager, driven) = logged_in_then_rejected();
    let idle = current_thread();
    let _parked = park_a_flight(&idle, &idm, &manager, 2); // the refresh went out
    driven
        .block_on(async { tokio::time::timeout(HANG, manager.logout()).await })
        .expect("logout answers, not hangs")
        .expect("logged out");
    assert_eq!(idm.logouts(), 1);
    assert_eq!(idm.active_sessions(), 0, "no session left behind");
}
