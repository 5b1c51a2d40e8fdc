//! The token state machine. Every transition is here; the manager only locks, spawns
//! flights and waits.
//!
//! ```text
//!            access                 ok                     refresh due
//!   Empty ──────────▶ Fetching ─────────▶ Valid ─────────────────────▶ RefreshingWhileValid
//!     ▲                 │  ▲ err            ▲ │ expired / 401              │ ok ─▶ Valid
//!     │                 ▼  │ trial          │ ▼                            │ err, still valid ─▶ Valid (retry later)
//!     └─ 401 ──────  CoolingDown ◀──────────┴─ Fetching ◀──── expired ─────┘ err, expired ─▶ CoolingDown
//! ```

use std::mem;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::time::Instant;
use zeroize::Zeroizing;

use crate::policy::Policy;
use crate::token::AccessToken;
use crate::{Credentials, Error, ErrorKind};

/// What every waiter of a flight receives.
pub(crate) type FlightResult = Result<AccessToken, Error>;

/// A handle on the one IDM flight in progress.
#[derive(Debug, Clone)]
pub(crate) struct Flight {
    pub(crate) id: u64,
    /// When the flight gives up on its own (its start plus the flight deadline). A
    /// waiter that hears nothing well after this knows the flight is not being run.
    pub(crate) deadline: Instant,
    pub(crate) result: watch::Receiver<Option<FlightResult>>,
}

/// A token in the cache and when to start refreshing it.
#[derive(Debug)]
pub(crate) struct Cached {
    pub(crate) token: AccessToken,
    pub(crate) refresh_at: Instant,
}

#[derive(Debug, Default)]
pub(crate) enum State {
    /// No token, nothing in flight.
    #[default]
    Empty,
    /// No usable token: callers wait for the flight.
    Fetching(Flight),
    /// A token, served at once until `refresh_at`.
    Valid(Cached),
    /// Refresh is due: callers get the token at once while the flight runs.
    RefreshingWhileValid(Cached, Flight),
    /// The last flight failed: callers get its error at once until `until`.
    CoolingDown { error: Error, until: Instant },
}

/// What a caller does after looking at the state.
pub(crate) enum Access {
    Ready(AccessToken),
    Join(Flight),
    Fail(Error),
    /// No usable token: start a flight and wait for it.
    StartAndWait,
    /// Refresh is due: start a flight in the background and use this token.
    StartInBackground(AccessToken),
}

impl State {
    /// The token a caller may use without any state change, and until when (before
    /// that instant, not at it). This is what the manager publishes for the lock-free
    /// read path, and the first question [`State::access`] asks. `until` is never past
    /// the token's expiry.
    pub(crate) fn serving(&self) -> Option<(&AccessToken, Instant)> {
        match self {
            State::Valid(c) => Some((&c.token, c.refresh_at.min(c.token.deadline()))),
            State::RefreshingWhileValid(c, _) => Some((&c.token, c.token.deadline())),
            _ => None,
        }
    }

    pub(crate) fn access(&self, now: Instant) -> Access {
        if let Some((token, until)) = self.serving()
            && now < until
        {
            return Access::Ready(token.clone());
        }
        match self {
            State::Valid(c) if now < c.token.deadline() => {
                Access::StartInBackground(c.token.clone())
            }
            State::Fetching(f) | State::RefreshingWhileValid(_, f) => Access::Join(f.clone()),
            State::CoolingDown { error, until } if now < *until => Access::Fail(error.clone()),
            State::Empty | State::Valid(_) | State::CoolingDown { .. } => Access::StartAndWait,
        }
    }

    fn current(&self) -> Option<&AccessToken> {
        match self {
            State::Valid(c) | State::RefreshingWhileValid(c, _) => Some(&c.token),
            _ => None,
        }
    }

    /// The flight in progress, if any.
    pub(crate) fn flight(&self) -> Option<&Flight> {
        match self {
            State::Fetching(f) | State::RefreshingWhileValid(_, f) => Some(f),
            _ => None,
        }
    }

    fn flight_id(&self) -> Option<u64> {
        self.flight().map(|f| f.id)
    }

    /// The current token and when it is due for refresh, if there is one.
    pub(crate) fn current_with_refresh_at(&self) -> Option<(&AccessToken, Instant)> {
        match self {
            State::Valid(c) | State::RefreshingWhileValid(c, _) => Some((&c.token, c.refresh_at)),
            _ => None,
        }
    }

