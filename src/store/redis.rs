//! [`RedisStore`]: one session for a whole fleet, kept in Redis (feature `redis`).
//!
//! The docs are on [`RedisStore`]: what is stored, how it is sealed, what an outage does,
//! what each flight costs in round trips, and what Sentinel and Cluster users need.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use ::redis::aio::MultiplexedConnection;
use ::redis::{AsyncConnectionConfig, Client, FromRedisValue, RedisError, Script};
use async_trait::async_trait;
use futures_util::StreamExt as _;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use zeroize::Zeroizing;

use super::sealed::{KEY_ENV, Keyring};
use super::{Lease, Session, TokenStore, to_unix_ms};
use crate::Error;

/// A [`TokenStore`] in Redis (feature `redis`): one session for a whole fleet.
///
/// Build it with [`RedisStore::builder`]; building does no I/O. Each `RedisStore` has
/// its own connection (opened on first use), and, once a process has waited for the
/// lease, a second one subscribed to the lease's release channel. Its `Debug` shows the
/// URL without its password and the ids of the keys, never a key.
///
/// Every process of a fleet (or every run of a cron job on many machines) that builds a
/// `RedisStore` for the same Redis, token URL, client id and user name shares one
/// session: one login for all of them, one refresh per expiry, one re-login after the
/// API rejects a token, one failed login per cooldown when the password is wrong.
///
/// ```no_run
/// # async fn run() -> Result<(), bodhi_auth::Error> {
/// use bodhi_auth::store::RedisStore;
/// use bodhi_auth::{Credentials, TokenManager};
///
/// let credentials = Credentials::from_env()?;
/// let manager = TokenManager::builder(credentials.clone());
/// // The key seals what is stored: `openssl rand -base64 32`, the same for the fleet.
/// let key = std::env::var("BODHI_STORE_KEY").unwrap_or_default();
/// let store = RedisStore::builder("redis://redis.internal:6379/0")
///     .keys(&key)
///     .session_for(
///         "https://login.bodhi.io/auth/realms/hotschedules/protocol/openid-connect/token",
///         bodhi_auth::DEFAULT_CLIENT_ID,
///         credentials.username(),
///     )
///     .build()?; // no I/O: it connects on first use
/// let manager = manager.store(store).build()?;
/// let token = manager.access_token().await?;
/// # Ok(()) }
/// ```
///
/// # What is stored
///
/// Under the prefix ([`RedisStore::DEFAULT_PREFIX`] unless set), for a digest of the
/// token URL, client id and user name (so the user name is not in the key, and two
/// accounts or two environments never share a session):
///
/// | key | type | what |
/// |---|---|---|
/// | `bodhi-auth:{digest}:session` | hash | `v`: the record's version (for compare-and-swap); `s`: the sealed [`Session`] |
/// | `bodhi-auth:{digest}:lease` | string | the lease holder's random token, with `PX` |
/// | `bodhi-auth:{digest}:released` | Pub/Sub channel | a message each time the lease is released |
///
/// The session expires on its own: its TTL is the longer of the access token's and the
/// refresh token's remaining lives (and any cooldown it carries), at least
/// [`RedisStore::SESSION_TTL_FLOOR`] and at most [`RedisStore::SESSION_TTL_CEILING`].
///
/// # Encrypted at rest, and a key is required
///
/// The session (refresh token included) is sealed with XChaCha20-Poly1305 under the
/// first key of `BODHI_STORE_KEY` (base64 of 32 random bytes: `openssl rand -base64
/// 32`), with a random nonce per seal, and the key name and version as associated data:
/// an entry copied under another account's or environment's key does not open. A
/// `RedisStore` cannot be built without a key: a shared cache that keeps refresh tokens
/// in clear hands the account to whoever can read the cache.
///
/// Rotation: `BODHI_STORE_KEY=new,old` seals with `new` and opens with both. Roll it out
/// in two steps: first `old,new` everywhere (everyone can open what the others seal),
/// then `new,old`, then drop `old` once the entries sealed with it have expired.
///
/// An entry that does not open (another key, tampered with, another format) is a cache
/// miss with one warning naming the key id ([`Debug`](RedisStore) shows the ids of
/// yours); the next login replaces it. Keys, tokens and passwords never reach a log.
///
/// # When Redis is down
///
/// Every command has its own short time limit ([`RedisStore::DEFAULT_TIMEOUT`], for
/// connecting too). A Redis that is unreachable or slow is a cache miss, not an outage:
/// the store answers [`Error::store_unavailable`] and the manager carries on with its
/// own single flight, logging in with the password (a refresh token the others may have
/// spent is not presented while the store cannot tell). The store reconnects by itself
/// on a later call, at most one attempt per [`RedisStore::RECONNECT_BACKOFF`], and logs
/// the outage once and the reconnection once.
///
/// # Round trips
///
/// A token served from memory costs none, and nothing runs in the background but the
/// idle release-channel subscription. In a flight (one per process at a time):
///
/// | who | round trips |
/// |---|---|
/// | adopts a usable stored session | 1: read (`HMGET`) |
/// | holder at cold start | 5: read, lease (`SET NX PX`), read, save, release |
/// | holder at expiry (refresh token stored) | 6: the same, and a save marking the refresh token presented before it is sent |
/// | holder after a 401 | 8: the same, and a read and a save marking the rejected token first |
/// | waiter | 4: read, lease attempt, `PTTL`, and the read after it is woken (3 more per extra wake: a fallback poll, a lease that changed hands) |
///
/// Save and release are Lua scripts (compare-and-swap with the expiry;
/// compare-and-delete with the `PUBLISH`). A holder also renews the lease every third
/// of its life ([`TokenManagerBuilder::lease_ttl`](crate::TokenManagerBuilder::lease_ttl))
/// while the IDM answers. Once per store: the connection's handshake and, at its first
/// wait, a second connection's `SUBSCRIBE`; once per Redis server and script, `EVALSHA`
/// is answered `NOSCRIPT` and followed by `SCRIPT LOAD` and the `EVALSHA` again.
///
/// # Waiting for the lease
///
/// A process that finds the lease taken subscribes (once, on a connection of its own
/// that stays open while the store lives) to the release channel, and is woken by the
/// holder's `PUBLISH`; it looks again at least every [`RedisStore::POLL_FALLBACK`] and
/// when the lease's `PTTL` runs out, so a lost message or a holder that died costs
/// latency, never a stuck process. Keyspace notifications are not used (off by default
/// and often locked on managed Redis). A lease is released by a task spawned when the
/// holder drops it; without a runtime to run it on, it expires by itself.
///
/// Time is real: Redis expires the lease and the session by its own clock, and each
/// command's limit is a Tokio timer, so a test under paused Tokio time would see every
/// command time out at once. Use [`MemoryStore`](super::MemoryStore) there.
///
/// # Redis, Valkey, Sentinel, Cluster
///
/// Tested against Redis 7.0 standalone. Valkey speaks the same protocol and commands
/// and is expected to work; it is untested. `rediss://` (TLS) works when bodhi-auth is
/// built with one of its TLS features (`rustls`, `rustls-no-provider`, `native-tls`).
///
/// - **Sentinel** is not supported directly (no `redis+sentinel://` URL): point the URL
///   at an address that follows the primary (a DNS name or a proxy your platform
///   updates on failover). After a failover the store reconnects by itself; a write
///   refused by a replica is a miss for that flight.
/// - **Cluster**: the session key, the lease key and the channel share the hash tag
///   `{digest}`, so the Lua scripts touch one slot; but this store talks to one node
///   and does not follow `MOVED` redirections. Point it at a proxy that routes by key
///   (or a single-shard managed cluster); a `MOVED` answer is a miss, never a failure.
///
/// The Redis user needs `GET SET DEL HMGET HSET PEXPIRE PTTL EVALSHA EVAL SCRIPT
/// PUBLISH SUBSCRIBE` on the prefix's keys and channel. Without `SUBSCRIBE`, waiters
/// poll every [`RedisStore::POLL_FALLBACK_UNSUBSCRIBED`].
pub struct RedisStore {
    shared: Arc<Shared>,
}

