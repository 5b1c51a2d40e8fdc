//! reqwest on loopback: a plain client with a static bearer header, a
//! `ClientWithMiddleware` with a trivial static-header middleware, and the same through
//! `IdmAuthMiddleware` (with its default resend, which copies each request, and without),
//! at 1 and at 64 requests in flight. The ratio `static / ours`
//! of the times per request is ours in requests per second over the static header's.
//!
//! `cargo bench -p bodhi-auth-benches --bench reqwest_overhead`

use std::time::{Duration, Instant};

use bodhi_auth::testing::{FakeApi, FakeIdm};
use bodhi_auth::{Credentials, IdmAuthMiddleware, TokenManager, TokenScope};
use bodhi_auth_benches::Comparison;
use futures_util::StreamExt;
use http::{Extensions, HeaderValue, header::AUTHORIZATION};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Middleware, Next};

/// The trivial middleware people would write: set a header they already have.
struct StaticBearer(HeaderValue);

#[async_trait::async_trait]
impl Middleware for StaticBearer {
    async fn handle(
        &self,
        mut request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        request.headers_mut().insert(AUTHORIZATION, self.0.clone());
        next.run(request, extensions).await
    }
}

#[derive(Clone)]
enum Client {
    Plain(reqwest::Client, HeaderValue),
    Middleware(ClientWithMiddleware),
}

impl Client {
    async fn get(&self, url: &str) {
        let status = match self {
            Client::Plain(client, header) => client
                .get(url)
                .header(AUTHORIZATION, header.clone())
                .send()
                .await
                .unwrap()
                .status(),
            Client::Middleware(client) => client.get(url).send().await.unwrap().status(),
        };
        assert_eq!(status, 200);
    }
}

/// `iters` requests with `in_flight` at a time.
async fn run(client: &Client, url: &str, iters: u64, in_flight: usize) -> Duration {
    let start = Instant::now();
    futures_util::stream::iter(0..iters)
        .map(|_| client.get(url))
        .buffer_unordered(in_flight)
        .collect::<Vec<()>>()
        .await;
    start.elapsed()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (clients, url, _server) = runtime.block_on(async {
        let idm = FakeIdm::new();
        let api = FakeApi::new(&idm);
        let server = api.serve().await.unwrap();
        let manager = TokenManager::builder(Credentials::new("user", "secret"))
            .fake_idm(&idm)
            .build()
            .unwrap();
        let token = manager.access_token().await.unwrap();
        let header = token.header_value().clone();
        let clients = [
            (PLAIN, Client::Plain(reqwest::Client::new(), header.clone())),
            (
                STATIC,
                Client::Middleware(
                    ClientBuilder::new(reqwest::Client::new())
                        .with(StaticBearer(header))
                        .build(),
                ),
            ),
            (
                OURS,
                Client::Middleware(
                    ClientBuilder::new(reqwest::Client::new())
                        .with(IdmAuthMiddleware::with_manager(
                            manager.clone(),
                            TokenScope::origins([server.url("")]).unwrap(),
                        ))
                        .build(),
                ),
            ),
            (
                OURS_NO_RESEND,
                Client::Middleware(
                    ClientBuilder::new(reqwest::Client::new())
                        .with(
                            IdmAuthMiddleware::with_manager(
                                manager,
                                TokenScope::origins([server.url("")]).unwrap(),
                            )
                            .resend(false),
                        )
                        .build(),
                ),
            ),
        ];
        (clients, server.url("/stores"), server)
    });
    for in_flight in [1, 64] {
        let mut comparison = Comparison::new(&format!("reqwest_loopback/{in_flight}_in_flight"));
        comparison.rounds(41).batch(Duration::from_millis(20));
        for (name, client) in &clients {
            let (runtime, url) = (&runtime, &url);
            comparison.variant(name, move |iters| {
                runtime.block_on(run(client, url, iters, in_flight))
            });
        }
        comparison
            .ratio(STATIC, OURS)
            .ratio(STATIC, OURS_NO_RESEND)
            .ratio(PLAIN, OURS)
            .run();
    }
}

const PLAIN: &str = "plain reqwest, static header";
const STATIC: &str = "middleware: static header";
const OURS: &str = "middleware: IdmAuthMiddleware";
const OURS_NO_RESEND: &str = "middleware: IdmAuthMiddleware, resend off (no request copy)";
