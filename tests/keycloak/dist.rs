//! The Keycloak distribution: fetched once with Maven (cached in the local repository),
//! unpacked once under `target/keycloak/`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::tools;

/// The Keycloak release the suite runs.
pub const VERSION: &str = "26.5.6";

/// `target/keycloak/`: the unpacked server and one work folder per run.
pub fn work_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `<target>/tmp`; its parent is the target folder in use.
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("keycloak")
}

/// Removes the `run-<pid>` folders (logs, certificates) of runs that ended: a failed
/// run's log is kept until the next run.
pub fn remove_stale_run_dirs() {
    let Ok(entries) = fs::read_dir(work_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name.to_str().and_then(|n| n.strip_prefix("run-"));
        if pid.is_some_and(|pid| !Path::new("/proc").join(pid).exists()) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// The unpacked server's home (`bin/kc.sh` inside), fetched and unpacked if needed.
pub fn ensure_unpacked() -> Result<PathBuf, String> {
    let home = work_dir().join(format!("keycloak-{VERSION}"));
    if home.join("bin/kc.sh").is_file() {
        return Ok(home);
    }
    // Unpacked in a private folder and renamed into place, so a concurrent run never
    // sees half a server.
    let scratch = work_dir().join(format!(".fetch-{}", std::process::id()));
    let result = fetch_and_unpack(&scratch, &home);
    let _ = fs::remove_dir_all(&scratch);
    result.map(|()| home)
}

fn fetch_and_unpack(scratch: &Path, home: &Path) -> Result<(), String> {
    tools::require(
        "mvn",
        &["-v"],
        "Maven is needed once to download Keycloak (org.keycloak:keycloak-quarkus-dist) \
         for the `keycloak` test suite: install it (Debian/Ubuntu: `apt-get install maven`)",
    )?;
    let _ = fs::remove_dir_all(scratch);
    fs::create_dir_all(scratch).map_err(|e| format!("cannot create {}: {e}", scratch.display()))?;
    eprintln!("keycloak: fetching Keycloak {VERSION} with Maven (once; ~165 MB)");
    tools::run(
        Command::new("mvn").args([
            "-B",
            "-q",
            "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy",
            &format!("-Dartifact=org.keycloak:keycloak-quarkus-dist:{VERSION}:zip"),
            &format!("-DoutputDirectory={}", scratch.display()),
        ]),
        "download Keycloak with Maven",
    )?;
    let zip = scratch.join(format!("keycloak-quarkus-dist-{VERSION}.zip"));
    let unpacked = scratch.join("unpacked");
    fs::create_dir_all(&unpacked)
        .map_err(|e| format!("cannot create {}: {e}", unpacked.display()))?;
    unzip(&zip, &unpacked)?;
    let unpacked_home = unpacked.join(format!("keycloak-{VERSION}"));
    make_scripts_executable(&unpacked_home.join("bin"))?;
    if let Err(e) = fs::rename(&unpacked_home, home) {
        // Another run may have won the race; its copy is as good as ours.
        if !home.join("bin/kc.sh").is_file() {
            return Err(format!("cannot move Keycloak to {}: {e}", home.display()));
        }
    }
    Ok(())
}

/// `unzip` when present, else the JDK's `jar`, else Python's `zipfile`.
fn unzip(zip: &Path, into: &Path) -> Result<(), String> {
    let zip_arg = zip.display().to_string();
    let attempts: [(&str, Vec<&str>); 3] = [
        ("unzip", vec!["-q", &zip_arg]),
        ("jar", vec!["xf", &zip_arg]),
        ("python3", vec!["-m", "zipfile", "-e", &zip_arg, "."]),
    ];
    let mut tried = Vec::new();
    for (program, args) in attempts {
        match Command::new(program).args(&args).current_dir(into).output() {
            Ok(out) if out.status.success() => return Ok(()),
            Ok(out) => tried.push(format!(
                "{program}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => tried.push(format!("{program}: {e}")),
        }
    }
    Err(format!(
        "cannot unpack {} (install `unzip`): {}",
        zip.display(),
        tried.join("; ")
    ))
}

/// `jar` and `zipfile` drop the executable bits that `kc.sh` needs.
fn make_scripts_executable(bin: &Path) -> Result<(), String> {
    let entries = fs::read_dir(bin).map_err(|e| format!("cannot list {}: {e}", bin.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|ext| ext == "sh") {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
                .map_err(|e| format!("cannot chmod {}: {e}", path.display()))?;
        }
    }
    Ok(())
}
