//! A real `redis-server` for the Redis store's tests: started on a free loopback port
#![allow(dead_code)]
//! with nothing persisted, stopped (killed and waited for) whenever its guard is
//! dropped, a panicking test included. Raw commands go through `redis-cli`.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bodhi_auth::store::{RedisStore, RedisStoreBuilder};
use bodhi_auth::testing::FakeIdm;

/// A test key (base64 of 32 bytes); `KEY_B` is another.
pub const KEY: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";
pub const KEY_B: &str = "ERERERERERERERERERERERERERERERERERERERERERE=";

/// A `redis-server` child process of this test.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts a server on a free loopback port. Fails the test, never skips it, when
    /// `redis-server` is not installed.
    pub fn start() -> RedisServer {
        assert!(
            Command::new("redis-server")
                .arg("--version")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success()),
            "redis-server is not installed, and the Redis store tests need a real one: \
             `apt-get install -y redis-server` (Debian's Redis 7; .ci/run installs it)"
        );
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let dir = std::env::temp_dir()
                .join(format!("bodhi-auth-redis-{}-{port}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let mut server = RedisServer {
                child: None,
                port,
                dir,
            };
            if server.spawn() {
                return server;
            }
        }
        panic!("redis-server did not start on a free port in 5 tries");
    }

    /// Starts the process on this server's port; whether it answers `PING`.
    fn spawn(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--logfile", "redis.log"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                // Exited: most likely the port was taken meanwhile.
                eprintln!("redis-server exited at start ({status})");
                self.child = None;
                return false;
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && self.try_cli(&["PING"]).as_deref() == Some("PONG")
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop();
        false
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server and waits for it (its data is gone: nothing is persisted).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.stop();
        assert!(self.spawn(), "redis-server restarts on port {}", self.port);
    }

    /// Freezes (`SIGSTOP`) or thaws (`SIGCONT`) the server: a Redis that does not answer.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// A raw command through `redis-cli --raw`; its output, trimmed.
    pub fn cli(&self, args: &[&str]) -> String {
        self.try_cli(args)
            .unwrap_or_else(|| panic!("redis-cli {args:?} failed"))
    }

    /// A raw command's output as bytes (a sealed value is not text).
    pub fn cli_bytes(&self, args: &[&str]) -> Vec<u8> {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "--raw"])
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "redis-cli {args:?}");
        output.stdout
    }

    fn try_cli(&self, args: &[&str]) -> Option<String> {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "--raw"])
            .args(args)
            .stderr(Stdio::null())
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// The names of the keys under `pattern`, sorted.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .cli(&["KEYS", pattern])
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        keys.sort();
        keys
    }

    /// `cmdstat_<name>` → calls, from `INFO commandstats`.
    pub fn command_calls(&self) -> Vec<(String, u64)> {
        self.cli(&["INFO", "commandstats"])
            .lines()
            .filter_map(|line| {
                let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
                let calls = stats
                    .strip_prefix("calls=")?
                    .split(',')
                    .next()?
                    .parse()
                    .ok()?;
                Some((name.to_owned(), calls))
            })
            .collect()
    }

    /// A store builder for this server, with [`KEY`], for the fake IDM's `user`.
    pub fn store_builder(&self) -> RedisStoreBuilder {
        self.store_builder_for("user")
    }

    /// The same for another user of the fake IDM.
    pub fn store_builder_for(&self, username: &str) -> RedisStoreBuilder {
        RedisStore::builder(&self.url()).keys(KEY).session_for(
            FakeIdm::IN_MEMORY_TOKEN_URL,
            bodhi_auth::DEFAULT_CLIENT_ID,
            username,
        )
    }

    /// A store of its own (its own connection) for the fake IDM's `user`.
    pub fn store(&self) -> RedisStore {
        self.store_builder().build().unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The key ids a store's `Debug` shows.
pub fn key_ids(store: &RedisStore) -> Vec<String> {
    let shown = format!("{store:?}");
    let start = shown.find("key_ids: [").expect("Debug shows key_ids") + "key_ids: [".len();
    let end = start + shown[start..].find(']').unwrap();
    shown[start..end].split(", ").map(str::to_owned).collect()
}
