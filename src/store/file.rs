//! [`FileStore`]: a session in a file of the user's, shared by the processes of one
//! machine.

use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{Lease, Session, TokenStore};
use crate::{Error, ErrorKind};

/// A [`TokenStore`] in a file that only the user can read, shared by the processes of
/// one machine (a CLI run after run, cron jobs started in the same second); the lease
/// is an OS file lock.
///
/// [`FileStore::new`] does no I/O. The directory is checked (and created if missing)
/// and the file checked at each use; a problem is an [`ErrorKind::Config`] error from
/// that use, which fails the token request that made it. A relative path is relative
/// to the working directory at each use.
///
/// # Security
///
/// As ssh keeps `~/.ssh` and kubectl its cache:
///
/// - the file is created `0600`, and its directory (with any missing parents) `0700`;
/// - a session file, lock file or directory that another user owns, a file that group
///   or others may read or write, or a directory that group or others may write, is
///   refused with an [`ErrorKind::Config`] error naming the path, what is wrong and the
///   `chmod` that fixes it. The directory follows ssh's rule: others may enter it, not
///   write it (they could replace the file); the files admit no one but the user. The
///   directory may be reached through a symbolic link (a `~/.cache` on another disk):
///   the directory it leads to is the one checked;
/// - files are opened without following symbolic links: a link at the file's path is
///   refused, and whatever it points to is left untouched;
/// - a write goes to a new `0600` file in the same directory, is flushed to disk, and
///   is renamed over the session file, so a reader sees the old record or the new one;
///   a failed write leaves no file behind;
/// - the file holds what [`Session::to_json`] gives: tokens, never the password.
///
/// On systems other than Unix every operation fails with an [`ErrorKind::Config`]
/// error: file permissions cannot be checked there, and a store that cannot promise
/// the file is private does not write tokens to it.
///
/// # Files that are not records
///
/// A file that is not a session record (corrupt, truncated, another format, another
/// program's, larger than 1 MiB) reads as no session, with a warning that names the
/// path and never the content. It counts as nothing stored, so the next save (of
/// version 1) replaces it.
///
/// # Locks and the lease
///
/// Next to `<name>`, two empty files carry OS file locks (`flock`): `<name>.lock`, held
/// for the moment of a compare-and-swap, and `<name>.lease`, the [`Lease`]. The lease
/// is held by the process talking to the IDM and released when that process drops it
/// or dies, however it dies, so no clock is involved and ten cron jobs started in the
/// same second make one login. A process that hangs while holding it (stopped, say)
/// keeps it: the others wait until their flight deadline and then fail with
/// [`ErrorKind::Unavailable`]. The lock files stay in place (removing one races with
/// its users).
///
/// # Whose session
///
/// The file holds one session. A manager adopts it only if it is for its own token URL,
/// client and user name; otherwise it logs in itself and stores its session over the
/// other one. [`default_path`](FileStore::default_path) gives each of those its own
/// file.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), bodhi_auth::Error> {
/// # #[cfg(unix)] {
/// use bodhi_auth::store::{FileStore, TokenStore};
/// use bodhi_auth::testing::FakeIdm;
/// use bodhi_auth::{Credentials, TokenManager};
///
/// // Usually `FileStore::default_path(token_url, client_id, user)`; here a directory
/// // that does not exist yet (the store creates it 0700).
/// let dir = std::env::temp_dir().join(format!("bodhi-auth-doc-{}", std::process::id()));
/// let path = dir.join("session.json");
///
/// let idm = FakeIdm::new();
/// let manager = || {
///     TokenManager::builder(Credentials::new("user", "secret"))
///         .fake_idm(&idm)
///         .store(FileStore::new(&path))
///         .build()
/// };
/// // Two managers stand for two runs of a program: the second reads the first one's
/// // session from the file and makes no login.
/// let first = manager()?.access_token().await?;
/// let second = manager()?.access_token().await?;
/// assert!(second.same_token(&first));
/// assert_eq!(idm.token_requests(), 1);
///
/// # use std::os::unix::fs::PermissionsExt;
/// let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
/// assert_eq!(mode(&dir), 0o700);
/// assert_eq!(mode(&path), 0o600);
///
/// FileStore::new(&path).delete().await?; // what a logout does
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct FileStore {
    path: PathBuf,
}

