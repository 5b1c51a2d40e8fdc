//! `FileStore`: the rules every store keeps, the file's privacy (modes, owner, symbolic
//! links, no password), files that are not session records, and one session shared by
//! managers and by processes.
//!
//! The cross-process tests run this binary again as a child process
//! ([`child_process_role`]) and synchronise on what it prints, never on time.
#![cfg(unix)]

mod support;

use std::fs;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use bodhi_auth::store::{FileStore, Session, TokenStore};
use bodhi_auth::testing::{FakeIdm, store_conformance};
use bodhi_auth::{Credentials, ErrorKind, TokenManager};
use support::{CapturedLogs, TempDir};
use tokio::io::{AsyncBufReadExt, BufReader};

const TTL: Duration = Duration::from_secs(300);
/// A bound on a hang in the child-process tests, not a speed requirement.
const STUCK: Duration = Duration::from_secs(60);

/// Every event of this binary (installed by each test before anything logs).
fn logs() -> &'static CapturedLogs {
    static LOGS: OnceLock<CapturedLogs> = OnceLock::new();
    LOGS.get_or_init(CapturedLogs::install)
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Writes `bytes` at `path` as a `0600` file, as the user might by hand.
fn write_private(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    file.write_all(bytes).unwrap();
}

fn manager_for(idm: &FakeIdm, user: &str, password: &str, path: &Path) -> TokenManager {
    TokenManager::builder(Credentials::new(user, password))
        .fake_idm(idm)
        .store(FileStore::new(path))
        .build()
        .unwrap()
}

fn manager(idm: &FakeIdm, path: &Path) -> TokenManager {
    manager_for(idm, "user", "secret", path)
}

