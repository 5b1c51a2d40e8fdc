//! The file store across real OS processes: the `token` example, started many times at
//! once against the fake IDM on loopback, shares one session through one file. Counts
//! only: every token lives 30 hours, so no run can outlast one, however slow. `cargo test`
//! builds the examples first; to run this file alone, `cargo build --examples` before.

#[path = "support/processes.rs"]
mod processes;

use bodhi_auth::testing::FakeIdm;
use processes::{TempDir, stdout};

async fn runs(n: usize, token_url: &str, store: &str, password: &str) -> Vec<std::process::Output> {
    processes::token_runs(
        n,
        &[
            ("BODHI_PASSWORD", password),
            ("BODHI_TOKEN_URL", token_url),
            ("BODHI_STORE", store),
        ],
    )
    .await
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
