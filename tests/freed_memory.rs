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

use bodhi_auth::testing::FakeIdm;
use bodhi_auth::{Credentials, TokenManager};

#[path = "support/freed_scan.rs"]
mod freed_scan;
use freed_scan::{ScanningAllocator, scanning, search_for, take_hits};

/// Unreserved characters only, so the URL-encoded form holds these exact bytes.
const PASSWORD: &[u8] = b"pw-7f3a9c1e5b-MARKER-d41d8cd98f";

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

    search_for(PASSWORD);
    scanning(true);
    let token = manager.access_token().await;
    scanning(false);

    token.unwrap();
    assert_eq!(idm.password_grants(), 1);
    assert_eq!(take_hits(), 0, "freed blocks that still held the password");
}
