//! A flight with a store: adopt the session another process stored, or take the lease,
//! talk to the IDM, and store what it answered.
//!
//! Order: read the store (another process may have refreshed: adopt its session, no
//! IDM request); otherwise take the lease, read once more, talk to the IDM, save with
//! compare-and-swap, release. A store that fails (other than by misconfiguration) is
//! treated as absent for this flight: an outage of a shared cache must not stop the
//! program.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::flight::{Stop, fetch_from_idm};
use super::state::{Fresh, RefreshToken};
use super::{Event, Inner, clock};
use crate::error::shown_duration;
use crate::store::{
    Lease, Session, StoredAccess, StoredCooldown, StoredRefresh, TokenStore, from_unix_ms,
    to_unix_ms,
};
use crate::{AccessToken, Error, ErrorKind};

/// The flight's fetch when the manager has a store.
pub(super) async fn fetch(
    inner: &Arc<Inner>,
    store: &dyn TokenStore,
    id: u64,
    deadline: Instant,
) -> Result<Fresh, Stop> {
    loop {
        let stored = match store.load().await {
            Ok(stored) => stored,
            Err(error) => return without_store(inner, id, deadline, error).await,
        };
        let ours = ours(inner, stored);
        if let Some(answer) = answer_from(inner, store, ours.as_ref()) {
            return answer;
        }
        mark_rejected(inner, store, ours.as_ref()).await;
        let now = Instant::now();
        if now >= deadline {
            return Err(Stop::Failed(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "another process held the session's lease until this token request's \
                     deadline ({} after it started)",
                    shown_duration(inner.config.policy.flight_deadline)
                ),
            )));
        }
        let ttl = inner.config.policy.lease_ttl;
        match store.try_lease(ttl).await {
            Ok(Some(lease)) => match holding(inner, store, lease, id, deadline).await {
                Held::Done(result) => return result,
                Held::Again => continue,
            },
            Ok(None) => {
                tracing::debug!(
                    target: "bodhi_auth",
                    flight = id,
                    "another process is talking to the IDM; waiting for its session"
                );
                inner.counters.count(Event::StoreLeaseWait);
                let wait = ttl.min(deadline.saturating_duration_since(now));
                if let Err(error) = store.wait_for_release(wait).await {
                    return without_store(inner, id, deadline, error).await;
                }
            }
            Err(error) => return without_store(inner, id, deadline, error).await,
        }
    }
}

/// How a turn holding the lease ended.
enum Held {
    Done(Result<Fresh, Stop>),
    /// Another writer changed the session under the lease: look again.
    Again,
}

/// With the lease: read once more, then talk to the IDM and store the answer.
async fn holding(
    inner: &Arc<Inner>,
    store: &dyn TokenStore,
    lease: Box<dyn Lease>,
    id: u64,
    deadline: Instant,
) -> Held {
    let stored = match store.load().await {
        Ok(stored) => stored,
        Err(error) => return Held::Done(without_store(inner, id, deadline, error).await),
    };
    // Compare-and-swap goes over whatever is stored, even another user's session.
    let mut version = stored.as_ref().map_or(0, Session::version);
    let ours = ours(inner, stored);
    if let Some(answer) = answer_from(inner, store, ours.as_ref()) {
        return Held::Done(answer);
    }
    if let Some(session) = &ours {
        // The stored refresh token is the newest the fleet has; one marked presented
        // may be spent, so none is used then (the password grant follows).
        let refresh = session
            .refresh
            .as_ref()
            .filter(|r| !r.presented)
            .map(|r| Arc::new(local_refresh(r)));
        let present = refresh.as_ref().is_some_and(|r| r.alive(Instant::now()));
        inner.shared.write().refresh = refresh;
        if present {
            let mut marked = session.clone();
            marked.version = version.saturating_add(1);
            if let Some(refresh) = marked.refresh.as_mut() {
                refresh.presented = true;
            }
            match store.save(&marked).await {
                Ok(true) => version = marked.version,
                Ok(false) => return Held::Again,
                Err(error) => {
                    return Held::Done(without_store(inner, id, deadline, error).await);
                }
            }
        }
    }
    let ttl = inner.config.policy.lease_ttl;
    let outcome = renewing(lease.as_ref(), ttl, fetch_from_idm(inner, id, deadline)).await;
    save_outcome(inner, store, version, ours.as_ref(), &outcome).await;
    drop(lease);
    Held::Done(outcome)
}

/// Runs `work` while renewing `lease` every third of `ttl`. A lost lease is logged and
/// the work goes on: the save that follows only lands if nobody saved in between.
async fn renewing<F: Future>(lease: &dyn Lease, ttl: Duration, work: F) -> F::Output {
    let renew = async {
        loop {
            tokio::time::sleep(ttl / 3).await;
            match lease.renew(ttl).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(target: "bodhi_auth", "the session's lease was lost mid-flight");
                    return;
                }
                Err(error) => {
                    tracing::warn!(target: "bodhi_auth", %error, "could not renew the session's lease")
                }
            }
        }
    };
    tokio::pin!(work);
    tokio::select! {
        output = &mut work => return output,
        () = renew => {}
    }
    work.await
}

