//! A [`TokenManager`] for sync code (feature `blocking`), like `reqwest::blocking`: it
//! owns a Tokio runtime on a thread of its own, so a program with no runtime gets
//! tokens without `.await`, and background refreshes run without the caller driving
//! anything.
//!
//! ```
//! use bodhi_auth::blocking::TokenManager;
//! use bodhi_auth::testing::FakeIdm;
//! use bodhi_auth::{Credentials, TokenState};
//!
//! # fn main() -> Result<(), bodhi_auth::Error> {
//! let idm = FakeIdm::new();
//! let manager = TokenManager::from_builder(
//!     bodhi_auth::TokenManager::builder(Credentials::new("user", "secret")).fake_idm(&idm),
//! )?;
//! let token = manager.access_token()?; // a plain `fn main`: no runtime, no `.await`
//! assert_eq!(token.identity()?.username(), "user");
//! assert!(manager.access_token()?.same_token(&token)); // cached
//! assert_eq!((manager.stats().logins, manager.stats().state), (1, TokenState::Valid));
//! manager.logout()?;
//! assert_eq!(idm.logouts(), 1);
//! # Ok(()) }
//! ```
//!
//! # Why not `block_on` the async manager yourself
//!
//! Wrapping the async [`crate::TokenManager`] in a `current_thread` runtime of your own
//! and calling `runtime.block_on(manager.access_token())` works until the token is due
//! for refresh, where it falls into two traps:
//!
//! - [`cached()`](crate::TokenManager::cached) returns `None` from refresh-due on,
//!   although the token is still valid: it never starts a flight, so a wrapper that
//!   reads it alone sees "no token" there. The answer at refresh-due comes from
//!   `access_token()`, which serves the valid token at once and starts one refresh in
//!   the background.
//! - That background refresh is spawned on the runtime of the caller that started it. A
//!   `current_thread` runtime runs its tasks only inside `block_on`, so the refresh does
//!   nothing until the next call, and sits parked between calls.
//!
//! This manager's runtime is always being driven (its thread waits inside `block_on`
//! for the manager to be dropped), so a refresh started there runs at once. The thread
//! also starts the refresh itself at refresh-due, without any caller, when the token was
//! got through this manager: a program that sleeps past refresh-due finds a fresh token.
//!
//! # From async code
//!
//! A blocking call from async code (a task, or a `block_on` future) would stall a thread
//! that drives other tasks, and deadlock when the IDM it waits for is served by that
//! same runtime. [`access_token`](TokenManager::access_token) and
//! [`logout`](TokenManager::logout) refuse instead: they return an
//! [`ErrorKind::Config`] error naming [`async_manager`](TokenManager::async_manager),
//! whose `access_token().await` is the way there. They refuse even when a token is
//! cached, so the mistake shows on the first call rather than at refresh-due. Threads of
//! `spawn_blocking` and `block_in_place` may block, and are served as usual. Tokio tells
//! the two apart only by panicking where blocking is not allowed; the manager catches
//! that panic before doing anything, so the panic hook still prints Tokio's message
//! ("Cannot start a runtime from within a runtime"), and with `panic = "abort"` the
//! process aborts, as `reqwest::blocking` makes it panic there.
//!
//! [`invalidate`](TokenManager::invalidate) and [`stats`](TokenManager::stats) never
//! block and work anywhere.
//!
//! # Drop
//!
//! Clones share one cache and one runtime thread, named `bodhi-auth-runtime`. Dropping
//! the last clone stops that thread and waits for it to end: a flight in progress is
//! abandoned, not awaited, so this takes as long as the task running at that moment
//! takes to yield. Dropping never logs out: call [`logout`](TokenManager::logout) first
//! to end the Keycloak session.

use std::fmt;
use std::future::Future;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, mpsc};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use tokio::runtime::{Builder, Handle};
use tokio::sync::{Notify, oneshot};

use crate::{AccessToken, Credentials, Error, ErrorKind, Stats, TokenManagerBuilder, TokenState};

/// The name of the runtime thread each manager (and its clones) owns.
const THREAD_NAME: &str = "bodhi-auth-runtime";

/// How long the runtime thread waits before it looks again at a flight that stalled (one
/// started by async code on a runtime nobody drives), rather than spin on it.
const RECHECK: Duration = Duration::from_secs(1);

/// Gets, caches and renews Bodhi access tokens for sync code: the async
/// [`TokenManager`](crate::TokenManager) on a runtime thread of its own. See the
/// [module docs](self) for why and for the rules in async code.
///
/// ```no_run
/// # fn main() -> Result<(), bodhi_auth::Error> {
/// // BODHI_USERNAME, BODHI_PASSWORD, BODHI_ENV (prod by default), BODHI_TOKEN_URL.
/// let manager = bodhi_auth::blocking::TokenManager::from_env()?;
/// let token = manager.access_token()?;
/// // ... send `token.header_value()` as `Authorization`; after a 401 to it:
/// manager.invalidate(&token);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TokenManager {
    inner: Arc<Inner>,
}

