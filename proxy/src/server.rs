//! The listener and the request path: accept (under a cap), guard, answer `/-/`, or
//! rewrite and forward; then drain on a signal.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bodhi_auth::TokenManager;
use bytes::Bytes;
use http::header::ORIGIN;
use http::{Request, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{Config, Listen, Upstream};
use crate::forward::{self, NoToken, Upstreamer};
use crate::guard::Guard;
use crate::ops::{self, Counters};
use crate::{cors, reply, shutdown};

/// The largest request head (request line and headers) accepted: 64 KiB; a larger one
/// is answered 431 by hyper and never forwarded.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// A client has this long to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

type ProxyBody = Either<Incoming, Full<Bytes>>;

/// Everything a request needs, shared by all connections.
struct App {
    guard: Guard,
    upstream: Upstream,
    upstreamer: Upstreamer,
    manager: TokenManager,
    counters: Counters,
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

/// Runs the proxy until SIGTERM or SIGINT, then drains.
pub(crate) async fn run(config: Config) -> Result<(), String> {
    let manager = config.manager.build()?;
    let scope = config.scope()?;
    let upstreamer = forward::upstreamer(manager.clone(), scope, config.replay_limit)
        .map_err(|e| format!("the upstream client: {e}"))?;
    let signal = shutdown::signal_received().map_err(|e| format!("signal handlers: {e}"))?;
    let (listener, shown, port) = bind(&config.listen).await?;
    if config.allow_remote {
        tracing::warn!(
            listen = %shown,
            "listening off loopback (--allow-remote): every client that has the client token \
             is answered with this account's Bodhi token"
        );
    }
    let guard = Guard::new(
        port,
        &config.accept_hosts,
        config.allow_origins.clone(),
        config.client_token.clone(),
        config.pass_client_auth,
    );
    let app = Arc::new(App {
        guard,
        upstream: config.upstream.clone(),
        upstreamer,
        manager,
        counters: Counters::default(),
    });
    tracing::info!(listen = %shown, upstream = %config.upstream.origin(), "listening");
    // Tests and scripts wait for this line rather than polling.
    println!("listening on {shown}");

    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let mut signal = std::pin::pin!(signal);
    let reason = loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("never closed"),
            reason = &mut signal => break reason,
        };
        let watcher = graceful.watcher();
        let app = app.clone();
        let accepted = tokio::select! {
            accepted = accept(&listener, app, watcher, permit) => accepted,
            reason = &mut signal => break reason,
        };
        if let Err(error) = accepted {
            // Out of file descriptors, say: the connection is gone; do not spin.
            tracing::warn!(%error, "accept failed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    // Stop accepting: the listener is closed before draining.
    if let Listener::Unix(_, path) = &listener {
        let _ = std::fs::remove_file(path);
    }
    drop(listener);
    tracing::info!(
        signal = reason,
        open = graceful.count(),
        "shutting down: draining in-flight requests"
    );
    println!("shutting down");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("drained"),
        () = tokio::time::sleep(config.shutdown_timeout) => {
            tracing::warn!(timeout = ?config.shutdown_timeout, "drain deadline passed; closing the remaining connections");
        }
    }
    Ok(())
}

/// Binds the listener: TCP, or a Unix socket that is `0600` from its creation.
async fn bind(listen: &Listen) -> Result<(Listener, String, Option<u16>), String> {
    match listen {
        Listen::Tcp(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|e| format!("--listen {addr}: {e}"))?;
            let local = listener.local_addr().map_err(|e| e.to_string())?;
            Ok((
                Listener::Tcp(listener),
                local.to_string(),
                Some(local.port()),
            ))
        }
        Listen::Unix(path) => {
            let listener = bind_unix(path)?;
            Ok((
                Listener::Unix(listener, path.clone()),
                format!("unix:{}", path.display()),
                None,
            ))
        }
    }
}

/// The socket is made under a umask of `0177`, so it never exists with wider
/// permissions; nothing else in the process creates files meanwhile (start-up). A stale
/// socket (nobody listening) is replaced; anything else at `path` is an error.
fn bind_unix(path: &Path) -> Result<UnixListener, String> {
    use std::os::unix::fs::FileTypeExt;
    let shown = path.display();
    if let Ok(metadata) = std::fs::symlink_metadata(path) {
        if !metadata.file_type().is_socket() {
            return Err(format!("--unix-socket {shown}: exists and is not a socket"));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(format!(
                "--unix-socket {shown}: another process is listening there"
            ));
        }
        std::fs::remove_file(path).map_err(|e| format!("--unix-socket {shown}: {e}"))?;
    }
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
    let bound = UnixListener::bind(path);
    rustix::process::umask(old);
    bound.map_err(|e| format!("--unix-socket {shown}: {e}"))
}

/// Accepts one connection and spawns its task.
async fn accept(
    listener: &Listener,
    app: Arc<App>,
    watcher: Watcher,
    permit: OwnedSemaphorePermit,
) -> std::io::Result<()> {
    match listener {
        Listener::Tcp(listener) => {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(serve(stream, app, watcher, permit));
        }
        Listener::Unix(listener, _) => {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(serve(stream, app, watcher, permit));
        }
    }
    Ok(())
}

/// Serves one connection (HTTP/1.1, or HTTP/2 with prior knowledge) until it ends or the
/// drain closes it; its permit frees a place under the cap.
async fn serve<I>(io: I, app: Arc<App>, watcher: Watcher, permit: OwnedSemaphorePermit)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    app.counters.connections.fetch_add(1, Ordering::Relaxed);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES);
    builder.http2().max_header_list_size(MAX_HEAD_BYTES as u32);
    let service_app = app.clone();
    let service = hyper::service::service_fn(move |request| {
        let app = service_app.clone();
        async move { Ok::<_, Infallible>(handle(&app, request).await) }
    });
    let connection = builder
        .serve_connection(TokioIo::new(io), service)
        .into_owned();
    if let Err(error) = watcher.watch(connection).await {
        tracing::debug!(%error, "connection ended with an error");
    }
    app.counters.connections.fetch_sub(1, Ordering::Relaxed);
    drop(permit);
}