/// Configures a [`RedisStore`]: a Redis URL, the keys, and whose session it is.
///
/// ```
/// use std::time::Duration;
/// use bodhi_auth::store::RedisStore;
///
/// let store = RedisStore::builder("redis://:hunter2@127.0.0.1:6379/0")
///     .keys("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
///     .prefix("myapp:bodhi:")
///     .timeout(Duration::from_millis(500))
///     .session_for("https://login.bodhi.io/token", "client", "user")
///     .build()
///     .unwrap();
/// let shown = format!("{store:?}");
/// assert!(shown.contains("redis://127.0.0.1:6379/0") && !shown.contains("hunter2"));
///
/// // Without a key, or with a bad one: a `Config` error naming BODHI_STORE_KEY.
/// let error = RedisStore::builder("redis://127.0.0.1")
///     .session_for("https://login.bodhi.io/token", "client", "user")
///     .build()
///     .unwrap_err();
/// assert!(error.to_string().contains("BODHI_STORE_KEY"));
/// ```
#[must_use]
pub struct RedisStoreBuilder {
    url: Zeroizing<String>,
    keys: Option<Zeroizing<String>>,
    prefix: String,
    timeout: Duration,
    poll: Duration,
    session: Option<(String, String, String)>,
}

impl RedisStore {
    /// The prefix of every key the store writes, unless [`RedisStoreBuilder::prefix`]
    /// sets another.
    pub const DEFAULT_PREFIX: &'static str = "bodhi-auth:";
    /// How long connecting, and then each command, may take before Redis counts as
    /// unavailable for this call (a miss): 1 s. A Redis on the same network answers in
    /// a millisecond; one that takes a second is sick, and the IDM is the better bet.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
    /// After a failed connection attempt, calls fail at once (a miss) for this long
    /// before the next attempt: 1 s, so an outage costs each flight nothing and a
    /// restarted Redis is back in use within a second.
    pub const RECONNECT_BACKOFF: Duration = Duration::from_secs(1);
    /// The shortest life a stored session is given: 1 min, so a stored failure or a
    /// token that just expired is still there for the processes waiting on the lease.
    pub const SESSION_TTL_FLOOR: Duration = Duration::from_secs(60);
    /// The longest life a stored session is given: 30 days (a refresh token the IDM
    /// gave no expiry, such as an offline token).
    pub const SESSION_TTL_CEILING: Duration = Duration::from_secs(30 * 24 * 3600);
    /// The longest a waiter subscribed to the release channel waits before looking at
    /// the lease again: 2 s (in case a message was lost). The lease's own expiry wakes
    /// it sooner.
    pub const POLL_FALLBACK: Duration = Duration::from_secs(2);
    /// The same when the subscription failed (a Redis user without `SUBSCRIBE`): 250 ms.
    pub const POLL_FALLBACK_UNSUBSCRIBED: Duration = Duration::from_millis(250);
    /// A builder for a store at `url` (`redis://[user][:password@]host[:port][/db]`, or
    /// `rediss://` for TLS).
    pub fn builder(url: &str) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: Zeroizing::new(url.to_owned()),
            keys: None,
            prefix: RedisStore::DEFAULT_PREFIX.to_owned(),
            timeout: RedisStore::DEFAULT_TIMEOUT,
            poll: RedisStore::POLL_FALLBACK,
            session: None,
        }
    }

    /// For the manager's `from_env`: a store at `url` with the keys of
    /// `BODHI_STORE_KEY` (`None`: unset, a `Config` error) for this subject.
    pub(crate) fn from_env_parts(
        url: &str,
        keys: Option<&str>,
        token_url: &str,
        client_id: &str,
        username: &str,
    ) -> Result<RedisStore, Error> {
        let mut builder = RedisStore::builder(url).session_for(token_url, client_id, username);
        if let Some(keys) = keys {
            builder = builder.keys(keys);
        }
        builder.build()
    }
}