/// A valid session record, as a manager of `user` stores it.
async fn a_record() -> Session {
    let dir = TempDir::new("record");
    let path = dir.join("session.json");
    manager(&FakeIdm::new(), &path)
        .access_token()
        .await
        .unwrap();
    FileStore::new(&path).load().await.unwrap().unwrap()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[tokio::test]
async fn file_store_keeps_the_store_rules() {
    logs();
    let dir = TempDir::new("conformance");
    // Directories that do not exist yet: the store creates them.
    let path = dir.join("a/b/session.json");
    store_conformance(|| FileStore::new(&path)).await;

    assert_eq!(mode(&dir.join("a")), 0o700);
    assert_eq!(mode(&dir.join("a/b")), 0o700);
    assert_eq!(mode(&dir.join("a/b/session.json.lock")), 0o600);
    assert_eq!(mode(&dir.join("a/b/session.json.lease")), 0o600);
    assert!(!path.exists(), "the suite leaves the store empty");
}

#[tokio::test]
async fn the_session_file_and_its_directory_are_private_to_the_user() {
    logs();
    let dir = TempDir::new("private");
    let store_dir = dir.join("cache/bodhi-auth");
    let path = store_dir.join("session.json");
    manager(&FakeIdm::new(), &path)
        .access_token()
        .await
        .unwrap();

    assert_eq!(mode(&dir.join("cache")), 0o700);
    assert_eq!(mode(&store_dir), 0o700);
    assert_eq!(mode(&path), 0o600);
    let mut names: Vec<_> = fs::read_dir(&store_dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["session.json", "session.json.lease", "session.json.lock"],
        "no temporary file is left behind"
    );
    for name in &names {
        assert_eq!(mode(&store_dir.join(name)), 0o600, "{name}");
    }
}

#[tokio::test]
async fn the_file_holds_the_access_token_but_never_the_password() {
    logs();
    let dir = TempDir::new("password");
    let path = dir.join("session.json");
    let idm = FakeIdm::new();
    let password = "Recognisable-Pa55word-7c1e";
    idm.add_user("pat", password, Some("pat-ns"));

    let token = manager_for(&idm, "pat", password, &path)
        .access_token()
        .await
        .unwrap();

    let bytes = fs::read(&path).unwrap();
    assert!(!contains(&bytes, password), "the password is in the file");
    assert!(
        contains(&bytes, token.secret()),
        "the access token is what the file is for"
    );
}

#[tokio::test]
async fn a_second_manager_adopts_the_stored_session_without_the_idm() {
    logs();
    let dir = TempDir::new("adopt");
    let path = dir.join("session.json");
    let idm = FakeIdm::new();

    let first = manager(&idm, &path).access_token().await.unwrap();
    let second = manager(&idm, &path).access_token().await.unwrap();

    assert!(second.same_token(&first));
    assert_eq!(idm.token_requests(), 1);
}

#[tokio::test]
async fn another_users_session_is_not_adopted_they_take_turns() {
    logs();
    let dir = TempDir::new("other-user");
    let path = dir.join("session.json");
    let idm = FakeIdm::new();
    idm.add_user("other", "other-password", None);
    let store = FileStore::new(&path);

    let user = manager(&idm, &path);
    let users_token = user.access_token().await.unwrap();
    assert_eq!(idm.token_requests(), 1);

    // Same file, another user: logs in itself and stores its own session over it.
    let others_token = manager_for(&idm, "other", "other-password", &path)
        .access_token()
        .await
        .unwrap();
    assert!(!others_token.same_token(&users_token));
    assert_eq!(idm.token_requests(), 2);
    let stored = store.load().await.unwrap().unwrap();
    assert_eq!(
        stored.version(),
        2,
        "saved over the other record, by version"
    );
    assert!(
        format!("{stored:?}").contains("username: \"other\""),
        "{stored:?}"
    );

    // A manager with the token in memory does not look at the store...
    assert!(user.access_token().await.unwrap().same_token(&users_token));
    assert_eq!(idm.token_requests(), 2);
    // ...and a new one for `user` logs in again: sharing one file, they take turns.
    let again = manager(&idm, &path).access_token().await.unwrap();
    assert!(!again.same_token(&users_token));
    assert_eq!(idm.token_requests(), 3);
}

#[tokio::test]
async fn a_file_that_is_not_a_session_record_is_a_miss_and_is_replaced_by_a_login() {
    let logs = logs();
    let record = a_record().await;
    let json = record.to_json();
    let marker = "NOT-A-RECORD-CONTENT-4b1d";
    let mut oversized = json.to_vec();
    oversized.resize(json.len() + 1024 * 1024, b' ');
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", format!("{{{marker}").into_bytes()),
        ("empty", Vec::new()),
        ("truncated", json[..json.len() / 2].to_vec()),
        (
            "another format",
            String::from_utf8(json.to_vec())
                .unwrap()
                .replace("\"format\":1", "\"format\":9")
                .into_bytes(),
        ),
        (
            "another program's JSON",
            format!("{{\"kind\":\"{marker}\"}}").into_bytes(),
        ),
        ("larger than 1 MiB", oversized),
    ];
    for (case, bytes) in cases {
        let dir = TempDir::new("not-a-record");
        let path = dir.join("session.json");
        write_private(&path, &bytes);
        let store = FileStore::new(&path);

        assert!(store.load().await.unwrap().is_none(), "{case}: a miss");

        let idm = FakeIdm::new();
        let token = manager(&idm, &path).access_token().await.unwrap();
        assert_eq!(idm.token_requests(), 1, "{case}: one login");
        let stored = store.load().await.unwrap().expect("a record now");
        assert_eq!(
            stored.version(),
            1,
            "{case}: replaced as if nothing was stored"
        );
        assert!(
            contains(&fs::read(&path).unwrap(), token.secret()),
            "{case}"
        );
    }
    let text = logs.text();
    assert!(text.contains("not a session record"), "{text}");
    assert!(
        !text.contains(marker),
        "a warning never shows the file's content"
    );
}

#[tokio::test]
async fn a_session_file_others_can_read_or_write_is_refused() {
    logs();
    let dir = TempDir::new("file-mode");
    let path = dir.join("session.json");
    let idm = FakeIdm::new();
    manager(&idm, &path).access_token().await.unwrap();

    for (file_mode, access) in [
        (0o644, "is readable by group or others (mode 0644)"),
        (0o640, "is readable by group or others (mode 0640)"),
        (0o620, "is writable by group or others (mode 0620)"),
        (
            0o666,
            "is readable and writable by group or others (mode 0666)",
        ),
    ] {
        chmod(&path, file_mode);
        let error = FileStore::new(&path).load().await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config);
        let message = error.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains(access), "{message}");
        assert!(
            message.contains(&format!("chmod 600 {}", path.display())),
            "{message}"
        );

        // A manager fails its token request on it, without going to the IDM.
        let error = manager(&idm, &path).access_token().await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config, "{error}");
        assert_eq!(idm.token_requests(), 1);
    }
}

