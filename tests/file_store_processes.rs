//! The file store across real OS processes: the `token` example, started many times at
//! once against the fake IDM on loopback, shares one session through one file. Counts
//! only: every token lives 30 hours, so no run can outlast one, however slow. `cargo test`
//! builds the examples first; to run this file alone, `cargo build --examples` before.

use std::path::{Path, PathBuf};
use std::process::Output;

use bodhi_auth::testing::FakeIdm;
use tokio::process::Command;

/// The `token` example, which `cargo test` builds beside the test binaries (examples
/// get no `CARGO_BIN_EXE_*`, so it is found from this binary's own path).
fn token_example() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<this binary>");
    let example = profile_dir
        .join("examples")
        .join(format!("token{}", std::env::consts::EXE_SUFFIX));
    assert!(
        example.exists(),
        "{} is missing: `cargo test` builds the examples; run it from the workspace root",
        example.display()
    );
    example
}

/// A directory of the test's own, `0700`, removed when dropped (also on failure).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("bodhi-auth-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `n` runs of the example at once; their outputs.
async fn runs(n: usize, token_url: &str, store: &str, password: &str) -> Vec<Output> {
    let example = token_example();
    let children: Vec<_> = (0..n)
        .map(|_| {
            Command::new(&example)
                .env_clear()
                .env("BODHI_USERNAME", "user")
                .env("BODHI_PASSWORD", password)
                .env("BODHI_TOKEN_URL", token_url)
                .env("BODHI_STORE", store)
                .kill_on_drop(true)
                .output()
        })
        .collect();
    let mut outputs = Vec::new();
    for child in children {
        outputs.push(child.await.expect("the example starts"));
    }
    outputs
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[tokio::test]
async fn ten_processes_at_once_make_one_login_and_ten_more_make_none() {
    let idm = FakeIdm::new();
    let server = idm.serve().await.unwrap();
    let dir = TempDir::new("processes");
    let store = format!("file:{}", dir.0.join("session.json").display());

    let first = runs(10, &server.token_url(), &store, "secret").await;
    for output in &first {
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_eq!(idm.token_requests(), 1, "one login for ten processes");
    let token = stdout(&first[0]);
    assert!(
        first.iter().all(|o| stdout(o) == token),
        "all print one token"
    );

    let second = runs(10, &server.token_url(), &store, "secret").await;
    assert!(
        second
            .iter()
            .all(|o| o.status.success() && stdout(o) == token)
    );
    assert_eq!(
        idm.token_requests(),
        1,
        "the next ten adopt the stored session"
    );

    // The file holds the session, never the password.
    let stored = std::fs::read(dir.0.join("session.json")).unwrap();
    let stored = String::from_utf8_lossy(&stored);
    assert!(stored.contains(&token));
    assert!(!stored.contains("secret\""), "no password in the file");
}

#[tokio::test]
async fn without_a_store_each_process_logs_in() {
    let idm = FakeIdm::new();
    let server = idm.serve().await.unwrap();
    let outputs = runs(3, &server.token_url(), "none", "secret").await;
    assert!(outputs.iter().all(|o| o.status.success()));
    assert_eq!(idm.token_requests(), 3);
}

#[tokio::test]
async fn an_insecure_store_file_is_refused_by_every_run_with_a_clear_error() {
    let idm = FakeIdm::new();
    let server = idm.serve().await.unwrap();
    let dir = TempDir::new("insecure");
    let path = dir.0.join("session.json");
    std::fs::write(&path, b"{}").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let outputs = runs(
        2,
        &server.token_url(),
        &format!("file:{}", path.display()),
        "secret",
    )
    .await;
    for output in &outputs {
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("session.json"), "names the file: {stderr}");
    }
    assert_eq!(
        idm.token_requests(),
        0,
        "nothing is sent with a store that is not safe"
    );
}
