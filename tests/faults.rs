//! Fault injection: a sick IDM, one row each, asserting what callers see and how many
//! IDM requests were sent, and when. In-memory fake IDM under paused Tokio time.

use std::time::Duration;

use bodhi_auth::testing::{FakeIdm, Fault};
use bodhi_auth::{Credentials, Error, ErrorKind, TokenManager};
use tokio::time::{Instant, advance, sleep};

mod support;
use support::manager;

/// Times of the IDM requests, relative to `start`.
fn request_offsets(idm: &FakeIdm, start: Instant) -> Vec<Duration> {
    idm.requests().iter().map(|r| r.at - start).collect()
}

async fn fails_with(idm: &FakeIdm, kind: ErrorKind) -> Error {
    let err = manager(idm).access_token().await.unwrap_err();
    assert_eq!(err.kind(), kind, "{err}");
    err
}

#[tokio::test(start_paused = true)]
async fn connection_refused_is_retried_three_times_with_jittered_backoff() {
    let idm = FakeIdm::new();
    idm.set_persistent_fault(Some(Fault::Refuse));
    let start = Instant::now();
    fails_with(&idm, ErrorKind::Unavailable).await;
    let at = request_offsets(&idm, start);
    assert_eq!(at.len(), 3);
    assert!(at[1] - at[0] <= Duration::from_millis(250), "{at:?}");
    assert!(at[2] - at[1] <= Duration::from_millis(500), "{at:?}");
}

