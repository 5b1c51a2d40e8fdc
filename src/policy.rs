//! # Resilience policy
//!
//! How the token manager treats the IDM, in one place. Every number is a `DEFAULT_*`
//! constant here and a knob on [`TokenManagerBuilder`](crate::TokenManagerBuilder).
//!
//! **One flight.** However many callers need a token, one *flight* talks to the IDM
//! (a refresh grant when the refresh token is alive, falling back to the password
//! grant when the IDM answers `invalid_grant`). The flight runs in its own Tokio task,
//! so cancelling callers never cancels it.
//!
//! **Inside a flight.** Each IDM request has [`DEFAULT_REQUEST_TIMEOUT`] (10 s). A
//! transient failure (connection refused, time-out, 5xx, 429) is retried, up to
//! [`DEFAULT_MAX_ATTEMPTS`] (3) requests, after a random pause between zero and
//! [`DEFAULT_INITIAL_BACKOFF`] (250 ms) doubled per attempt ("full jitter", so a fleet of
//! clients does not retry in step). The whole flight ends by [`DEFAULT_FLIGHT_DEADLINE`]
//! (30 s) whatever happens. At most [`DEFAULT_MAX_BODY_BYTES`] (1 MiB) of an answer
//! is read. Permanent failures (wrong password, a refused client, a malformed answer)
//! are never retried.
//!
//! **`Retry-After`.** When the IDM answers 429 or 503 with `Retry-After` (seconds or
//! an HTTP date, believed up to [`DEFAULT_MAX_RETRY_AFTER`], 300 s), no request is sent
//! before that instant, by this flight or any later one.
//!
//! **Cooldown.** After a flight fails, callers get its error at once, without an IDM
//! request, for [`DEFAULT_COOLDOWN`] (5 s), doubling while failures continue up to
//! [`DEFAULT_MAX_COOLDOWN`] (60 s), and never ending before a `Retry-After`. The first
//! caller after the cooldown makes one trial flight; a success resets everything.
//! A refused password is permanent: no retries, and [`DEFAULT_INVALID_CREDENTIALS_COOLDOWN`]
//! (60 s) before the next attempt, so a wrong password cannot lock the account with a
//! burst of failed logins. [`TokenManager::set_credentials`](crate::TokenManager::set_credentials)
//! with new values ends any cooldown; the same values again change nothing.
//!
//! **A valid token is never lost.** A refresh that starts before expiry runs in the
//! background while callers keep the current token; if it fails, the current token is
//! served until it expires and the refresh is tried again after the cooldown.
//!
//! **401s.** [`TokenManager::invalidate`](crate::TokenManager::invalidate) drops a token
//! only if it is still the current one. The first 401-driven re-login is immediate; a
//! further one waits until [`DEFAULT_MIN_RELOGIN_INTERVAL`] (5 s) after the previous
//! one. Until then `invalidate` keeps the token and the front ends return the API's
//! 401 as it is: a user without rights to an API costs one login per interval, not one
//! per request.
//!
//! **A shared session** (a [store](crate::store)). A manager that needs the IDM first
//! reads the store, then takes the store's lease for [`DEFAULT_LEASE_TTL`] (10 s),
//! renewed every third of that while its flight runs, so one process of all those
//! sharing the session talks to the IDM. Stored times are wall-clock: a stored token is
//! adopted only until [`DEFAULT_CLOCK_SKEW`] (5 s) before it expires, so processes whose
//! clocks differ a little never use an expired token. A failed flight's cooldown is
//! stored too, and other processes wait it out rather than repeat the failure.

use std::time::Duration;