/// One request; an allowed browser origin may read the answer (CORS).
async fn handle(app: &App, request: Request<Incoming>) -> Response<ProxyBody> {
    let origin = request.headers().get(ORIGIN).cloned();
    let mut response = guarded(app, request).await;
    if let Some(origin) = origin.filter(|o| app.guard.allows_origin(o)) {
        cors::allow(response.headers_mut(), &origin);
    }
    response
}

/// Guard, then a CORS preflight, the proxy's own endpoints, or upstream.
async fn guarded(app: &App, mut request: Request<Incoming>) -> Response<ProxyBody> {
    let counters = &app.counters;
    counters.requests.fetch_add(1, Ordering::Relaxed);
    let (method, uri, version) = (request.method(), request.uri(), request.version());
    let checked = app.guard.check(method, uri, version, request.headers());
    let checked = checked.and_then(|()| {
        if uri.path().starts_with(ops::PREFIX) {
            Ok(())
        } else {
            app.guard.check_authorization(request.headers())
        }
    });
    if let Err(refusal) = checked {
        counters.refused(refusal.code);
        // The path is not logged: it may carry identifiers; the reason says enough.
        tracing::info!(%method, reason = refusal.code, "refused");
        return reply::refusal(refusal).map(Either::Right);
    }
    // Past the guard, an `Origin` is an allowed one.
    if let Some(origin) = request.headers().get(ORIGIN)
        && cors::is_preflight(method, request.headers())
    {
        return cors::preflight(origin, request.headers()).map(Either::Right);
    }
    if uri.path().starts_with(ops::PREFIX) {
        let path = uri.path().to_owned();
        let method = method.clone();
        return ops::answer(&method, &path, &app.manager, counters)
            .await
            .map(Either::Right);
    }
    if forward::rewrite(&mut request, &app.upstream).is_err() {
        let r = reply::json(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the request URI cannot be forwarded",
            None,
        );
        return r.map(Either::Right);
    }
    let method = request.method().clone();
    let started = Instant::now();
    counters.in_flight.fetch_add(1, Ordering::Relaxed);
    let sent = forward::send(app.upstreamer.clone(), request).await;
    counters.in_flight.fetch_sub(1, Ordering::Relaxed);
    match sent {
        Ok(response) => {
            counters.upstream_status(response.status());
            tracing::debug!(%method, status = response.status().as_u16(), elapsed = ?started.elapsed(), "forwarded");
            response.map(Either::Left)
        }
        Err(error) => {
            if let Some(token_error) = bodhi_auth::Error::find_in(&*error) {
                counters.token_unavailable.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%method, kind = ?token_error.kind(), error = %token_error, "no valid token: answered 503");
                reply::token_unavailable(token_error, &app.manager).map(Either::Right)
            } else if error.downcast_ref::<NoToken>().is_some() {
                counters.token_unavailable.fetch_add(1, Ordering::Relaxed);
                tracing::error!(%method, "a request would have gone upstream without a token: refused");
                reply::json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "no_token",
                    "no token for this request; not forwarded",
                    Some(Duration::from_secs(1)),
                )
                .map(Either::Right)
            } else {
                counters.upstream_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%method, error = %error, "upstream failed: answered 502");
                reply::bad_gateway().map(Either::Right)
            }
        }
    }
}
