//! The manager's state behind its lock, and the token it serves published beside it, so
//! that a cached request takes no lock.
//!
//! Every change to [`Shared`] is made under the write lock, through a [`WriteGuard`].
//! Before that guard releases the lock, it publishes what the new state serves (the
//! token and until when, [`State::serving`]) as a snapshot in an [`ArcSwapOption`].
//!
//! The read path ([`Published::serving`], behind `TokenManager::cached`) takes no lock
//! and writes no word another thread writes: arc-swap's `load` borrows the snapshot
//! through a slot owned by the calling thread, the [`Deadline`] is tested with one read
//! of a coarse clock, and the token is cloned (its reference count is the one shared
//! word it touches, as a static header's clone touches its own).
//!
//! # Why a reader never gets a token it must not
//!
//! - **The snapshot is the state's.** It is written only by a `WriteGuard`, while the
//!   write lock is held, from the state as that writer leaves it. Writers are serialized
//!   by the lock, so the snapshots are stored in the order of the transitions, and the
//!   last one stored is always that of the last completed transition.
//! - **Not after `invalidate()` returned true.** `invalidate` drops the token under a
//!   `WriteGuard`, whose drop stores the new snapshot (no token, or the next one) before
//!   the lock is released and so before `invalidate` returns. A `cached()` that happens
//!   after that return loads that snapshot or a later one (arc-swap's `store` and `load`
//!   are sequentially consistent). No later state holds the rejected token (a flight
//!   never adopts it again), so no later snapshot does. A `cached()` running at the same
//!   time as `invalidate` may still return the old token: it is ordered before the
//!   invalidation, exactly as a reader that took the read lock just before it was.
//! - **Never an expired one.** A snapshot's deadline is at most the token's expiry (its
//!   refresh-due, or its expiry while a refresh runs), and the reader serves only while
//!   the deadline is not reached (see [`Deadline`] for the clock).
//! - **An old token's 401 never drops a newer one.** Invalidation compares tokens under
//!   the write lock, as before; the snapshot only follows what it decided.
//!
//! No copy of a token is kept anywhere else: when the state drops a token and the
//! snapshot that served it is replaced, the last clones go with the requests that
//! carried it.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use tokio::time::Instant;

use super::deadline::Deadline;
use super::state::{Shared, State};
use crate::token::AccessToken;

/// [`Shared`] behind its lock, and the token it serves, published for lock-free readers.
pub(crate) struct Published {
    shared: RwLock<Shared>,
    serving: ArcSwapOption<Serving>,
}

/// A token readers may take without asking the state, and until when (never past its
/// expiry).
struct Serving {
    token: AccessToken,
    /// The state's instant, to tell whether a new state serves something else.
    until: Instant,
    /// The same instant, as the read path tests it.
    deadline: Deadline,
}

impl Published {
    pub(crate) fn new(shared: Shared) -> Self {
        let published = Published {
            shared: RwLock::new(shared),
            serving: ArcSwapOption::empty(),
        };
        drop(published.write()); // publishes the initial state
        published
    }

    /// The state, to read.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Shared> {
        self.shared.read()
    }

    /// The state, to change: what it then serves is published when the guard is dropped,
    /// before the lock is released.
    pub(crate) fn write(&self) -> WriteGuard<'_> {
        WriteGuard {
            shared: self.shared.write(),
            published: self,
        }
    }

    /// The published token if its deadline is not reached. Takes no lock, and reads the
    /// clock once (not at all when there is no token).
    #[inline]
    pub(crate) fn serving(&self) -> Option<AccessToken> {
        let snapshot = self.serving.load();
        let serving = snapshot.as_deref()?;
        serving
            .deadline
            .not_reached()
            .then(|| serving.token.clone())
    }
}

/// Write access to [`Shared`]; publishes what the state serves when dropped.
pub(crate) struct WriteGuard<'a> {
    shared: RwLockWriteGuard<'a, Shared>,
    published: &'a Published,
}

impl Deref for WriteGuard<'_> {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.shared
    }
}

impl DerefMut for WriteGuard<'_> {
    fn deref_mut(&mut self) -> &mut Shared {
        &mut self.shared
    }
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        // Runs before the fields drop, so while the write lock is still held.
        publish(&self.shared.state, self.published);
    }
}

/// Stores what `state` serves, unless that is what is published already (most writes,
/// such as a flight recording that it sent a request, change nothing a reader sees).
/// Called with the write lock held.
fn publish(state: &State, published: &Published) {
    let next = state.serving();
    let unchanged = match (published.serving.load().as_deref(), next) {
        (None, None) => true,
        (Some(current), Some((token, until))) => {
            current.until == until
                && current.token.deadline() == token.deadline()
                && current.token.same_token(token)
        }
        _ => false,
    };
    if unchanged {
        return;
    }
    published.serving.store(next.map(|(token, until)| {
        Arc::new(Serving {
            token: token.clone(),
            until,
            deadline: Deadline::at(until),
        })
    }));
}
