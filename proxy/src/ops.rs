//! The reserved `/-/` endpoints, never forwarded: `healthz` (the process is up), `readyz`
//! (a valid token can be had) and `metrics` (Prometheus text, from the manager's
//! `stats()` and the proxy's own counters).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bodhi_auth::{TokenManager, TokenState};
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;

use crate::reply;

/// The prefix of the proxy's own endpoints.
pub(crate) const PREFIX: &str = "/-/";
/// How long `/-/readyz` waits for a token before it answers 503.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// The proxy's own counters (the token manager keeps its own).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) requests: AtomicU64,
    /// Refusals by reason, in the order of `REFUSALS`.
    refused: [AtomicU64; REFUSALS.len()],
    /// Upstream answers by status class: 1xx..5xx.
    classes: [AtomicU64; 5],
    pub(crate) upstream_errors: AtomicU64,
    pub(crate) token_unavailable: AtomicU64,
    pub(crate) connections: AtomicU64,
    pub(crate) in_flight: AtomicU64,
}

/// The refusal codes, as the metric's `reason` label.
const REFUSALS: [&str; 8] = [
    "connect_refused",
    "absolute_uri_refused",
    "host_refused",
    "origin_refused",
    "cross_site_refused",
    "client_token_required",
    "path_refused",
    "client_authorization_refused",
];

impl Counters {
    pub(crate) fn refused(&self, code: &str) {
        if let Some(i) = REFUSALS.iter().position(|r| *r == code) {
            self.refused[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn upstream_status(&self, status: StatusCode) {
        let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
        self.classes[class].fetch_add(1, Ordering::Relaxed);
    }
}

/// Answers a request under [`PREFIX`].
pub(crate) async fn answer(
    method: &Method,
    path: &str,
    manager: &TokenManager,
    counters: &Counters,
) -> Response<Full<Bytes>> {
    if method != Method::GET && method != Method::HEAD {
        return reply::json(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "GET only",
            None,
        );
    }
    match path {
        "/-/healthz" => reply::text(StatusCode::OK, "ok\n"),
        "/-/readyz" => ready(manager).await,
        "/-/metrics" => {
            let mut response = reply::text(StatusCode::OK, metrics(manager, counters));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        _ => reply::json(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such proxy endpoint",
            None,
        ),
    }
}

/// 200 when a valid token is cached or can be had within [`READY_TIMEOUT`]; 503 with
/// the reason otherwise.
async fn ready(manager: &TokenManager) -> Response<Full<Bytes>> {
    if manager.cached().is_some() {
        return reply::text(StatusCode::OK, "ready\n");
    }
    match tokio::time::timeout(READY_TIMEOUT, manager.access_token()).await {
        Ok(Ok(_)) => reply::text(StatusCode::OK, "ready\n"),
        Ok(Err(error)) => reply::token_unavailable(&error, manager),
        Err(_) => reply::json(
            StatusCode::SERVICE_UNAVAILABLE,
            "idm_unavailable",
            "no token yet: the login is still in progress",
            Some(Duration::from_secs(1)),
        ),
    }
}

/// Prometheus text exposition format, written by hand.
fn metrics(manager: &TokenManager, counters: &Counters) -> String {
    let stats = manager.stats();
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let mut out = String::with_capacity(2048);
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(&str, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    family(
        "bodhi_proxy_requests_total",
        "counter",
        "Requests received (proxy endpoints and refusals included).",
        &[("", load(&counters.requests) as f64)],
    );
    let refused: Vec<(String, f64)> = REFUSALS
        .iter()
        .zip(&counters.refused)
        .map(|(reason, c)| (format!("{{reason=\"{reason}\"}}"), load(c) as f64))
        .collect();
    let refused: Vec<(&str, f64)> = refused.iter().map(|(l, v)| (l.as_str(), *v)).collect();
    family(
        "bodhi_proxy_refused_total",
        "counter",
        "Requests refused before forwarding, by reason.",
        &refused,
    );
    let classes: Vec<(String, f64)> = counters
        .classes
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("{{class=\"{}xx\"}}", i + 1), load(c) as f64))
        .collect();
    let classes: Vec<(&str, f64)> = classes.iter().map(|(l, v)| (l.as_str(), *v)).collect();
    family(
        "bodhi_proxy_upstream_responses_total",
        "counter",
        "Upstream answers passed to clients, by status class.",
        &classes,
    );
    family(
        "bodhi_proxy_upstream_errors_total",
        "counter",
        "Requests answered 502: the upstream could not be reached or failed.",
        &[("", load(&counters.upstream_errors) as f64)],
    );
    family(
        "bodhi_proxy_token_unavailable_total",
        "counter",
        "Requests answered 503: no valid token could be had.",
        &[("", load(&counters.token_unavailable) as f64)],
    );
    family(
        "bodhi_proxy_resends_total",
        "counter",
        "Requests sent again after a 401.",
        &[("", stats.resends as f64)],
    );
    family(
        "bodhi_proxy_rejections_total",
        "counter",
        "Tokens the upstream rejected with a 401.",
        &[("", stats.rejections as f64)],
    );
    family(
        "bodhi_proxy_logins_total",
        "counter",
        "Password grants the IDM accepted.",
        &[("", stats.logins as f64)],
    );
    family(
        "bodhi_proxy_refreshes_total",
        "counter",
        "Refresh grants the IDM accepted.",
        &[("", stats.refreshes as f64)],
    );
    let f = stats.idm_failures;
    family(
        "bodhi_proxy_idm_failures_total",
        "counter",
        "Token requests that failed, by kind.",
        &[
            (
                "{kind=\"invalid_credentials\"}",
                f.invalid_credentials as f64,
            ),
            ("{kind=\"unavailable\"}", f.unavailable as f64),
            ("{kind=\"invalid_response\"}", f.invalid_response as f64),
            ("{kind=\"config\"}", f.config as f64),
        ],
    );
    let expires = stats.expires_in.map_or(0.0, |d| d.as_secs_f64());
    family(
        "bodhi_proxy_token_expiry_seconds",
        "gauge",
        "Seconds until the current token expires (0 without one).",
        &[("", expires)],
    );
    let cooldown = stats.cooldown_remaining.map_or(0.0, |d| d.as_secs_f64());
    family(
        "bodhi_proxy_idm_cooldown_seconds",
        "gauge",
        "Seconds until the next login attempt while cooling down after a failure.",
        &[("", cooldown)],
    );
    let state = match stats.state {
        TokenState::Empty => "empty",
        TokenState::Fetching => "fetching",
        TokenState::Valid => "valid",
        TokenState::RefreshingWhileValid => "refreshing",
        TokenState::CoolingDown => "cooling_down",
        _ => "other",
    };
    let states: Vec<(String, f64)> = [
        "empty",
        "fetching",
        "valid",
        "refreshing",
        "cooling_down",
        "other",
    ]
    .iter()
    .map(|s| {
        (
            format!("{{state=\"{s}\"}}"),
            if *s == state { 1.0 } else { 0.0 },
        )
    })
    .collect();
    let states: Vec<(&str, f64)> = states.iter().map(|(l, v)| (l.as_str(), *v)).collect();
    family(
        "bodhi_proxy_token_state",
        "gauge",
        "What the token manager is doing (1 for the current state).",
        &states,
    );
    family(
        "bodhi_proxy_connections",
        "gauge",
        "Client connections open.",
        &[("", load(&counters.connections) as f64)],
    );
    family(
        "bodhi_proxy_requests_in_flight",
        "gauge",
        "Requests being forwarded now.",
        &[("", load(&counters.in_flight) as f64)],
    );
    out
}
