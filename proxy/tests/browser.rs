//! A real browser: headless Chromium loads a page from another loopback origin whose
//! script posts to the proxy (a `no-cors` `text/plain` POST, which needs no preflight,
//! and a CORS JSON POST). The proxy must refuse both and the upstream see nothing.
//!
//! Needs Debian's `chromium` (`.ci/run` installs it); fails, rather than skips, without.

mod support;

use std::convert::Infallible;

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

/// The page server's socket on 127.0.0.1, bound first so that its origin can be given
/// to the proxy.
async fn bind_pages() -> (tokio::net::TcpListener, u16) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

/// Serves the page and sends each `/done` query to `done`.
fn serve_pages(
    listener: tokio::net::TcpListener,
    proxy: String,
    done: mpsc::UnboundedSender<String>,
) {
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
}

/// Loads `url` in headless Chromium and returns what the page reported on `/done`.
async fn load(url: &str, done: &mut mpsc::UnboundedReceiver<String>) -> String {
    // A profile of its own: Chromium hands a URL to a running instance of the same
    // profile, and tests run in parallel.
    static LOADS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = LOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let profile =
        std::env::temp_dir().join(format!("bodhi-proxy-chromium-{}-{n}", std::process::id()));
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
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromium (apt-get install -y chromium; .ci/run installs it)");
    let report = tokio::time::timeout(HANG, done.recv())
        .await
        .unwrap_or_else(|_| panic!("the page {url} never reported"))
        .unwrap();
    let _ = chromium.kill().await;
    let _ = chromium.wait().await;
    let _ = std::fs::remove_dir_all(&profile);
    report
}

#[tokio::test]
async fn a_page_on_another_loopback_origin_cannot_use_the_proxy() {
    let fakes = Fakes::start().await;
    let proxy = Proxy::start(&fakes.env(), &[]);
    let (listener, port) = bind_pages().await;
    let (done_tx, mut done) = mpsc::unbounded_channel();
    serve_pages(listener, proxy.url(""), done_tx);

    for origin in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        let report = load(&format!("http://{origin}/page"), &mut done).await;
        assert_eq!(
            report, "simple=opaque&cors=error",
            "from {origin}: the no-cors POST was sent (its answer is opaque), the CORS one failed"
        );
    }

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

#[tokio::test]
async fn an_allowed_origin_gets_cors_answers_and_reaches_the_upstream() {
    let fakes = Fakes::start().await;
    let (listener, port) = bind_pages().await;
    let origin = format!("http://127.0.0.1:{port}");
    let proxy = Proxy::start(&fakes.env(), &["--allow-origin", &origin]);
    let (done_tx, mut done) = mpsc::unbounded_channel();
    serve_pages(listener, proxy.url(""), done_tx);

    let report = load(&format!("{origin}/page"), &mut done).await;
    assert_eq!(report, "simple=opaque&cors=status-200");
    let log = fakes.api.recorded();
    let methods: Vec<&str> = log.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(
        methods,
        ["POST", "POST"],
        "the preflight was answered by the proxy"
    );
    assert_eq!(log[1].body.as_deref(), Some(&br#"{"order":1}"#[..]));
}