/// The stored session if it is this manager's (its token URL, client and user name).
fn ours(inner: &Inner, stored: Option<Session>) -> Option<Session> {
    let session = stored?;
    let config = &inner.config;
    let username = inner.shared.read().credentials.username().to_owned();
    if session.is_for(config.token_url.as_str(), &config.client_id, &username) {
        Some(session)
    } else {
        tracing::warn!(
            target: "bodhi_auth",
            "the store holds a session for another user, client or IDM; not using it"
        );
        None
    }
}

/// What the stored session answers without the IDM: a token to adopt, or a cooldown
/// another process is serving. `None`: the IDM is needed.
fn answer_from(
    inner: &Arc<Inner>,
    store: &dyn TokenStore,
    session: Option<&Session>,
) -> Option<Result<Fresh, Stop>> {
    let session = session?;
    let now = Instant::now();
    let wall_now = clock::wall(now);
    let policy = &inner.config.policy;
    if let Some(not_before) = session.not_before.map(from_unix_ms)
        && not_before > wall_now
    {
        // Beyond the policy's longest is not believed: whoever can write to the store
        // cannot stall this process longer than the IDM itself could.
        let local = clock::local(not_before, now);
        if local <= now + policy.max_retry_after {
            let mut shared = inner.shared.write();
            shared.not_before = Some(shared.not_before.map_or(local, |t| t.max(local)));
        }
    }
    if let Some(fresh) = adoptable(inner, session, now) {
        tracing::debug!(target: "bodhi_auth", "using the stored session");
        inner.counters.count(Event::StoreHit);
        return Some(Ok(fresh));
    }
    let cooldown = session.cooldown.as_ref()?;
    let until = from_unix_ms(cooldown.until);
    let kind = cooldown.kind.kind();
    if until <= wall_now {
        return None;
    }
    // A wrong password's cooldown holds only for the same credentials, which the
    // fingerprint proves; without a key each process finds out on its own.
    if kind == ErrorKind::InvalidCredentials {
        let ours = fingerprint(inner, store);
        if ours.is_none() || ours != session.credentials_fingerprint {
            return None;
        }
    }
    let longest = policy
        .max_cooldown
        .max(policy.cooldown)
        .max(policy.invalid_credentials_cooldown);
    let left = until.duration_since(wall_now).unwrap_or_default();
    if left > longest {
        tracing::warn!(
            target: "bodhi_auth",
            "the stored cooldown is longer than this manager's policy allows; ignoring it"
        );
        return None;
    }
    Some(Err(Stop::Failed(Error::new(
        kind,
        format!(
            "{} (a process sharing this session got this; next attempt in {})",
            cooldown.message,
            shown_duration(left)
        ),
    ))))
}

/// The stored access token as a token of this manager's, if it is worth adopting:
/// not rejected (unless the fleet re-logged in after a 401 too recently to do it
/// again), and not yet due for refresh (with the clock-skew margin).
fn adoptable(inner: &Arc<Inner>, session: &Session, now: Instant) -> Option<Fresh> {
    let access = session.access.as_ref()?;
    let rejected = access.rejected
        || inner
            .shared
            .read()
            .rejected
            .as_ref()
            .is_some_and(|rejected| rejected.has_secret(&access.token));
    if rejected {
        let interval = inner.config.policy.min_relogin_interval;
        let last = session.last_forced_relogin.map(from_unix_ms);
        let wall_now = clock::wall(now);
        // A time in the future (a skewed or hostile writer) counts as now.
        if last.is_none_or(|last| wall_now >= last.min(wall_now) + interval) {
            return None;
        }
        tracing::debug!(
            target: "bodhi_auth",
            "re-login throttled across the processes sharing the session; keeping the token"
        );
    }
    let issued_at = from_unix_ms(access.issued_at);
    let expires_at = from_unix_ms(access.expires_at);
    let lifetime = expires_at.duration_since(issued_at).unwrap_or_default();
    let policy = &inner.config.policy;
    let skew = policy.clock_skew.min(lifetime / 4);
    let margin = inner.config.refresh_margin.min(lifetime / 2);
    let deadline = clock::local(expires_at - skew, now);
    let refresh_at = clock::local(expires_at - margin.max(skew), now);
    if refresh_at <= now {
        return None;
    }
    let token = AccessToken::new(
        &access.token,
        access.id_token.clone(),
        access.scope.clone(),
        expires_at,
        deadline,
        inner.issuer(),
    )
    .ok()?;
    let refresh = session
        .refresh
        .as_ref()
        .filter(|r| !r.presented)
        .map(|r| Arc::new(local_refresh(r)));
    Some(Fresh {
        token,
        issued_at,
        refresh_at,
        refresh,
    })
}

/// The credentials' fingerprint under the store's key, if it has one.
fn fingerprint(inner: &Inner, store: &dyn TokenStore) -> Option<String> {
    let key = store.fingerprint_key()?;
    Some(inner.shared.read().credentials.fingerprint(key))
}

