//! [`TokenStore`]: where a session lives beyond this process, so that a cron job's next
//! run, or every process of a fleet, uses one login.
//!
//! Without a store (the default) a [`TokenManager`](crate::TokenManager) keeps its
//! session in memory and every process logs in on its own. With one
//! ([`TokenManagerBuilder::store`](crate::TokenManagerBuilder::store)), a manager that
//! has no usable token in memory goes to the IDM only after the store:
//!
//! 1. it reads the stored [`Session`]: if another process (or this program's previous
//!    run) left a token that is still valid, and not the one this manager saw
//!    rejected, it adopts it without any IDM request;
//! 2. otherwise it takes the store's [`Lease`], so that of all the processes sharing
//!    the session one talks to the IDM while the others wait for the lease to be
//!    released and then read the store again;
//! 3. the holder reads once more, then refreshes (with the stored refresh token, the
//!    newest the fleet has) or logs in, saves the result with compare-and-swap, and
//!    releases the lease.
//!
//! The cached path never touches the store: a token in memory is served as before, and
//! in one process at most one caller at a time consults the store.
//!
//! A lease only saves IDM requests: it can be lost (a holder stalls past its lifetime)
//! without harm to correctness, because a save only lands on the version it read.
//!
//! Stores here: [`FileStore`] (one machine: CLIs, cron jobs), [`MemoryStore`] (one
//! process; managers with different settings sharing one session, and tests). Write
//! your own by implementing [`TokenStore`]; `bodhi_auth::testing::store_conformance`
//! (feature `testing`) checks it.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), bodhi_auth::Error> {
//! use std::sync::Arc;
//! use bodhi_auth::store::MemoryStore;
//! use bodhi_auth::testing::FakeIdm;
//! use bodhi_auth::{Credentials, TokenManager};
//!
//! let idm = FakeIdm::new();
//! let store = Arc::new(MemoryStore::new());
//! let manager = |store: Arc<MemoryStore>| {
//!     TokenManager::builder(Credentials::new("user", "secret"))
//!         .fake_idm(&idm)
//!         .store(store)
//!         .build()
//! };
//! // Two managers stand for two processes: the second adopts the first one's session.
//! let first = manager(store.clone())?.access_token().await?;
//! let second = manager(store)?.access_token().await?;
//! assert!(second.same_token(&first));
//! assert_eq!(idm.token_requests(), 1);
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

mod file;
mod memory;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
mod sealed;
mod session;

/// The attribute [`TokenStore`] and [`Lease`] are written with: implement them as
/// `#[bodhi_auth::store::async_trait] impl TokenStore for MyStore { ... }`.
pub use async_trait::async_trait;
pub use file::FileStore;
pub use memory::MemoryStore;
#[cfg(feature = "redis")]
pub use redis::{RedisStore, RedisStoreBuilder};
pub use session::Session;
pub(crate) use session::{StoredAccess, StoredCooldown, StoredRefresh, from_unix_ms, to_unix_ms};

use crate::{AccessToken, Error};

/// Where a [`Session`] is kept beyond one manager: one session per store value.
///
/// Object-safe (use it as `Arc<dyn TokenStore>`) and async. Errors of kind
/// [`ErrorKind::Config`](crate::ErrorKind::Config) (an insecure file, say) fail the
/// caller's token request; any other error is logged and the manager carries on as if
/// it had no store (an outage of a shared cache must not stop the program).
///
/// Implementations must pass `bodhi_auth::testing::store_conformance` (feature
/// `testing`).
#[async_trait]
pub trait TokenStore: fmt::Debug + Send + Sync {
    /// The stored session, or `None` when there is none. A record that cannot be read
    /// (corrupt, truncated, written by something else) is `None`, with a warning.
    async fn load(&self) -> Result<Option<Session>, Error>;

    /// Stores `session` only if the stored version is still the one it was made from
    /// (`session.version() - 1`; nothing stored counts as version 0). Returns whether it
    /// was stored: `false` means another writer got there first, and nothing changed.
    async fn save(&self, session: &Session) -> Result<bool, Error>;

