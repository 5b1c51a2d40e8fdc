//! [`ReplayableBody`]: a request body that [`BufferBody`](super::BufferBody) either
//! collected, so it can be copied for a resend, or passes on as it came.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// The request body [`BufferBody`](super::BufferBody) hands to the services below
    /// it: a body of up to its limit, collected in memory and cheap to copy (copies share
    /// the bytes), or the original body, streamed on as it came.
    ///
    /// [`try_clone`](Self::try_clone) copies a collected body, and an empty one (size
    /// hint exactly 0) of any type; [`BufferedBodies`](super::BufferedBodies) is the
    /// [`ReplayBody`](super::ReplayBody) policy that calls it. Data comes out as
    /// [`Bytes`] (without a copy when the original's data already is `Bytes`, as with
    /// hyper's `Incoming` and axum's `Body`); errors are the original's.
    ///
    /// `Debug` shows the kind and length, never the bytes.
    pub struct ReplayableBody<B>
    where
        B: Body,
    {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B>
    where
        B: Body,
    {
        // Collected to its end: the data (never empty when `Some`) and its trailers.
        Buffered {
            data: Option<Bytes>,
            trailers: Option<HeaderMap>,
        },
        // Nothing to read (its size hint is exactly 0): sent as it came; a copy is an
        // empty body.
        Empty {
            #[pin]
            body: B,
        },
        // Over the limit: what was read while trying (never empty when `Some`), then the
        // rest of the original.
        Streaming {
            prefix: Option<Bytes>,
            #[pin]
            rest: B,
        },
        // The original failed while it was being collected: what was read, then its error,
        // as the service below would have seen it without buffering.
        Failed {
            prefix: Option<Bytes>,
            error: Option<B::Error>,
        },
    }
}

impl<B: Body> ReplayableBody<B> {
    /// A body collected to its end.
    pub(super) fn buffered(data: Option<Bytes>, trailers: Option<HeaderMap>) -> Self {
        ReplayableBody {
            kind: Kind::Buffered {
                data: data.filter(|data| !data.is_empty()),
                trailers,
            },
        }
    }

    /// A body with nothing to read, passed on as it came.
    pub(super) fn empty(body: B) -> Self {
        ReplayableBody {
            kind: Kind::Empty { body },
        }
    }

    /// `prefix` (already read from `rest`), then the rest of the original.
    pub(super) fn streaming(prefix: Option<Bytes>, rest: B) -> Self {
        ReplayableBody {
            kind: Kind::Streaming {
                prefix: prefix.filter(|prefix| !prefix.is_empty()),
                rest,
            },
        }
    }

    /// `prefix`, then the error the original failed with.
    pub(super) fn failed(prefix: Option<Bytes>, error: B::Error) -> Self {
        ReplayableBody {
            kind: Kind::Failed {
                prefix: prefix.filter(|prefix| !prefix.is_empty()),
                error: Some(error),
            },
        }
    }

    /// Whether [`try_clone`](Self::try_clone) gives a copy: the body was collected, or
    /// it is empty.
    pub fn is_replayable(&self) -> bool {
        matches!(self.kind, Kind::Buffered { .. } | Kind::Empty { .. })
    }

    /// A copy of what is left to read, if the body was collected or is empty; `None` for
    /// a body streamed on. A copy shares the bytes (no data is copied).
    pub fn try_clone(&self) -> Option<Self> {
        match &self.kind {
            Kind::Buffered { data, trailers } => Some(ReplayableBody {
                kind: Kind::Buffered {
                    data: data.clone(),
                    trailers: trailers.clone(),
                },
            }),
            Kind::Empty { .. } => Some(ReplayableBody::default()),
            Kind::Streaming { .. } | Kind::Failed { .. } => None,
        }
    }
}

/// An empty, replayable body.
impl<B: Body> Default for ReplayableBody<B> {
    fn default() -> Self {
        ReplayableBody::buffered(None, None)
    }
}

/// A collected (replayable) body holding `data`.
impl<B: Body> From<Bytes> for ReplayableBody<B> {
    fn from(data: Bytes) -> Self {
        ReplayableBody::buffered(Some(data), None)
    }
}

/// One frame of the original, its data as `Bytes` (`copy_to_bytes` of a `Bytes` is a
/// cheap split, not a copy).
fn poll_original<B: Body>(
    body: Pin<&mut B>,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
    body.poll_frame(cx).map(|frame| {
        frame.map(|frame| {
            frame.map(|frame| frame.map_data(|mut data| data.copy_to_bytes(data.remaining())))
        })
    })
}

impl<B: Body> Body for ReplayableBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Buffered { data, trailers } => Poll::Ready(match data.take() {
                Some(data) => Some(Ok(Frame::data(data))),
                None => trailers
                    .take()
                    .map(|trailers| Ok(Frame::trailers(trailers))),
            }),
            KindProj::Empty { body } => poll_original(body, cx),
            KindProj::Streaming { prefix, rest } => match prefix.take() {
                Some(prefix) => Poll::Ready(Some(Ok(Frame::data(prefix)))),
                None => poll_original(rest, cx),
            },
            KindProj::Failed { prefix, error } => Poll::Ready(match prefix.take() {
                Some(prefix) => Some(Ok(Frame::data(prefix))),
                None => error.take().map(Err),
            }),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Buffered { data, trailers } => data.is_none() && trailers.is_none(),
            Kind::Empty { body } => body.is_end_stream(),
            Kind::Streaming { prefix, rest } => prefix.is_none() && rest.is_end_stream(),
            Kind::Failed { prefix, error } => prefix.is_none() && error.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        let len = |bytes: &Option<Bytes>| bytes.as_ref().map_or(0, |b| b.len() as u64);
        match &self.kind {
            Kind::Buffered { data, .. } => SizeHint::with_exact(len(data)),
            Kind::Empty { body } => body.size_hint(),
            Kind::Streaming { prefix, rest } => {
                let inner = rest.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(inner.lower().saturating_add(len(prefix)));
                if let Some(upper) = inner.upper().and_then(|u| u.checked_add(len(prefix))) {
                    hint.set_upper(upper);
                }
                hint
            }
            Kind::Failed { prefix, .. } => SizeHint::with_exact(len(prefix)),
        }
    }
}

impl<B: Body> fmt::Debug for ReplayableBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A request body may hold anything: show its shape only.
        let (kind, read) = match &self.kind {
            Kind::Buffered { data, .. } => ("buffered", data),
            Kind::Empty { .. } => ("empty", &None),
            Kind::Streaming { prefix, .. } => ("streaming", prefix),
            Kind::Failed { prefix, .. } => ("failed", prefix),
        };
        f.debug_struct("ReplayableBody")
            .field("kind", &kind)
            .field("bytes_in_memory", &read.as_ref().map_or(0, Bytes::len))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;

    #[test]
    fn the_size_hint_counts_what_was_read_and_what_is_left() {
        let rest = Full::new(Bytes::from_static(b"12345"));
        let body = ReplayableBody::streaming(Some(Bytes::from_static(b"abc")), rest);
        assert_eq!(body.size_hint().exact(), Some(8));
        let body: ReplayableBody<Full<Bytes>> = ReplayableBody::from(Bytes::from_static(b"ab"));
        assert_eq!(body.size_hint().exact(), Some(2));
        assert!(ReplayableBody::<Full<Bytes>>::default().is_end_stream());
    }
}