/// Time-out of one IDM request. Example: an IDM that accepts the connection and never
/// answers costs a caller at most 10 s per attempt.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// IDM requests per flight for transient failures. Example: two 503s then a 200 is a
/// success; three 503s fail the flight.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Upper bound of the first retry pause; doubles each attempt, each pause drawn
/// uniformly from zero to the bound. Example: pauses at most 250 ms, then 500 ms.
pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_millis(250);
/// The most a flight takes, retries and pauses included. Example: callers waiting on a
/// hanging IDM all get [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable) by 30 s.
pub const DEFAULT_FLIGHT_DEADLINE: Duration = Duration::from_secs(30);
/// Largest IDM answer read. Example: an 8 MB body fails with
/// [`ErrorKind::InvalidResponse`](crate::ErrorKind::InvalidResponse) without being buffered.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Longest `Retry-After` obeyed. Example: `Retry-After: 3600` is treated as 300 s.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// First cooldown after a failed flight. Example: failures at t=0, 5 s and 15 s give
/// cooldowns of 5 s, 10 s and 20 s.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(5);
/// Cap of the doubling cooldown.
pub const DEFAULT_MAX_COOLDOWN: Duration = Duration::from_secs(60);
/// Cooldown after the IDM refused the credentials. Example: 20 calls with a wrong
/// password within a minute send one login.
pub const DEFAULT_INVALID_CREDENTIALS_COOLDOWN: Duration = Duration::from_secs(60);
/// Minimum interval between 401-driven re-logins. Example: an API that rejects every
/// token sees one re-login per 5 s, however many requests it rejects.
pub const DEFAULT_MIN_RELOGIN_INTERVAL: Duration = Duration::from_secs(5);
/// Lifetime of a store's lease, renewed every third of it while its holder's flight
/// runs. Example: a process killed while holding a Redis lease delays the others by at
/// most 10 s (a file lock ends with the process at once).
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);
/// How much clocks of processes sharing a store may differ. Example: a stored token
/// expiring at 12:00:00 by its writer's clock is adopted until 11:59:55.
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(5);

/// The knobs above, as the manager uses them.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    pub(crate) request_timeout: Duration,
    pub(crate) max_attempts: u32,
    pub(crate) initial_backoff: Duration,
    pub(crate) flight_deadline: Duration,
    pub(crate) max_body_bytes: usize,
    pub(crate) max_retry_after: Duration,
    pub(crate) cooldown: Duration,
    pub(crate) max_cooldown: Duration,
    pub(crate) invalid_credentials_cooldown: Duration,
    pub(crate) min_relogin_interval: Duration,
    pub(crate) lease_ttl: Duration,
    pub(crate) clock_skew: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            initial_backoff: DEFAULT_INITIAL_BACKOFF,
            flight_deadline: DEFAULT_FLIGHT_DEADLINE,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
            cooldown: DEFAULT_COOLDOWN,
            max_cooldown: DEFAULT_MAX_COOLDOWN,
            invalid_credentials_cooldown: DEFAULT_INVALID_CREDENTIALS_COOLDOWN,
            min_relogin_interval: DEFAULT_MIN_RELOGIN_INTERVAL,
            lease_ttl: DEFAULT_LEASE_TTL,
            clock_skew: DEFAULT_CLOCK_SKEW,
        }
    }
}

impl Policy {
    /// The cooldown after `failures` failed flights in a row (1 for the first).
    pub(crate) fn cooldown_after(&self, failures: u32, invalid_credentials: bool) -> Duration {
        if invalid_credentials {
            return self.invalid_credentials_cooldown;
        }
        let doublings = failures.saturating_sub(1).min(16);
        self.cooldown
            .saturating_mul(1 << doublings)
            .min(self.max_cooldown.max(self.cooldown))
    }

    /// A full-jitter pause before attempt `attempt + 1` (1 for the first retry).
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let bound = self
            .initial_backoff
            .saturating_mul(1 << attempt.saturating_sub(1).min(16));
        bound.mul_f64(random_unit())
    }
}

/// A uniform number in [0, 1) from std's randomly keyed hasher: jitter needs no more.
fn random_unit() -> f64 {
    use std::hash::{BuildHasher, RandomState};
    let bits = RandomState::new().hash_one(std::thread::current().id());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cooldown_doubles_up_to_the_cap_and_wrong_passwords_wait_longest() {
        let p = Policy::default();
        let secs: Vec<u64> = (1..=6)
            .map(|n| p.cooldown_after(n, false).as_secs())
            .collect();
        assert_eq!(secs, [5, 10, 20, 40, 60, 60]);
        assert_eq!(p.cooldown_after(1, true), Duration::from_secs(60));
    }

    #[test]
    fn backoff_stays_within_the_doubling_bound() {
        let p = Policy::default();
        for attempt in 1..=4 {
            let bound = Duration::from_millis(250 << (attempt - 1));
            for _ in 0..50 {
                assert!(p.backoff(attempt) <= bound);
            }
        }
        let distinct: std::collections::HashSet<_> = (0..50).map(|_| p.backoff(3)).collect();
        assert!(distinct.len() > 1, "backoff is not jittered");
    }
}