impl FileStore {
    /// A store keeping its session at `path` (its directory is created `0700` at first
    /// use if it is missing, with any missing parents). Does no I/O.
    pub fn new(path: impl Into<PathBuf>) -> FileStore {
        FileStore { path: path.into() }
    }

    /// Where the session is kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The conventional place for the session of this token URL, client and user:
    /// `$XDG_CACHE_HOME/bodhi-auth/session-<digest>.json`, or
    /// `$HOME/.cache/bodhi-auth/...` when `XDG_CACHE_HOME` is unset, empty or relative
    /// (as the XDG base directory specification says).
    ///
    /// `<digest>` is 16 hex digits of a hash of the three strings, the same in every
    /// version of this crate, so the user name does not show in a directory listing.
    /// Two subjects that happened to share a digest would only take turns logging in:
    /// a record names its owner, and a manager never adopts another's.
    ///
    /// An [`ErrorKind::Config`] error if neither variable gives an absolute path, or on
    /// a system other than Unix.
    ///
    /// ```
    /// # #[cfg(unix)] {
    /// use bodhi_auth::store::FileStore;
    ///
    /// # if std::env::var_os("HOME").is_some() {
    /// let path = FileStore::default_path("https://idm.example.com/token", "client", "alice")?;
    /// assert!(path.ends_with(format!("bodhi-auth/{}", path.file_name().unwrap().display())));
    /// assert!(!path.to_string_lossy().contains("alice"));
    /// # }
    /// # }
    /// # Ok::<(), bodhi_auth::Error>(())
    /// ```
    pub fn default_path(
        token_url: &str,
        client_id: &str,
        username: &str,
    ) -> Result<PathBuf, Error> {
        if !cfg!(unix) {
            return Err(unsupported());
        }
        default_path_in(
            std::env::var_os("XDG_CACHE_HOME"),
            std::env::var_os("HOME"),
            token_url,
            client_id,
            username,
        )
    }

    fn paths(&self) -> Result<Arc<Paths>, Error> {
        if !cfg!(unix) {
            return Err(unsupported());
        }
        Paths::new(&self.path).map(Arc::new)
    }

    /// Runs `work` holding the compare-and-swap lock, taken by polling (Tokio sleeps in
    /// between, so no thread waits on another process) for at most [`LOCK_WAIT`].
    async fn locked<T, F>(&self, paths: &Arc<Paths>, work: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&Paths) -> Result<T, Error> + Send + 'static,
    {
        let deadline = Instant::now() + LOCK_WAIT;
        let mut work = work;
        loop {
            let attempt = {
                let paths = paths.clone();
                blocking(move || {
                    sys::ensure_dir(&paths.dir, true)?;
                    match sys::try_lock_file(&paths.lock)? {
                        Some(lock) => {
                            let output = work(&paths);
                            drop(lock);
                            Ok(Ok(output))
                        }
                        None => Ok(Err(work)),
                    }
                })
                .await?
            };
            match attempt {
                Ok(output) => return output,
                Err(back) => work = back,
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    format!(
                        "{} stayed locked by another process for {} s",
                        paths.lock.display(),
                        LOCK_WAIT.as_secs()
                    ),
                ));
            }
            tokio::time::sleep_until((now + LOCK_POLL).min(deadline)).await;
        }
    }
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("path", &self.path)
            .finish()
    }
}

#[async_trait]
impl TokenStore for FileStore {
    async fn load(&self) -> Result<Option<Session>, Error> {
        let paths = self.paths()?;
        let read = {
            let paths = paths.clone();
            blocking(move || match sys::ensure_dir(&paths.dir, false)? {
                false => Ok(Read::Missing),
                true => sys::read_session(&paths.file),
            })
            .await?
        };
        Ok(read.into_session(&paths.file))
    }

    /// Compare-and-swap under `<name>.lock`. A stored file that is not a session record
    /// counts as nothing stored (version 0), so a save of version 1 replaces it.
    async fn save(&self, session: &Session) -> Result<bool, Error> {
        let paths = self.paths()?;
        let json = session.to_json();
        let version = session.version();
        let (saved, replaced) = self
            .locked(&paths, move |paths| {
                let stored = sys::read_session(&paths.file)?;
                let (stored_version, replaced) = match stored {
                    Read::Session(stored) => (stored.version(), None),
                    Read::Missing => (0, None),
                    Read::Unreadable(reason) => (0, Some(reason)),
                };
                if version != stored_version.saturating_add(1) {
                    return Ok((false, None));
                }
                sys::remove_stale_temps(paths);
                sys::write_atomically(paths, &json)?;
                Ok((true, replaced))
            })
            .await?;
        if let Some(reason) = replaced {
            tracing::warn!(
                target: "bodhi_auth",
                path = %paths.file.display(),
                reason = %reason,
                "replaced a session file that was not a session record"
            );
        }
        Ok(saved)
    }

