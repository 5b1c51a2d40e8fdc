//! The default IDM client never sends loopback traffic through the system proxy.
//!
//! Proxy settings come from process-global environment variables, so this binary holds
//! exactly one test, which sets them before any other thread of its own starts.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bodhi_auth::testing::FakeIdm;
use bodhi_auth::{Credentials, TokenManager};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[test]
fn a_loopback_token_url_bypasses_the_system_proxy() {
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    // SAFETY: the only test in this binary, and no runtime or other thread it starts
    // exists yet, so nothing reads the environment concurrently.
    unsafe {
        for name in ["NO_PROXY", "no_proxy", "REQUEST_METHOD"] {
            std::env::remove_var(name);
        }
        for name in ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
            std::env::set_var(name, &proxy_url);
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let proxied = Arc::new(AtomicUsize::new(0));
        let proxy = TcpListener::from_std({
            proxy.set_nonblocking(true).unwrap();
            proxy
        })
        .unwrap();
        {
            let proxied = proxied.clone();
            tokio::spawn(async move {
                while let Ok((mut stream, _)) = proxy.accept().await {
                    let mut buf = [0u8; 1024];
                    if let Ok(n) = stream.read(&mut buf).await {
                        proxied.fetch_add(n, Ordering::SeqCst);
                    }
                    let _ = stream
                        .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await;
                }
            });
        }
        let idm = FakeIdm::new();
        let server = idm.serve().await.unwrap();
        let manager = TokenManager::builder(Credentials::new("user", "secret"))
            .token_url(server.token_url())
            .max_attempts(1)
            .build()
            .unwrap();
        let login = manager.access_token().await;
        assert_eq!(proxied.load(Ordering::SeqCst), 0, "the proxy saw the form");
        login.unwrap();
        assert_eq!(idm.password_grants(), 1);

        // The environment does route reqwest's own default client through the proxy,
        // so the assertion above is not vacuous.
        let control = reqwest::Client::new().get(server.token_url()).send().await;
        assert_eq!(control.unwrap().status(), 502);
        assert!(proxied.load(Ordering::SeqCst) > 0);
    });
}
