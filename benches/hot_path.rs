//! The cached-token path: `TokenManager::access_token()` against the floor (a header
//! clone, one clock read and a comparison), a model of the read path before issue 16
//! (a `parking_lot::RwLock` around the token), and the hand-written baseline people write
//! (`Arc<tokio::sync::Mutex<Option<Token>>>`, expiry checked inside the lock); then the
//! same on 1 and 2 threads at once, for how each scales.
//!
//! Every floor reads the clock through `bodhi_auth_benches::clock_read()`, the clock the
//! crate's cached path reads (`CLOCK_MONOTONIC_COARSE`); the "clock alone" row times that
//! read, beside Tokio's `Instant::now()` (`CLOCK_MONOTONIC`). The hand-written baseline
//! and the read-locked model read `tokio::time::Instant::now()`, as that code does. This
//! package has no tokio `test-util`, so no clock has a paused-clock check, as in a
//! program.
//!
//! `cargo bench -p bodhi-auth-benches --bench hot_path`

use std::hint::black_box;
use std::sync::Arc;

use bodhi_auth::testing::FakeIdm;
use bodhi_auth::{AccessToken, Credentials, TokenManager};
use bodhi_auth_benches::{
    CLOCK_NAME, ClockInstant, Comparison, clock_read, cpu_now, on_threads, threads_name, timed,
    two_and_one,
};
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

/// The read path before issue 16, in miniature: a shared read lock around the current
/// token and when to stop serving it, a clock read under the lock, a clone out.
struct ReadLocked {
    token: parking_lot::RwLock<Option<(AccessToken, Instant)>>,
}

impl ReadLocked {
    fn cached(&self) -> Option<AccessToken> {
        match &*self.token.read() {
            Some((token, until)) if Instant::now() < *until => Some(token.clone()),
            _ => None,
        }
    }
}

struct Setup {
    manager: TokenManager,
    header: HeaderValue,
    expires_at: ClockInstant,
    /// The floor plus what returning an owned token adds: one reference count.
    owned: Arc<(HeaderValue, ClockInstant)>,
    read_locked: ReadLocked,
    hand_written: HandWritten,
}

fn setup() -> Setup {
    // Multi-thread, as `#[tokio::main]` starts: a token cached there is checked against
    // the coarse clock, as in a program (on a current-thread runtime, Tokio's).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
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
    let expires_at = clock_read() + token.expires_in();
    let until = Instant::now() + token.expires_in();
    Setup {
        manager,
        owned: Arc::new((header.clone(), expires_at)),
        read_locked: ReadLocked {
            token: parking_lot::RwLock::new(Some((token, until))),
        },
        hand_written: HandWritten {
            token: Arc::new(tokio::sync::Mutex::new(Some((header.clone(), until)))),
        },
        header,
        expires_at,
    }
}

const FLOOR: &str = "floor: header clone + clock + compare";
const OWNED: &str = "floor + an Arc clone (what an owned token adds)";
const OURS: &str = "ours: access_token() + header clone";
const CACHED: &str = "ours: cached() + header clone";
const RWLOCK: &str = "RwLock read path (before) + header clone";
const MUTEX: &str = "baseline: Arc<tokio Mutex<Option<Token>>>";
const PRECISE: &str = "clock alone: tokio Instant::now() (CLOCK_MONOTONIC)";

fn floor(s: &Setup) {
    let fresh = clock_read() < black_box(s.expires_at);
    black_box((fresh, s.header.clone()));
}

fn owned(s: &Setup) {
    let token = black_box(&s.owned).clone();
    let fresh = clock_read() < token.1;
    black_box((fresh, token.0.clone()));
}

fn ours(s: &Setup) {
    let token = s.manager.access_token().now_or_never().unwrap().unwrap();
    black_box(token.header_value().clone());
}

fn cached(s: &Setup) {
    let token = s.manager.cached().unwrap();
    black_box(token.header_value().clone());
}

fn read_locked(s: &Setup) {
    let token = s.read_locked.cached().unwrap();
    black_box(token.header_value().clone());
}

fn single_task(s: &Setup) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let clock = format!("clock alone: {CLOCK_NAME}");
    let clock = clock.as_str();
    let mut comparison = Comparison::new("cached_token/one_task");
    comparison
        .variant(FLOOR, |iters| timed(iters, || floor(s)))
        .variant(OWNED, |iters| timed(iters, || owned(s)))
        .variant(OURS, |iters| timed(iters, || ours(s)))
        .variant(CACHED, |iters| timed(iters, || cached(s)))
        .variant(RWLOCK, |iters| timed(iters, || read_locked(s)))
        .variant(MUTEX, |iters| {
            runtime.block_on(async {
                let start = cpu_now();
                for _ in 0..iters {
                    black_box(s.hand_written.header().await.unwrap());
                }
                cpu_now() - start
            })
        })
        .variant(clock, |iters| {
            timed(iters, || {
                black_box(clock_read());
            })
        })
        .variant(PRECISE, |iters| {
            timed(iters, || {
                black_box(Instant::now());
            })
        })
        .ratio(OURS, FLOOR)
        .ratio(CACHED, FLOOR)
        .ratio(OWNED, FLOOR)
        .ratio(OURS, OWNED)
        .ratio(RWLOCK, FLOOR)
        .ratio(MUTEX, OURS)
        .ratio(clock, FLOOR)
        .ratio(PRECISE, clock)
        .run();
}

/// Per-request time on 1 and on 2 threads at once (each its own caller).
fn contention(s: &Setup) {
    fn sync_batch(op: fn(&Setup)) -> impl Fn(&mut &Setup, u64) + Sync {
        move |s: &mut &Setup, iters| {
            for _ in 0..iters {
                op(s);
            }
        }
    }
    let mut comparison = Comparison::new("cached_token/threads");
    for threads in [1, 2] {
        let name = |what: &str| threads_name(what, threads);
        for (what, op) in [
            (FLOOR, floor as fn(&Setup)),
            (OWNED, owned),
            (OURS, ours),
            (RWLOCK, read_locked),
        ] {
            comparison.variant(&name(what), move |iters| {
                on_threads(threads, iters, |_| s, sync_batch(op))
            });
        }
        comparison.variant(&name(MUTEX), move |iters| {
            on_threads(
                threads,
                iters,
                |_| {
                    tokio::runtime::Builder::new_current_thread()
                        .build()
                        .unwrap()
                },
                |runtime, iters| {
                    runtime.block_on(async {
                        for _ in 0..iters {
                            black_box(s.hand_written.header().await.unwrap());
                        }
                    })
                },
            )
        });
    }
    for what in [FLOOR, OWNED, OURS, RWLOCK, MUTEX] {
        let (two, one) = two_and_one(what);
        comparison.ratio(&two, &one);
    }
    let (floor2, floor1) = two_and_one(FLOOR);
    for what in [OURS, RWLOCK, OWNED] {
        let (two, one) = two_and_one(what);
        comparison.scaling(&two, &one, &floor2, &floor1);
    }
    let (ours2, _) = two_and_one(OURS);
    let (mutex2, _) = two_and_one(MUTEX);
    comparison.ratio(&mutex2, &ours2);
    comparison.run();
}

fn main() {
    let s = setup();
    single_task(&s);
    contention(&s);
}
