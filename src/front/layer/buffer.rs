//! [`BufferBodyLayer`]: collects request bodies up to a limit, so a request of any body
//! type can be resent after a 401.

use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::request::Parts;
use http::{HeaderMap, Request};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::body::ReplayableBody;

/// A Tower layer that collects request bodies of up to `limit` bytes into memory, so
/// that [`IdmAuthLayer`](super::IdmAuthLayer) with [`BufferedBodies`](super::BufferedBodies)
/// can resend them after a 401.
///
/// [`IdmAuth`](super::IdmAuth) copies a request before its first send, and a body that is
/// read as it is sent (hyper's `Incoming`, axum's `Body`, any stream) cannot be copied.
/// Placed outside the auth layer, [`BufferBody`] reads each body whose size is within its
/// limit into memory, and hands the services below a [`ReplayableBody`] that
/// [`BufferedBodies`](super::BufferedBodies) copies:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), tower::BoxError> {
/// use bodhi_auth::testing::{FakeApi, FakeIdm};
/// use bodhi_auth::{BufferBodyLayer, BufferedBodies, Credentials, IdmAuthLayer, TokenManager, TokenScope};
/// use futures_util::stream;
/// use http_body_util::StreamBody;
/// use tower::{ServiceBuilder, ServiceExt};
///
/// let idm = FakeIdm::new();
/// let api = FakeApi::new(&idm);
/// let manager = TokenManager::builder(Credentials::new("user", "secret"))
///     .fake_idm(&idm)
///     .build()?;
/// let service = ServiceBuilder::new()
///     .layer(BufferBodyLayer::new(64 * 1024)) // bodies of up to 64 KiB can be resent
///     .layer(
///         IdmAuthLayer::with_manager(manager, TokenScope::origins(["https://api.example"])?)
///             .replay(BufferedBodies),
///     )
///     .service(api.clone());
///
/// // A streamed body, which the auth layer alone could not copy.
/// let chunks = vec![Ok::<_, std::io::Error>(http_body::Frame::data(bytes::Bytes::from("{}")))];
/// let request = http::Request::post("https://api.example/stores")
///     .body(StreamBody::new(stream::iter(chunks)))?;
/// api.reject_next(1); // the API refuses the first token
/// let response = service.oneshot(request).await?;
/// assert_eq!(response.status(), 200); // resent with a new one
/// # Ok(()) }
/// ```
///
/// # Which bodies are collected
/// - A body whose size hint is exactly 0, or that is at its end, is not read: it is
///   passed on as it came, and a copy of it is an empty body. This needs no `Default`
///   for the body type, so it holds for `Incoming` too.
/// - A body whose size hint's lower bound is over the limit is not read: it streams on,
///   and a 401 to it comes back as it is.
/// - Any other body is read until it ends or more than `limit` bytes have come (a body
///   without a length, such as a chunked upload, is judged by what it turns out to be).
///   If it ended, the bytes and any trailers are kept in memory and the request is sent
///   with them; otherwise what was read is sent first, then the rest streams on. A body
///   that fails while being read is sent as what was read, then its error, as the
///   service below would have seen it.
///
/// A request is sent only once its body is read (or judged too large), so memory per
/// request stays under the limit plus one chunk. Do not put this layer before requests
/// whose body waits for their response (a bidirectional stream): it would wait for a
/// body that never ends. The body type must be `Unpin` (`Incoming`, axum's `Body` and
/// boxed bodies are); wrap another in `Box::pin`.
#[derive(Debug, Clone, Copy)]
pub struct BufferBodyLayer {
    limit: usize,
}

impl BufferBodyLayer {
    /// Collects bodies of up to `limit` bytes (inclusive); larger ones stream on.
    pub fn new(limit: usize) -> Self {
        BufferBodyLayer { limit }
    }

    /// The largest body, in bytes, that is collected.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

impl<S> Layer<S> for BufferBodyLayer {
    type Service = BufferBody<S>;

