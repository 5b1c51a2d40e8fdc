//! One Keycloak for the whole suite, on free loopback ports, serving HTTP and HTTPS.
//!
//! It runs in its own process group. Dropping [`KeycloakServer`] stops that whole group
//! (a panic in `main` unwinds through the drop too); and a watchdog shell in the group
//! stops it if this test process dies without dropping it (a signal, `kill -9`). Runs
//! from the same checkout take turns through a lock file, because they share the
//! unpacked server (its build step writes into it).

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::dist;
use crate::realm::{self, Endpoints};
use crate::tls::TestCa;
use crate::tools;

/// The master realm's administrator, created at start-up.
pub const ADMIN_USERNAME: &str = "bodhi-test-admin";
pub const ADMIN_PASSWORD: &str = "bodhi-test-admin-password";

/// start-dev runs a build step first: tens of seconds on 2 cores, more when busy.
const READY_TIMEOUT: Duration = Duration::from_secs(240);
/// How long to wait for another run of this suite to release the server.
const LOCK_TIMEOUT: Duration = Duration::from_secs(600);
/// Keycloak shuts down in a few seconds on SIGTERM; after this it gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Takes the lock, starts `kc.sh start-dev "$@"` in the background and watches the test
/// process: if that goes away, Keycloak is stopped (SIGTERM, then SIGKILL to the group).
/// The lock's descriptor is inherited by Java, so it is held while Keycloak lives.
const LAUNCHER: &str = r#"
set -u
exec 9>>"$KC_LOCK_FILE"
if ! flock -n 9; then
  echo "keycloak launcher: another test run holds $KC_LOCK_FILE; waiting"
  flock 9
fi
: > "$KC_RUN_DIR/locked"
"$KC_HOME/bin/kc.sh" start-dev "$@" &
kc=$!
trap 'kill -TERM "$kc" 2>/dev/null' TERM INT HUP
while kill -0 "$kc" 2>/dev/null; do
  if ! kill -0 "$KC_OWNER_PID" 2>/dev/null; then
    echo "keycloak launcher: test process $KC_OWNER_PID is gone; stopping Keycloak"
    kill -TERM "$kc" 2>/dev/null
    for _ in $(seq 1 30); do kill -0 "$kc" 2>/dev/null || break; sleep 1; done
    kill -KILL -- -$$ 2>/dev/null
  fi
  sleep 1
done
wait "$kc"
"#;

/// A running Keycloak, stopped on drop.
pub struct KeycloakServer {
    child: Child,
    run_dir: PathBuf,
    log_file: PathBuf,
    endpoints: Arc<Endpoints>,
    keep_run_dir: bool,
}

