//! [`Deadline`]: until when the cached path may serve a token, tested with one cheap
//! clock read.
//!
//! Every request asks "is the token still good?", and the answer has a margin of
//! seconds (a token is served only until its refresh is due, or its expiry less the
//! clock skew while a refresh runs). Tokio's `Instant::now()` reads `CLOCK_MONOTONIC`,
//! a nanosecond clock that costs about five times as much as `CLOCK_MONOTONIC_COARSE`,
//! the same clock kept at the kernel's tick (1 to 10 ms, `clock_getres` says which).
//! The question does not need the nanoseconds, so the cached path reads the coarse
//! clock, and the deadline it compares with is moved earlier by one tick, so a reading
//! that lags by up to a tick never serves a token past the instant the state chose.
//!
//! Paused time (Tokio's `test-util`) drives only Tokio's clock. A deadline is made
//! where the state publishes a new token, and there it asks which clock Tokio reads: if
//! Tokio's clock is paused in this context, the deadline is kept as a Tokio instant
//! and tested against Tokio's clock, so a test that advances paused time past a refresh
//! sees the same code path decide, exactly. A test that pauses time only after a token
//! was published sees that token judged by the real clock until the next one.
//!
//! Elsewhere than Linux, Android and FreeBSD (no coarse clock), the real clock is the
//! standard monotonic one.

use tokio::time::Instant;

/// Until when a token may be served: a [`Deadline::not_reached`] costs one clock read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deadline {
    /// On the coarse monotonic clock, in nanoseconds, one tick early.
    Coarse(u64),
    /// On Tokio's paused clock, made while it was paused.
    Paused(Instant),
}

impl Deadline {
    /// `until` (on Tokio's clock) as a deadline the cached path can test.
    pub(crate) fn at(until: Instant) -> Deadline {
        let now = Instant::now();
        if tokio_clock_is_paused(now) {
            return Deadline::Paused(until);
        }
        let left =
            u64::try_from(until.saturating_duration_since(now).as_nanos()).unwrap_or(u64::MAX);
        match left {
            0 => Deadline::Coarse(0),
            left => Deadline::Coarse(
                coarse::now()
                    .saturating_add(left)
                    .saturating_sub(coarse::resolution()),
            ),
        }
    }

    /// Whether the deadline is still ahead: one read of the clock it is on.
    #[inline]
    pub(crate) fn not_reached(self) -> bool {
        match self {
            Deadline::Coarse(until) => coarse::now() < until,
            Deadline::Paused(until) => Instant::now() < until,
        }
    }
}

/// Whether Tokio's clock, as read here, is paused: it has not moved while the real
/// monotonic clock did. Without `test-util`, or outside a paused runtime, Tokio's clock
/// is the real one and moves with it, so this is false. Waits for one tick of the
/// nanosecond clock (tens of nanoseconds), once per published token.
fn tokio_clock_is_paused(before: Instant) -> bool {
    let real = std::time::Instant::now();
    while std::time::Instant::now() <= real {
        std::hint::spin_loop();
    }
    Instant::now() == before
}

#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
mod coarse {
    use rustix::time::{ClockId, Timespec, clock_getres, clock_gettime};

    /// The coarse monotonic clock, in nanoseconds (a vDSO read: no system call).
    #[inline]
    pub(super) fn now() -> u64 {
        nanos(clock_gettime(ClockId::MonotonicCoarse))
    }

    /// How far a reading may lag the real time: the clock's tick.
    pub(super) fn resolution() -> u64 {
        nanos(clock_getres(ClockId::MonotonicCoarse))
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

    pub(super) fn resolution() -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn under_paused_time_the_deadline_follows_tokio_s_clock() {
        let until = Instant::now() + Duration::from_secs(30);
        let deadline = Deadline::at(until);
        assert_eq!(deadline, Deadline::Paused(until));
        tokio::time::advance(Duration::from_secs(29)).await;
        assert!(deadline.not_reached());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!deadline.not_reached(), "reached at `until`, not after it");
    }

    #[tokio::test]
    async fn on_the_real_clock_the_deadline_is_coarse_and_one_tick_early() {
        let hour = 3_600_000_000_000;
        let tick = coarse::resolution();
        let before = coarse::now();
        let deadline = Deadline::at(Instant::now() + Duration::from_nanos(hour));
        let after = coarse::now();
        let Deadline::Coarse(at) = deadline else {
            panic!("a real clock gave {deadline:?}");
        };
        // The hour from the coarse reading taken when it was made, less one tick and
        // less the real time between the two reads (at most `after - before` plus a
        // tick of lag): bounds that hold however slowly this runs.
        assert!(at <= after + hour - tick);
        assert!(at + (after - before) + 2 * tick >= before + hour);
        assert!(deadline.not_reached());
    }

    #[test]
    fn a_deadline_already_past_is_reached_whichever_clock() {
        // Outside any runtime, Tokio's clock is the real one.
        let past = Instant::now() - Duration::from_millis(1);
        assert_eq!(Deadline::at(past), Deadline::Coarse(0));
        assert!(!Deadline::at(past).not_reached());
        assert!(!Deadline::at(Instant::now()).not_reached());
    }
}