    fn layer(&self, inner: S) -> BufferBody<S> {
        BufferBody::new(inner, self.limit)
    }
}

/// Collects each request body of up to its limit into a [`ReplayableBody`], then calls
/// the inner service. Made by [`BufferBodyLayer`].
#[derive(Debug, Clone)]
pub struct BufferBody<S> {
    inner: S,
    limit: usize,
}

impl<S> BufferBody<S> {
    /// Wraps `inner`, collecting bodies of up to `limit` bytes.
    pub fn new(inner: S, limit: usize) -> Self {
        BufferBody { inner, limit }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<Request<B>> for BufferBody<S>
where
    S: Service<Request<ReplayableBody<B>>> + Clone,
    B: Body + Unpin,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BufferBodyFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let (parts, body) = request.into_parts();
        let hint = body.size_hint();
        let limit = u64::try_from(self.limit).unwrap_or(u64::MAX);
        if body.is_end_stream() || hint.exact() == Some(0) {
            let request = Request::from_parts(parts, ReplayableBody::empty(body));
            return BufferBodyFuture::called(self.inner.call(request));
        }
        if hint.lower() > limit {
            let request = Request::from_parts(parts, ReplayableBody::streaming(None, body));
            return BufferBodyFuture::called(self.inner.call(request));
        }
        // `poll_ready` readied `self.inner`, not its clones: the request takes the ready
        // instance with it while its body is read, and leaves a fresh clone for the next
        // `poll_ready` (tower-service docs, "Be careful when cloning inner services").
        let clone = self.inner.clone();
        let service = mem::replace(&mut self.inner, clone);
        BufferBodyFuture {
            state: State::Collecting {
                parts,
                body,
                read: Read::default(),
                trailers: None,
                service,
                limit: self.limit,
            },
        }
    }
}

pin_project! {
    /// The response future of [`BufferBody`]: reads the body, then calls the inner
    /// service.
    pub struct BufferBodyFuture<S, B>
    where
        S: Service<Request<ReplayableBody<B>>>,
        B: Body,
    {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    #[project_replace = StateOwned]
    enum State<S, B>
    where
        S: Service<Request<ReplayableBody<B>>>,
        B: Body,
    {
        Collecting {
            parts: Parts,
            body: B,
            read: Read,
            trailers: Option<HeaderMap>,
            service: S,
            limit: usize,
        },
        Called {
            #[pin]
            future: S::Future,
        },
        // Only between taking the request out of `Collecting` and calling the service.
        Taken,
    }
}

impl<S, B> BufferBodyFuture<S, B>
where
    S: Service<Request<ReplayableBody<B>>>,
    B: Body,
{
    fn called(future: S::Future) -> Self {
        BufferBodyFuture {
            state: State::Called { future },
        }
    }
}

impl<S, B> fmt::Debug for BufferBodyFuture<S, B>
where
    S: Service<Request<ReplayableBody<B>>>,
    B: Body,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Collecting { .. } => "Collecting",
            State::Called { .. } => "Called",
            State::Taken => "Taken",
        };
        f.debug_struct("BufferBodyFuture")
            .field("state", &state)
            .finish()
    }
}

impl<S, B> Future for BufferBodyFuture<S, B>
where
    S: Service<Request<ReplayableBody<B>>>,
    B: Body + Unpin,
{
    type Output = Result<S::Response, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let outcome = match this.state.as_mut().project() {
                StateProj::Collecting {
                    body,
                    read,
                    trailers,
                    limit,
                    ..
                } => ready!(collect(body, read, trailers, *limit, cx)),
                StateProj::Called { future } => return future.poll(cx),
                StateProj::Taken => panic!("BufferBodyFuture polled after a panic in `call`"),
            };
            let StateOwned::Collecting {
                parts,
                body,
                read,
                trailers,
                mut service,
                ..
            } = this.state.as_mut().project_replace(State::Taken)
            else {
                continue; // not reached: the state was `Collecting` above
            };
            let body = match outcome {
                Outcome::Ended => ReplayableBody::buffered(read.into_bytes(), trailers),
                Outcome::OverLimit => ReplayableBody::streaming(read.into_bytes(), body),
                Outcome::Failed(error) => ReplayableBody::failed(read.into_bytes(), error),
            };
            let future = service.call(Request::from_parts(parts, body));
            this.state.set(State::Called { future });
        }
    }
}

/// How reading a body up to the limit ended.
enum Outcome<E> {
    Ended,
    OverLimit,
    Failed(E),
}

/// Reads frames until the body ends, fails, or has given more than `limit` bytes.
fn collect<B: Body + Unpin>(
    body: &mut B,
    read: &mut Read,
    trailers: &mut Option<HeaderMap>,
    limit: usize,
    cx: &mut Context<'_>,
) -> Poll<Outcome<B::Error>> {
    loop {
        let frame = match ready!(Pin::new(&mut *body).poll_frame(cx)) {
            None => return Poll::Ready(Outcome::Ended),
            Some(Err(error)) => return Poll::Ready(Outcome::Failed(error)),
            Some(Ok(frame)) => frame,
        };
        match frame.into_data() {
            Ok(mut data) => {
                read.push(data.copy_to_bytes(data.remaining()));
                if read.len() > limit {
                    return Poll::Ready(Outcome::OverLimit);
                }
            }
            Err(frame) => {
                if let Ok(more) = frame.into_trailers() {
                    match trailers {
                        Some(trailers) => trailers.extend(more),
                        None => *trailers = Some(more),
                    }
                }
            }
        }
    }
}

/// The bytes read so far: one chunk is kept as it came (no copy, no allocation); from
/// the second on they are gathered into one buffer.
#[derive(Default)]
enum Read {
    #[default]
    Nothing,
    One(Bytes),
    Many(BytesMut),
}

impl Read {
    fn len(&self) -> usize {
        match self {
            Read::Nothing => 0,
            Read::One(bytes) => bytes.len(),
            Read::Many(bytes) => bytes.len(),
        }
    }

    fn push(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        *self = match mem::take(self) {
            Read::Nothing => Read::One(chunk),
            Read::One(first) => {
                let mut many = BytesMut::with_capacity(first.len() + chunk.len());
                many.extend_from_slice(&first);
                many.extend_from_slice(&chunk);
                Read::Many(many)
            }
            Read::Many(mut many) => {
                many.extend_from_slice(&chunk);
                Read::Many(many)
            }
        };
    }

    fn into_bytes(self) -> Option<Bytes> {
        match self {
            Read::Nothing => None,
            Read::One(bytes) => Some(bytes),
            Read::Many(bytes) => Some(bytes.freeze()),
        }
    }
}
