//! No heap block freed while the crate logs in holds the password.
//!
//! A global allocator wraps the system one and, while scanning is on, searches every
//! block being freed for the password's bytes. One login runs over the in-memory fake
//! IDM with recording off, so the blocks freed in that window are the crate's own copies
//! of the form and the fake's per-request copies (which it wipes). What the fake keeps
//! (its user table) is not freed in the window, and reqwest's, hyper's and rustls's
//! buffers are not involved: this proves the crate's own copies, nothing beyond.
//!
//! Its own binary with one test: the allocator is process-wide.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bodhi_auth::testing::FakeIdm;
use bodhi_auth::{Credentials, TokenManager};

/// Unreserved characters only, so the URL-encoded form holds these exact bytes.
const PASSWORD: &[u8] = b"pw-7f3a9c1e5b-MARKER-d41d8cd98f";

static SCANNING: AtomicBool = AtomicBool::new(false);
static HITS: AtomicUsize = AtomicUsize::new(0);

struct ScanningAllocator;

// SAFETY: every call is forwarded to `System` with the caller's arguments; `dealloc` only
// reads the block it is about to free, which the caller owns, and allocates nothing.
// `realloc` is the trait's default (alloc, copy, dealloc), so a moved block is scanned too.
unsafe impl GlobalAlloc for ScanningAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if SCANNING.load(Ordering::SeqCst) {
            let block = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
            if block.windows(PASSWORD.len()).any(|w| w == PASSWORD) {
                HITS.fetch_add(1, Ordering::SeqCst);
            }
        }
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: ScanningAllocator = ScanningAllocator;

#[tokio::test(start_paused = true)]
async fn a_login_leaves_no_copy_of_the_password_in_freed_memory() {
    let password = std::str::from_utf8(PASSWORD).unwrap();
    let idm = FakeIdm::new();
    idm.set_recording(false);
    idm.add_user("scan", password, None);
    let manager = TokenManager::builder(Credentials::new("scan", password))
        .fake_idm(&idm)
        .build()
        .unwrap();

    SCANNING.store(true, Ordering::SeqCst);
    let token = manager.access_token().await;
    SCANNING.store(false, Ordering::SeqCst);

    token.unwrap();
    assert_eq!(idm.password_grants(), 1);
    assert_eq!(
        HITS.load(Ordering::SeqCst),
        0,
        "freed blocks that still held the password"
    );
}
