//! One flight: the IDM requests that turn "no usable token" into a token or an error.
//!
//! A flight runs in its own Tokio task, owned by no caller: a caller that is cancelled
//! while waiting cannot cancel the login others wait for, and its result still lands in
//! the cache for the next caller.

use std::sync::Arc;

use tokio::sync::watch;
use tokio::time::{Instant, sleep, timeout};

use super::state::{FlightResult, Fresh, RefreshToken};
use super::{Event, Inner};
use crate::error::shown_duration;
use crate::idm::transport;
use crate::idm::wire::{self as idm, GrantKind, TokenResponse};
use crate::token::AccessToken;
use crate::{Credentials, Error, ErrorKind};

/// The task body: fetch, record, publish.
pub(crate) async fn run(
    inner: Arc<Inner>,
    id: u64,
    deadline: Instant,
    tx: watch::Sender<Option<FlightResult>>,
) {
    let mut guard = AbandonGuard {
        inner: &inner,
        id,
        armed: true,
    };
    let started = Instant::now();
    let outcome = match fetch(&inner, id, deadline).await {
        Ok(fresh) => Ok(fresh),
        Err(Stop::Failed(error) | Stop::RefreshMaybeSpent(error)) => Err(error),
        Err(Stop::Superseded) => {
            // Another flight replaced this one (taken over, detached or abandoned):
            // record nothing; dropping `tx` tells any waiter left to look again.
            tracing::debug!(target: "bodhi_auth", flight = id, "token flight superseded; it sent nothing more");
            return;
        }
    };
    let (result, next_attempt_in) = {
        let mut shared = inner.shared.write();
        let now = Instant::now();
        let result = shared.complete(id, outcome, now, &inner.config.policy);
        (result, shared.next_attempt_in(now))
    };
    guard.armed = false;
    match &result {
        Ok(_) => tracing::debug!(
            target: "bodhi_auth",
            flight = id,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "token flight succeeded"
        ),
        Err(error) => tracing::warn!(
            target: "bodhi_auth",
            flight = id,
            elapsed_ms = started.elapsed().as_millis() as u64,
            next_attempt_in_ms = next_attempt_in.map(|d| d.as_millis() as u64),
            %error,
            "token flight failed; cooling down"
        ),
    }
    tx.send_replace(Some(result));
}

/// Why a flight stopped short of a token.
pub(super) enum Stop {
    /// The IDM conversation failed: the error every waiter gets.
    Failed(Error),
    /// The flight is no longer the current one, and sent nothing more.
    Superseded,
    /// A refresh grant went unanswered: the IDM may have processed it, so the refresh
    /// token may be spent (Keycloak can make them single-use, and revokes the session
    /// on reuse). It is not presented again.
    RefreshMaybeSpent(Error),
}

impl From<Error> for Stop {
    fn from(error: Error) -> Self {
        Stop::Failed(error)
    }
}

/// Resets the state if the task is dropped mid-flight (runtime shutdown), so no later
/// caller waits on a flight that will never end. Waiters see the sender dropped.
struct AbandonGuard<'a> {
    inner: &'a Inner,
    id: u64,
    armed: bool,
}

impl Drop for AbandonGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.inner.shared.write().abandon(self.id);
        }
    }
}

enum Grant<'a> {
    Password(&'a Credentials),
    Refresh(&'a RefreshToken),
}

impl Grant<'_> {
    fn kind(&self) -> GrantKind {
        match self {
            Grant::Password(_) => GrantKind::Password,
            Grant::Refresh(_) => GrantKind::Refresh,
        }
    }
}

/// Through the store when there is one, else straight to the IDM.
async fn fetch(inner: &Arc<Inner>, id: u64, deadline: Instant) -> Result<Fresh, Stop> {
    match &inner.store {
        Some(store) => super::shared_session::fetch(inner, store.as_ref(), id, deadline).await,
        None => fetch_from_idm(inner, id, deadline).await,
    }
}

