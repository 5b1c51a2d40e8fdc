//! The programs the suite needs from the machine, checked up front so that a missing
//! one fails with what to install instead of a cryptic error later.

use std::path::PathBuf;
use std::process::Command;

/// Fails with `install` as the message unless `program args` runs and succeeds.
pub fn require(program: &str, args: &[&str], install: &str) -> Result<(), String> {
    match Command::new(program).args(args).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "{install}\n(`{program}` failed: {})",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("{install}\n(`{program}`: {e})")),
    }
}

/// Runs a command to completion; on failure the message names `what` and the output.
pub fn run(command: &mut Command, what: &str) -> Result<(), String> {
    let out = command
        .output()
        .map_err(|e| format!("cannot {what}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "cannot {what} ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// The `java` that `kc.sh` will use (`$JAVA_HOME/bin/java`, else `java` on the PATH),
/// checked to be Java 17 or newer.
pub fn require_java() -> Result<(), String> {
    const INSTALL: &str = "Java 17 or newer is needed to run Keycloak for the `keycloak` test \
                           suite: install it (Debian/Ubuntu: `apt-get install openjdk-17-jre-headless`) \
                           or set JAVA_HOME";
    let java = std::env::var_os("JAVA_HOME")
        .map(|home| PathBuf::from(home).join("bin/java"))
        .unwrap_or_else(|| PathBuf::from("java"));
    let out = Command::new(&java)
        .arg("-version")
        .output()
        .map_err(|e| format!("{INSTALL}\n(`{}`: {e})", java.display()))?;
    // `java -version` writes `openjdk version "17.0.15" ...` (or "1.8.0_x") to stderr.
    let text = String::from_utf8_lossy(&out.stderr);
    let major = text
        .split('"')
        .nth(1)
        .and_then(|version| version.split(['.', '-', '+']).next())
        .and_then(|major| major.parse::<u32>().ok());
    match major {
        Some(major) if out.status.success() && major >= 17 => Ok(()),
        _ => Err(format!(
            "{INSTALL}\n(`{} -version` said: {})",
            java.display(),
            text.trim()
        )),
    }
}