fn local_refresh(stored: &StoredRefresh) -> RefreshToken {
    let wall_expires_at = stored.expires_at.map(from_unix_ms);
    RefreshToken {
        secret: stored.token.clone(),
        expires_at: wall_expires_at.map(|at| clock::local(at, Instant::now())),
        wall_expires_at,
    }
}

/// Tells the store that the token this manager saw rejected is not to be adopted, if
/// it is still the stored one.
async fn mark_rejected(inner: &Inner, store: &dyn TokenStore, session: Option<&Session>) {
    let Some(access) = session.and_then(|s| s.access.as_ref()) else {
        return;
    };
    let rejected = inner.shared.read().rejected.clone();
    let Some(rejected) = rejected.filter(|r| !access.rejected && r.has_secret(&access.token))
    else {
        return;
    };
    if let Err(error) = store.mark_rejected(&rejected).await {
        inner.counters.count(Event::StoreError);
        tracing::debug!(target: "bodhi_auth", %error, "could not mark the rejected token in the store");
    }
}

/// Stores what the flight brought: the new session, or a cooldown for the others.
async fn save_outcome(
    inner: &Inner,
    store: &dyn TokenStore,
    version: u64,
    ours: Option<&Session>,
    outcome: &Result<Fresh, Stop>,
) {
    let now = Instant::now();
    let wall_now = clock::wall(now);
    let config = &inner.config;
    let mut session = match ours {
        Some(previous) => {
            let mut next = previous.clone();
            next.version = version.saturating_add(1);
            next
        }
        None => {
            let username = inner.shared.read().credentials.username().to_owned();
            Session::new(
                version,
                config.token_url.as_str(),
                &config.client_id,
                &username,
            )
        }
    };
    let (failures, not_before, rejected, refresh) = {
        let shared = inner.shared.read();
        (
            shared.failures,
            shared.not_before,
            shared.rejected.clone(),
            shared.refresh.clone(),
        )
    };
    session.not_before = not_before
        .filter(|&t| t > now)
        .map(|t| to_unix_ms(clock::wall(t)));
    session.credentials_fingerprint = fingerprint(inner, store);
    match outcome {
        Ok(fresh) => {
            let replaced_rejected = match (&session.access, &rejected) {
                (Some(access), Some(rejected)) => rejected.has_secret(&access.token),
                _ => false,
            };
            if replaced_rejected {
                session.last_forced_relogin = Some(to_unix_ms(wall_now));
            }
            session.access = Some(stored_access(&fresh.token, fresh.issued_at));
            session.refresh = fresh.refresh.as_deref().map(stored_refresh);
            session.cooldown = None;
        }
        Err(Stop::Failed(error)) | Err(Stop::RefreshMaybeSpent(error)) => {
            let kind = error.kind();
            let wrong_password = kind == ErrorKind::InvalidCredentials;
            let cooldown = config
                .policy
                .cooldown_after(failures.saturating_add(1), wrong_password);
            session.refresh = refresh.as_deref().map(stored_refresh);
            session.cooldown = Some(StoredCooldown {
                until: to_unix_ms(wall_now + cooldown),
                failures: failures.saturating_add(1),
                kind: kind.into(),
                message: error.message().to_owned(),
            });
        }
        Err(Stop::Superseded) => return,
    }
    match store.save(&session).await {
        Ok(true) => {
            tracing::debug!(target: "bodhi_auth", version = session.version, "session stored")
        }
        Ok(false) => tracing::debug!(
            target: "bodhi_auth",
            "another process stored a newer session meanwhile; not overwriting it"
        ),
        Err(error) => {
            inner.counters.count(Event::StoreError);
            tracing::warn!(target: "bodhi_auth", %error, "could not store the session")
        }
    }
}

fn stored_access(token: &AccessToken, issued_at: SystemTime) -> StoredAccess {
    StoredAccess {
        token: token.secret().to_owned().into(),
        issued_at: to_unix_ms(issued_at),
        expires_at: to_unix_ms(token.expires_at()),
        id_token: token.id_token().map(|t| t.to_owned().into()),
        scope: token.scope().map(str::to_owned),
        rejected: false,
    }
}

fn stored_refresh(refresh: &RefreshToken) -> StoredRefresh {
    StoredRefresh {
        token: refresh.secret.clone(),
        expires_at: refresh.wall_expires_at.map(to_unix_ms),
        presented: false,
    }
}

/// A store error: misconfiguration fails the request; anything else is logged and this
/// flight goes on without the store.
async fn without_store(
    inner: &Arc<Inner>,
    id: u64,
    deadline: Instant,
    error: Error,
) -> Result<Fresh, Stop> {
    inner.counters.count(Event::StoreError);
    if error.kind() == ErrorKind::Config {
        return Err(Stop::Failed(error));
    }
    tracing::warn!(target: "bodhi_auth", %error, "the session store failed; going to the IDM without it");
    // Every refresh token this manager holds was shared through the store, and another
    // process may have spent it since (single-use refresh tokens revoke the session on
    // reuse): without the store to tell, log in with the password.
    inner.shared.write().refresh = None;
    fetch_from_idm(inner, id, deadline).await
}
