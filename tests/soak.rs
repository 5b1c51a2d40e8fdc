//! Soak: many requests through the Tower layer and the reqwest middleware, with
//! short-lived tokens and random 401s (no re-login throttle), checking that every
//! request is answered, that the IDM sees exactly the expiries plus the forced
//! re-logins, and that memory stays flat.
//!
//! CI runs a short count. The long run is one command:
//!
//! ```text
//! BODHI_SOAK_REQUESTS=1000000 cargo test --release --test soak -- --nocapture
//! ```

use std::time::Duration;

use bodhi_auth::testing::{FakeApi, FakeIdm};
use bodhi_auth::{Credentials, IdmAuthLayer, IdmAuthMiddleware, TokenManager, TokenScope};
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use tokio::time::Instant;
use tower::{ServiceBuilder, ServiceExt};

/// Requests through the layer; the middleware gets a tenth of them.
fn requests() -> usize {
    std::env::var("BODHI_SOAK_REQUESTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000)
}

const WARM_UP: usize = 100_000;
const MAX_RSS_GROWTH: u64 = 16 << 20;

/// Resident set size of this process (`VmRSS`, in kB whatever the page size), where the
/// platform tells it: Linux's `/proc`. Elsewhere `None`, and the memory check is skipped
/// with a note; the request counts are asserted everywhere.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())?;
    Some(kib * 1024)
}

/// A small deterministic generator (xorshift), so a failing run can be repeated.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn soak_the_layer_and_the_middleware() {
    let n = requests();
    let warm_up = WARM_UP.min(n / 2);

    // Phase 1: the layer over the in-memory API, paused time, an exact model of when the
    // IDM must be asked. Memory is measured after the warm-up and at the end of this
    // phase, so phase 2's own set-up does not count as growth.
    let paused = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let mut rss_after_warm_up = None;
    let rss_end = paused.block_on(async {
        let idm = FakeIdm::new();
        idm.set_recording(false);
        let ttl = Duration::from_secs(10);
        idm.set_access_ttl(ttl);
        let api = FakeApi::new(&idm);
        let manager = TokenManager::builder(Credentials::new("user", "secret"))
            .fake_idm(&idm)
            .refresh_margin(Duration::from_secs(2))
            .min_relogin_interval(Duration::ZERO)
            .build()
            .unwrap();
        let service = ServiceBuilder::new()
            .layer(IdmAuthLayer::with_manager(manager.clone(), TokenScope::origins(["https://api.example"]).unwrap()))
            .service(api.clone());
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let (mut expected, mut forced, mut joined) = (0usize, 0usize, 0usize);
        let mut issued: Option<Instant> = None;
        for i in 0..n {
            if i == warm_up {
                rss_after_warm_up = rss_bytes();
            }
            tokio::time::advance(Duration::from_millis(rng.next() % 21)).await;
            let now = Instant::now();
            // The model: a refresh when refresh-due (8 s) has passed, a login at first.
            let had_token = issued.is_some();
            let refreshed = issued.is_none_or(|at| now >= at + ttl - Duration::from_secs(2));
            if refreshed {
                expected += 1;
                issued = Some(now);
            }
            let during_refresh = refreshed && had_token;
            // Random 401s, and more of them on the steps that start a background
            // refresh, so that the joining case is exercised too.
            let inject = rng.next().is_multiple_of(500)
                || (during_refresh && rng.next().is_multiple_of(4));
            if inject {
                api.reject_next(1);
                forced += 1;
                // A 401 during a background refresh joins it; otherwise it costs a login.
                if during_refresh {
                    joined += 1;
                } else {
                    expected += 1;
                    issued = Some(now);
                }
            }
            let request = Request::get("https://api.example/").body(Full::<Bytes>::default());
            let response = service.clone().oneshot(request.unwrap()).await.unwrap();
            assert_eq!(response.status(), 200, "request {i}");
            // Let a background refresh started by this request land at this instant.
            manager.settled().await;
        }
        assert_eq!(api.requests(), n + forced, "each forced 401 resent once");
        assert!(joined > 0, "no forced 401 landed during a background refresh");
        assert_eq!(idm.token_requests(), expected, "expiries plus forced re-logins");
        eprintln!(
            "layer: {n} requests, {forced} forced 401s ({joined} during a refresh), {} IDM requests",
            idm.token_requests()
        );
        rss_bytes()
    });

    // Phase 2: the middleware over loopback HTTP, real time. Tokens outlive the run, so
    // no refresh falls due however slow the machine is, and the count is exact: the
    // login plus one re-login per forced 401 (no throttle).
    let real = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    real.block_on(async {
        let idm = FakeIdm::new();
        idm.set_recording(false);
        idm.set_access_ttl(Duration::from_secs(24 * 3600));
        let idm_server = idm.serve().await.unwrap();
        let api = FakeApi::new(&idm);
        let api_server = api.serve().await.unwrap();
        let manager = TokenManager::builder(Credentials::new("user", "secret"))
            .token_url(idm_server.token_url())
            .min_relogin_interval(Duration::ZERO)
            .build()
            .unwrap();
        let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
            .with(IdmAuthMiddleware::with_manager(
                manager,
                TokenScope::origins([api_server.url("")]).unwrap(),
            ))
            .build();
        let url = api_server.url("/stores");
        let mut rng = Rng(0xD1B5_4A32_D192_ED03);
        let mut forced = 0;
        for i in 0..n / 10 {
            if rng.next().is_multiple_of(200) {
                api.reject_next(1);
                forced += 1;
            }
            let status = client.get(&url).send().await.unwrap().status();
            assert_eq!(status, 200, "request {i}");
        }
        assert!(forced > 0, "no forced 401 in the middleware phase");
        assert_eq!(
            api.requests(),
            n / 10 + forced,
            "each forced 401 resent once"
        );
        assert_eq!(
            idm.token_requests(),
            1 + forced,
            "the login plus one per 401"
        );
        eprintln!(
            "middleware: {} requests, {forced} forced 401s, {} IDM requests",
            n / 10,
            idm.token_requests()
        );
    });

    match (rss_after_warm_up, rss_end) {
        (Some(after_warm_up), Some(end)) => {
            eprintln!(
                "layer RSS after warm-up {} KiB, at the end {} KiB",
                after_warm_up >> 10,
                end >> 10
            );
            assert!(
                end.abs_diff(after_warm_up) < MAX_RSS_GROWTH,
                "RSS {after_warm_up} -> {end}"
            );
        }
        _ => eprintln!("memory check skipped: this platform has no /proc/self/status"),
    }
}
