//! [`WallClock`]: wall-clock times for what is stored and shared, read consistently
//! with the monotonic clock that schedules everything in this process.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// Converts between this process's monotonic clock (Tokio's: paused in tests) and the
/// wall clock that other processes read.
///
/// "Now" on the wall clock is the later of the system clock and an anchor taken when
/// the manager was built plus Tokio's time since then. In production the system clock
/// is the later one (it also counts time the machine slept, which the monotonic clock
/// may not); in a paused-time test Tokio's clock runs ahead and the anchor keeps the
/// two consistent, so a test that advances time past an expiry sees a stored token
/// expire too. A system clock stepped back never makes a stored time look earlier.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WallClock {
    wall: SystemTime,
    local: Instant,
}

impl WallClock {
    pub(crate) fn new() -> WallClock {
        WallClock {
            wall: SystemTime::now(),
            local: Instant::now(),
        }
    }

    /// The wall-clock time at local instant `now`.
    pub(crate) fn wall(&self, now: Instant) -> SystemTime {
        let anchored = self.wall + now.saturating_duration_since(self.local);
        SystemTime::now().max(anchored)
    }

    /// The local instant of wall-clock time `at` (at the latest `now`, for a time
    /// already past).
    pub(crate) fn local(&self, at: SystemTime, now: Instant) -> Instant {
        now + at
            .duration_since(self.wall(now))
            .unwrap_or(Duration::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn paused_time_moves_the_wall_clock_too() {
        let clock = WallClock::new();
        let start = Instant::now();
        let wall = clock.wall(start);
        tokio::time::advance(Duration::from_secs(3600)).await;
        let now = Instant::now();
        assert!(clock.wall(now) >= wall + Duration::from_secs(3600));
        let in_ten = clock.wall(now) + Duration::from_secs(10);
        let local = clock.local(in_ten, now);
        assert!(local >= now + Duration::from_secs(9) && local <= now + Duration::from_secs(10));
        assert_eq!(clock.local(wall, now), now, "a past time is now at the latest");
    }
}