#[tokio::test]
async fn a_directory_others_can_write_is_refused_one_they_can_enter_is_not() {
    logs();
    let dir = TempDir::new("dir-mode");
    let store_dir = dir.join("bodhi-auth");
    let path = store_dir.join("session.json");
    manager(&FakeIdm::new(), &path)
        .access_token()
        .await
        .unwrap();

    for dir_mode in [0o777, 0o770, 0o703] {
        chmod(&store_dir, dir_mode);
        let error = FileStore::new(&path).load().await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config);
        let message = error.to_string();
        assert!(
            message.contains(&format!(
                "{} is writable by group or others (mode {dir_mode:04o})",
                store_dir.display()
            )),
            "{message}"
        );
        assert!(
            message.contains(&format!("chmod 700 {}", store_dir.display())),
            "{message}"
        );
    }

    // As ssh has it: others may enter and list the directory, the files stay private.
    chmod(&store_dir, 0o755);
    assert!(FileStore::new(&path).load().await.unwrap().is_some());
}

#[tokio::test]
async fn a_file_or_directory_another_user_owns_is_refused() {
    logs();
    let dir = TempDir::new("owner");
    let store_dir = dir.join("bodhi-auth");
    let path = store_dir.join("session.json");
    manager(&FakeIdm::new(), &path)
        .access_token()
        .await
        .unwrap();

    // Only root can give a file away.
    if std::os::unix::fs::chown(&path, Some(65534), None).is_err() {
        eprintln!("skipped: giving a file to another user needs root");
        return;
    }
    let error = FileStore::new(&path).load().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config);
    assert!(
        error
            .to_string()
            .contains(&format!("{} is owned by user id 65534", path.display())),
        "{error}"
    );

    fs::remove_file(&path).unwrap();
    std::os::unix::fs::chown(&store_dir, Some(65534), None).unwrap();
    let error = FileStore::new(&path).load().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config);
    assert!(
        error.to_string().contains(&format!(
            "{} is owned by user id 65534",
            store_dir.display()
        )),
        "{error}"
    );
}

#[tokio::test]
async fn a_symbolic_link_is_refused_and_what_it_points_to_is_untouched() {
    logs();
    let record = a_record().await;
    let dir = TempDir::new("symlink");
    let target = dir.join("precious.txt");
    write_private(&target, b"precious");
    let path = dir.join("session.json");
    symlink(&target, &path).unwrap();
    let store = FileStore::new(&path);

    let refused = |error: bodhi_auth::Error| {
        assert_eq!(error.kind(), ErrorKind::Config);
        assert!(
            error.to_string().contains(&format!(
                "{} is a symbolic link; refusing to follow it",
                path.display()
            )),
            "{error}"
        );
    };
    refused(store.load().await.unwrap_err());
    refused(store.save(&record).await.unwrap_err());
    refused(store.delete().await.unwrap_err());
    let idm = FakeIdm::new();
    refused(manager(&idm, &path).access_token().await.unwrap_err());
    assert_eq!(idm.token_requests(), 0);

    assert_eq!(fs::read(&target).unwrap(), b"precious");
    assert!(
        fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink()
    );

    // The lease's file too.
    let other = dir.join("other.json");
    let lease = dir.join("other.json.lease");
    symlink(&target, &lease).unwrap();
    let error = FileStore::new(&other).try_lease(TTL).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config);
    assert!(error.to_string().contains("symbolic link"), "{error}");
    assert_eq!(fs::read(&target).unwrap(), b"precious");
}