    /// Removes the file (a missing one is fine); refuses a symbolic link at its path.
    async fn delete(&self) -> Result<(), Error> {
        let paths = self.paths()?;
        let exists = {
            let paths = paths.clone();
            blocking(move || sys::ensure_dir(&paths.dir, false)).await?
        };
        if !exists {
            return Ok(());
        }
        self.locked(&paths, |paths| {
            sys::remove_stale_temps(paths);
            sys::remove_session(&paths.file)
        })
        .await
    }

    /// Takes the OS lock on `<name>.lease`. `ttl` is not needed: the lock lasts as long
    /// as the holding process keeps the [`Lease`], and the OS releases it when that
    /// process dies. A process that hangs while holding it (stopped, say) keeps it: the
    /// others wait until their flight deadline and then fail.
    async fn try_lease(&self, _ttl: Duration) -> Result<Option<Box<dyn Lease>>, Error> {
        let paths = self.paths()?;
        let lease = {
            let paths = paths.clone();
            blocking(move || {
                sys::ensure_dir(&paths.dir, true)?;
                sys::try_lock_file(&paths.lease)
            })
            .await?
        };
        Ok(lease.map(|file| {
            Box::new(FileLease {
                file,
                path: paths.lease.clone(),
            }) as Box<dyn Lease>
        }))
    }

    /// Looks at the lease lock every 25 ms (a shared lock taken and dropped at once, so
    /// waiters do not get in each other's way), returning as soon as it is free.
    async fn wait_for_release(&self, at_most: Duration) -> Result<(), Error> {
        let paths = self.paths()?;
        let start = Instant::now();
        let deadline = start.checked_add(at_most).unwrap_or(start + FAR);
        loop {
            let free = {
                let paths = paths.clone();
                blocking(move || sys::lease_is_free(&paths.lease)).await?
            };
            let now = Instant::now();
            if free || now >= deadline {
                return Ok(());
            }
            tokio::time::sleep_until((now + LEASE_POLL).min(deadline)).await;
        }
    }
}

/// The lease of a [`FileStore`]: an exclusive OS lock on `<name>.lease`, released when
/// dropped (or when the process dies).
struct FileLease {
    file: File,
    path: PathBuf,
}

impl fmt::Debug for FileLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileLease")
            .field("path", &self.path)
            .finish()
    }
}

#[async_trait]
impl Lease for FileLease {
    /// Always `true`: the lock has no lifetime to extend while this process holds it.
    async fn renew(&self, _ttl: Duration) -> Result<bool, Error> {
        Ok(true)
    }
}

impl Drop for FileLease {
    fn drop(&mut self) {
        // Closing the file releases the lock too, unless a child process inherited the
        // descriptor; unlocking releases it for every copy.
        let _ = self.file.unlock();
    }
}

/// How long a compare-and-swap waits for another process's (which holds the lock only
/// while it reads and writes one small file).
const LOCK_WAIT: Duration = Duration::from_secs(10);
/// How often a compare-and-swap looks at the lock again.
const LOCK_POLL: Duration = Duration::from_millis(5);
/// How often [`TokenStore::wait_for_release`] looks at the lease again.
const LEASE_POLL: Duration = Duration::from_millis(25);
/// A bound for an `at_most` too large to add to a time.
const FAR: Duration = Duration::from_secs(365 * 24 * 3600);
/// The largest file read as a session record; larger reads as no session.
#[cfg_attr(not(unix), allow(dead_code))]
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The files of one store.
#[cfg_attr(not(unix), allow(dead_code))]
struct Paths {
    file: PathBuf,
    dir: PathBuf,
    /// The file name, for the names next to it.
    name: OsString,
    lock: PathBuf,
    lease: PathBuf,
}

