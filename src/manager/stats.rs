//! [`Stats`]: what a manager has done, for operators; and, with the `metrics` feature,
//! the same through the `metrics` facade.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::ErrorKind;

/// A snapshot of a manager's counters and of its token, from
/// [`TokenManager::stats`](crate::TokenManager::stats). Counters only grow.
///
/// With the `metrics` feature the same counts go to the `metrics` crate's facade, so any
/// exporter (Prometheus, StatsD, OpenTelemetry) reports them:
///
/// | metric (`metrics` feature) | kind | unit | meaning |
/// |---|---|---|---|
/// | `bodhi_auth_logins_total` | counter | grants | password grants the IDM accepted |
/// | `bodhi_auth_refreshes_total` | counter | grants | refresh grants the IDM accepted |
/// | `bodhi_auth_idm_failures_total{kind}` | counter | flights | token requests that failed, by [`ErrorKind`] (`invalid_credentials`, `unavailable`, `invalid_response`, `config`) |
/// | `bodhi_auth_rejections_total` | counter | 401s | tokens reported rejected by the API (`invalidate` calls) |
/// | `bodhi_auth_throttled_total` | counter | 401s | of those, kept because the previous 401 re-login was too recent |
/// | `bodhi_auth_resends_total` | counter | requests | requests the front ends sent again after a 401 |
/// | `bodhi_auth_store_hits_total` | counter | flights | sessions adopted from a store instead of asking the IDM |
/// | `bodhi_auth_store_lease_waits_total` | counter | waits | waits for another process's lease |
/// | `bodhi_auth_store_errors_total` | counter | errors | store operations that failed |
/// | `bodhi_auth_token_expiry_seconds` | gauge | Unix seconds | when the current token expires (wall clock) |
///
/// Counters are per manager in [`Stats`]; through the facade every manager of the
/// process adds to the same series. No label holds a user name or a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Password grants the IDM accepted.
    pub logins: u64,
    /// Refresh grants the IDM accepted.
    pub refreshes: u64,
    /// Token requests that failed, counted once per failed flight that reached the IDM.
    pub idm_failures: IdmFailures,
    /// Tokens reported rejected by the API (every `invalidate` call, the front ends'
    /// included).
    pub rejections: u64,
    /// Of those, the ones kept because the previous 401 re-login was too recent.
    pub throttled: u64,
    /// Requests a front end sent again after a 401.
    pub resends: u64,
    /// Sessions adopted from a store without asking the IDM.
    pub store_hits: u64,
    /// Waits for another process's lease.
    pub store_lease_waits: u64,
    /// Store operations that failed (each one a fallback to the IDM alone, or a lost
    /// save).
    pub store_errors: u64,
    /// What the manager is doing now.
    pub state: TokenState,
    /// Time until the current token is due for refresh (zero once due), if there is one.
    pub refresh_due_in: Option<Duration>,
    /// Time until the current token expires, if there is one.
    pub expires_in: Option<Duration>,
    /// When the current token expires, by the wall clock.
    pub expires_at: Option<SystemTime>,
    /// While cooling down after a failure: the time until the next attempt.
    pub cooldown_remaining: Option<Duration>,
}

/// Failed token requests by [`ErrorKind`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IdmFailures {
    /// The IDM refused the credentials.
    pub invalid_credentials: u64,
    /// The IDM could not be reached or was unwell.
    pub unavailable: u64,
    /// The IDM's answer could not be understood.
    pub invalid_response: u64,
    /// The configuration was wrong.
    pub config: u64,
}

impl IdmFailures {
    /// All failures, whatever their kind.
    pub fn total(&self) -> u64 {
        self.invalid_credentials + self.unavailable + self.invalid_response + self.config
    }
}

/// What a manager is doing, as [`Stats::state`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenState {
    /// No token and nothing in flight.
    Empty,
    /// No usable token; a flight is fetching one.
    Fetching,
    /// A token is served.
    Valid,
    /// A token is served while a refresh runs in the background.
    RefreshingWhileValid,
    /// The last flight failed; its error is returned until the cooldown ends.
    CoolingDown,
}

