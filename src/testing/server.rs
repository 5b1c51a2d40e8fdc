//! Loopback HTTP servers for [`FakeIdm`] and [`FakeApi`].

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use super::idm::Outcome;
use super::{FakeApi, FakeIdm};

/// A server on `127.0.0.1` that stops (with all its connections) when dropped.
#[derive(Debug)]
pub struct FakeServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl FakeServer {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The token URL, for a fake IDM server.
    pub fn token_url(&self) -> String {
        self.url(FakeIdm::TOKEN_PATH)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The answer, or `None` to drop the connection without one.
type Handled = Pin<Box<dyn Future<Output = Option<Response<Full<Bytes>>>> + Send>>;

async fn serve(
    handler: Arc<dyn Fn(Request<Incoming>) -> Handled + Send + Sync>,
) -> io::Result<FakeServer> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        // Owned by the accept loop: aborting the loop drops the set, which aborts
        // every connection, hanging ones included.
        let mut connections = JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handler = handler.clone();
            connections.spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let answer = handler(request);
                    async move { answer.await.ok_or(Refused) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
            while connections.try_join_next().is_some() {}
        }
    });
    Ok(FakeServer { addr, task })
}

#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection refused by the fake")
    }
}

impl std::error::Error for Refused {}

impl FakeIdm {
    /// Serves this IDM on a free loopback port; use [`FakeServer::token_url`].
    pub async fn serve(&self) -> io::Result<FakeServer> {
        let idm = self.clone();
        serve(Arc::new(move |request: Request<Incoming>| {
            let idm = idm.clone();
            Box::pin(async move {
                let path = request.uri().path().to_owned();
                let header = |name| {
                    request
                        .headers()
                        .get(name)
                        .and_then(|h: &HeaderValue| h.to_str().ok())
                        .map(str::to_owned)
                };
                let authorization = header(AUTHORIZATION);
                let content_type = header(CONTENT_TYPE);
                let body = request.into_body().collect().await.ok()?.to_bytes();
                let form = String::from_utf8_lossy(&body).into_owned();
                let reply = match idm.handle(
                    &path,
                    &form,
                    authorization.as_deref(),
                    content_type.as_deref(),
                ) {
                    Outcome::Reply(reply) => reply,
                    Outcome::Delayed(delay, reply) => {
                        tokio::time::sleep(delay).await;
                        reply
                    }
                    Outcome::Hang => std::future::pending().await,
                    Outcome::Refuse => return None,
                };
                let mut response = Response::new(Full::new(reply.body.clone()));
                *response.status_mut() = reply.status;
                if serde_json::from_slice::<serde_json::Value>(&reply.body).is_ok() {
                    response
                        .headers_mut()
                        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                }
                if let Some(retry_after) = reply.retry_after {
                    response
                        .headers_mut()
                        .insert(RETRY_AFTER, HeaderValue::from(retry_after.as_secs()));
                }
                Some(response)
            }) as Handled
        }))
        .await
    }
}

impl FakeApi {
    /// Serves this API on a free loopback port. Each request's body is read to its end
    /// before it is answered, so a streaming upload completes and the
    /// [log](FakeApi::recorded) holds it.
    pub async fn serve(&self) -> io::Result<FakeServer> {
        let api = self.clone();
        serve(Arc::new(move |request: Request<Incoming>| {
            let api = api.clone();
            Box::pin(async move {
                let (parts, body) = request.into_parts();
                let body = body.collect().await.ok().map(|body| body.to_bytes());
                Some(api.reply(&parts.method, &parts.uri, &parts.headers, body))
            }) as Handled
        }))
        .await
    }
}
