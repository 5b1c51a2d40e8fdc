//! The wall clock, for what is stored and shared, read consistently with the monotonic
//! clock (Tokio's) that schedules everything in this process.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// The wall-clock time at local instant `now`.
///
/// It is an anchor (the system clock and the real monotonic clock, read together once
/// per process) plus the monotonic time since, so it moves with Tokio's clock: under
/// paused time a test that advances past an expiry sees a stored token expire too,
/// however fast the machine runs. When the system clock gets ahead of it by more than
/// [`RESYNC`] (the machine slept, and the monotonic clock did not count it) the anchor
/// catches up; it never goes back (a system clock stepped back is ignored).
pub(crate) fn wall(now: Instant) -> SystemTime {
    let (anchor_wall, anchor_local) =
        *ANCHOR.get_or_init(|| (SystemTime::now(), std::time::Instant::now()));
    let elapsed = now.into_std().saturating_duration_since(anchor_local);
    let ahead = Duration::from_millis(CAUGHT_UP_MS.load(Ordering::Relaxed));
    let anchored = anchor_wall + elapsed + ahead;
    let system = SystemTime::now();
    match system.duration_since(anchored) {
        Ok(behind) if behind > RESYNC => {
            let behind_ms = u64::try_from(behind.as_millis()).unwrap_or(u64::MAX);
            CAUGHT_UP_MS.fetch_add(behind_ms, Ordering::Relaxed);
            system
        }
        _ => anchored,
    }
}

/// The local instant of wall-clock time `at` (`now` for a time already past).
pub(crate) fn local(at: SystemTime, now: Instant) -> Instant {
    now + at.duration_since(wall(now)).unwrap_or(Duration::ZERO)
}

/// How far the system clock may run ahead before the anchor catches up: more than any
/// test runs without advancing paused time, less than any token lifetime worth keeping.
const RESYNC: Duration = Duration::from_secs(60);

static ANCHOR: OnceLock<(SystemTime, std::time::Instant)> = OnceLock::new();
/// What the anchor has caught up so far (sleeps the monotonic clock did not count).
static CAUGHT_UP_MS: AtomicU64 = AtomicU64::new(0);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn paused_time_moves_the_wall_clock_too() {
        let start = wall(Instant::now());
        tokio::time::advance(Duration::from_secs(3600)).await;
        let now = Instant::now();
        // Exactly the paused hour (give or take the instant between the runtime's
        // creation and the anchor's, which is real time).
        let moved = wall(now).duration_since(start).unwrap();
        assert!(moved.abs_diff(Duration::from_secs(3600)) < Duration::from_millis(50));
        let in_ten = wall(now) + Duration::from_secs(10);
        let at = local(in_ten, now);
        assert!(at >= now + Duration::from_secs(9) && at <= now + Duration::from_secs(10));
        assert_eq!(local(start, now), now, "a past time is now at the latest");
    }
}
