//! No heap block freed after an access token was served holds that token.
//!
//! A global allocator wraps the system one and, while scanning is on, searches every
//! block being freed for the token's bytes. Scanning starts once the first token is known
//! (its string is what is searched for). In the window the token is cloned, its header
//! is put on requests through the Tower layer, it is invalidated and replaced, and at the
//! end every clone and the manager are dropped: the crate's copies of the token (its text
//! and its `Authorization` header value) are freed in the window and must be wiped
//! first. The fake IDM keeps its own record of the token past the window.
//!
//! The same again with a `FileStore`: the session is serialized (tokens included) and
//! written, and no copy made on the way is freed unwiped.
//!
//! Its own binary with one test: the allocator is process-wide.

use std::convert::Infallible;

use bodhi_auth::store::FileStore;
use bodhi_auth::testing::FakeIdm;
use bodhi_auth::{Credentials, IdmAuthLayer, TokenManager, TokenScope};
use http::{Request, Response, header::AUTHORIZATION};
use tower::{Layer, ServiceExt, service_fn};

mod support;
use support::TempDir;
#[path = "support/freed_scan.rs"]
mod freed_scan;
use freed_scan::{ScanningAllocator, scanning, search_for, take_hits};

#[global_allocator]
static ALLOCATOR: ScanningAllocator = ScanningAllocator;

/// One manager's life after its first token, with scanning on: the token goes through
/// the layer ten times, is invalidated and replaced, and everything is dropped.
async fn serve_and_drop(manager: TokenManager) {
    let first = manager.access_token().await.unwrap();
    search_for(first.secret().as_bytes());
    let scope = TokenScope::origins(["https://api.example.test"]).unwrap();
    scanning(true);
    let service = IdmAuthLayer::with_manager(manager.clone(), scope).layer(service_fn(
        |request: Request<String>| async move {
            let sent = request.headers().get(AUTHORIZATION).is_some();
            Ok::<_, Infallible>(Response::new(sent))
        },
    ));
    for _ in 0..10 {
        let request = Request::get("https://api.example.test/").body(String::new());
        let response = service.clone().oneshot(request.unwrap()).await.unwrap();
        assert!(response.into_body(), "the layer set the header");
    }
    let header = first.header_value().clone();
    assert!(manager.invalidate(&first), "the served token was current");
    let second = manager.access_token().await.unwrap();
    assert!(!second.same_token(&first));
    drop((header, first, second, service, manager));
    scanning(false);
}

#[tokio::test(start_paused = true)]
async fn a_served_token_leaves_no_copy_of_itself_in_freed_memory() {
    let idm = FakeIdm::new();
    idm.set_recording(false);
    idm.add_user("scan", "pw", None);
    let builder = || TokenManager::builder(Credentials::new("scan", "pw")).fake_idm(&idm);

    serve_and_drop(builder().build().unwrap()).await;
    let without_store = take_hits();

    // With a file store the session (tokens included) is serialized and written too.
    let dir = TempDir::new("freed-memory");
    serve_and_drop(
        builder()
            .store(FileStore::new(dir.join("session")))
            .build()
            .unwrap(),
    )
    .await;
    let with_store = take_hits();

    assert_eq!(
        (without_store, with_store),
        (0, 0),
        "freed blocks held the access token (without a store, with a file store)"
    );
}