impl RedisStoreBuilder {
    /// The keys: the value of `BODHI_STORE_KEY`, one or more base64-encoded 32-byte
    /// keys separated by commas. The first seals; all open. Required.
    pub fn keys(mut self, keys: &str) -> Self {
        self.keys = Some(Zeroizing::new(keys.to_owned()));
        self
    }

    /// The prefix of every key and channel name ([`RedisStore::DEFAULT_PREFIX`]), to
    /// keep apart programs sharing one Redis database.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The limit on connecting and on each command ([`RedisStore::DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How often a waiter looks at the lease again when no release message came
    /// ([`RedisStore::POLL_FALLBACK`]); at most [`RedisStore::POLL_FALLBACK_UNSUBSCRIBED`]
    /// when the subscription failed.
    pub fn poll_fallback(mut self, poll: Duration) -> Self {
        self.poll = poll.max(Duration::from_millis(1));
        self
    }

    /// Whose session this is: the manager's token URL, client id and user name.
    /// Required. They name the key (by a digest), so different accounts, clients or
    /// environments never share a session.
    pub fn session_for(mut self, token_url: &str, client_id: &str, username: &str) -> Self {
        self.session = Some((
            token_url.to_owned(),
            client_id.to_owned(),
            username.to_owned(),
        ));
        self
    }