struct Inner {
    manager: crate::TokenManager,
    /// The runtime the thread drives; its tasks only ever run on that thread.
    handle: Handle,
    /// Tells the runtime thread that a caller changed the token (a login, a logout, a
    /// 401), so that it looks again at when the next refresh is due.
    changed: Arc<Notify>,
    /// Dropping it ends the runtime thread.
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TokenManager {
    /// A manager for the Prod IDM with every default, on a new runtime thread.
    ///
    /// # Panics
    ///
    /// If the operating system cannot start a thread, as [`std::thread::spawn`] does;
    /// [`from_builder`](Self::from_builder) returns that as an error instead.
    pub fn new(credentials: Credentials) -> TokenManager {
        match Self::from_builder(crate::TokenManager::builder(credentials)) {
            Ok(manager) => manager,
            Err(error) => panic!("{error}"),
        }
    }

    /// A manager configured from the environment (`BODHI_USERNAME`, `BODHI_PASSWORD`,
    /// `BODHI_ENV`, `BODHI_TOKEN_URL`, `BODHI_STORE`): see
    /// [`TokenManagerBuilder::from_env`]. No I/O beyond starting the runtime thread.
    pub fn from_env() -> Result<TokenManager, Error> {
        Self::from_builder(TokenManagerBuilder::from_env()?)
    }

    /// Builds the async manager `builder` describes and runs it on a new runtime
    /// thread. A configuration error is returned before any thread starts.
    ///
    /// ```
    /// use std::time::Duration;
    /// use bodhi_auth::{Credentials, Environment};
    ///
    /// let manager = bodhi_auth::blocking::TokenManager::from_builder(
    ///     bodhi_auth::TokenManager::builder(Credentials::new("user", "secret"))
    ///         .environment(Environment::Dev)
    ///         .refresh_margin(Duration::from_secs(60)),
    /// )
    /// .unwrap();
    /// assert!(manager.async_manager().token_url().starts_with("https://login.bodhi-dev.io/"));
    /// ```
    pub fn from_builder(builder: TokenManagerBuilder) -> Result<TokenManager, Error> {
        Self::with_manager(builder.build()?)
    }

    /// Serves an existing async manager (and its cache) to sync code, on a new runtime
    /// thread. Async callers keep using `manager` on their own runtimes.
    pub fn with_manager(manager: crate::TokenManager) -> Result<TokenManager, Error> {
        let changed = Arc::new(Notify::new());
        let (stop, stopped) = oneshot::channel::<()>();
        let (ready, started) = mpsc::sync_channel::<io::Result<Handle>>(1);
        let refresher = refresh_when_due(manager.clone(), changed.clone());
        // The runtime is built and dropped on its own thread, never on the caller's
        // (dropping a runtime panics in async code).
        let thread = thread::Builder::new()
            .name(THREAD_NAME.to_owned())
            .spawn(move || {
                let runtime = match Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = ready.send(Err(error));
                        return;
                    }
                };
                let _ = ready.send(Ok(runtime.handle().clone()));
                runtime.spawn(refresher);
                // Drives every task until the last clone drops `stop` (or sends).
                runtime.block_on(async {
                    let _ = stopped.await;
                });
                // Drops every task now (a flight in progress is abandoned) and does not
                // wait for the blocking pool (a DNS lookup may hang for seconds).
                runtime.shutdown_background();
            })
            .map_err(not_started)?;
        let handle = match started.recv() {
            Ok(Ok(handle)) => handle,
            Ok(Err(error)) => return Err(not_started(error)),
            Err(_) => {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    "the bodhi-auth runtime thread ended before it started",
                ));
            }
        };
        Ok(TokenManager {
            inner: Arc::new(Inner {
                manager,
                handle,
                changed,
                stop: Some(stop),
                thread: Some(thread),
            }),
        })
    }

    /// A token that is valid now: cached, or from the one flight all callers share,
    /// which runs on this manager's runtime thread.
    ///
    /// A cached token is returned without leaving the calling thread. From refresh-due
    /// on, the still-valid token is returned at once while one refresh runs in the
    /// background; after expiry (or a 401) the call waits for a new token, at most the
    /// flight deadline.
    ///
    /// From async code it fails with [`ErrorKind::Config`] and does nothing (see the
    /// [module docs](self#from-async-code)).
    pub fn access_token(&self) -> Result<AccessToken, Error> {
        self.may_block()?;
        if let Some(token) = self.inner.manager.cached() {
            return Ok(token);
        }
        // Past refresh-due, or no token: what the async manager answers, on the runtime
        // thread, where a refresh it starts keeps running after this returns.
        let manager = self.inner.manager.clone();
        let answer = self.run(async move { manager.access_token().await });
        self.inner.changed.notify_one();
        answer?
    }

    /// Reports that the API rejected `rejected` (a 401): see
    /// [`TokenManager::invalidate`](crate::TokenManager::invalidate). Never blocks.
    pub fn invalidate(&self, rejected: &AccessToken) -> bool {
        let dropped = self.inner.manager.invalidate(rejected);
        self.inner.changed.notify_one();
        dropped
    }

    /// Ends the Keycloak session and clears the cache: see
    /// [`TokenManager::logout`](crate::TokenManager::logout). Blocks for at most the
    /// flight deadline plus the request time-out.
    ///
    /// From async code it fails with [`ErrorKind::Config`] and changes nothing.
    pub fn logout(&self) -> Result<(), Error> {
        self.may_block()?;
        let manager = self.inner.manager.clone();
        let outcome = self.run(async move { manager.logout().await });
        self.inner.changed.notify_one();
        outcome?
    }

    /// What this manager has done and where its token stands: see
    /// [`TokenManager::stats`](crate::TokenManager::stats). Never blocks.
    pub fn stats(&self) -> Stats {
        self.inner.manager.stats()
    }

    /// The async manager this one runs, to share its cache (and its one login) with
    /// async code: `manager.async_manager().clone()` for a front end or a task.
    pub fn async_manager(&self) -> &crate::TokenManager {
        &self.inner.manager
    }

    /// Whether this thread may block: an error in async code, where blocking would
    /// stall the runtime driving it. Checked before anything is sent to the runtime.
    fn may_block(&self) -> Result<(), Error> {
        if Handle::try_current().is_err() {
            // A plain thread, outside any runtime: the common case, and cheap.
            return Ok(());
        }
        // Inside some runtime's context: the threads of `spawn_blocking` and
        // `block_in_place` may block, a task or a `block_on` future may not. Tokio tells
        // them apart only by panicking on entry, before it changes anything; blocking
        // on a ready future is that check and nothing else.
        let handle = &self.inner.handle;
        panic::catch_unwind(AssertUnwindSafe(|| handle.block_on(async {})))
            .map_err(|_| called_from_async_code())
    }

    /// Runs `work` on the runtime thread and waits for its output. Callers check
    /// [`may_block`](Self::may_block) first.
    fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, Error> {
        let handle = &self.inner.handle;
        // Waiting on this thread needs no driver: the work runs on the runtime thread,
        // which wakes this one when it is done.
        match handle.block_on(handle.spawn(work)) {
            Ok(output) => Ok(output),
            Err(error) if error.is_panic() => panic::resume_unwind(error.into_panic()),
            // Only if the runtime shut down, which it does once the last clone is gone.
            Err(_) => Err(Error::new(
                ErrorKind::Unavailable,
                "the bodhi-auth runtime thread has stopped",
            )),
        }
    }
}

