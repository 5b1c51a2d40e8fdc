//! A throwaway certificate authority and a server certificate for `127.0.0.1`, made with
//! `openssl` at test time, so the HTTPS scenario trusts nothing but this run's CA.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::tools;

/// The CA's certificate, and Keycloak's certificate and key as PEM files.
pub struct TestCa {
    pub ca_pem: Vec<u8>,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl TestCa {
    /// Writes the CA and a leaf for `IP:127.0.0.1` into `dir`.
    pub fn generate(dir: &Path) -> Result<TestCa, String> {
        tools::require(
            "openssl",
            &["version"],
            "openssl is needed to make the HTTPS scenario's test certificates: install it \
             (Debian/Ubuntu: `apt-get install openssl`)",
        )?;
        let path = |name: &str| dir.join(name).display().to_string();
        // A separate CA and leaf: webpki refuses a CA certificate used as the server's own.
        openssl(
            "create the test CA",
            "req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=bodhi-auth-keycloak-test-CA \
             -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign",
            &[("-keyout", path("ca.key")), ("-out", path("ca.pem"))],
        )?;
        openssl(
            "create the server key",
            "req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1",
            &[
                ("-keyout", path("server.key")),
                ("-out", path("server.csr")),
            ],
        )?;
        let extensions = "basicConstraints=critical,CA:FALSE\n\
                          keyUsage=critical,digitalSignature,keyEncipherment\n\
                          extendedKeyUsage=serverAuth\n\
                          subjectAltName=IP:127.0.0.1\n";
        fs::write(dir.join("server.ext"), extensions)
            .map_err(|e| format!("cannot write {}: {e}", path("server.ext")))?;
        openssl(
            "sign the server certificate",
            "x509 -req -days 2 -CAcreateserial",
            &[
                ("-in", path("server.csr")),
                ("-CA", path("ca.pem")),
                ("-CAkey", path("ca.key")),
                ("-extfile", path("server.ext")),
                ("-out", path("server.pem")),
            ],
        )?;
        let ca_pem =
            fs::read(dir.join("ca.pem")).map_err(|e| format!("cannot read the test CA: {e}"))?;
        Ok(TestCa {
            ca_pem,
            cert_file: dir.join("server.pem"),
            key_file: dir.join("server.key"),
        })
    }
}

/// `openssl <options> <file options>`: the options have no spaces inside one value.
fn openssl(what: &str, options: &str, files: &[(&str, String)]) -> Result<(), String> {
    let mut command = Command::new("openssl");
    command.args(options.split_whitespace());
    for (flag, file) in files {
        command.arg(flag).arg(file);
    }
    tools::run(&mut command, &format!("{what} with openssl"))
}