    /// Checks the configuration and creates the store. Does no I/O. A URL that is not
    /// `redis://` or `rediss://`, a missing or bad key, or a missing
    /// [`session_for`](Self::session_for) is an [`ErrorKind::Config`](crate::ErrorKind::Config)
    /// error saying which (never echoing a key or a password).
    pub fn build(self) -> Result<RedisStore, Error> {
        let shown_url = check_url(&self.url)?;
        let Some(keys) = self.keys else {
            return Err(Error::store_misconfigured(format!(
                "{KEY_ENV} is not set: a RedisStore seals the session (refresh token \
                 included) with it, and does not store tokens in clear. Make one with \
                 `openssl rand -base64 32` and give every process the same"
            )));
        };
        let keyring = Keyring::parse(&keys)?;
        let Some((token_url, client_id, username)) = self.session else {
            return Err(Error::store_misconfigured(
                "a RedisStore needs session_for(token_url, client_id, username): they name \
                 the session's key",
            ));
        };
        let client = Client::open(self.url.as_str()).map_err(|e| {
            Error::store_misconfigured(format!(
                "the Redis URL {shown_url} is not usable: {}",
                e.category()
            ))
        })?;
        let digest = subject_digest(&token_url, &client_id, &username);
        let names = Names {
            session: format!("{}{{{digest}}}:session", self.prefix),
            lease: format!("{}{{{digest}}}:lease", self.prefix),
            released: format!("{}{{{digest}}}:released", self.prefix),
        };
        Ok(RedisStore {
            shared: Arc::new(Shared {
                client,
                config: AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout)),
                shown_url,
                keyring,
                names,
                timeout: self.timeout,
                poll: self.poll,
                link: tokio::sync::Mutex::new(Link::default()),
                down: AtomicBool::new(false),
                released: Arc::new(Notify::new()),
                subscription: tokio::sync::Mutex::new(Subscription::default()),
                unreadable: Mutex::new(None),
            }),
        })
    }
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreBuilder")
            .field("url", &shown_url(&self.url))
            .field("keys", &self.keys.as_ref().map(|_| "<redacted>"))
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("session", &self.session)
            .finish()
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &self.shared;
        f.debug_struct("RedisStore")
            .field("url", &shared.shown_url)
            .field("session_key", &shared.names.session)
            .field("key_ids", &shared.keyring.ids())
            .field("timeout", &shared.timeout)
            .finish_non_exhaustive()
    }
}

/// The names of the session's key, lease key and release channel.
struct Names {
    session: String,
    lease: String,
    released: String,
}

/// What a store and its leases share.
struct Shared {
    client: Client,
    config: AsyncConnectionConfig,
    shown_url: String,
    keyring: Keyring,
    names: Names,
    timeout: Duration,
    /// How often a waiter looks again without a release message.
    poll: Duration,
    link: tokio::sync::Mutex<Link>,
    /// Whether the last connection attempt or command failed for want of Redis: the
    /// outage and the reconnection are each logged once.
    down: AtomicBool,
    /// Woken by every message on the release channel.
    released: Arc<Notify>,
    subscription: tokio::sync::Mutex<Subscription>,
    /// The raw version of the entry the last load could not read: the next save of a
    /// first version replaces it (an unreadable entry counts as nothing stored), and it
    /// is warned about once. With a digest of the entry, to tell a new one.
    unreadable: Mutex<Option<(String, [u8; 32])>>,
}

/// The command connection.
#[derive(Default)]
struct Link {
    connection: Option<(u64, MultiplexedConnection)>,
    generation: u64,
    failed_at: Option<Instant>,
}

/// The release-channel subscription, forwarded to `Shared::released` by a task.
#[derive(Default)]
struct Subscription {
    forwarder: Option<(JoinHandle<()>, Arc<AtomicBool>)>,
    failed_at: Option<Instant>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some((task, _)) = self.forwarder.take() {
            task.abort();
        }
    }
}

/// How long a failed `SUBSCRIBE` is not tried again (waiters poll meanwhile).
const SUBSCRIBE_BACKOFF: Duration = Duration::from_secs(30);

/// Compare-and-swap: stores the sealed session if the stored version is the expected
/// one (`0`: nothing stored), or if it is the unreadable entry this store read (only
/// for a first version). Then sets the expiry.
const SAVE: &str = r"
local current = redis.call('HGET', KEYS[1], 'v')
if not current then current = '0' end
if current == ARGV[1] or (ARGV[5] ~= '' and current == ARGV[5]) then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'v', ARGV[2], 's', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return 1
end
return 0
";

/// Extends the lease if this holder still has it.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Compare-and-delete: releases the lease only if this holder still has it, and tells
/// the waiters.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], '1')
  return 1
end
return 0
";

impl Shared {
    /// The command connection, connecting if there is none.
    async fn connection(&self) -> Result<(u64, MultiplexedConnection), Error> {
        let mut link = self.link.lock().await;
        if let Some((generation, connection)) = &link.connection {
            return Ok((*generation, connection.clone()));
        }
        if let Some(failed_at) = link.failed_at
            && failed_at.elapsed() < RedisStore::RECONNECT_BACKOFF
        {
            return Err(Error::store_unavailable(format!(
                "Redis at {} is unreachable (next attempt within {} ms)",
                self.shown_url,
                RedisStore::RECONNECT_BACKOFF.as_millis()
            )));
        }
        let connecting = self
            .client
            .get_multiplexed_async_connection_with_config(&self.config);
        let cause = match tokio::time::timeout(self.timeout, connecting).await {
            Ok(Ok(connection)) => {
                link.generation += 1;
                link.connection = Some((link.generation, connection.clone()));
                link.failed_at = None;
                if self.down.swap(false, Ordering::SeqCst) {
                    tracing::info!(
                        target: "bodhi_auth",
                        url = %self.shown_url,
                        "reconnected to Redis; the session store is in use again"
                    );
                } else {
                    tracing::debug!(target: "bodhi_auth", url = %self.shown_url, "connected to Redis");
                }
                return Ok((link.generation, connection));
            }
            Ok(Err(error)) => describe(&error),
            Err(_) => format!("no connection within {} ms", self.timeout.as_millis()),
        };
        link.failed_at = Some(Instant::now());
        drop(link);
        self.went_down(&cause);
        Err(Error::store_unavailable(format!(
            "could not connect to Redis at {}: {cause}",
            self.shown_url
        )))
    }

