//! A global allocator that, while scanning is on, searches every heap block being freed
//! for one byte string (a password, a token) and counts the blocks that still hold it.
//!
//! For the freed-memory test binaries: each declares
//! `#[global_allocator] static ALLOCATOR: ScanningAllocator = ScanningAllocator;` and has
//! one test, since the allocator is process-wide.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

static SCANNING: AtomicBool = AtomicBool::new(false);
static HITS: AtomicUsize = AtomicUsize::new(0);
/// What is searched for, in a fixed buffer (reading it must not allocate).
static NEEDLE: Mutex<([u8; 4096], usize)> = Mutex::new(([0; 4096], 0));

pub struct ScanningAllocator;

// SAFETY: every call is forwarded to `System` with the caller's arguments; `dealloc` only
// reads the block it is about to free, which the caller owns, and allocates nothing.
// `realloc` is the trait's default (alloc, copy, dealloc), so a moved block is scanned too.
unsafe impl GlobalAlloc for ScanningAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if SCANNING.load(Ordering::SeqCst)
            && let Ok(needle) = NEEDLE.try_lock()
        {
            let (bytes, len) = &*needle;
            let needle = &bytes[..*len];
            let block = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
            if !needle.is_empty() && block.windows(needle.len()).any(|w| w == needle) {
                HITS.fetch_add(1, Ordering::SeqCst);
            }
        }
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Sets what freed blocks are searched for.
pub fn search_for(secret: &[u8]) {
    let mut needle = NEEDLE.lock().unwrap();
    assert!(
        secret.len() <= needle.0.len(),
        "a secret longer than the buffer"
    );
    needle.0[..secret.len()].copy_from_slice(secret);
    needle.1 = secret.len();
}

/// Turns scanning on or off.
pub fn scanning(on: bool) {
    SCANNING.store(on, Ordering::SeqCst);
}

/// How many freed blocks held the secret since the last call.
pub fn take_hits() -> usize {
    HITS.swap(0, Ordering::SeqCst)
}
