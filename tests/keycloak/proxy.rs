//! A recording HTTP proxy between a token manager and Keycloak: it shows what the crate
//! put on the wire (the refresh grant's `Authorization` header) and what Keycloak
//! answered, per manager, where Keycloak's events cannot tell (refused refreshes carry
//! no user).
//!
//! The manager's `reqwest::Client` is pointed at it with `Proxy::http`, so requests
//! still name Keycloak's own host and the token issuer is unchanged.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::harness::BoxError;

/// One token-endpoint exchange as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The form's `grant_type` (`password`, `refresh_token`), or empty.
    pub grant_type: String,
    /// Whether `Authorization` was exactly `Bearer <the form's refresh_token>`.
    pub bearer_is_the_refresh_token: bool,
    /// Whether the request had an `Authorization` header at all.
    pub has_authorization: bool,
    pub status: u16,
    /// Keycloak's answer when it refused (a success holds tokens: not kept).
    pub error_body: String,
}

type Log = Arc<Mutex<Vec<Exchange>>>;

/// A proxy on 127.0.0.1 that forwards to wherever each request points; stops on drop.
pub struct RecordingProxy {
    url: String,
    log: Log,
    task: JoinHandle<()>,
}

impl RecordingProxy {
    pub async fn start() -> Result<RecordingProxy, BoxError> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let log = Log::default();
        let upstream = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let task = tokio::spawn(accept(listener, upstream, log.clone()));
        Ok(RecordingProxy { url, log, task })
    }

    /// A client for `TokenManagerBuilder::http_client` that goes through this proxy.
    pub fn client(&self) -> Result<reqwest::Client, BoxError> {
        Ok(reqwest::Client::builder()
            .proxy(reqwest::Proxy::http(&self.url)?)
            .build()?)
    }

    /// Everything recorded so far, in order.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.log.lock().map(|log| log.clone()).unwrap_or_default()
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(listener: TcpListener, upstream: Client<HttpConnector, Full<Bytes>>, log: Log) {
    while let Ok((stream, _)) = listener.accept().await {
        let (upstream, log) = (upstream.clone(), log.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let (upstream, log) = (upstream.clone(), log.clone());
                async move { Ok::<_, Infallible>(forward(request, &upstream, &log).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn forward(
    request: Request<Incoming>,
    upstream: &Client<HttpConnector, Full<Bytes>>,
    log: &Log,
) -> Response<Full<Bytes>> {
    match exchange(request, upstream, log).await {
        Ok(response) => response,
        Err(error) => {
            let mut response = Response::new(Full::new(Bytes::from(error.to_string())));
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            response
        }
    }
}

async fn exchange(
    request: Request<Incoming>,
    upstream: &Client<HttpConnector, Full<Bytes>>,
    log: &Log,
) -> Result<Response<Full<Bytes>>, BoxError> {
    let (parts, body) = request.into_parts();
    let form = body.collect().await?.to_bytes();
    let field = |name: &str| {
        form_urlencoded::parse(&form)
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default()
    };
    let authorization = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let refresh_token = field("refresh_token");
    let grant_type = field("grant_type");
    // The request line is absolute-form (`POST http://127.0.0.1:<port>/...`): the
    // client forwards it as it is.
    let response = upstream
        .request(Request::from_parts(parts, Full::new(form.clone())))
        .await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    let recorded = Exchange {
        grant_type,
        bearer_is_the_refresh_token: !refresh_token.is_empty()
            && authorization.as_deref() == Some(&format!("Bearer {refresh_token}")),
        has_authorization: authorization.is_some(),
        status: parts.status.as_u16(),
        error_body: if parts.status.is_success() {
            String::new()
        } else {
            String::from_utf8_lossy(&body).into_owned()
        },
    };
    if let Ok(mut log) = log.lock() {
        log.push(recorded);
    }
    Ok(Response::from_parts(parts, Full::new(body)))
}
