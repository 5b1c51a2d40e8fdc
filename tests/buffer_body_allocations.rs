//! `BufferBodyLayer` allocates nothing on the cached-token path for a body that needs no
//! buffer: an empty one, or one that arrives in a single chunk within the limit. Counted
//! per thread by a global allocator, so other threads cannot disturb the count.
//!
//! Its own binary: the allocator is process-wide.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::convert::Infallible;

use bodhi_auth::testing::FakeIdm;
use bodhi_auth::{BufferBodyLayer, BufferedBodies, IdmAuthLayer, TokenScope};
use bytes::Bytes;
use futures_util::FutureExt;
use http::{Request, Response};
use http_body_util::Full;
use tower::{Layer, Service};

mod support;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

struct Counting;

fn count() {
    // `try_with`: a thread being torn down has no counter left, and is not measured.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: forwards to the system allocator unchanged; only counts calls, in a
// thread-local `Cell` that needs no allocation of its own (const-initialised, no `Drop`).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const REQUESTS: u64 = 1000;

/// Allocations made by `REQUESTS` calls to `service`, each answered at once, on this
/// thread (requests are built before counting starts).
fn allocations<S, B>(mut service: S, body: impl Fn() -> B) -> u64
where
    S: Service<Request<B>>,
{
    let mut send = |requests: Vec<Request<B>>| {
        let before = ALLOCATIONS.with(Cell::get);
        for request in requests {
            let answered = service.call(request).now_or_never();
            assert!(matches!(answered, Some(Ok(_))));
        }
        ALLOCATIONS.with(Cell::get) - before
    };
    let request = || {
        Request::post("https://api.bodhi.example/stores")
            .body(body())
            .unwrap()
    };
    send((0..100).map(|_| request()).collect()); // warm up
    send((0..REQUESTS).map(|_| request()).collect())
}

/// An inner service that answers 200 at once, for any body.
#[derive(Clone)]
struct Ok200;

impl<B> Service<Request<B>> for Ok200 {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<Full<Bytes>>, Infallible>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: Request<B>) -> Self::Future {
        std::future::ready(Ok(Response::new(Full::default())))
    }
}

#[test]
fn buffering_a_body_that_needs_no_buffer_allocates_nothing_on_the_cached_path() {
    let runtime = support::paused_runtime();
    let idm = FakeIdm::new();
    let manager = support::manager(&idm);
    runtime.block_on(manager.access_token()).unwrap();
    let scope = TokenScope::origins(["https://api.bodhi.example"]).unwrap();
    let auth = || IdmAuthLayer::with_manager(manager.clone(), scope.clone());

    for (name, body) in [
        ("empty", Bytes::new()),
        ("one chunk", Bytes::from_static(b"{\"store\":1}")),
    ] {
        let _guard = runtime.enter(); // a runtime's clock, as in a program
        let floor = allocations(auth().layer(Ok200), || Full::new(body.clone()));
        let buffered = allocations(
            BufferBodyLayer::new(1024).layer(auth().replay(BufferedBodies).layer(Ok200)),
            || Full::new(body.clone()),
        );
        assert_eq!(
            buffered, floor,
            "{name}: {buffered} allocations, {floor} without"
        );
    }
}