impl Paths {
    fn new(path: &Path) -> Result<Paths, Error> {
        let Some(name) = path.file_name() else {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "the session store path {} does not name a file",
                    path.display()
                ),
            ));
        };
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        let beside = |suffix: &str| {
            let mut sibling = name.to_owned();
            sibling.push(suffix);
            dir.join(sibling)
        };
        Ok(Paths {
            file: dir.join(name),
            lock: beside(".lock"),
            lease: beside(".lease"),
            name: name.to_owned(),
            dir,
        })
    }
}

/// What reading the session file found.
#[cfg_attr(not(unix), allow(dead_code))]
enum Read {
    Session(Box<Session>),
    Missing,
    /// Not a session record: why, without the content.
    Unreadable(String),
}

impl Read {
    /// The session, or `None` (with a warning when the file was not a record).
    fn into_session(self, path: &Path) -> Option<Session> {
        match self {
            Read::Session(session) => Some(*session),
            Read::Missing => None,
            Read::Unreadable(reason) => {
                tracing::warn!(
                    target: "bodhi_auth",
                    path = %path.display(),
                    reason = %reason,
                    "the session file is not a session record; treating it as no session"
                );
                None
            }
        }
    }
}

/// Runs blocking file work off the runtime's threads.
async fn blocking<T, F>(work: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(error) => Err(Error::new(
            ErrorKind::Unavailable,
            format!("the session file task did not finish ({error})"),
        )),
    }
}

/// The error of every [`FileStore`] operation on a system other than Unix.
fn unsupported() -> Error {
    Error::new(
        ErrorKind::Config,
        "FileStore needs a Unix system (file permissions cannot be checked here)",
    )
}

fn default_path_in(
    cache_home: Option<OsString>,
    home: Option<OsString>,
    token_url: &str,
    client_id: &str,
    username: &str,
) -> Result<PathBuf, Error> {
    let absolute = |value: Option<OsString>| value.map(PathBuf::from).filter(|p| p.is_absolute());
    let cache = match (absolute(cache_home), absolute(home)) {
        (Some(cache), _) => cache,
        (None, Some(home)) => home.join(".cache"),
        (None, None) => {
            return Err(Error::new(
                ErrorKind::Config,
                "no directory for the session file: neither XDG_CACHE_HOME nor HOME is \
                 set to an absolute path (or give the store a path)",
            ));
        }
    };
    let digest = subject_digest(&[token_url, client_id, username]);
    Ok(cache
        .join("bodhi-auth")
        .join(format!("session-{digest:016x}.json")))
}