#[tokio::test(start_paused = true)]
async fn a_hanging_idm_fails_a_thousand_waiting_callers_by_the_deadline_one_request_at_a_time() {
    let idm = FakeIdm::new();
    idm.set_persistent_fault(Some(Fault::Hang));
    let manager = manager(&idm);
    let start = Instant::now();
    let callers: Vec<_> = (0..1000)
        .map(|_| {
            let manager = manager.clone();
            tokio::spawn(async move {
                let result = manager.access_token().await;
                (result, Instant::now())
            })
        })
        .collect();
    for caller in callers {
        let (result, finished) = caller.await.unwrap();
        assert_eq!(result.unwrap_err().kind(), ErrorKind::Unavailable);
        assert!(
            finished - start <= Duration::from_secs(30),
            "past the deadline"
        );
    }
    let at = request_offsets(&idm, start);
    assert!((1..=3).contains(&at.len()), "{at:?}");
    for pair in at.windows(2) {
        // Sequential: the next request only after the previous timed out (10 s).
        assert!(pair[1] - pair[0] >= Duration::from_secs(10), "{at:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_hung_idm_is_reported_with_its_url_and_the_flight_deadline() {
    let idm = FakeIdm::new();
    idm.set_persistent_fault(Some(Fault::Hang));
    // Attempts of 20 s within the 30 s deadline: the second is cut short by it.
    let manager = TokenManager::builder(Credentials::new("user", "secret"))
        .fake_idm(&idm)
        .request_timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let err = manager.access_token().await.unwrap_err();
    let message = err.to_string();
    assert!(message.contains(FakeIdm::IN_MEMORY_TOKEN_URL), "{message}");
    assert!(
        message.contains("did not answer before the flight deadline (30 s"),
        "{message}"
    );
    assert_eq!(idm.token_requests(), 2);
}

#[tokio::test(start_paused = true)]
async fn answers_slower_than_the_timeout_are_unavailable() {
    let idm = FakeIdm::new();
    idm.set_persistent_fault(Some(Fault::Delay(Duration::from_secs(15))));
    let start = Instant::now();
    let err = fails_with(&idm, ErrorKind::Unavailable).await;
    assert!(err.to_string().contains("did not answer"), "{err}");
    assert!(Instant::now() - start <= Duration::from_secs(30));
    assert!((2..=3).contains(&idm.token_requests()));
}

#[tokio::test(start_paused = true)]
async fn server_errors_are_retried_then_unavailable() {
    for status in [500, 502, 503] {
        let idm = FakeIdm::new();
        idm.set_persistent_fault(Some(Fault::status(status)));
        let err = fails_with(&idm, ErrorKind::Unavailable).await;
        assert_eq!(err.status().map(|s| s.as_u16()), Some(status));
        assert_eq!(idm.token_requests(), 3, "{status}");
    }
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_obeyed_and_read_from_each_answer() {
    for (status, seconds) in [(429, 7), (503, 3)] {
        let idm = FakeIdm::new();
        idm.push_faults([Fault::retry_after(status, seconds)]);
        let start = Instant::now();
        let token = manager(&idm).access_token().await;
        assert!(token.is_ok(), "{status}: recovered after waiting");
        let at = request_offsets(&idm, start);
        assert_eq!(at.len(), 2);
        assert!(
            at[1] - at[0] >= Duration::from_secs(seconds),
            "{status}: second request {:?} after the first, Retry-After {seconds}",
            at[1] - at[0]
        );
        assert!(at[1] - at[0] < Duration::from_secs(seconds + 1));
    }
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_beyond_the_deadline_holds_every_later_flight_too() {
    let idm = FakeIdm::new();
    idm.push_faults([Fault::retry_after(429, 120)]);
    let manager = manager(&idm);
    let start = Instant::now();
    let err = manager.access_token().await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    for _ in 0..10 {
        advance(Duration::from_secs(10)).await;
        assert!(manager.access_token().await.is_err()); // t = 10 .. 100 s
    }
    assert_eq!(idm.token_requests(), 1, "nothing sent before Retry-After");
    advance(Duration::from_secs(21)).await; // t = 121 s
    manager.access_token().await.unwrap();
    let at = request_offsets(&idm, start);
    assert!(at[1] >= Duration::from_secs(120), "{at:?}");
}

#[tokio::test(start_paused = true)]
async fn malformed_answers_are_invalid_responses_and_not_retried() {
    let rows = [
        Fault::body(200, "<!DOCTYPE html><html><body>Login</body></html>"),
        Fault::body(200, r#"{"access_token":"abc","expires_in":3"#),
        Fault::body(200, r#"{"expires_in":300,"token_type":"Bearer"}"#),
        Fault::body(
            200,
            r#"{"access_token":"a","expires_in":300,"token_type":"DPoP"}"#,
        ),
        Fault::body(
            200,
            format!(
                r#"{{"access_token":"{}","expires_in":60}}"#,
                "a".repeat(8 << 20)
            ),
        ),
    ];
    for fault in rows {
        let idm = FakeIdm::new();
        idm.set_persistent_fault(Some(fault));
        fails_with(&idm, ErrorKind::InvalidResponse).await;
        assert_eq!(idm.token_requests(), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn an_idm_that_recovers_leaves_no_permanent_failure() {
    let idm = FakeIdm::new();
    let manager = manager(&idm);
    // Two failures inside one flight: retried, and the third attempt succeeds.
    idm.push_faults([Fault::status(503), Fault::status(503)]);
    manager.access_token().await.unwrap();
    assert_eq!(idm.token_requests(), 3);

    // A whole failed flight: a cooldown, then a trial request that succeeds.
    manager.logout().await.unwrap();
    idm.push_faults([Fault::status(503), Fault::status(503), Fault::status(503)]);
    let failed = manager.access_token().await.unwrap_err();
    let during = manager.access_token().await.unwrap_err();
    assert!(
        during.same_as(&failed),
        "the cooldown serves the last error"
    );
    let before = idm.token_requests();
    advance(Duration::from_secs(5)).await;
    manager.access_token().await.unwrap();
    assert_eq!(idm.token_requests(), before + 1, "one trial request");
}

#[tokio::test(start_paused = true)]
async fn cooldowns_double_while_failures_continue() {
    let idm = FakeIdm::new();
    idm.set_persistent_fault(Some(Fault::Refuse));
    let manager = TokenManager::builder(Credentials::new("user", "secret"))
        .fake_idm(&idm)
        .max_attempts(1)
        .build()
        .unwrap();
    let start = Instant::now();
    for _ in 0..200 {
        let _ = manager.access_token().await;
        advance(Duration::from_millis(500)).await; // a caller every 0.5 s for 100 s
    }
    let at: Vec<u64> = request_offsets(&idm, start)
        .iter()
        .map(|d| d.as_secs())
        .collect();
    // Trials after cooldowns of 5, 10, 20, 40 s: at 0, 5, 15, 35, 75 s.
    assert_eq!(at, [0, 5, 15, 35, 75]);
}

#[tokio::test(start_paused = true)]
async fn a_failing_background_refresh_keeps_serving_the_valid_token() {
    let idm = FakeIdm::new();
    idm.set_access_ttl(Duration::from_secs(100));
    let manager = manager(&idm);
    let token = manager.access_token().await.unwrap();
    idm.set_persistent_fault(Some(Fault::status(503)));
    advance(Duration::from_secs(71)).await; // refresh-due, 29 s of validity left
    for _ in 0..25 {
        let before = Instant::now();
        let served = manager.access_token().await.unwrap();
        assert!(served.same_token(&token));
        assert_eq!(Instant::now(), before, "served at once");
        sleep(Duration::from_secs(1)).await;
    }
    // One background flight of three attempts, then retries no sooner than the cooldown.
    let refreshes = idm.refresh_grants();
    assert!((3..=9).contains(&refreshes), "{refreshes}");
    idm.set_persistent_fault(None);
    advance(Duration::from_secs(10)).await; // t = 106 s: expired, callers wait for a flight
    let fresh = manager.access_token().await.unwrap();
    assert!(!fresh.same_token(&token), "the IDM recovered: a new token");
}

#[tokio::test(start_paused = true)]
async fn a_wrong_password_under_twenty_quick_calls_sends_one_login() {
    let idm = FakeIdm::new();
    let manager = TokenManager::builder(Credentials::new("user", "wrong"))
        .fake_idm(&idm)
        .build()
        .unwrap();
    for _ in 0..20 {
        let err = manager.access_token().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidCredentials);
        advance(Duration::from_secs(2)).await;
    }
    assert_eq!(
        idm.token_requests(),
        1,
        "40 s of calls: still inside the 60 s cooldown"
    );
}
