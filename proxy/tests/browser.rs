//! A real browser: headless Chromium loads a page from another loopback origin whose
//! script posts to the proxy (a `no-cors` `text/plain` POST, which needs no preflight,
//! and a CORS JSON POST). The proxy must refuse both and the upstream see nothing.
//!
//! Needs Debian's `chromium` (`.ci/run` installs it); fails, rather than skips, without.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::{Fakes, HANG, Proxy};
use tokio::sync::mpsc;

/// The page's script tries both requests, then reports what it saw on `/done`.
fn page(proxy: &str) -> String {
    format!(
        r#"<!doctype html><html><body><script>
const target = "{proxy}/orders";
async function attempt(init) {{
  try {{
    const r = await fetch(target, init);
    return r.type === "opaque" ? "opaque" : "status-" + r.status;
  }} catch (e) {{
    return "error";
  }}
}}
(async () => {{
  const simple = await attempt({{method: "POST", mode: "no-cors",
    headers: {{"Content-Type": "text/plain"}}, body: "order=1"}});
  const cors = await attempt({{method: "POST",
    headers: {{"Content-Type": "application/json"}}, body: JSON.stringify({{order: 1}})}});
  await fetch("/done?simple=" + simple + "&cors=" + cors);
}})();
</script></body></html>"#
    )
}

/// Serves the page on 127.0.0.1 and sends each `/done` query to `done`.
async fn page_server(proxy: String, done: mpsc::UnboundedSender<String>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (proxy, done) = (proxy.clone(), done.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let body = match request.uri().path() {
                        "/page" => page(&proxy),
                        "/done" => {
                            let _ = done.send(request.uri().query().unwrap_or("").to_owned());
                            String::new()
                        }
                        _ => String::new(),
                    };
                    let mut response = Response::new(Full::new(Bytes::from(body)));
                    response
                        .headers_mut()
                        .insert("content-type", "text/html".parse().unwrap());
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_page_on_another_loopback_origin_cannot_use_the_proxy() {
    let fakes = Fakes::start().await;
    let proxy = Proxy::start(&fakes.env(), &[]);
    let (done_tx, mut done) = mpsc::unbounded_channel();
    let pages = page_server(proxy.url(""), done_tx).await;
    let profile = std::env::temp_dir().join(format!("bodhi-proxy-chromium-{}", std::process::id()));

    for origin in [
        format!("127.0.0.1:{}", pages.port()),
        format!("localhost:{}", pages.port()),
    ] {
        // Kept running (remote debugging) until the page reports; killed on drop.
        let mut chromium = tokio::process::Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-dev-shm-usage",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("http://{origin}/page"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromium (apt-get install -y chromium; .ci/run installs it)");
        let report = tokio::time::timeout(HANG, done.recv())
            .await
            .unwrap_or_else(|_| panic!("the page on {origin} never reported"))
            .unwrap();
        let _ = chromium.kill().await;
        assert_eq!(
            report, "simple=opaque&cors=error",
            "from {origin}: the no-cors POST was sent (its answer is opaque), the CORS one failed"
        );
    }
    let _ = std::fs::remove_dir_all(&profile);

    assert!(
        fakes.api.recorded().is_empty(),
        "the upstream saw {:?}",
        fakes.api.recorded()
    );
    assert_eq!(fakes.idm.token_requests(), 0);
    // The browser did reach the proxy: the POST and the preflight, from both pages.
    let refused = proxy
        .metric("bodhi_proxy_refused_total{reason=\"origin_refused\"}")
        .await;
    assert!(refused >= 4.0, "refused {refused}");
}