    /// Logs an outage once.
    fn went_down(&self, cause: &str) {
        if !self.down.swap(true, Ordering::SeqCst) {
            tracing::warn!(
                target: "bodhi_auth",
                url = %self.shown_url,
                "Redis is unreachable ({cause}); the session store counts as empty, and \
                 each process talks to the IDM on its own until it is back (reconnecting \
                 by itself)"
            );
        }
    }

    /// Runs one command or script on the connection, within the time limit. On
    /// failure the connection is dropped (the next call opens another).
    async fn run<T: FromRedisValue>(&self, what: &str, request: Request<'_>) -> Result<T, Error> {
        let (generation, mut connection) = self.connection().await?;
        let answer = async {
            match request {
                Request::Command(command) => command.query_async(&mut connection).await,
                Request::Script(invocation) => invocation.invoke_async(&mut connection).await,
            }
        };
        let (cause, lost) = match tokio::time::timeout(self.timeout, answer).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) => (describe(&error), connection_lost(&error)),
            Err(_) => (
                format!("no answer within {} ms", self.timeout.as_millis()),
                true,
            ),
        };
        {
            let mut link = self.link.lock().await;
            if link
                .connection
                .as_ref()
                .is_some_and(|(g, _)| *g == generation)
            {
                link.connection = None;
            }
        }
        if lost {
            self.went_down(&cause);
        }
        Err(Error::store_unavailable(format!(
            "Redis at {}: could not {what}: {cause}",
            self.shown_url
        )))
    }

    /// Subscribes to the release channel if not yet subscribed. Whether it is.
    async fn subscribe(&self) -> bool {
        let mut subscription = self.subscription.lock().await;
        if let Some((_, alive)) = &subscription.forwarder {
            if alive.load(Ordering::SeqCst) {
                return true;
            }
            subscription.forwarder = None;
        }
        if subscription
            .failed_at
            .is_some_and(|at| at.elapsed() < SUBSCRIBE_BACKOFF)
        {
            return false;
        }
        let subscribing = async {
            let mut pubsub = self.client.get_async_pubsub().await?;
            pubsub.subscribe(&self.names.released).await?;
            Ok::<_, RedisError>(pubsub)
        };
        match tokio::time::timeout(self.timeout, subscribing).await {
            Ok(Ok(pubsub)) => {
                let alive = Arc::new(AtomicBool::new(true));
                let ended = Ended {
                    alive: alive.clone(),
                    released: self.released.clone(),
                };
                let released = self.released.clone();
                let task = tokio::spawn(async move {
                    let _ended = ended;
                    let mut messages = pubsub.into_on_message();
                    while messages.next().await.is_some() {
                        released.notify_waiters();
                    }
                });
                subscription.forwarder = Some((task, alive));
                subscription.failed_at = None;
                true
            }
            failed => {
                let cause = match failed {
                    Ok(Err(error)) => describe(&error),
                    _ => format!("no answer within {} ms", self.timeout.as_millis()),
                };
                tracing::debug!(
                    target: "bodhi_auth",
                    url = %self.shown_url,
                    "could not subscribe to the lease's release channel ({cause}); waiters poll"
                );
                subscription.failed_at = Some(Instant::now());
                false
            }
        }
    }

    /// Releases the lease held with `token` and wakes the waiters.
    async fn release(&self, token: &str) -> Result<bool, Error> {
        let script = Script::new(RELEASE);
        let mut invocation = script.key(&self.names.lease);
        invocation.arg(token).arg(&self.names.released);
        self.run("release the lease", Request::Script(&invocation))
            .await
    }

    /// Opens a stored entry, or says why not.
    fn open(&self, version: Option<&str>, sealed: Option<&[u8]>) -> Result<Session, String> {
        let Some(number) = version
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|&v| v > 0)
        else {
            return Err("its version field is missing or not a number".to_owned());
        };
        let Some(sealed) = sealed else {
            return Err("it holds no sealed session".to_owned());
        };
        let context = self.context(number);
        let plain = self
            .keyring
            .open(sealed, &[context[0].as_bytes(), context[1].as_bytes()])
            .map_err(|reason| reason.to_string())?;
        let session = Session::from_json(&plain).map_err(|e| {
            format!(
                "it opened with key {} but holds no session this crate reads ({})",
                self.keyring.ids()[0],
                e.message()
            )
        })?;
        if session.version() != number {
            return Err("its version does not match the sealed record".to_owned());
        }
        Ok(session)
    }

    /// What a session is sealed with besides the key: where it is stored, and as which
    /// version.
    fn context(&self, version: u64) -> [String; 2] {
        [self.names.session.clone(), version.to_string()]
    }
}