/// FNV-1a (64 bits) over each part's length and bytes: stable, and no two lists of
/// parts feed it the same bytes.
fn subject_digest(parts: &[&str]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for part in parts {
        let length = (part.len() as u64).to_le_bytes();
        for &byte in length.iter().chain(part.as_bytes()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    hash
}

/// The file work, on Unix.
#[cfg(unix)]
mod sys {
    use std::fs::{self, File, OpenOptions};
    use std::io::{self, Read as _, Write as _};
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};

    use rustix::fs::OFlags;
    use zeroize::Zeroizing;

    use super::{MAX_FILE_BYTES, Paths, Read};
    use crate::store::Session;
    use crate::{Error, ErrorKind};

    /// Checks the directory; creates it (`0700`, with missing parents) if `create`.
    /// Returns whether it exists.
    ///
    /// The directory may be reached through a symbolic link (a `~/.cache` on another
    /// disk): what is checked is the directory it leads to.
    pub(super) fn ensure_dir(dir: &Path, create: bool) -> Result<bool, Error> {
        let metadata = match fs::metadata(dir) {
            Ok(metadata) => metadata,
            Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|e| io_error(dir, "create the directory", e))?;
                fs::metadata(dir).map_err(|e| io_error(dir, "read the directory", e))?
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_error(dir, "read the directory", e)),
        };
        if !metadata.is_dir() {
            return Err(config(format!("{} is not a directory", dir.display())));
        }
        check_owner(dir, &metadata)?;
        let mode = metadata.permissions().mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(config(format!(
                "the session store's directory {} is writable by group or others \
                 (mode {mode:04o}), who could replace the session file; run \
                 `chmod 700 {}`",
                dir.display(),
                dir.display()
            )));
        }
        Ok(true)
    }

    /// The session file's record.
    pub(super) fn read_session(path: &Path) -> Result<Read, Error> {
        let mut file = match open(path, OpenOptions::new().read(true)) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Read::Missing),
            Err(e) => return Err(open_error(path, e)),
        };
        let metadata = file
            .metadata()
            .map_err(|e| io_error(path, "read the metadata of", e))?;
        check_file(path, &metadata)?;
        if metadata.len() > MAX_FILE_BYTES {
            return Ok(Read::Unreadable(format!(
                "{} bytes, more than a session record's {MAX_FILE_BYTES}",
                metadata.len()
            )));
        }
        // Room for the whole file up front: a growing buffer would leave copies of the
        // tokens in freed memory.
        let capacity = usize::try_from(metadata.len())
            .unwrap_or(0)
            .saturating_add(1);
        let mut bytes = Zeroizing::new(Vec::with_capacity(capacity));
        (&mut file)
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| io_error(path, "read", e))?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Ok(Read::Unreadable(format!(
                "more than a session record's {MAX_FILE_BYTES} bytes"
            )));
        }
        Ok(match Session::from_json(&bytes) {
            Ok(session) => Read::Session(Box::new(session)),
            Err(error) => Read::Unreadable(error.message().to_owned()),
        })
    }

    /// Writes `json` to a new `0600` file beside the session file, flushes it, and
    /// renames it over the session file. Removes the new file if any step fails.
    pub(super) fn write_atomically(paths: &Paths, json: &[u8]) -> Result<(), Error> {
        static SERIAL: AtomicU64 = AtomicU64::new(0);
        let mut attempts = 0;
        let (temp, mut file) = loop {
            let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
            let temp = paths.dir.join(temp_name(paths, std::process::id(), serial));
            let mut options = OpenOptions::new();
            options.write(true).create_new(true).mode(0o600);
            match open(&temp, &mut options) {
                Ok(file) => break (Removed(Some(temp)), file),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 8 => {
                    attempts += 1;
                }
                Err(e) => return Err(io_error(&temp, "create", e)),
            }
        };
        let path = temp.path();
        file.write_all(json)
            .map_err(|e| io_error(path, "write", e))?;
        file.sync_all().map_err(|e| io_error(path, "flush", e))?;
        drop(file);
        fs::rename(path, &paths.file).map_err(|e| io_error(&paths.file, "replace", e))?;
        temp.keep();
        Ok(())
    }

    /// Removes the session file; refuses a symbolic link at its path.
    pub(super) fn remove_session(path: &Path) -> Result<(), Error> {
        match fs::symlink_metadata(path) {
            Ok(metadata) if metadata.file_type().is_symlink() => Err(symlink(path)),
            Ok(_) => match fs::remove_file(path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io_error(path, "remove", e)),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(path, "read the metadata of", e)),
        }
    }

    /// Removes temporary files a writer left when it died between creating and
    /// renaming one. Called holding the lock, so no live writer has one.
    pub(super) fn remove_stale_temps(paths: &Paths) {
        let Ok(entries) = fs::read_dir(&paths.dir) else {
            return;
        };
        for entry in entries.flatten() {
            if is_temp_name(paths, &entry.file_name()) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// Opens (creating it `0600` if missing) the lock file at `path` and takes its
    /// exclusive lock if it is free: `None` when another open file holds it.
    pub(super) fn try_lock_file(path: &Path) -> Result<Option<File>, Error> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).mode(0o600);
        let file = open(path, &mut options).map_err(|e| open_error(path, e))?;
        let metadata = file
            .metadata()
            .map_err(|e| io_error(path, "read the metadata of", e))?;
        check_file(path, &metadata)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(file)),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(io_error(path, "lock", e)),
        }
    }

    /// Whether nobody holds the lease: a shared lock on it can be taken (and is
    /// dropped at once). A missing lease file is free.
    pub(super) fn lease_is_free(path: &Path) -> Result<bool, Error> {
        let file = match open(path, OpenOptions::new().read(true)) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(open_error(path, e)),
        };
        let metadata = file
            .metadata()
            .map_err(|e| io_error(path, "read the metadata of", e))?;
        check_file(path, &metadata)?;
        match file.try_lock_shared() {
            Ok(()) => Ok(true),
            Err(fs::TryLockError::WouldBlock) => Ok(false),
            Err(fs::TryLockError::Error(e)) => Err(io_error(path, "lock", e)),
        }
    }

    /// Opens without following a symbolic link at `path`, and without waiting on a
    /// FIFO someone put there.
    fn open(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
        let flags = OFlags::NOFOLLOW | OFlags::NONBLOCK;
        options.custom_flags(flags.bits() as i32).open(path)
    }

    /// The error for a failed open: a symbolic link is named as such (`O_NOFOLLOW`
    /// reports `ELOOP` on Linux and macOS, `EMLINK` on FreeBSD).
    fn open_error(path: &Path, error: io::Error) -> Error {
        match fs::symlink_metadata(path) {
            Ok(metadata) if metadata.file_type().is_symlink() => symlink(path),
            _ => io_error(path, "open", error),
        }
    }

    fn symlink(path: &Path) -> Error {
        config(format!(
            "{} is a symbolic link; refusing to follow it (remove it, or give the store \
             the path it points to)",
            path.display()
        ))
    }

    /// A session or lock file: a regular file of this user's that nobody else may
    /// read or write.
    fn check_file(path: &Path, metadata: &fs::Metadata) -> Result<(), Error> {
        if !metadata.file_type().is_file() {
            return Err(config(format!("{} is not a regular file", path.display())));
        }
        check_owner(path, metadata)?;
        let mode = metadata.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            let access = match (mode & 0o044 != 0, mode & 0o022 != 0) {
                (true, true) => "readable and writable",
                (true, false) => "readable",
                _ => "writable",
            };
            return Err(config(format!(
                "{} is {access} by group or others (mode {mode:04o}); run `chmod 600 {}`",
                path.display(),
                path.display()
            )));
        }
        Ok(())
    }

    fn check_owner(path: &Path, metadata: &fs::Metadata) -> Result<(), Error> {
        let me = rustix::process::geteuid().as_raw();
        if metadata.uid() != me {
            return Err(config(format!(
                "{} is owned by user id {}, not by this user (id {me}); the session store \
                 must be the user's own",
                path.display(),
                metadata.uid()
            )));
        }
        Ok(())
    }

    /// `.<name>.<pid>.<serial>.tmp`.
    fn temp_name(paths: &Paths, pid: u32, serial: u64) -> std::ffi::OsString {
        let mut name = std::ffi::OsString::from(".");
        name.push(&paths.name);
        name.push(format!(".{pid}.{serial}.tmp"));
        name
    }

    /// Whether `name` is one of [`temp_name`]'s for this store (and not another
    /// store's whose name starts with this one's).
    fn is_temp_name(paths: &Paths, name: &std::ffi::OsStr) -> bool {
        let (Some(name), Some(ours)) = (name.to_str(), paths.name.to_str()) else {
            return false;
        };
        let Some(rest) = name
            .strip_prefix('.')
            .and_then(|n| n.strip_prefix(ours))
            .and_then(|n| n.strip_prefix('.'))
            .and_then(|n| n.strip_suffix(".tmp"))
        else {
            return false;
        };
        let mut numbers = rest.split('.');
        let number = |n: Option<&str>| {
            n.is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        };
        number(numbers.next()) && number(numbers.next()) && numbers.next().is_none()
    }

    /// A temporary file, removed when dropped unless kept.
    struct Removed(Option<PathBuf>);

    impl Removed {
        fn path(&self) -> &Path {
            self.0.as_deref().unwrap_or(Path::new(""))
        }

        fn keep(mut self) {
            self.0 = None;
        }
    }

    impl Drop for Removed {
        fn drop(&mut self) {
            if let Some(path) = self.0.take() {
                let _ = fs::remove_file(path);
            }
        }
    }

    fn config(message: String) -> Error {
        Error::new(ErrorKind::Config, message)
    }

    /// A failed file operation: one the user must fix (permissions, a read-only file
    /// system, something else at the path) is [`ErrorKind::Config`] and fails the
    /// request; anything else is [`ErrorKind::Unavailable`] and the manager carries on
    /// without the store.
    fn io_error(path: &Path, doing: &str, error: io::Error) -> Error {
        let kind = match error.kind() {
            io::ErrorKind::PermissionDenied
            | io::ErrorKind::ReadOnlyFilesystem
            | io::ErrorKind::NotADirectory
            | io::ErrorKind::IsADirectory => ErrorKind::Config,
            _ => ErrorKind::Unavailable,
        };
        Error::new(
            kind,
            format!("could not {doing} {}: {error}", path.display()),
        )
        .with_source(error)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn only_this_stores_temporary_files_are_recognised() {
            let paths = Paths::new(Path::new("/x/session.json")).unwrap();
            let ours = temp_name(&paths, 42, 7);
            assert_eq!(ours, ".session.json.42.7.tmp");
            assert!(is_temp_name(&paths, &ours));
            for other in [
                ".session.json.x.42.7.tmp",
                ".session.json.42.tmp",
                ".session.json.42.7.8.tmp",
                ".session.json..7.tmp",
                "session.json.42.7.tmp",
                ".session.json.42.7.tmpx",
                "session.json",
                "session.json.lock",
            ] {
                assert!(!is_temp_name(&paths, other.as_ref()), "{other}");
            }
        }
    }
}