#[tokio::test]
async fn a_killed_lease_holder_releases_the_lease() {
    logs();
    let dir = TempDir::new("killed-holder");
    let path = dir.join("session.json");
    let store = FileStore::new(&path);

    let mut holder = child("hold-lease", &path, None)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
    loop {
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("the child holds the lease");
        if line.contains(HELD) {
            break;
        }
    }
    assert!(
        store.try_lease(TTL).await.unwrap().is_none(),
        "held by the child"
    );

    // A waiter started before the holder dies returns once it is dead.
    let mut waiter = std::pin::pin!(store.wait_for_release(Duration::from_secs(3600)));
    let early = std::future::poll_fn(|cx| {
        std::task::Poll::Ready(std::future::Future::poll(waiter.as_mut(), cx))
    })
    .await;
    assert!(early.is_pending(), "the lease is still held");
    holder.kill().await.unwrap();
    tokio::time::timeout(STUCK, waiter)
        .await
        .expect("the waiter returns once the holder is dead")
        .unwrap();

    assert!(store.try_lease(TTL).await.unwrap().is_some());
}

#[tokio::test]
async fn processes_started_together_make_one_login() {
    logs();
    let dir = TempDir::new("processes");
    let path = dir.join("session.json");
    let idm = FakeIdm::new();
    let server = idm.serve().await.unwrap();
    let url = server.token_url();

    let children: Vec<_> = (0..10)
        .map(|_| child("login", &path, Some(&url)).spawn().unwrap())
        .collect();
    let outputs = futures_util::future::join_all(
        children
            .into_iter()
            .map(|child| tokio::time::timeout(STUCK, child.wait_with_output())),
    )
    .await;
    let mut tokens = Vec::new();
    for output in outputs {
        let output = output.expect("a child finishes").unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert!(output.status.success(), "{stdout}");
        let token = stdout
            .split(TOKEN)
            .nth(1)
            .and_then(|rest| rest.split(END).next())
            .unwrap_or_else(|| panic!("no token in {stdout:?}"))
            .to_owned();
        tokens.push(token);
    }
    assert_eq!(idm.token_requests(), 1, "one login for ten processes");
    assert!(tokens.iter().all(|t| *t == tokens[0]));
}

const CHILD_ENV: &str = "BODHI_AUTH_FILE_STORE_CHILD";
const PATH_ENV: &str = "BODHI_AUTH_FILE_STORE_CHILD_PATH";
const URL_ENV: &str = "BODHI_AUTH_FILE_STORE_CHILD_URL";
const HELD: &str = "<<lease held>>";
const TOKEN: &str = "<<token:";
const END: &str = ">>";

/// This test binary again, running only [`child_process_role`] as `role`.
fn child(role: &str, path: &Path, url: Option<&str>) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(std::env::current_exe().unwrap());
    command
        .args(["child_process_role", "--exact", "--nocapture", "-q"])
        .env(CHILD_ENV, role)
        .env(PATH_ENV, path)
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    if let Some(url) = url {
        command.env(URL_ENV, url);
    }
    command
}

/// Nothing in a normal run. In a child process started by [`child`]:
/// `hold-lease` takes the lease, says so, and keeps it until its standard input
/// closes (or it is killed); `login` gets a token with a manager on the loopback IDM
/// and prints it.
#[test]
fn child_process_role() {
    let Ok(role) = std::env::var(CHILD_ENV) else {
        return;
    };
    let path = PathBuf::from(std::env::var_os(PATH_ENV).unwrap());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        match role.as_str() {
            "hold-lease" => {
                let lease = FileStore::new(&path).try_lease(TTL).await.unwrap();
                let lease = lease.expect("nobody else holds the lease");
                println!("{HELD}");
                let mut line = String::new();
                let _ = std::io::stdin().read_line(&mut line);
                drop(lease);
            }
            "login" => {
                let url = std::env::var(URL_ENV).unwrap();
                let token = TokenManager::builder(Credentials::new("user", "secret"))
                    .token_url(url)
                    .store(FileStore::new(&path))
                    .build()
                    .unwrap()
                    .access_token()
                    .await
                    .unwrap();
                println!("{TOKEN}{}{END}", token.secret());
            }
            other => panic!("unknown child role {other}"),
        }
    });
}