/// The runtime thread's own task: starts the refresh when the token is due, as a caller
/// at refresh-due would, so that a token got through this manager stays fresh while
/// nobody calls. It never logs in: with no token (or an expired one) it waits for a
/// caller.
async fn refresh_when_due(manager: crate::TokenManager, changed: Arc<Notify>) {
    loop {
        let stats = manager.stats();
        match stats.state {
            TokenState::Valid if !due_in(&stats).is_zero() => {
                nap(&changed, due_in(&stats)).await;
                continue;
            }
            TokenState::Valid if !expires_in(&stats).is_zero() => {
                // Serves the current token and starts one refresh, on this runtime.
                let _ = manager.access_token().await;
            }
            TokenState::Fetching | TokenState::RefreshingWhileValid => {}
            // No token, an expired one, or a cooldown: the next caller acts.
            _ => {
                changed.notified().await;
                continue;
            }
        }
        manager.settled().await;
        // A flight started by async code and parked on an idle runtime makes `settled`
        // return at once without landing: look again later rather than spin on it.
        let stats = manager.stats();
        let unchanged = match stats.state {
            TokenState::Fetching | TokenState::RefreshingWhileValid => true,
            TokenState::Valid => due_in(&stats).is_zero() && !expires_in(&stats).is_zero(),
            _ => false,
        };
        if unchanged {
            nap(&changed, RECHECK).await;
        }
    }
}

fn due_in(stats: &Stats) -> Duration {
    stats.refresh_due_in.unwrap_or_default()
}

fn expires_in(stats: &Stats) -> Duration {
    stats.expires_in.unwrap_or_default()
}

/// Waits `duration`, or less if a caller changes the token.
async fn nap(changed: &Notify, duration: Duration) {
    tokio::select! {
        () = changed.notified() => {}
        () = tokio::time::sleep(duration) => {}
    }
}

fn called_from_async_code() -> Error {
    Error::new(
        ErrorKind::Config,
        "bodhi_auth::blocking::TokenManager was called from async code, where blocking \
         would stall the runtime: there, await `async_manager().access_token()` (or call \
         it from `spawn_blocking`)",
    )
}

fn not_started(error: io::Error) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        "could not start the bodhi-auth runtime thread",
    )
    .with_source(error)
}

impl Drop for Inner {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // Never on the runtime thread itself (it cannot wait for its own end).
            if thread.thread().id() != thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

impl fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenManager")
            .field("manager", &self.inner.manager)
            .finish_non_exhaustive()
    }
}
