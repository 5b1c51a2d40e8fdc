//! [`Deadline`]: until when the cached path may serve a token, tested with one cheap
//! clock read.
//!
//! Every request asks "is the token still good?", and the answer has a margin of
//! seconds (a token is served only until its refresh is due, or its expiry less the
//! clock skew while a refresh runs). Tokio's `Instant::now()` reads `CLOCK_MONOTONIC`,
//! a nanosecond clock that costs several times as much as `CLOCK_MONOTONIC_COARSE`, the
//! same clock kept at the kernel's tick (1 to 10 ms). The question does not need the
//! nanoseconds, so the cached path reads the coarse clock, and the deadline it compares
//! with is moved earlier by [`MARGIN`] (at least one tick), so a reading that lags never
//! serves a token past the instant the state chose.
//!
//! Paused time (Tokio's `test-util`) drives only Tokio's clock, and only a
//! current-thread runtime can be paused (`tokio::time::pause` refuses any other). So a
//! deadline made on a current-thread runtime is kept as a Tokio instant and tested
//! against Tokio's clock: a test that pauses time, before or after its first token, and
//! advances past a refresh sees the same code path decide, exactly. Deadlines made on a
//! multi-thread runtime (what `#[tokio::main]` starts) or outside any runtime use the
//! coarse clock. One manager shared by a multi-thread runtime and a paused test runtime
//! judges a token the multi-thread one got by the real clock.
//!
//! Elsewhere than Linux, Android and FreeBSD (no coarse clock), the real clock is the
//! standard monotonic one.

use std::time::Duration;

use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::time::Instant;

/// How much earlier than the state's instant a coarse deadline is reached: the coarse
/// clock's resolution, and never less than 10 ms (FreeBSD reports its fast clock's
/// resolution as about a nanosecond, though it moves once per tick).
const MARGIN: Duration = Duration::from_millis(10);

/// Until when a token may be served: a [`Deadline::not_reached`] costs one clock read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deadline {
    /// On the coarse monotonic clock, in nanoseconds, [`MARGIN`] early.
    Coarse(u64),
    /// On Tokio's clock, for a runtime whose clock can be paused.
    Tokio(Instant),
}

impl Deadline {
    /// `until` (on Tokio's clock) as a deadline the cached path can test.
    pub(crate) fn at(until: Instant) -> Deadline {
        let pausable = Handle::try_current()
            .is_ok_and(|runtime| runtime.runtime_flavor() == RuntimeFlavor::CurrentThread);
        if pausable {
            return Deadline::Tokio(until);
        }
        // The coarse clock first: time spent between the two reads makes the deadline
        // earlier, never later.
        let coarse_now = coarse::now();
        let left = until.saturating_duration_since(Instant::now());
        let margin = coarse::resolution().max(MARGIN);
        match left.checked_sub(margin) {
            Some(left) => Deadline::Coarse(
                coarse_now.saturating_add(u64::try_from(left.as_nanos()).unwrap_or(u64::MAX)),
            ),
            None => Deadline::Coarse(0),
        }
    }

    /// Whether the deadline is still ahead: one read of the clock it is on.
    #[inline]
    pub(crate) fn not_reached(self) -> bool {
        match self {
            Deadline::Coarse(until) => coarse::now() < until,
            Deadline::Tokio(until) => Instant::now() < until,
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
mod coarse {
    use std::time::Duration;

    use rustix::time::{ClockId, Timespec, clock_getres, clock_gettime};

    /// The coarse monotonic clock, in nanoseconds (a vDSO read: no system call).
    #[inline]
    pub(super) fn now() -> u64 {
        nanos(clock_gettime(ClockId::MonotonicCoarse))
    }

    /// How far a reading may lag the real time: the clock's tick, as the system says.
    pub(super) fn resolution() -> Duration {
        Duration::from_nanos(nanos(clock_getres(ClockId::MonotonicCoarse)))
    }

    #[inline]
    fn nanos(t: Timespec) -> u64 {
        // Monotonic readings are never negative.
        let secs = u64::try_from(t.tv_sec).unwrap_or(0);
        let nanos = u64::try_from(t.tv_nsec).unwrap_or(0);
        secs.saturating_mul(1_000_000_000).saturating_add(nanos)
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
mod coarse {
    use std::sync::OnceLock;
    use std::time::Instant;

    static START: OnceLock<Instant> = OnceLock::new();

    /// The standard monotonic clock, in nanoseconds since this module first read it.
    #[inline]
    pub(super) fn now() -> u64 {
        let start = *START.get_or_init(Instant::now);
        u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    pub(super) fn resolution() -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn under_paused_time_the_deadline_follows_tokio_s_clock() {
        let until = Instant::now() + Duration::from_secs(30);
        let deadline = Deadline::at(until);
        assert_eq!(deadline, Deadline::Tokio(until));
        tokio::time::advance(Duration::from_secs(29)).await;
        assert!(deadline.not_reached());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!deadline.not_reached(), "reached at `until`, not after it");
    }

    #[tokio::test]
    async fn time_paused_after_the_deadline_was_made_still_drives_it() {
        let deadline = Deadline::at(Instant::now() + Duration::from_secs(30));
        tokio::time::pause();
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(!deadline.not_reached());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn on_a_multi_thread_runtime_the_deadline_is_coarse_and_early() {
        let hour = Duration::from_secs(3600);
        let margin = u64::try_from(coarse::resolution().max(MARGIN).as_nanos()).unwrap();
        let before = coarse::now();
        let deadline = Deadline::at(Instant::now() + hour);
        let after = coarse::now();
        let Deadline::Coarse(at) = deadline else {
            panic!("a multi-thread runtime gave {deadline:?}");
        };
        let hour = u64::try_from(hour.as_nanos()).unwrap();
        // The hour from the coarse reading taken first, less the margin and less the time
        // between that reading and Tokio's (at most `after - before` plus a tick of lag):
        // bounds that hold however slowly this runs.
        assert!(at <= after + hour - margin);
        assert!(at + (after - before) + 2 * margin >= before + hour);
        assert!(deadline.not_reached());
    }

    #[test]
    fn a_deadline_closer_than_the_margin_is_reached_at_once() {
        // Outside any runtime: the coarse clock.
        for left in [Duration::ZERO, Duration::from_millis(9)] {
            let deadline = Deadline::at(Instant::now() + left);
            assert_eq!(deadline, Deadline::Coarse(0));
            assert!(!deadline.not_reached());
        }
        let past = Instant::now() - Duration::from_millis(1);
        assert!(!Deadline::at(past).not_reached());
    }
}