    pub(crate) fn token_state(&self) -> super::TokenState {
        use super::TokenState;
        match self {
            State::Empty => TokenState::Empty,
            State::Fetching(_) => TokenState::Fetching,
            State::Valid(_) => TokenState::Valid,
            State::RefreshingWhileValid(..) => TokenState::RefreshingWhileValid,
            State::CoolingDown { .. } => TokenState::CoolingDown,
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::Fetching(_) => "Fetching",
            State::Valid(_) => "Valid",
            State::RefreshingWhileValid(..) => "RefreshingWhileValid",
            State::CoolingDown { .. } => "CoolingDown",
        }
    }
}

/// What [`Shared::invalidate`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Invalidation {
    Dropped,
    /// Another token already replaced it (a late 401).
    NotCurrent,
    /// The previous 401-driven re-login was too recent.
    Throttled {
        remaining: Duration,
    },
}

/// A refresh token and when it dies (`None`: the IDM gave no expiry), on the local
/// clock and on the wall clock (for a store).
pub(crate) struct RefreshToken {
    pub(crate) secret: Zeroizing<String>,
    pub(crate) expires_at: Option<Instant>,
    pub(crate) wall_expires_at: Option<SystemTime>,
}

impl RefreshToken {
    pub(crate) fn alive(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }
}

/// What a successful flight brings back.
pub(crate) struct Fresh {
    pub(crate) token: AccessToken,
    /// When the IDM issued it (the request's send time), on the wall clock: a store
    /// keeps it so other processes compute the same refresh-due.
    pub(crate) issued_at: SystemTime,
    pub(crate) refresh_at: Instant,
    pub(crate) refresh: Option<Arc<RefreshToken>>,
}

/// Everything behind the manager's lock.
pub(crate) struct Shared {
    pub(crate) state: State,
    pub(crate) credentials: Credentials,
    /// Survives invalidation: after a 401 the next flight tries it first.
    pub(crate) refresh: Option<Arc<RefreshToken>>,
    /// Failed flights in a row, for the doubling cooldown.
    pub(crate) failures: u32,
    /// No IDM request before this (`Retry-After`).
    pub(crate) not_before: Option<Instant>,
    pub(crate) last_forced_relogin: Option<Instant>,
    pub(crate) next_flight_id: u64,
    /// The flight that has presented the current refresh token to the IDM and not yet
    /// recorded the answer. Should it be abandoned, the refresh token may already be
    /// spent (Keycloak can make them single-use, and revokes the session on reuse), so
    /// it is dropped rather than presented again.
    pub(crate) refresh_presented_by: Option<u64>,
    /// The last token this manager dropped after a 401: a flight never adopts it from
    /// a store again.
    pub(crate) rejected: Option<AccessToken>,
}

impl Shared {
    pub(crate) fn new(credentials: Credentials) -> Self {
        Shared {
            state: State::Empty,
            credentials,
            refresh: None,
            failures: 0,
            not_before: None,
            last_forced_relogin: None,
            next_flight_id: 0,
            refresh_presented_by: None,
            rejected: None,
        }
    }

    /// Registers a new flight; the caller spawns the task that completes it.
    pub(crate) fn new_flight(
        &mut self,
        deadline: Instant,
    ) -> (Flight, watch::Sender<Option<FlightResult>>) {
        self.next_flight_id += 1;
        let (tx, rx) = watch::channel(None);
        let flight = Flight {
            id: self.next_flight_id,
            deadline,
            result: rx,
        };
        (flight, tx)
    }

    /// Asked by flight `id` right before each IDM request: may it send? Only the
    /// current flight may; a flight that was taken over, detached or abandoned sends
    /// nothing more. A refresh grant is recorded as presented, under the same lock.
    pub(crate) fn may_send(&mut self, id: u64, refresh_grant: bool) -> bool {
        if self.state.flight_id() != Some(id) {
            return false;
        }
        if refresh_grant {
            self.refresh_presented_by = Some(id);
        }
        true
    }

    pub(crate) fn start(&mut self, now: Instant, flight: Flight) {
        self.state = match mem::take(&mut self.state) {
            State::Valid(c) if now < c.token.deadline() => State::RefreshingWhileValid(c, flight),
            _ => State::Fetching(flight),
        };
    }

