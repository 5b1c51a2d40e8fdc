//! Runs of the `token` example as real OS processes, for the store tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use tokio::process::Command;

/// The `token` example, which `cargo test` builds beside the test binaries (examples
/// get no `CARGO_BIN_EXE_*`, so it is found from this binary's own path).
pub fn token_example() -> PathBuf {
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
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
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

/// `n` runs of the example at once, for user `user` with `env` on top; their outputs.
pub async fn token_runs(n: usize, env: &[(&str, &str)]) -> Vec<Output> {
    let example = token_example();
    let children: Vec<_> = (0..n)
        .map(|_| {
            Command::new(&example)
                .env_clear()
                .env("BODHI_USERNAME", "user")
                .envs(env.iter().copied())
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

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}
