//! No secret in `Debug`, `Display`, errors or log output (one test: it owns the global
//! tracing subscriber).

use std::time::Duration;

mod support;

use bodhi_auth::store::TokenStore;
use bodhi_auth::testing::{FakeApi, FakeIdm, Fault};
use bodhi_auth::{Credentials, Error, IdmAuthLayer, TokenManager, TokenScope};
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use support::CapturedLogs;
use tokio::time::advance;
use tower::{Layer, ServiceExt};

const PASSWORD: &str = "hunter2&secret=yes";

/// Everything secret the test saw: the password in raw and encoded forms, and every
/// token the fake IDM issued.
fn secrets(idm: &FakeIdm, tokens: &[bodhi_auth::AccessToken]) -> Vec<String> {
    let mut secrets = vec![
        PASSWORD.to_owned(),
        form_urlencoded::byte_serialize(PASSWORD.as_bytes()).collect(),
    ];
    for token in tokens {
        secrets.push(token.secret().to_owned());
        secrets.extend(token.id_token().map(str::to_owned));
    }
    for request in idm.requests() {
        secrets.extend(request.field("refresh_token").map(str::to_owned));
    }
    secrets
}

fn assert_clean(text: &str, secrets: &[String]) {
    for secret in secrets {
        // Tokens share their JWT header; look for the distinctive signature part too.
        let tail = secret.rsplit('.').next().unwrap_or(secret);
        assert!(
            !text.contains(secret.as_str()),
            "a secret leaked into:\n{text}"
        );
        assert!(
            !text.contains(tail),
            "a token signature leaked into:\n{text}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn no_public_type_formats_a_secret_and_no_log_event_carries_one() {
    let captured = CapturedLogs::install();

    let idm = FakeIdm::new();
    idm.add_user("user", PASSWORD, Some("ns"));
    idm.set_access_ttl(Duration::from_secs(100));
    let builder = TokenManager::builder(Credentials::new("user", PASSWORD))
        .fake_idm(&idm)
        .min_relogin_interval(Duration::ZERO);
    let mut shown = vec![format!("{builder:?}")];
    let manager = builder.build().unwrap();
    let mut tokens = Vec::new();
    let mut errors: Vec<Error> = Vec::new();

    // Login, refresh-due with a background refresh, a 401, a failing IDM, a cooldown,
    // and a wrong password.
    tokens.push(manager.access_token().await.unwrap());
    shown.push(format!("{manager:?}"));
    advance(Duration::from_secs(71)).await;
    tokens.push(manager.access_token().await.unwrap());
    shown.push(format!("{manager:?}"));
    manager.settled().await;
    tokens.push(manager.access_token().await.unwrap());
    manager.invalidate(tokens.last().unwrap());
    tokens.push(manager.access_token().await.unwrap());
    manager.invalidate(tokens.last().unwrap());
    idm.set_persistent_fault(Some(Fault::status(503)));
    errors.push(manager.access_token().await.unwrap_err());
    errors.push(manager.access_token().await.unwrap_err()); // cooldown
    shown.push(format!("{manager:?}"));
    idm.set_persistent_fault(None);
    manager.set_credentials(Credentials::new("user", "wrong-password"));
    idm.revoke_sessions(); // the refresh is refused, so the wrong password is tried
    advance(Duration::from_secs(120)).await;
    errors.push(manager.access_token().await.unwrap_err());
    manager.set_credentials(Credentials::new("user", PASSWORD));
    tokens.push(manager.access_token().await.unwrap());
    manager.logout().await.unwrap();

    // Two callers at once: the second joins the first one's flight.
    idm.set_latency(Duration::from_millis(100));
    let joined = TokenManager::builder(Credentials::new("user", PASSWORD))
        .fake_idm(&idm)
        .build()
        .unwrap();
    let (a, b) = tokio::join!(joined.access_token(), joined.access_token());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.same_token(&b));
    tokens.push(a);
    idm.set_latency(Duration::ZERO);

    // Through the Tower layer: a 401 answered by a resend, then a throttled re-login.
    let api = FakeApi::new(&idm);
    let service = IdmAuthLayer::with_manager(
        joined.clone(),
        TokenScope::origins(["https://api.example"]).unwrap(),
    )
    .layer(api.clone());
    let request = || {
        Request::get("https://api.example/")
            .body(Full::<Bytes>::default())
            .unwrap()
    };
    api.reject_next(1);
    assert_eq!(
        service.clone().oneshot(request()).await.unwrap().status(),
        200
    );
    api.reject_next(1);
    assert_eq!(
        service.clone().oneshot(request()).await.unwrap().status(),
        401
    );
    tokens.push(joined.cached().unwrap());

    // Through a store shared by two managers: a login, an adopted session, a 401, a
    // failure whose cooldown is stored, and a logout.
    let store = std::sync::Arc::new(bodhi_auth::store::MemoryStore::new());
    let shared = |idm: &FakeIdm| {
        TokenManager::builder(Credentials::new("user", PASSWORD))
            .fake_idm(idm)
            .store(store.clone())
            .build()
            .unwrap()
    };
    let (first, second) = (shared(&idm), shared(&idm));
    tokens.push(first.access_token().await.unwrap());
    tokens.push(second.access_token().await.unwrap());
    first.invalidate(tokens.last().unwrap());
    idm.set_persistent_fault(Some(Fault::status(503)));
    errors.push(first.access_token().await.unwrap_err());
    second.invalidate(tokens.last().unwrap());
    errors.push(second.access_token().await.unwrap_err());
    idm.set_persistent_fault(None);
    shown.push(format!("{store:?} {:?}", store.load().await.unwrap()));
    advance(Duration::from_secs(120)).await;
    tokens.push(second.access_token().await.unwrap());
    shown.push(format!("{store:?} {first:?}"));
    first.logout().await.unwrap();

    for token in &tokens {
        shown.push(format!("{token:?}"));
        if let Ok(identity) = token.identity() {
            shown.push(format!("{identity:?}"));
        }
        shown.push(format!("{:?}", token.header_value()));
    }
    for error in &errors {
        shown.push(format!("{error} / {error:?}"));
    }
    shown.push(format!("{:?}", Credentials::new("user", PASSWORD)));
    shown.push(format!("{:?}", idm.requests()));

    let secrets = secrets(&idm, &tokens);
    assert!(secrets.len() > 10, "the test saw real secrets");
    assert_clean(&shown.join("\n"), &secrets);

    let log = captured.text();
    for event in [
        "starting token flight",        // login
        "sending token request",        // each IDM request, with grant and attempt
        "refreshing in the background", // refresh-due
        "joining token flight",         // single flight
        "token flight succeeded",       // with elapsed_ms
        "retrying",                     // with attempt and pause_ms
        "cooling down",                 // with next_attempt_in_ms
        "returning the last error",     // a caller inside the cooldown
        "rejected by the API",          // a 401 invalidation
        "resending the request after a 401",
        "re-login throttled", // with remaining_ms
        "logged out",
        "using the stored session", // adopted from a store
        "session stored",
    ] {
        assert!(log.contains(event), "no {event:?} event in:\n{log}");
    }
    assert!(
        log.contains("elapsed_ms=")
            && log.contains("pause_ms=")
            && log.contains("next_attempt_in_ms=")
    );
    assert_clean(&log, &secrets);
}
