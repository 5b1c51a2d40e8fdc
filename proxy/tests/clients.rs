//! Real clients (curl, Python requests) through `bodhi-proxy` to the fake API.

mod support;

use bodhi_auth::testing::Reply;
use http::Method;
use support::{Fakes, Proxy, run};

/// `curl` printing the body, then the status on a line of its own.
async fn curl(args: &[&str]) -> (u16, String) {
    let mut all = vec!["-sS", "-w", "\n%{http_code}"];
    all.extend_from_slice(args);
    let out = run("curl", &all).await;
    let (body, status) = out.rsplit_once('\n').unwrap();
    (status.parse().unwrap(), body.to_owned())
}

/// Python `requests`: the script gets the URL as `sys.argv[1]` and prints its result.
async fn python(script: &str, url: &str) -> String {
    run("python3", &["-c", script, url]).await
}

#[tokio::test]
async fn curl_get_gets_the_token_and_the_upstream_host() {
    let fakes = Fakes::start().await;
    let proxy = Proxy::start(&fakes.env(), &[]);
    let (status, body) = curl(&[&proxy.url("/stores?page=2")]).await;
    assert_eq!((status, body.as_str()), (200, r#"{"user":"user"}"#));
    let log = fakes.api.recorded();
    assert_eq!(log.len(), 1);
    assert!(log[0].bearer().is_some(), "the proxy added the token");
    assert_eq!(log[0].uri, "/stores?page=2");
    let host = log[0].headers["host"].to_str().unwrap();
    assert_eq!(
        host,
        fakes.api_server.addr().to_string(),
        "Host is the upstream's"
    );
}

#[tokio::test]
async fn python_post_with_a_body_reaches_the_upstream_intact() {
    let fakes = Fakes::start().await;
    fakes
        .api
        .route(Method::POST, "/orders", Reply::json(201, r#"{"id":7}"#));
    let proxy = Proxy::start(&fakes.env(), &[]);
    let script = "import requests, sys\n\
                  r = requests.post(sys.argv[1], json={'item': 'fries', 'n': 2})\n\
                  print(r.status_code, r.text)";
    let out = python(script, &proxy.url("/orders")).await;
    assert_eq!(out.trim(), r#"201 {"id":7}"#);
    let log = fakes.api.recorded();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].method, Method::POST);
    let body = log[0].body.as_deref().unwrap();
    assert_eq!(body, br#"{"item": "fries", "n": 2}"#);
}

#[tokio::test]
async fn a_401_is_answered_by_one_resend_with_the_same_body() {
    let fakes = Fakes::start().await;
    let proxy = Proxy::start(&fakes.env(), &[]);
    fakes.api.enqueue(Reply::unauthorized());
    let (status, _) = curl(&["--data-binary", "payload", &proxy.url("/orders")]).await;
    assert_eq!(status, 200);
    let log = fakes.api.recorded();
    let statuses: Vec<u16> = log.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses, [401, 200], "one resend");
    assert_ne!(log[0].bearer(), log[1].bearer(), "resent with a new token");
    for request in &log {
        assert_eq!(request.body.as_deref(), Some(&b"payload"[..]));
    }
    let grants = fakes.idm.password_grants() + fakes.idm.refresh_grants();
    assert_eq!(grants, 2, "the first token, then one new one");
}

#[tokio::test]
async fn a_large_streaming_upload_is_not_replayed_and_its_token_is_dropped() {
    let fakes = Fakes::start().await;
    let proxy = Proxy::start(&fakes.env(), &["--replay-limit", "65536"]);
    fakes.api.enqueue(Reply::unauthorized());
    // Chunked (a generator has no length), 1 MiB in 64 KiB chunks: over the limit.
    let script = "import requests, sys\n\
                  def chunks():\n    for i in range(16):\n        yield bytes([65 + i]) * 65536\n\
                  r = requests.post(sys.argv[1], data=chunks())\n\
                  print(r.status_code)";
    let out = python(script, &proxy.url("/upload")).await;
    assert_eq!(out.trim(), "401", "the 401 goes back to the client");
    let log = fakes.api.recorded();
    assert_eq!(log.len(), 1, "not replayed");
    assert_eq!(log[0].body.as_ref().map(|b| b.len()), Some(16 * 65536));
    // The rejected token was dropped: the next request carries a new one.
    let (status, _) = curl(&[&proxy.url("/stores")]).await;
    assert_eq!(status, 200);
    let log = fakes.api.recorded();
    assert_ne!(log[0].bearer(), log[1].bearer());
}

#[tokio::test]
async fn a_download_of_several_megabytes_streams_through() {
    let fakes = Fakes::start().await;
    let big: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    fakes
        .api
        .route(Method::GET, "/export", Reply::status(200).body(big.clone()));
    let proxy = Proxy::start(&fakes.env(), &[]);
    let dir = std::env::temp_dir().join(format!("bodhi-proxy-dl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("export.bin");
    let (status, _) = curl(&["-o", file.to_str().unwrap(), &proxy.url("/export")]).await;
    assert_eq!(status, 200);
    let got = std::fs::read(&file).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(got == big, "the download differs ({} bytes)", got.len());
    // Python requests, streaming, too.
    let script = "import requests, sys, hashlib\n\
                  r = requests.get(sys.argv[1], stream=True)\n\
                  n = sum(len(c) for c in r.iter_content(65536))\n\
                  print(r.status_code, n)";
    let out = python(script, &proxy.url("/export")).await;
    assert_eq!(out.trim(), format!("200 {}", big.len()));
}

#[tokio::test]
async fn http2_with_prior_knowledge_is_checked_by_its_authority_and_forwarded() {
    let fakes = Fakes::start().await;
    let proxy = Proxy::start(&fakes.env(), &[]);
    let client = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = client.get(proxy.url("/stores")).send().await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    // The same client, told the proxy is another host (DNS rebinding): refused.
    let rebound = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .resolve("evil.example", proxy.addr)
        .build()
        .unwrap();
    let url = format!("http://evil.example:{}/stores", proxy.port());
    let response = rebound.get(url).send().await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(fakes.api.recorded().len(), 1);
}