    /// Records a flight's outcome. A flight that is no longer the current one (logout or
    /// new credentials replaced it) still answers its waiters but changes nothing.
    pub(crate) fn complete(
        &mut self,
        id: u64,
        outcome: Result<Fresh, Error>,
        now: Instant,
        policy: &Policy,
    ) -> FlightResult {
        let current = self.state.flight_id() == Some(id);
        if current {
            self.refresh_presented_by = None;
        }
        match outcome {
            Ok(fresh) => {
                if current {
                    self.failures = 0;
                    self.refresh = fresh.refresh;
                    self.state = State::Valid(Cached {
                        token: fresh.token.clone(),
                        refresh_at: fresh.refresh_at,
                    });
                }
                Ok(fresh.token)
            }
            Err(error) => {
                if current {
                    self.failures = self.failures.saturating_add(1);
                    let wrong_password = error.kind() == ErrorKind::InvalidCredentials;
                    let mut until = now + policy.cooldown_after(self.failures, wrong_password);
                    if let Some(not_before) = self.not_before {
                        until = until.max(not_before);
                    }
                    self.state = match mem::take(&mut self.state) {
                        // A failed early refresh keeps the valid token (google-cloud-rust #5809).
                        State::RefreshingWhileValid(c, _) if now < c.token.deadline() => {
                            let refresh_at = until.min(c.token.deadline());
                            State::Valid(Cached {
                                token: c.token,
                                refresh_at,
                            })
                        }
                        _ => State::CoolingDown {
                            error: error.clone(),
                            until,
                        },
                    };
                }
                Err(error)
            }
        }
    }

    /// Gives up on flight `id`: its task ended without completing (its runtime shut
    /// down), or it made no progress past its deadline (its runtime is not being
    /// driven). The next caller starts a new flight; the old one, should it ever run
    /// again, sends nothing more ([`Shared::may_send`]). Returns whether `id` was the
    /// current flight.
    pub(crate) fn abandon(&mut self, id: u64) -> bool {
        if self.state.flight_id() != Some(id) {
            return false;
        }
        self.state = match mem::take(&mut self.state) {
            State::RefreshingWhileValid(c, _) => State::Valid(c),
            _ => State::Empty,
        };
        if self.refresh_presented_by.take() == Some(id) {
            // It may have reached the IDM: never present it twice.
            self.refresh = None;
        }
        true
    }

    /// Drops `rejected` if it is still the current token and the re-login throttle
    /// allows.
    pub(crate) fn invalidate(
        &mut self,
        rejected: &AccessToken,
        now: Instant,
        min_interval: Duration,
    ) -> Invalidation {
        if !self.state.current().is_some_and(|t| t.same_token(rejected)) {
            return Invalidation::NotCurrent;
        }
        if let Some(last) = self.last_forced_relogin {
            let since = now.saturating_duration_since(last);
            if since < min_interval {
                return Invalidation::Throttled {
                    remaining: min_interval - since,
                };
            }
        }
        self.last_forced_relogin = Some(now);
        self.rejected = Some(rejected.clone());
        self.state = match mem::take(&mut self.state) {
            // The refresh already in flight will bring the replacement: wait for it.
            State::RefreshingWhileValid(_, flight) => State::Fetching(flight),
            _ => State::Empty,
        };
        Invalidation::Dropped
    }

    /// When the manager will next talk to the IDM on its own: the end of a cooldown, or
    /// the retry of a failed early refresh.
    pub(crate) fn next_attempt_in(&self, now: Instant) -> Option<Duration> {
        match &self.state {
            State::CoolingDown { until, .. } => Some(until.saturating_duration_since(now)),
            State::Valid(c) => Some(c.refresh_at.saturating_duration_since(now)),
            _ => None,
        }
    }

    /// Forgets a refresh token the IDM refused, unless a newer one replaced it.
    pub(crate) fn forget_refresh(&mut self, refused: &Arc<RefreshToken>) {
        if self
            .refresh
            .as_ref()
            .is_some_and(|r| Arc::ptr_eq(r, refused))
        {
            self.refresh = None;
        }
    }

    /// Forgets the session: no token, no refresh token, no flight to wait for.
    pub(crate) fn clear(&mut self) -> Option<Arc<RefreshToken>> {
        self.state = State::Empty;
        self.refresh_presented_by = None;
        self.refresh.take()
    }

    /// New credentials end any cooldown; a different user also ends the session.
    /// Unchanged ones change nothing: a vault that re-delivers the same wrong password
    /// every second must not turn the wrong-password cooldown into a login per second.
    pub(crate) fn replace_credentials(&mut self, credentials: Credentials) {
        if credentials.same_values(&self.credentials) {
            return;
        }
        if credentials.username() != self.credentials.username() {
            self.clear();
        }
        // A flight already under way may use the old password: detach it, so its
        // answer (a refusal, say) is not recorded against the new credentials.
        if let Some(id) = self.state.flight_id() {
            self.abandon(id);
        }
        if matches!(self.state, State::CoolingDown { .. }) {
            self.state = State::Empty;
        }
        self.failures = 0;
        self.credentials = credentials;
    }
}