impl KeycloakServer {
    /// Fetches (once), configures and starts Keycloak, and waits until it is ready.
    pub fn start() -> Result<KeycloakServer, String> {
        tools::require_java()?;
        let home = dist::ensure_unpacked()?;
        dist::remove_stale_run_dirs();
        let run_dir = dist::work_dir().join(format!("run-{}", std::process::id()));
        let _ = fs::remove_dir_all(&run_dir);
        fs::create_dir_all(&run_dir)
            .map_err(|e| format!("cannot create {}: {e}", run_dir.display()))?;
        let tls = TestCa::generate(&run_dir)?;
        install_realm(&home)?;
        let [http_port, https_port, management_port] = free_ports()?;
        let log_file = run_dir.join("keycloak.log");
        let log = File::create(&log_file)
            .map_err(|e| format!("cannot create {}: {e}", log_file.display()))?;
        let log_err = log
            .try_clone()
            .map_err(|e| format!("cannot share {}: {e}", log_file.display()))?;
        eprintln!(
            "keycloak: starting Keycloak {} on 127.0.0.1 (http {http_port}, https {https_port}, \
             management {management_port}); log: {}",
            dist::VERSION,
            log_file.display()
        );
        let child = Command::new("bash")
            .arg("-c")
            .arg(LAUNCHER)
            .arg("keycloak-launcher")
            .args(server_args(http_port, https_port, management_port, &tls))
            .env("KC_HOME", &home)
            .env("KC_RUN_DIR", &run_dir)
            .env("KC_LOCK_FILE", dist::work_dir().join("server.lock"))
            .env("KC_OWNER_PID", std::process::id().to_string())
            .env("KC_BOOTSTRAP_ADMIN_USERNAME", ADMIN_USERNAME)
            .env("KC_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD)
            // kc.sh's own heap knob; JAVA_OPTS would replace every default.
            .env("JAVA_OPTS_KC_HEAP", "-Xms64m -Xmx512m")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot run bash to start Keycloak: {e}"))?;
        // From here on, dropping `server` (an error below included) stops the group.
        let mut server = KeycloakServer {
            child,
            run_dir,
            log_file,
            endpoints: Arc::new(Endpoints {
                base_url: format!("http://127.0.0.1:{http_port}/auth"),
                https_base_url: format!("https://127.0.0.1:{https_port}/auth"),
                ca_pem: tls.ca_pem,
            }),
            keep_run_dir: false,
        };
        let started = Instant::now();
        let locked = |s: &Self| s.run_dir.join("locked").exists();
        if !server.poll(Duration::from_secs(2), locked)? {
            eprintln!(
                "keycloak: another run of this suite is using the server; waiting for it to \
                 stop (lock: {})",
                dist::work_dir().join("server.lock").display()
            );
            server.wait_for(LOCK_TIMEOUT, "the other run to stop its Keycloak", locked)?;
        }
        server.wait_for(READY_TIMEOUT, "Keycloak to be ready", |_| {
            health_is_up(management_port)
        })?;
        eprintln!(
            "keycloak: ready after {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok(server)
    }

    /// What the scenarios talk to.
    pub fn endpoints(&self) -> Arc<Endpoints> {
        self.endpoints.clone()
    }

    /// Keeps the log and certificates after the run (for a failed suite).
    pub fn keep_run_dir(&mut self) -> &Path {
        self.keep_run_dir = true;
        &self.log_file
    }

    /// [`poll`](Self::poll), with a timeout as an error that shows the log.
    fn wait_for(
        &mut self,
        timeout: Duration,
        what: &str,
        ready: impl Fn(&Self) -> bool,
    ) -> Result<(), String> {
        if self.poll(timeout, ready)? {
            return Ok(());
        }
        self.keep_run_dir = true;
        Err(format!(
            "timed out after {timeout:?} waiting for {what}; log {}:\n{}",
            self.log_file.display(),
            log_tail(&self.log_file)
        ))
    }

    /// Polls `ready` every 250 ms until `timeout` (false); an error if Keycloak exited.
    fn poll(&mut self, timeout: Duration, ready: impl Fn(&Self) -> bool) -> Result<bool, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if ready(self) {
                return Ok(true);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.keep_run_dir = true;
                return Err(format!(
                    "Keycloak exited ({status}) before it was ready; log {}:\n{}",
                    self.log_file.display(),
                    log_tail(&self.log_file)
                ));
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            sleep(Duration::from_millis(250));
        }
    }

    /// SIGTERM to the group, SIGKILL if it is still there after [`STOP_TIMEOUT`].
    fn stop(&mut self) {
        let group = self.child.id();
        if !self.group_gone_within(Duration::ZERO) {
            signal_group(group, "TERM");
            if !self.group_gone_within(STOP_TIMEOUT) {
                eprintln!("keycloak: still running after {STOP_TIMEOUT:?}; killing it");
                signal_group(group, "KILL");
                self.group_gone_within(Duration::from_secs(10));
            }
        }
        let _ = self.child.wait();
    }

    /// Reaps the launcher as it exits.
    fn group_gone_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let _ = self.child.try_wait();
            if !group_alive(self.child.id()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for KeycloakServer {
    fn drop(&mut self) {
        self.stop();
        eprintln!("keycloak: stopped");
        if !self.keep_run_dir {
            let _ = fs::remove_dir_all(&self.run_dir);
        }
    }
}

fn server_args(http: u16, https: u16, management: u16, tls: &TestCa) -> Vec<String> {
    vec![
        "--http-host=127.0.0.1".into(),
        "--http-enabled=true".into(),
        format!("--http-port={http}"),
        format!("--https-port={https}"),
        format!("--https-certificate-file={}", tls.cert_file.display()),
        format!("--https-certificate-key-file={}", tls.key_file.display()),
        "--http-relative-path=/auth".into(),
        "--health-enabled=true".into(),
        format!("--http-management-port={management}"),
        // Otherwise the management port inherits the HTTPS settings.
        "--http-management-scheme=http".into(),
        "--db=dev-mem".into(),
        "--import-realm".into(),
    ]
}

/// Copies the fixtures to `data/import/`, atomically (another run may be reading them).
fn install_realm(home: &Path) -> Result<(), String> {
    let import = home.join("data/import");
    fs::create_dir_all(&import).map_err(|e| format!("cannot create {}: {e}", import.display()))?;
    for fixture in [realm::fixture_path(), realm::rotating_fixture_path()] {
        let Some(name) = fixture.file_name() else {
            return Err(format!("{} has no file name", fixture.display()));
        };
        let staged = import.join(format!(
            ".{}.{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        fs::copy(&fixture, &staged)
            .and_then(|_| fs::rename(&staged, import.join(name)))
            .map_err(|e| {
                format!(
                    "cannot install the realm fixture {} in {}: {e}",
                    fixture.display(),
                    import.display()
                )
            })?;
    }
    Ok(())
}

/// Three distinct free ports (held together while chosen, so they differ).
fn free_ports() -> Result<[u16; 3], String> {
    let bind = || {
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| Ok((l.local_addr()?.port(), l)))
            .map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))
    };
    let (a, _a) = bind()?;
    let (b, _b) = bind()?;
    let (c, _c) = bind()?;
    Ok([a, b, c])
}

/// `GET /auth/health/ready` on the management port answers 200 with status UP.
fn health_is_up(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!(
        "GET /auth/health/ready HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.1 200") && response.contains("\"UP\"")
}

fn signal_group(group: u32, signal: &str) {
    let _ = Command::new("kill")
        .args(["-s", signal, "--", &format!("-{group}")])
        .stderr(Stdio::null())
        .status();
}

/// Whether any live (not zombie) process is in the group, read from `/proc`: a zombie
/// waiting for a slow init to reap it is no Keycloak.
fn group_alive(group: u32) -> bool {
    let Ok(entries) = fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        // `/proc/<pid>/stat`: "pid (comm) state ppid pgrp ..."; comm may hold spaces.
        let stat = fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        matches!(fields.as_slice(), [state, _ppid, pgrp, ..]
            if *state != "Z" && *state != "X" && pgrp.parse() == Ok(group))
    })
}

fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