/// Refresh grant while the refresh token lives, else (or when it is refused for any
/// reason but a transient failure) the password grant, all within one deadline.
pub(super) async fn fetch_from_idm(
    inner: &Arc<Inner>,
    id: u64,
    deadline: Instant,
) -> Result<Fresh, Stop> {
    let outcome = grants(inner, id, deadline).await;
    match &outcome {
        Ok(fresh) => super::stats::token_expires_at(fresh.token.expires_at()),
        Err(Stop::Failed(error) | Stop::RefreshMaybeSpent(error)) => {
            inner.counters.count(Event::Failure(error.kind()))
        }
        Err(Stop::Superseded) => {}
    }
    outcome
}

/// The grants of [`fetch_from_idm`].
async fn grants(inner: &Arc<Inner>, id: u64, deadline: Instant) -> Result<Fresh, Stop> {
    let (credentials, refresh) = {
        let shared = inner.shared.read();
        let now = Instant::now();
        let refresh = shared.refresh.clone().filter(|r| r.alive(now));
        (shared.credentials.clone(), refresh)
    };
    if let Some(refresh) = refresh {
        match request_token(inner, id, Grant::Refresh(&refresh), deadline).await {
            Ok((response, sent_at)) => {
                let fresh = fresh(inner, response, sent_at, Some(&refresh))?;
                inner.counters.count(Event::Refresh);
                return Ok(fresh);
            }
            Err(Stop::Superseded) => return Err(Stop::Superseded),
            Err(Stop::RefreshMaybeSpent(error)) => {
                tracing::debug!(
                    target: "bodhi_auth",
                    %error,
                    "refresh unanswered; logging in with the password grant rather than presenting it again"
                );
                inner.shared.write().forget_refresh(&refresh);
            }
            // Transient: keep the refresh token for the next flight (huskarl's lesson).
            Err(Stop::Failed(error)) if error.kind() == ErrorKind::Unavailable => {
                return Err(error.into());
            }
            // Anything else (`invalid_grant`, another OAuth error, a gateway's HTML 401)
            // will not change by retrying: a refresh token that never expires would
            // fail every later flight. Drop it and log in with the password instead.
            Err(Stop::Failed(error)) => {
                tracing::debug!(
                    target: "bodhi_auth",
                    kind = %error.kind(),
                    reason = error.idm_error_description().unwrap_or(""),
                    "refresh refused; logging in with the password grant"
                );
                inner.shared.write().forget_refresh(&refresh);
            }
        }
    }
    let (response, sent_at) =
        request_token(inner, id, Grant::Password(&credentials), deadline).await?;
    let fresh = fresh(inner, response, sent_at, None)?;
    inner.counters.count(Event::Login);
    Ok(fresh)
}

/// Turns an answer into a cacheable token, measuring lifetimes from `sent_at`.
fn fresh(
    inner: &Arc<Inner>,
    response: TokenResponse,
    sent_at: Instant,
    previous_refresh: Option<&Arc<RefreshToken>>,
) -> Result<Fresh, Error> {
    let expires_at = sent_at + response.expires_in;
    let arrived = Instant::now();
    if expires_at <= arrived {
        return Err(Error::new(
            ErrorKind::InvalidResponse,
            format!(
                "the IDM issued a token that expired before it arrived (expires_in {:?})",
                response.expires_in
            ),
        ));
    }
    // Never more than half the lifetime, so a short token is still used; and at least
    // half of what is left when it arrives, so a slow IDM and a short lifetime cannot
    // make refresh-due pass before the token is even cached (a refresh loop).
    let margin = inner.config.refresh_margin.min(response.expires_in / 2);
    let refresh_at = (expires_at - margin).max(arrived + (expires_at - arrived) / 2);
    let issued_at = super::clock::wall(sent_at);
    let refresh_expires_at = response.refresh_expires_in.map(|d| sent_at + d);
    let refresh_wall_expires_at = response.refresh_expires_in.map(|d| issued_at + d);
    let refresh = match (response.refresh_token, previous_refresh) {
        (Some(secret), _) => Some(Arc::new(RefreshToken {
            secret,
            expires_at: refresh_expires_at,
            wall_expires_at: refresh_wall_expires_at,
        })),
        // A refresh answer without a new refresh token: keep the old one, new expiry.
        (None, Some(previous)) => Some(Arc::new(RefreshToken {
            secret: previous.secret.clone(),
            expires_at: refresh_expires_at.or(previous.expires_at),
            wall_expires_at: refresh_wall_expires_at.or(previous.wall_expires_at),
        })),
        (None, None) => None,
    };
    let token = AccessToken::new(
        &response.access_token,
        response.id_token,
        response.scope,
        issued_at + response.expires_in,
        expires_at,
        inner.issuer(),
    )?;
    Ok(Fresh {
        token,
        issued_at,
        refresh_at,
        refresh,
    })
}

