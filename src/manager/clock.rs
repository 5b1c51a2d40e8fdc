//! The wall clock, for what is stored and shared, read consistently with the monotonic
//! clock (Tokio's) that schedules everything in this process.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// The wall-clock time at local instant `now`.
///
/// It is the later of the system clock and an anchor (the system clock and the
/// monotonic clock read together once per process) plus the monotonic time since. In
/// production the system clock is the later one (it also counts time the machine
/// slept, which the monotonic clock may not); under paused Tokio time the monotonic
/// clock runs ahead and the anchor keeps the two consistent, so a test that advances
/// time past an expiry sees a stored token expire too. A system clock stepped back
/// never makes the result go back.
pub(crate) fn wall(now: Instant) -> SystemTime {
    let (anchor_wall, anchor_local) =
        *ANCHOR.get_or_init(|| (SystemTime::now(), Instant::now().into_std()));
    let anchored = anchor_wall + now.into_std().saturating_duration_since(anchor_local);
    SystemTime::now().max(anchored)
}

/// The local instant of wall-clock time `at` (`now` for a time already past).
pub(crate) fn local(at: SystemTime, now: Instant) -> Instant {
    now + at.duration_since(wall(now)).unwrap_or(Duration::ZERO)
}

static ANCHOR: OnceLock<(SystemTime, std::time::Instant)> = OnceLock::new();

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn paused_time_moves_the_wall_clock_too() {
        let start = wall(Instant::now());
        tokio::time::advance(Duration::from_secs(3600)).await;
        let now = Instant::now();
        // (The system clock ran on a little while the test started.)
        assert!(wall(now) >= start + Duration::from_secs(3599));
        let in_ten = wall(now) + Duration::from_secs(10);
        let at = local(in_ten, now);
        assert!(at >= now + Duration::from_secs(9) && at <= now + Duration::from_secs(10));
        assert_eq!(local(start, now), now, "a past time is now at the latest");
    }
}