/// One command or script invocation for [`Shared::run`].
enum Request<'a> {
    Command(&'a ::redis::Cmd),
    Script(&'a ::redis::ScriptInvocation<'a>),
}

/// Marks the subscription dead when its forwarding task ends (the connection closed,
/// the runtime went away), and wakes the waiters so they look for themselves.
struct Ended {
    alive: Arc<AtomicBool>,
    released: Arc<Notify>,
}

impl Drop for Ended {
    fn drop(&mut self) {
        self.alive.store(false, Ordering::SeqCst);
        self.released.notify_waiters();
    }
}

#[async_trait]
impl TokenStore for RedisStore {
    async fn load(&self) -> Result<Option<Session>, Error> {
        let shared = &self.shared;
        let key = &shared.names.session;
        let (version, sealed): (Option<String>, Option<Vec<u8>>) = shared
            .run(
                "read the session",
                Request::Command(::redis::cmd("HMGET").arg(key).arg("v").arg("s")),
            )
            .await?;
        if version.is_none() && sealed.is_none() {
            *shared.unreadable.lock() = None;
            return Ok(None);
        }
        match shared.open(version.as_deref(), sealed.as_deref()) {
            Ok(session) => {
                *shared.unreadable.lock() = None;
                Ok(Some(session))
            }
            Err(reason) => {
                let raw = version.unwrap_or_default();
                let mut digest = Sha256::new();
                digest.update(raw.as_bytes());
                digest.update(sealed.as_deref().unwrap_or_default());
                let digest: [u8; 32] = digest.finalize().into();
                let mut unreadable = shared.unreadable.lock();
                if unreadable.as_ref().is_none_or(|(_, seen)| *seen != digest) {
                    tracing::warn!(
                        target: "bodhi_auth",
                        key = %key,
                        "the stored session cannot be read: {reason}; treating it as absent \
                         (the next login replaces it). This process's keys: {}",
                        shown_ids(&shared.keyring)
                    );
                }
                *unreadable = Some((raw, digest));
                Ok(None)
            }
        }
    }

    async fn save(&self, session: &Session) -> Result<bool, Error> {
        let shared = &self.shared;
        let version = session.version();
        let context = shared.context(version);
        let sealed = shared.keyring.seal(
            &session.to_json(),
            &[context[0].as_bytes(), context[1].as_bytes()],
        )?;
        let replaces = match &*shared.unreadable.lock() {
            Some((raw, _)) if version == 1 => raw.clone(),
            _ => String::new(),
        };
        let ttl = session_ttl(session, to_unix_ms(SystemTime::now()));
        let script = Script::new(SAVE);
        let mut invocation = script.key(&shared.names.session);
        invocation
            .arg(version.saturating_sub(1))
            .arg(version)
            .arg(sealed)
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
            .arg(replaces);
        let stored: bool = shared
            .run("save the session", Request::Script(&invocation))
            .await?;
        if stored {
            *shared.unreadable.lock() = None;
        }
        Ok(stored)
    }

    async fn delete(&self) -> Result<(), Error> {
        let key = &self.shared.names.session;
        self.shared
            .run(
                "delete the session",
                Request::Command(::redis::cmd("DEL").arg(key)),
            )
            .await
    }

    async fn try_lease(&self, ttl: Duration) -> Result<Option<Box<dyn Lease>>, Error> {
        let shared = &self.shared;
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| {
            Error::store_unavailable(format!("no randomness for a lease token from the OS: {e}"))
        })?;
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let key = &shared.names.lease;
        let taken: Option<String> = shared
            .run(
                "take the lease",
                Request::Command(
                    ::redis::cmd("SET")
                        .arg(key)
                        .arg(&token)
                        .arg("NX")
                        .arg("PX")
                        .arg(millis(ttl)),
                ),
            )
            .await?;
        Ok(taken.map(|_| {
            Box::new(RedisLease {
                shared: self.shared.clone(),
                token: Some(token),
            }) as Box<dyn Lease>
        }))
    }

    fn fingerprint_key(&self) -> Option<&[u8]> {
        Some(self.shared.keyring.fingerprint_key())
    }

    async fn wait_for_release(&self, at_most: Duration) -> Result<(), Error> {
        let shared = &self.shared;
        let subscribed = shared.subscribe().await;
        let released = shared.released.notified();
        tokio::pin!(released);
        // Registered before looking, so a release in between is not missed.
        released.as_mut().enable();
        let key = &shared.names.lease;
        let left: i64 = shared
            .run(
                "look at the lease",
                Request::Command(::redis::cmd("PTTL").arg(key)),
            )
            .await?;
        // -2: no lease (released or expired); -1: a lease without expiry, which this
        // crate never writes: wait the poll interval, no longer.
        if left == -2 {
            return Ok(());
        }
        let poll = if subscribed {
            shared.poll
        } else {
            shared.poll.min(RedisStore::POLL_FALLBACK_UNSUBSCRIBED)
        };
        let mut wait = at_most.min(poll);
        if let Ok(left) = u64::try_from(left) {
            wait = wait.min(Duration::from_millis(left));
        }
        let _ = tokio::time::timeout(wait, released).await;
        Ok(())
    }
}

