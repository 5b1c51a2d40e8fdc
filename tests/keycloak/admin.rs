//! Keycloak's admin REST API: what the server saw (events, sessions) and what an
//! administrator does (log a user out).

use std::time::Duration;

use http::header::CONTENT_TYPE;
use serde_json::Value;

use crate::harness::BoxError;
use crate::realm::{REALM, User};
use crate::server::{ADMIN_PASSWORD, ADMIN_USERNAME};
use crate::wait::MAX_WAIT;

/// Keycloak's user event types the fixture enables.
#[derive(Debug, Clone, Copy)]
pub enum Event {
    Login,
    LoginError,
    RefreshToken,
    RefreshTokenError,
    Logout,
}

impl Event {
    fn as_str(self) -> &'static str {
        match self {
            Event::Login => "LOGIN",
            Event::LoginError => "LOGIN_ERROR",
            Event::RefreshToken => "REFRESH_TOKEN",
            Event::RefreshTokenError => "REFRESH_TOKEN_ERROR",
            Event::Logout => "LOGOUT",
        }
    }
}

fn admin_login_form() -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "password")
        .append_pair("client_id", "admin-cli")
        .append_pair("username", ADMIN_USERNAME)
        .append_pair("password", ADMIN_PASSWORD)
        .finish()
}

/// An admin client for one server (plain HTTP on loopback).
pub struct Admin {
    http: reqwest::Client,
    base_url: String,
}

impl Admin {
    pub fn new(base_url: &str) -> Admin {
        Admin {
            http: reqwest::Client::new(),
            base_url: base_url.to_owned(),
        }
    }

    /// A fresh master-realm token (they live a minute: one per call is simplest).
    async fn token(&self) -> Result<String, BoxError> {
        let response = self
            .http
            .post(format!(
                "{}/realms/master/protocol/openid-connect/token",
                self.base_url
            ))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(admin_login_form())
            .send()
            .await?;
        let status = response.status();
        let body: Value = serde_json::from_slice(&response.bytes().await?)?;
        body["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no admin token ({status}): {body}").into())
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, BoxError> {
        self.get_in(REALM, path, query).await
    }

    async fn get_in(
        &self,
        realm: &str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Value, BoxError> {
        let mut url =
            reqwest::Url::parse(&format!("{}/admin/realms/{realm}/{path}", self.base_url))?;
        url.query_pairs_mut().extend_pairs(query);
        let response = self
            .http
            .get(url.clone())
            .bearer_auth(self.token().await?)
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("GET {url}: {status}: {}", response.text().await?).into());
        }
        Ok(serde_json::from_slice(&response.bytes().await?)?)
    }

    /// Sets the access token lifespan of `client_id` (the client attribute that overrides
    /// the realm's), for tokens issued from now on.
    pub async fn set_access_token_lifespan(
        &self,
        client_id: &str,
        lifespan: Duration,
    ) -> Result<(), BoxError> {
        let clients = self.get("clients", &[("clientId", client_id)]).await?;
        let mut client = clients
            .get(0)
            .cloned()
            .ok_or_else(|| format!("no client {client_id:?} in the realm"))?;
        let id = client["id"]
            .as_str()
            .ok_or_else(|| format!("client {client_id:?} has no id: {client}"))?
            .to_owned();
        if !client["attributes"].is_object() {
            client["attributes"] = serde_json::json!({});
        }
        client["attributes"]["access.token.lifespan"] = lifespan.as_secs().to_string().into();
        let url = format!("{}/admin/realms/{REALM}/clients/{id}", self.base_url);
        let response = self
            .http
            .put(&url)
            .bearer_auth(self.token().await?)
            .header(CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(&client)?)
            .send()
            .await?;
        match response.status().as_u16() {
            204 => Ok(()),
            status => Err(format!("PUT {url}: {status}: {}", response.text().await?).into()),
        }
    }

    /// How many `event`s Keycloak recorded, for `user` or (`None`) for anyone.
    ///
    /// Keycloak records no user on a refused refresh token (REFRESH_TOKEN_ERROR), so
    /// those can only be counted realm-wide; the scenarios run one at a time for that.
    pub async fn event_count(&self, event: Event, user: Option<&User>) -> Result<usize, BoxError> {
        let mut query = vec![("type", event.as_str()), ("max", "10000")];
        if let Some(user) = user {
            query.push(("user", &user.id));
        }
        let events = self.get("events", &query).await?;
        events
            .as_array()
            .map(Vec::len)
            .ok_or_else(|| format!("the events answer is not a list: {events}").into())
    }

    /// How many `event`s Keycloak recorded in `realm`, for anyone.
    pub async fn realm_event_count(&self, realm: &str, event: Event) -> Result<usize, BoxError> {
        let query = [("type", event.as_str()), ("max", "10000")];
        let events = self.get_in(realm, "events", &query).await?;
        events
            .as_array()
            .map(Vec::len)
            .ok_or_else(|| format!("the events answer is not a list: {events}").into())
    }

    /// The count once it reached `expected` (or [`MAX_WAIT`] passed) and then held still
    /// for a moment, so a late extra event is counted too.
    pub async fn settled_event_count(
        &self,
        event: Event,
        user: Option<&User>,
        expected: usize,
    ) -> Result<usize, BoxError> {
        let deadline = tokio::time::Instant::now() + MAX_WAIT;
        loop {
            let count = self.event_count(event, user).await?;
            if count >= expected || tokio::time::Instant::now() >= deadline {
                tokio::time::sleep(Duration::from_millis(500)).await;
                return self.event_count(event, user).await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `POST /users/{id}/logout`: ends every session of the user.
    pub async fn log_user_out(&self, user: &User) -> Result<(), BoxError> {
        let url = format!(
            "{}/admin/realms/{REALM}/users/{}/logout",
            self.base_url, user.id
        );
        let response = self
            .http
            .post(&url)
            .bearer_auth(self.token().await?)
            .send()
            .await?;
        match response.status().as_u16() {
            204 => Ok(()),
            status => Err(format!("POST {url}: {status}: {}", response.text().await?).into()),
        }
    }

    /// The user's active sessions.
    pub async fn session_count(&self, user: &User) -> Result<usize, BoxError> {
        let sessions = self
            .get(&format!("users/{}/sessions", user.id), &[])
            .await?;
        sessions
            .as_array()
            .map(Vec::len)
            .ok_or_else(|| format!("the sessions answer is not a list: {sessions}").into())
    }
}
