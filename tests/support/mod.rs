//! Helpers shared by test binaries (the fake IDM and API live in `bodhi_auth::testing`).
//! Each binary uses a part of them.
#![allow(dead_code)]

use std::io::Write;

use bodhi_auth::testing::FakeIdm;
use bodhi_auth::{AccessToken, Credentials, Error, TokenManager, TokenManagerBuilder};
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// Every line the global tracing subscriber writes, at TRACE level.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Installs a global TRACE subscriber writing here. Global, and each binary that uses
    /// it has one test: tracing caches per-callsite interest, so a thread-local
    /// subscriber can miss events first seen on another thread.
    pub fn install() -> CapturedLogs {
        let captured = CapturedLogs::default();
        let writer = captured.clone();
        tracing::subscriber::set_global_default(
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .finish(),
        )
        .unwrap();
        captured
    }

    /// What was written so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A manager builder for the fake IDM's `user` / `secret`, in memory.
pub fn builder(idm: &FakeIdm) -> TokenManagerBuilder {
    TokenManager::builder(Credentials::new("user", "secret")).fake_idm(idm)
}

/// [`builder`] with every default.
pub fn manager(idm: &FakeIdm) -> TokenManager {
    builder(idm).build().unwrap()
}

/// A runtime of its own under paused time, for tests that need more than one runtime or
/// none at all between steps.
pub fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

/// One more caller: `access_token()` in a task of its own, owned by no other caller.
pub fn spawn_caller(manager: &TokenManager) -> JoinHandle<Result<AccessToken, Error>> {
    let manager = manager.clone();
    tokio::spawn(async move { manager.access_token().await })
}

/// `n` callers at once; their answers, in the order they were started.
pub async fn concurrent_callers(
    manager: &TokenManager,
    n: usize,
) -> Vec<Result<AccessToken, Error>> {
    let callers: Vec<_> = (0..n).map(|_| spawn_caller(manager)).collect();
    let mut answers = Vec::with_capacity(n);
    for caller in callers {
        answers.push(caller.await.expect("a caller panicked"));
    }
    answers
}

/// One `access_token()` per manager, all at once (managers standing for processes);
/// every one must get a token.
pub async fn everyone(managers: &[TokenManager]) -> Vec<AccessToken> {
    let callers: Vec<_> = managers.iter().map(spawn_caller).collect();
    let mut tokens = Vec::new();
    for caller in callers {
        tokens.push(caller.await.unwrap().expect("every manager gets a token"));
    }
    tokens
}

/// Whether all are one token.
pub fn all_same(tokens: &[AccessToken]) -> bool {
    tokens.iter().all(|t| t.same_token(&tokens[0]))
}

/// A fresh `0700` directory under the system's temporary directory, removed when
/// dropped (also when the test fails).
#[cfg(unix)]
pub struct TempDir(std::path::PathBuf);

#[cfg(unix)]
impl TempDir {
    pub fn new(name: &str) -> TempDir {
        use std::fs;
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        use std::sync::atomic::{AtomicUsize, Ordering};

        static SERIAL: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "bodhi-auth-test-{}-{}-{name}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        fs::DirBuilder::new().mode(0o700).create(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o700)).unwrap();
        TempDir(path)
    }

    pub fn join(&self, path: &str) -> std::path::PathBuf {
        self.0.join(path)
    }
}

#[cfg(unix)]
impl Drop for TempDir {
    fn drop(&mut self) {
        use std::fs;
        use std::os::unix::fs::PermissionsExt;

        let _ = fs::set_permissions(&self.0, fs::Permissions::from_mode(0o700));
        let _ = fs::remove_dir_all(&self.0);
    }
}