/// A lease in Redis: `SET lease token NX PX ttl`, renewed and released only by its
/// holder (by compare-and-delete). Dropping it releases it (in a spawned task).
struct RedisLease {
    shared: Arc<Shared>,
    token: Option<String>,
}

impl fmt::Debug for RedisLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLease")
            .field("key", &self.shared.names.lease)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Lease for RedisLease {
    async fn renew(&self, ttl: Duration) -> Result<bool, Error> {
        let Some(token) = &self.token else {
            return Ok(false);
        };
        let script = Script::new(RENEW);
        let mut invocation = script.key(&self.shared.names.lease);
        invocation.arg(token).arg(millis(ttl));
        let renewed: bool = self
            .shared
            .run("renew the lease", Request::Script(&invocation))
            .await?;
        Ok(renewed)
    }
}

impl Drop for RedisLease {
    fn drop(&mut self) {
        let Some(token) = self.token.take() else {
            return;
        };
        // Without a runtime (or in one shutting down), the lease expires by itself.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let shared = self.shared.clone();
            runtime.spawn(async move {
                if let Err(error) = shared.release(&token).await {
                    tracing::debug!(target: "bodhi_auth", %error, "could not release the lease; it expires by itself");
                }
            });
        }
    }
}

/// The URL as shown: scheme, user name, host, port and database; no password, no query.
fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) => {
            let mut shown = format!("{}://", parsed.scheme());
            if !parsed.username().is_empty() {
                shown.push_str(parsed.username());
                shown.push('@');
            }
            shown.push_str(parsed.host_str().unwrap_or(""));
            if let Some(port) = parsed.port() {
                shown.push_str(&format!(":{port}"));
            }
            shown.push_str(parsed.path());
            shown
        }
        Err(_) => "<not a URL>".to_owned(),
    }
}

/// A `redis://` or `rediss://` URL (`rediss://` only with a TLS feature). Returns it as
/// shown.
fn check_url(url: &str) -> Result<String, Error> {
    // Not echoed: it may hold a password.
    let parsed = url::Url::parse(url).map_err(|e| {
        Error::store_misconfigured(format!(
            "the Redis URL is not a URL ({e}); expected redis://host:port/db"
        ))
    })?;
    match parsed.scheme() {
        "redis" => {}
        "rediss"
            if cfg!(any(
                feature = "rustls",
                feature = "rustls-no-provider",
                feature = "native-tls"
            )) => {}
        "rediss" => {
            return Err(Error::store_misconfigured(
                "a rediss:// URL needs bodhi-auth built with one of its TLS features \
                 (rustls, rustls-no-provider, native-tls)",
            ));
        }
        other => {
            return Err(Error::store_misconfigured(format!(
                "the Redis URL must start with redis:// or rediss://, not {other}://"
            )));
        }
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(Error::store_misconfigured("the Redis URL names no host"));
    }
    Ok(shown_url(url))
}