    /// Marks `token` as rejected by the API, if it is still the stored access token, so
    /// that no process adopts it again. Returns whether it was marked.
    ///
    /// The default reads, marks and saves with compare-and-swap; a store with a cheaper
    /// atomic operation may override it.
    async fn mark_rejected(&self, token: &AccessToken) -> Result<bool, Error> {
        for _ in 0..MARK_ATTEMPTS {
            let Some(session) = self.load().await? else {
                return Ok(false);
            };
            let Some(marked) = session.marked_rejected(token) else {
                return Ok(false);
            };
            if self.save(&marked).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Deletes the stored session (logout).
    async fn delete(&self) -> Result<(), Error>;

    /// Takes the lease for `ttl`, or returns `None` at once if another holder has it.
    ///
    /// The store keeps the lifetime itself (a file lock held by a live process, a
    /// Redis key's `PX`), never by comparing clocks. Dropping the [`Lease`] releases it:
    /// at once, or (a store that releases over the network) in the background, visible
    /// to [`wait_for_release`](Self::wait_for_release) and `try_lease` soon after.
    async fn try_lease(&self, ttl: Duration) -> Result<Option<Box<dyn Lease>>, Error>;

    /// A secret key for the credentials fingerprint a stored wrong-password cooldown
    /// carries (a MAC of the user name and password under this key), or `None` (the
    /// default) to leave the fingerprint out. Without one, a refused password is not
    /// shared: each process finds out on its own, so corrected credentials in one
    /// process are never held back by another's cooldown.
    fn fingerprint_key(&self) -> Option<&[u8]> {
        None
    }

    /// Waits until the lease may have been released, for at most `at_most`: returns
    /// early when the store can tell. The default simply waits a short poll interval.
    async fn wait_for_release(&self, at_most: Duration) -> Result<(), Error> {
        tokio::time::sleep(at_most.min(DEFAULT_POLL)).await;
        Ok(())
    }
}

/// The right to talk to the IDM for a session, held by one process at a time.
#[async_trait]
pub trait Lease: fmt::Debug + Send + Sync {
    /// Extends the lease to `ttl` from now. `Ok(false)`: it was lost (it expired and
    /// perhaps went to another holder); the holder may finish, but its save only lands
    /// if nobody saved in between.
    async fn renew(&self, ttl: Duration) -> Result<bool, Error>;
}

#[async_trait]
impl<S: TokenStore + ?Sized> TokenStore for Arc<S> {
    async fn load(&self) -> Result<Option<Session>, Error> {
        (**self).load().await
    }
    async fn save(&self, session: &Session) -> Result<bool, Error> {
        (**self).save(session).await
    }
    async fn mark_rejected(&self, token: &AccessToken) -> Result<bool, Error> {
        (**self).mark_rejected(token).await
    }
    async fn delete(&self) -> Result<(), Error> {
        (**self).delete().await
    }
    async fn try_lease(&self, ttl: Duration) -> Result<Option<Box<dyn Lease>>, Error> {
        (**self).try_lease(ttl).await
    }
    async fn wait_for_release(&self, at_most: Duration) -> Result<(), Error> {
        (**self).wait_for_release(at_most).await
    }
    fn fingerprint_key(&self) -> Option<&[u8]> {
        (**self).fingerprint_key()
    }
}

/// The environment variable that picks where a manager built by
/// [`TokenManagerBuilder::from_env`](crate::TokenManagerBuilder::from_env) keeps its
/// session: `file` for a [`FileStore`] at [`FileStore::default_path`], `file:PATH` for
/// one at `PATH`, `redis://...` or `rediss://...` for a `RedisStore` (feature `redis`),
/// `none` for none. Unset or empty: no store.
pub const STORE_ENV: &str = "BODHI_STORE";

/// The environment variable that holds the keys sealing a shared session (a
/// `RedisStore`'s): base64 of 32 random bytes, or several comma-separated (the first
/// seals, all open), as `openssl rand -base64 32` prints.
pub const STORE_KEY_ENV: &str = "BODHI_STORE_KEY";

/// Compare-and-swap rounds [`TokenStore::mark_rejected`] tries before giving up (each
/// lost round means another writer changed the session, usually to a newer token).
const MARK_ATTEMPTS: usize = 3;

/// How often a waiter that the store cannot wake looks at the lease again.
const DEFAULT_POLL: Duration = Duration::from_millis(50);