/// Every operation fails: file permissions cannot be checked here.
#[cfg(not(unix))]
mod sys {
    use std::fs::File;
    use std::path::Path;

    use super::{Paths, Read, unsupported};
    use crate::Error;

    pub(super) fn ensure_dir(_: &Path, _: bool) -> Result<bool, Error> {
        Err(unsupported())
    }
    pub(super) fn read_session(_: &Path) -> Result<Read, Error> {
        Err(unsupported())
    }
    pub(super) fn write_atomically(_: &Paths, _: &[u8]) -> Result<(), Error> {
        Err(unsupported())
    }
    pub(super) fn remove_session(_: &Path) -> Result<(), Error> {
        Err(unsupported())
    }
    pub(super) fn remove_stale_temps(_: &Paths) {}
    pub(super) fn try_lock_file(_: &Path) -> Result<Option<File>, Error> {
        Err(unsupported())
    }
    pub(super) fn lease_is_free(_: &Path) -> Result<bool, Error> {
        Err(unsupported())
    }
}

// Unix paths; elsewhere every operation is refused.
#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn the_default_path_is_under_the_cache_directory_and_hides_the_user_name() {
        let path = |cache: Option<&str>, home: Option<&str>| {
            default_path_in(
                cache.map(OsString::from),
                home.map(OsString::from),
                "https://idm/token",
                "client",
                "alice",
            )
        };
        let from_cache = path(Some("/c"), Some("/h")).unwrap();
        assert!(from_cache.starts_with("/c/bodhi-auth"));
        assert!(!from_cache.to_string_lossy().contains("alice"));
        let name = from_cache.file_name().unwrap().to_str().unwrap().to_owned();
        assert!(
            name.starts_with("session-") && name.ends_with(".json"),
            "{name}"
        );

        // XDG: a relative XDG_CACHE_HOME is ignored; HOME/.cache is the fallback.
        let from_home = path(Some("relative"), Some("/h")).unwrap();
        assert_eq!(from_home, Path::new("/h/.cache/bodhi-auth").join(&name));
        assert_eq!(path(None, Some("/h")).unwrap(), from_home);

        let error = path(None, None).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config);
        assert!(error.to_string().contains("XDG_CACHE_HOME"), "{error}");
    }

    #[test]
    fn the_file_name_digest_is_stable_and_tells_subjects_apart() {
        // Pinned: a different name in a later version would orphan every stored session.
        assert_eq!(subject_digest(&[]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(
            subject_digest(&["https://idm/token", "client", "alice"]),
            0x0f7e_92ef_a4c8_1271
        );
        let path = default_path_in(
            None,
            Some("/h".into()),
            "https://idm/token",
            "client",
            "alice",
        );
        assert_eq!(
            path.unwrap(),
            Path::new("/h/.cache/bodhi-auth/session-0f7e92efa4c81271.json")
        );
        let digests = [
            subject_digest(&["https://idm/token", "client", "alice"]),
            subject_digest(&["https://idm/token", "client", "bob"]),
            subject_digest(&["https://idm/token", "clientalice", ""]),
            subject_digest(&["https://idm/token", "", "clientalice"]),
        ];
        for (i, a) in digests.iter().enumerate() {
            for b in &digests[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn a_path_without_a_file_name_is_a_config_error() {
        let error = Paths::new(Path::new("/")).err().unwrap();
        assert_eq!(error.kind(), ErrorKind::Config);
        let relative = Paths::new(Path::new("session.json")).unwrap();
        assert_eq!(relative.dir, Path::new("."));
        assert_eq!(relative.lock, Path::new("./session.json.lock"));
        assert_eq!(relative.lease, Path::new("./session.json.lease"));
    }

    #[test]
    fn debug_shows_the_path_only() {
        let store = FileStore::new("/somewhere/session.json");
        assert_eq!(
            format!("{store:?}"),
            "FileStore { path: \"/somewhere/session.json\" }"
        );
    }
}