/// The subject's digest: SHA-256 of the length-prefixed token URL, client id and user
/// name, 128 bits in hex.
fn subject_digest(token_url: &str, client_id: &str, username: &str) -> String {
    let mut digest = Sha256::new();
    for part in [token_url, client_id, username] {
        digest.update((part.len() as u64).to_be_bytes());
        digest.update(part.as_bytes());
    }
    digest.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How long Redis keeps `session`: until the last of its tokens (or its cooldown or
/// `Retry-After`) ends, within the floor and the ceiling.
fn session_ttl(session: &Session, now_ms: u64) -> Duration {
    let mut until = [
        session.access.as_ref().map(|a| a.expires_at),
        session.cooldown.as_ref().map(|c| c.until),
        session.not_before,
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(0);
    if let Some(refresh) = &session.refresh {
        until = until.max(refresh.expires_at.unwrap_or(u64::MAX));
    }
    Duration::from_millis(until.saturating_sub(now_ms)).clamp(
        RedisStore::SESSION_TTL_FLOOR,
        RedisStore::SESSION_TTL_CEILING,
    )
}

/// Milliseconds for `PX`/`PEXPIRE`: at least 1 (0 is refused, or deletes).
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// A Redis error in words that hold no secret: the I/O cause, the server's error code,
/// or the client's category (never a value from the reply).
fn describe(error: &RedisError) -> String {
    if error.is_io_error() || error.is_connection_dropped() || error.is_timeout() {
        return crate::error::root_cause(error);
    }
    match error.code() {
        Some(code) => format!("Redis answered {code}"),
        None => error.category().to_owned(),
    }
}

/// Whether the error means the connection (or Redis) is gone, not a refused command.
fn connection_lost(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || error.is_unrecoverable_error()
}

fn shown_ids(keyring: &Keyring) -> String {
    keyring
        .ids()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use crate::store::{StoredAccess, StoredRefresh};

    const KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

    fn builder(url: &str) -> RedisStoreBuilder {
        RedisStore::builder(url)
            .keys(KEY)
            .session_for("https://idm/token", "client", "user")
    }

    #[test]
    fn bad_urls_are_config_errors_that_do_not_echo_the_password() {
        for (url, expected) in [
            ("http://:pw-secret@host:6379", "not http://"),
            ("not a url pw-secret", "not a URL"),
            ("redis://:pw-secret@/0", "host"),
        ] {
            let error = builder(url).build().unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Config);
            let shown = error.to_string();
            assert!(shown.contains(expected), "{shown}");
            assert!(!shown.contains("pw-secret"), "{shown}");
        }
        let tls = cfg!(any(
            feature = "rustls",
            feature = "rustls-no-provider",
            feature = "native-tls"
        ));
        assert_eq!(
            builder("rediss://cache.internal:6380/2").build().is_ok(),
            tls
        );
        let error = RedisStore::builder("redis://host")
            .keys(KEY)
            .build()
            .unwrap_err();
        assert!(error.to_string().contains("session_for"), "{error}");
    }

    #[test]
    fn debug_shows_the_url_without_password_and_key_ids_only() {
        let store = builder("redis://admin:pw-secret@cache:6379/3?x=pw-secret")
            .build()
            .unwrap();
        let shown = format!("{store:?}");
        assert!(shown.contains("redis://admin@cache:6379/3"), "{shown}");
        assert!(
            !shown.contains("pw-secret") && !shown.contains(KEY),
            "{shown}"
        );
        assert!(shown.contains(&store.shared.keyring.ids()[0].to_string()));
        let builder = format!("{:?}", builder("redis://:pw-secret@cache"));
        assert!(
            !builder.contains("pw-secret") && !builder.contains(KEY),
            "{builder}"
        );
    }

    #[test]
    fn keys_are_namespaced_by_a_digest_of_the_subject_with_one_hash_tag() {
        let a = builder("redis://cache").build().unwrap();
        let names = &a.shared.names;
        assert!(
            names.session.starts_with("bodhi-auth:{"),
            "{}",
            names.session
        );
        assert!(!names.session.contains("user"));
        let tag = |name: &str| name[name.find('{').unwrap()..=name.find('}').unwrap()].to_owned();
        assert_eq!(tag(&names.session), tag(&names.lease));
        assert_eq!(tag(&names.session), tag(&names.released));

        let other = |token_url, client, user| {
            RedisStore::builder("redis://cache")
                .keys(KEY)
                .prefix("p:")
                .session_for(token_url, client, user)
                .build()
                .unwrap()
                .shared
                .names
                .session
                .clone()
        };
        let base = other("https://idm/token", "client", "user");
        assert!(base.starts_with("p:{"));
        assert_ne!(base, other("https://idm/token", "client", "user2"));
        assert_ne!(base, other("https://idm/token", "client2", "user"));
        assert_ne!(base, other("https://dev-idm/token", "client", "user"));
        // Length-prefixed: moving a character between parts changes the digest.
        assert_ne!(
            other("https://idm/token", "ab", "c"),
            other("https://idm/token", "a", "bc")
        );
    }

    #[test]
    fn the_ttl_is_the_longest_token_life_within_floor_and_ceiling() {
        let now = 1_000_000_000_000;
        let mut session = Session::new(0, "u", "c", "n");
        assert_eq!(session_ttl(&session, now), RedisStore::SESSION_TTL_FLOOR);
        session.access = Some(StoredAccess {
            token: String::new().into(),
            issued_at: now,
            expires_at: now + 3_600_000,
            id_token: None,
            scope: None,
            rejected: false,
        });
        assert_eq!(session_ttl(&session, now), Duration::from_secs(3600));
        session.refresh = Some(StoredRefresh {
            token: String::new().into(),
            expires_at: Some(now + 7_200_000),
            presented: false,
        });
        assert_eq!(session_ttl(&session, now), Duration::from_secs(7200));
        session.refresh.as_mut().unwrap().expires_at = None;
        assert_eq!(session_ttl(&session, now), RedisStore::SESSION_TTL_CEILING);
        session.refresh = None;
        assert_eq!(
            session_ttl(&session, now + 3_600_000),
            RedisStore::SESSION_TTL_FLOOR
        );
    }
}
