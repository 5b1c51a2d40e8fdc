//! Runs the real `bodhi-proxy` binary on a free loopback port against the library's
//! fake IDM and fake API, and waits on what it prints, never on time.

#![allow(dead_code)] // each test file uses its own part of this

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use bodhi_auth::testing::{FakeApi, FakeIdm, FakeServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long anything may take before a test calls it a hang. Generous: it only decides
/// "it did not hang", never a count.
pub const HANG: Duration = Duration::from_secs(60);

/// A fake IDM and API on loopback, recording.
pub struct Fakes {
    pub idm: FakeIdm,
    pub api: FakeApi,
    pub idm_server: FakeServer,
    pub api_server: FakeServer,
}

impl Fakes {
    pub async fn start() -> Fakes {
        let idm = FakeIdm::new();
        let api = FakeApi::new(&idm);
        api.set_recording(true);
        let idm_server = idm.serve().await.expect("fake IDM");
        let api_server = api.serve().await.expect("fake API");
        Fakes {
            idm,
            api,
            idm_server,
            api_server,
        }
    }

    /// The proxy's usual environment for these fakes.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("BODHI_API_URL".into(), self.api_server.url("")),
            ("BODHI_TOKEN_URL".into(), self.idm_server.token_url()),
        ]
    }
}

/// A port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A running `bodhi-proxy`; killed when dropped.
pub struct Proxy {
    pub child: Child,
    pub addr: SocketAddr,
    lines: mpsc::Receiver<String>,
}

impl Proxy {
    /// Starts the binary with `BODHI_USERNAME=user`, `BODHI_PASSWORD=secret`, a free
    /// port, `env` and `args`, and waits for its `listening on ADDR` line.
    pub fn start(env: &[(String, String)], args: &[&str]) -> Proxy {
        let mut child = Proxy::command(env, args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("run bodhi-proxy");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut proxy = Proxy {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            lines,
        };
        let line = proxy.wait_line("listening on ");
        let addr = line.trim_start_matches("listening on ");
        if let Ok(addr) = addr.parse() {
            proxy.addr = addr;
        }
        proxy
    }

    /// The command, for tests that run it themselves (configuration errors).
    pub fn command(env: &[(String, String)], args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_bodhi-proxy"));
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", std::env::var_os("HOME").unwrap_or_default())
            .env("BODHI_USERNAME", "user")
            .env("BODHI_PASSWORD", "secret")
            .env("BODHI_PROXY_LISTEN", "127.0.0.1:0")
            .env("BODHI_PROXY_LOG", "error")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .args(args)
            .stdin(Stdio::null());
        command
    }

    /// Waits for a line of stdout that starts with `prefix`.
    pub fn wait_line(&mut self, prefix: &str) -> String {
        loop {
            match self.lines.recv_timeout(HANG) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => continue,
                Err(_) => {
                    let status = self.child.try_wait();
                    panic!("bodhi-proxy never printed {prefix:?} (exit: {status:?})");
                }
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit (bounded by [`HANG`]).
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + HANG;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "bodhi-proxy did not exit"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The text of `/-/metrics`.
    pub async fn metrics(&self) -> String {
        let request = format!(
            "GET /-/metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        raw(self.addr, request.as_bytes()).await
    }

    /// The value of a metric line `name` (with its labels) from `/-/metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self.metrics().await;
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `request` as it is and reads until the proxy closes the connection.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let exchange = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .expect("connect to the proxy");
        stream.write_all(request).await.expect("send");
        let mut answer = Vec::new();
        // A reset after a refusal still leaves what was read.
        let _ = stream.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    };
    tokio::time::timeout(HANG, exchange)
        .await
        .expect("the proxy hung")
}

/// The status code of a raw HTTP/1.1 answer.
pub fn status_of(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"))
}

/// Runs a program to its end (bounded by [`HANG`]) and returns its stdout; panics with
/// its stderr if it failed.
pub async fn run(program: &str, args: &[&str]) -> String {
    let output = tokio::time::timeout(
        HANG,
        tokio::process::Command::new(program)
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{program} hung"))
    .unwrap_or_else(|e| panic!("{program}: {e} (is it installed? .ci/run installs it)"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}
