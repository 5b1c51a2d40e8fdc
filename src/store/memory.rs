//! [`MemoryStore`]: a session shared by managers in one process.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Lease, Session, TokenStore};
use crate::Error;

/// A [`TokenStore`] in this process's memory: managers built with clones of one
/// `Arc<MemoryStore>` share one session and one lease, as processes sharing a
/// [`FileStore`](super::FileStore) do.
///
/// For managers with different settings that must share a login, and for tests, where
/// several managers stand for several processes. Lease lifetimes follow Tokio's clock,
/// so paused-time tests can let a lease expire.
#[derive(Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    released: Arc<Notify>,
}

#[derive(Default)]
struct State {
    session: Option<Session>,
    lease: Option<Held>,
    next_lease: u64,
}

#[derive(Clone, Copy)]
struct Held {
    id: u64,
    until: Instant,
}

impl State {
    /// The lease, if someone holds it now.
    fn holder(&self, now: Instant) -> Option<Held> {
        self.lease.filter(|held| now < held.until)
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.lock();
        f.debug_struct("MemoryStore")
            .field("session", &state.session)
            .field("leased", &state.holder(Instant::now()).is_some())
            .finish()
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn load(&self) -> Result<Option<Session>, Error> {
        Ok(self.state.lock().session.clone())
    }

    async fn save(&self, session: &Session) -> Result<bool, Error> {
        let mut state = self.state.lock();
        let stored = state.session.as_ref().map_or(0, Session::version);
        if session.version() != stored.saturating_add(1) {
            return Ok(false);
        }
        state.session = Some(session.clone());
        Ok(true)
    }

    async fn delete(&self) -> Result<(), Error> {
        self.state.lock().session = None;
        Ok(())
    }

    async fn try_lease(&self, ttl: Duration) -> Result<Option<Box<dyn Lease>>, Error> {
        let mut state = self.state.lock();
        let now = Instant::now();
        if state.holder(now).is_some() {
            return Ok(None);
        }
        state.next_lease += 1;
        let id = state.next_lease;
        state.lease = Some(Held {
            id,
            until: now + ttl,
        });
        Ok(Some(Box::new(MemoryLease {
            id,
            state: self.state.clone(),
            released: self.released.clone(),
        })))
    }

    async fn wait_for_release(&self, at_most: Duration) -> Result<(), Error> {
        let released = self.released.notified();
        tokio::pin!(released);
        // Registered before looking, so a release in between is not missed.
        released.as_mut().enable();
        let until = {
            let state = self.state.lock();
            match state.holder(Instant::now()) {
                None => return Ok(()),
                Some(held) => held.until,
            }
        };
        let deadline = until.min(Instant::now() + at_most);
        let _ = tokio::time::timeout_at(deadline, released).await;
        Ok(())
    }
}

/// A lease on a [`MemoryStore`]; released when dropped.
struct MemoryLease {
    id: u64,
    state: Arc<Mutex<State>>,
    released: Arc<Notify>,
}

impl fmt::Debug for MemoryLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryLease").field("id", &self.id).finish()
    }
}

#[async_trait]
impl Lease for MemoryLease {
    async fn renew(&self, ttl: Duration) -> Result<bool, Error> {
        let mut state = self.state.lock();
        let now = Instant::now();
        match state.lease.as_mut() {
            Some(held) if held.id == self.id && now < held.until => {
                held.until = now + ttl;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

impl Drop for MemoryLease {
    fn drop(&mut self) {
        let mut state = self.state.lock();
        if state.lease.is_some_and(|held| held.id == self.id) {
            state.lease = None;
            drop(state);
            self.released.notify_waiters();
        }
    }
}
