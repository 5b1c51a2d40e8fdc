//! The `hotschedules` realm as the fixture defines it, and the URLs of one server.
//!
//! User ids and lifetimes are read from the fixture itself, so the JSON stays the one
//! place they are written.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

pub const REALM: &str = "hotschedules";
/// Every fixture user's password.
pub const PASSWORD: &str = "Bodhi-Test-Password-1";
/// The value of the hardcoded `otherClaims.bodhiapi` claim.
pub const NAMESPACE: &str = "bodhi-test-namespace";
/// A public client with direct access grants off.
pub const NO_DIRECT_GRANTS_CLIENT: &str = "bodhi-no-direct-grants";
/// A password-grant client whose access token lifespan a scenario sets at run time
/// (through the admin API), so that it can choose which tokens are short-lived.
pub const ADJUSTABLE_LIFESPAN_CLIENT: &str = "bodhi-adjustable-lifespan";

/// A second realm whose refresh tokens are single-use (`revokeRefreshToken`, no reuse):
/// presenting one twice ends the session. Only the fleet scenario uses it.
pub const ROTATING_REALM: &str = "hotschedules-rotating";
/// Its one user (same password as the others).
pub const ROTATING_USER: &str = "kc-fleet";

pub fn rotating_fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hotschedules-rotating-realm.json")
}

pub fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hotschedules-realm.json")
}

fn fixture() -> &'static Value {
    static FIXTURE: OnceLock<Value> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let path = fixture_path();
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read the realm fixture {}: {e}", path.display()));
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("the realm fixture {} is not JSON: {e}", path.display()))
    })
}

fn seconds(field: &str) -> Duration {
    let secs = fixture()[field]
        .as_u64()
        .unwrap_or_else(|| panic!("the realm fixture has no numeric `{field}`"));
    Duration::from_secs(secs)
}

/// `accessTokenLifespan`: what `expires_in` says.
pub fn access_token_lifespan() -> Duration {
    seconds("accessTokenLifespan")
}

/// `ssoSessionIdleTimeout`: what `refresh_expires_in` says.
pub fn session_idle_timeout() -> Duration {
    seconds("ssoSessionIdleTimeout")
}

/// A fixture user: the name to log in with and the fixed id the admin API filters on.
#[derive(Debug, Clone)]
pub struct User {
    pub name: &'static str,
    pub id: String,
}

/// The fixture user called `name`. Each scenario has its own, so that Keycloak's
/// events (filtered by user) count only that scenario's requests.
pub fn user(name: &'static str) -> User {
    let id = fixture()["users"]
        .as_array()
        .and_then(|users| users.iter().find(|u| u["username"] == name))
        .and_then(|u| u["id"].as_str())
        .unwrap_or_else(|| panic!("the realm fixture has no user {name:?} with an id"));
    User {
        name,
        id: id.to_owned(),
    }
}

/// Where one running server answers.
#[derive(Debug)]
pub struct Endpoints {
    /// `http://127.0.0.1:<port>/auth`. Always 127.0.0.1: the token issuer is taken from
    /// the request's host, so a refresh must go to the host name the login used.
    pub base_url: String,
    /// The same server over TLS.
    pub https_base_url: String,
    /// The CA that signed the HTTPS certificate.
    pub ca_pem: Vec<u8>,
}

impl Endpoints {
    pub fn token_url(&self) -> String {
        token_url(&self.base_url)
    }

    /// The token endpoint of [`ROTATING_REALM`].
    pub fn rotating_token_url(&self) -> String {
        format!(
            "{}/realms/{ROTATING_REALM}/protocol/openid-connect/token",
            self.base_url
        )
    }

    pub fn userinfo_url(&self) -> String {
        format!("{}/userinfo", oidc(&self.base_url))
    }
}

fn oidc(base_url: &str) -> String {
    format!("{base_url}/realms/{REALM}/protocol/openid-connect")
}

pub fn token_url(base_url: &str) -> String {
    format!("{}/token", oidc(base_url))
}
