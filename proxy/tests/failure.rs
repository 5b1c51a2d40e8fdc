//! Failing closed and staying up: the IDM down, the upstream down, a drain on SIGTERM,
//! a cold start under 1,000 clients, the Unix socket and the proxy's own endpoints.

mod support;

use std::time::Duration;

use support::{Fakes, HANG, Proxy, closed_port, raw, status_of};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn get(proxy: &Proxy, path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        proxy.addr
    )
}

#[tokio::test]
async fn idm_down_is_a_503_with_retry_after_and_nothing_upstream() {
    let fakes = Fakes::start().await;
    let token_url = format!(
        "http://127.0.0.1:{}/auth/realms/hotschedules/protocol/openid-connect/token",
        closed_port()
    );
    let env = [
        ("BODHI_API_URL".to_owned(), fakes.api_server.url("")),
        ("BODHI_TOKEN_URL".to_owned(), token_url),
    ];
    let proxy = Proxy::start(&env, &[]);
    let answer = raw(proxy.addr, get(&proxy, "/stores").as_bytes()).await;
    assert_eq!(status_of(&answer), 503, "{answer}");
    assert!(answer.contains(r#""error":"idm_unavailable""#), "{answer}");
    assert!(answer.contains(r#""retry_after":"#), "{answer}");
    let retry_after = answer
        .lines()
        .find_map(|l| l.strip_prefix("retry-after: "))
        .expect("a Retry-After header");
    assert!(retry_after.trim().parse::<u64>().unwrap() >= 1);

    // A second request during the cooldown: the same answer, at once.
    let again = raw(proxy.addr, get(&proxy, "/stores").as_bytes()).await;
    assert_eq!(status_of(&again), 503, "{again}");
    let ready = raw(proxy.addr, get(&proxy, "/-/readyz").as_bytes()).await;
    assert_eq!(status_of(&ready), 503, "{ready}");
    let healthy = raw(proxy.addr, get(&proxy, "/-/healthz").as_bytes()).await;
    assert_eq!(status_of(&healthy), 200, "the process is up");
    assert_eq!(fakes.api.requests(), 0, "never forwarded without a token");
    assert!(proxy.metric("bodhi_proxy_token_unavailable_total").await >= 2.0);
}

#[tokio::test]
async fn wrong_password_is_a_503_that_says_so() {
    let fakes = Fakes::start().await;
    let mut env = fakes.env();
    env.push(("BODHI_PASSWORD".into(), "wrong".into()));
    let proxy = Proxy::start(&env, &[]);
    let answer = raw(proxy.addr, get(&proxy, "/stores").as_bytes()).await;
    assert_eq!(status_of(&answer), 503, "{answer}");
    assert!(answer.contains("idm_invalid_credentials"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("retry-after: "));
    assert!(!answer.contains("wrong"), "no secret in the answer");
    assert_eq!(fakes.api.requests(), 0);
}

#[tokio::test]
async fn upstream_down_is_a_502() {
    let fakes = Fakes::start().await;
    let env = [
        (
            "BODHI_API_URL".to_owned(),
            format!("http://127.0.0.1:{}", closed_port()),
        ),
        ("BODHI_TOKEN_URL".to_owned(), fakes.idm_server.token_url()),
    ];
    let proxy = Proxy::start(&env, &[]);
    let answer = raw(proxy.addr, get(&proxy, "/stores").as_bytes()).await;
    assert_eq!(status_of(&answer), 502, "{answer}");
    assert!(answer.contains("upstream_unavailable"), "{answer}");
    assert_eq!(proxy.metric("bodhi_proxy_upstream_errors_total").await, 1.0);
}

#[tokio::test]
async fn sigterm_lets_requests_in_flight_finish_and_stops_accepting() {
    let fakes = Fakes::start().await;
    let mut proxy = Proxy::start(&fakes.env(), &[]);
    // A chunked upload whose end the test holds back: in flight until it is sent.
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    let head = format!(
        "POST /orders HTTP/1.1\r\nHost: {}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        proxy.addr
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let deadline = tokio::time::Instant::now() + HANG;
    while proxy.metric("bodhi_proxy_requests_in_flight").await < 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the request never got in flight"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    proxy.terminate();
    proxy.wait_line("shutting down");
    assert!(
        TcpStream::connect(proxy.addr).await.is_err(),
        "no new connection is accepted while draining"
    );

    stream.write_all(b"6\r\n world\r\n0\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(HANG, stream.read_to_end(&mut answer))
        .await
        .expect("the drained request hung")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(status_of(&answer), 200, "{answer}");
    assert!(proxy.wait_exit().success());
    let log = fakes.api.recorded();
    assert_eq!(log[0].body.as_deref(), Some(&b"hello world"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_clients_at_cold_start_cause_one_login() {
    let fakes = Fakes::start().await;
    let proxy = Proxy::start(&fakes.env(), &[]);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut clients = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let (client, url) = (client.clone(), proxy.url(&format!("/stores/{i}")));
        clients.spawn(async move { client.get(url).send().await.map(|r| r.status().as_u16()) });
    }
    let all = tokio::time::timeout(HANG, clients.join_all())
        .await
        .expect("1,000 requests hung");
    assert!(
        all.iter().all(|s| matches!(s, Ok(200))),
        "{:?}",
        all.iter().find(|s| !matches!(s, Ok(200)))
    );
    assert_eq!(fakes.idm.password_grants(), 1, "one login");
    assert_eq!(fakes.idm.token_requests(), 1);
    assert_eq!(fakes.api.requests(), 1000);
}

#[tokio::test]
async fn the_unix_socket_is_private_and_serves() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let fakes = Fakes::start().await;
    let dir = std::env::temp_dir().join(format!("bodhi-proxy-sock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("proxy.sock");
    let mut proxy = Proxy::start(&fakes.env(), &["--unix-socket", path.to_str().unwrap()]);
    let metadata = std::fs::symlink_metadata(&path).unwrap();
    assert!(metadata.file_type().is_socket());
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    let out = support::run(
        "curl",
        &[
            "-sS",
            "--unix-socket",
            path.to_str().unwrap(),
            "http://localhost/stores",
        ],
    )
    .await;
    assert_eq!(out, r#"{"user":"user"}"#);
    proxy.terminate();
    assert!(proxy.wait_exit().success());
    assert!(!path.exists(), "removed on exit");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn ops_endpoints_answer_and_are_never_forwarded() {
    let fakes = Fakes::start().await;
    let proxy = Proxy::start(&fakes.env(), &[]);
    let health = raw(proxy.addr, get(&proxy, "/-/healthz").as_bytes()).await;
    assert_eq!(status_of(&health), 200);
    let ready = raw(proxy.addr, get(&proxy, "/-/readyz").as_bytes()).await;
    assert_eq!(status_of(&ready), 200, "{ready}");
    let missing = raw(proxy.addr, get(&proxy, "/-/anything").as_bytes()).await;
    assert_eq!(status_of(&missing), 404);
    raw(proxy.addr, get(&proxy, "/stores").as_bytes()).await;
    let metrics = proxy.metrics().await;
    for line in [
        "bodhi_proxy_logins_total 1",
        "bodhi_proxy_upstream_responses_total{class=\"2xx\"} 1",
        "bodhi_proxy_token_state{state=\"valid\"} 1",
        "# TYPE bodhi_proxy_token_expiry_seconds gauge",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    assert!(proxy.metric("bodhi_proxy_token_expiry_seconds").await > 3600.0);
    let paths: Vec<String> = fakes
        .api
        .recorded()
        .iter()
        .map(|r| r.path().to_owned())
        .collect();
    assert_eq!(paths, ["/stores"]);
}
