//! The real reqwest transport against the fake IDM on loopback HTTP. Real time: these
//! tests assert counts and outcomes, never durations.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bodhi_auth::testing::{FakeIdm, Fault};
use bodhi_auth::{Credentials, ErrorKind, TokenManager, TokenManagerBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

mod support;
use support::concurrent_callers;

fn builder(token_url: &str) -> TokenManagerBuilder {
    TokenManager::builder(Credentials::new("user", "secret")).token_url(token_url)
}

#[tokio::test]
async fn password_and_refresh_grants_go_over_http_as_documented() {
    let idm = FakeIdm::new();
    idm.set_access_ttl(Duration::from_secs(2));
    let server = idm.serve().await.unwrap();
    let manager = builder(&server.token_url()).build().unwrap();
    let first = manager.access_token().await.unwrap();
    let login = &idm.requests()[0];
    assert_eq!(
        login.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(login.grant_type(), Some("password"));
    // Let the 2 s token expire with nothing in flight; the next caller then waits for
    // the one flight, which uses the (30-minute) refresh token.
    tokio::time::sleep(first.expires_in()).await;
    let second = manager.access_token().await.unwrap();
    assert!(!second.same_token(&first), "a new token after expiry");
    let requests = idm.requests();
    let refresh = requests
        .iter()
        .find(|r| r.grant_type() == Some("refresh_token"))
        .expect("a refresh grant among the IDM's requests");
    let refresh_token = refresh.field("refresh_token").unwrap();
    assert_eq!(
        refresh.authorization.as_deref(),
        Some(format!("Bearer {refresh_token}").as_str())
    );
    assert_eq!(
        refresh.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!((idm.password_grants(), idm.refresh_grants()), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_over_http_cause_one_login() {
    let idm = FakeIdm::new();
    idm.set_latency(Duration::from_millis(200));
    let server = idm.serve().await.unwrap();
    let manager = builder(&server.token_url()).build().unwrap();
    let tokens: Vec<_> = concurrent_callers(&manager, 200)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(idm.token_requests(), 1);
    assert!(tokens.iter().all(|t| t.same_token(&tokens[0])));
}

#[tokio::test]
async fn connection_refused_is_unavailable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }; // closed again: nothing listens there now
    let url = format!("http://127.0.0.1:{port}{}", FakeIdm::TOKEN_PATH);
    let manager = builder(&url).max_attempts(1).build().unwrap();
    let err = manager.access_token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    // What a person needs to act: which URL, and the operating system's own words.
    let message = err.to_string();
    assert!(message.contains(&url), "{message}");
    assert!(message.to_lowercase().contains("refused"), "{message}");
}

#[tokio::test]
async fn a_dropped_connection_is_unavailable() {
    let idm = FakeIdm::new();
    idm.set_persistent_fault(Some(Fault::Refuse));
    let server = idm.serve().await.unwrap();
    let manager = builder(&server.token_url())
        .max_attempts(1)
        .build()
        .unwrap();
    let err = manager.access_token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
}

#[tokio::test]
async fn an_8_mb_answer_is_refused_by_the_body_cap() {
    let idm = FakeIdm::new();
    let huge = format!(
        r#"{{"access_token":"{}","expires_in":60}}"#,
        "a".repeat(8 << 20)
    );
    idm.set_persistent_fault(Some(Fault::body(200, huge)));
    let server = idm.serve().await.unwrap();
    let manager = builder(&server.token_url()).build().unwrap();
    let err = manager.access_token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidResponse, "{err}");
    assert!(err.to_string().contains("limit"), "{err}");
    assert_eq!(idm.token_requests(), 1, "not retried");
}

#[tokio::test]
async fn retry_after_is_read_from_the_http_header() {
    let idm = FakeIdm::new();
    idm.set_persistent_fault(Some(Fault::retry_after(429, 120)));
    let server = idm.serve().await.unwrap();
    let manager = builder(&server.token_url()).build().unwrap();
    let err = manager.access_token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    // 120 s is past the 30 s flight deadline: no second request was sent.
    assert_eq!(idm.token_requests(), 1);
}

/// A loopback HTTP/1.1 listener that answers every request with `answer` and counts the
/// connections it accepted (before answering, so a client that got an answer was counted).
async fn scripted_listener(answer: String) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let answer = answer.clone();
            tokio::spawn(async move {
                read_request(&mut stream).await;
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (addr, accepted)
}

/// Reads one request: the head, then `Content-Length` bytes of body.
async fn read_request(stream: &mut tokio::net::TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return;
            }
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// An IDM that answers 307 to `elsewhere`, which answers with a token.
async fn redirecting_idm() -> (
    String,
    Arc<AtomicUsize>,
    std::net::SocketAddr,
    Arc<AtomicUsize>,
) {
    let token = r#"{"access_token":"a","expires_in":60}"#;
    let (elsewhere, elsewhere_hits) = scripted_listener(format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{token}",
        token.len()
    ))
    .await;
    let (idm, idm_hits) = scripted_listener(format!(
        "HTTP/1.1 307 Temporary Redirect\r\nlocation: http://{elsewhere}/elsewhere/token?session=abc#frag\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    ))
    .await;
    let token_url = format!("http://{idm}{}", FakeIdm::TOKEN_PATH);
    (token_url, idm_hits, elsewhere, elsewhere_hits)
}

#[tokio::test]
async fn the_idm_client_never_follows_a_redirect_and_names_its_location_without_the_query() {
    let (token_url, idm_hits, elsewhere, elsewhere_hits) = redirecting_idm().await;
    let manager = builder(&token_url).build().unwrap();
    let err = manager.access_token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&format!("http://{elsewhere}/elsewhere/token")),
        "{message}"
    );
    assert!(!message.contains("session=abc"), "{message}");
    assert!(!message.contains("frag"), "{message}");
    assert_eq!(
        elsewhere_hits.load(Ordering::SeqCst),
        0,
        "the form went elsewhere"
    );
    assert_eq!(idm_hits.load(Ordering::SeqCst), 1, "not retried");
}

#[tokio::test]
async fn a_redirect_followed_by_a_user_supplied_client_is_a_config_error() {
    let (token_url, _, _, elsewhere_hits) = redirecting_idm().await;
    // reqwest's default client follows redirects; the crate cannot change that policy.
    let manager = builder(&token_url)
        .http_client(reqwest::Client::new())
        .build()
        .unwrap();
    let err = manager.access_token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(
        err.to_string().contains("redirect::Policy::none()"),
        "{err}"
    );
    assert_eq!(elsewhere_hits.load(Ordering::SeqCst), 1);
}