/// One grant, retried on transient failures within the policy and the deadline.
async fn request_token(
    inner: &Inner,
    id: u64,
    grant: Grant<'_>,
    deadline: Instant,
) -> Result<(TokenResponse, Instant), Stop> {
    let policy = &inner.config.policy;
    let client = inner.config.idm_client();
    let mut attempt = 1;
    loop {
        let not_before = inner.shared.read().not_before;
        if let Some(not_before) = not_before.filter(|&t| t > Instant::now()) {
            if not_before >= deadline {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    "the IDM asked us to wait (Retry-After) beyond this flight's deadline",
                )
                .into());
            }
            tracing::debug!(target: "bodhi_auth", "waiting for the IDM's Retry-After");
            tokio::time::sleep_until(not_before).await;
        }
        let refresh_grant = matches!(grant, Grant::Refresh(_));
        if !inner.shared.write().may_send(id, refresh_grant) {
            return Err(Stop::Superseded);
        }
        let request = match grant {
            Grant::Password(credentials) => idm::password_request(&client, credentials),
            Grant::Refresh(refresh) => idm::refresh_request(&client, &refresh.secret),
        };
        let sent_at = Instant::now();
        let budget = policy
            .request_timeout
            .min(deadline.saturating_duration_since(sent_at));
        tracing::debug!(
            target: "bodhi_auth",
            grant = grant.kind().as_str(),
            attempt,
            "sending token request"
        );
        let send = inner.transport.send(request, policy.max_body_bytes);
        let error = match timeout(budget, send).await {
            Err(_) => {
                let url = transport::shown(&inner.config.token_url);
                let message = if budget < policy.request_timeout {
                    // Cut short by the flight's deadline: that is the limit that ran out.
                    format!(
                        "the IDM at {url} did not answer before the flight deadline ({} after \
                         the flight started)",
                        shown_duration(policy.flight_deadline)
                    )
                } else {
                    format!(
                        "the IDM at {url} did not answer within {}",
                        shown_duration(budget)
                    )
                };
                let error = Error::new(ErrorKind::Unavailable, message);
                if matches!(grant, Grant::Refresh(_)) {
                    return Err(Stop::RefreshMaybeSpent(error));
                }
                error
            }
            Ok(Err(error)) => error,
            Ok(Ok(reply)) => {
                if let Some(retry_after) = reply.retry_after
                    && (reply.status == http::StatusCode::TOO_MANY_REQUESTS
                        || reply.status == http::StatusCode::SERVICE_UNAVAILABLE)
                {
                    let until = Instant::now() + retry_after.min(policy.max_retry_after);
                    let mut shared = inner.shared.write();
                    shared.not_before = Some(shared.not_before.map_or(until, |t| t.max(until)));
                }
                match idm::read_token_reply(&reply, grant.kind()) {
                    Ok(response) => return Ok((response, sent_at)),
                    Err(error) => error,
                }
            }
        };
        if error.kind() != ErrorKind::Unavailable || attempt >= policy.max_attempts {
            return Err(error.into());
        }
        let now = Instant::now();
        let pause = match inner.shared.read().not_before {
            Some(not_before) if not_before > now => not_before - now,
            _ => policy.backoff(attempt),
        };
        if now + pause >= deadline {
            return Err(error.into());
        }
        tracing::debug!(
            target: "bodhi_auth",
            attempt,
            pause_ms = pause.as_millis() as u64,
            %error,
            "token request failed; retrying"
        );
        sleep(pause).await;
        attempt += 1;
    }
}