/// The live counters behind [`Stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    logins: AtomicU64,
    refreshes: AtomicU64,
    failures: [AtomicU64; 4],
    rejections: AtomicU64,
    throttled: AtomicU64,
    resends: AtomicU64,
    store_hits: AtomicU64,
    store_lease_waits: AtomicU64,
    store_errors: AtomicU64,
}

/// One thing a manager counts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Event {
    Login,
    Refresh,
    Failure(ErrorKind),
    Rejection,
    Throttled,
    #[cfg_attr(not(any(feature = "tower", feature = "reqwest")), allow(dead_code))]
    Resend,
    StoreHit,
    StoreLeaseWait,
    StoreError,
}

impl Counters {
    pub(crate) fn count(&self, event: Event) {
        let counter = match event {
            Event::Login => &self.logins,
            Event::Refresh => &self.refreshes,
            Event::Failure(kind) => &self.failures[kind_index(kind)],
            Event::Rejection => &self.rejections,
            Event::Throttled => &self.throttled,
            Event::Resend => &self.resends,
            Event::StoreHit => &self.store_hits,
            Event::StoreLeaseWait => &self.store_lease_waits,
            Event::StoreError => &self.store_errors,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        facade::count(event);
    }

    /// The counters into `stats`, whose token fields the caller fills in.
    pub(super) fn snapshot(&self, state: TokenState) -> Stats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Stats {
            logins: read(&self.logins),
            refreshes: read(&self.refreshes),
            idm_failures: IdmFailures {
                invalid_credentials: read(&self.failures[0]),
                unavailable: read(&self.failures[1]),
                invalid_response: read(&self.failures[2]),
                config: read(&self.failures[3]),
            },
            rejections: read(&self.rejections),
            throttled: read(&self.throttled),
            resends: read(&self.resends),
            store_hits: read(&self.store_hits),
            store_lease_waits: read(&self.store_lease_waits),
            store_errors: read(&self.store_errors),
            state,
            refresh_due_in: None,
            expires_in: None,
            expires_at: None,
            cooldown_remaining: None,
        }
    }
}

fn kind_index(kind: ErrorKind) -> usize {
    match kind {
        ErrorKind::InvalidCredentials => 0,
        ErrorKind::Unavailable => 1,
        ErrorKind::InvalidResponse => 2,
        ErrorKind::Config => 3,
    }
}

/// Reports a new token's expiry through the facade (the gauge in the table above).
pub(super) fn token_expires_at(_at: SystemTime) {
    #[cfg(feature = "metrics")]
    facade::expiry(_at);
}

#[cfg(feature = "metrics")]
mod facade {
    use std::time::{SystemTime, UNIX_EPOCH};

    use super::Event;
    use crate::ErrorKind;

    pub(super) fn count(event: Event) {
        match event {
            Event::Login => metrics::counter!("bodhi_auth_logins_total").increment(1),
            Event::Refresh => metrics::counter!("bodhi_auth_refreshes_total").increment(1),
            Event::Failure(kind) => {
                let kind = match kind {
                    ErrorKind::InvalidCredentials => "invalid_credentials",
                    ErrorKind::Unavailable => "unavailable",
                    ErrorKind::InvalidResponse => "invalid_response",
                    ErrorKind::Config => "config",
                };
                metrics::counter!("bodhi_auth_idm_failures_total", "kind" => kind).increment(1)
            }
            Event::Rejection => metrics::counter!("bodhi_auth_rejections_total").increment(1),
            Event::Throttled => metrics::counter!("bodhi_auth_throttled_total").increment(1),
            Event::Resend => metrics::counter!("bodhi_auth_resends_total").increment(1),
            Event::StoreHit => metrics::counter!("bodhi_auth_store_hits_total").increment(1),
            Event::StoreLeaseWait => {
                metrics::counter!("bodhi_auth_store_lease_waits_total").increment(1)
            }
            Event::StoreError => metrics::counter!("bodhi_auth_store_errors_total").increment(1),
        }
    }

    pub(super) fn expiry(at: SystemTime) {
        let seconds = at
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        metrics::gauge!("bodhi_auth_token_expiry_seconds").set(seconds);
    }
}
