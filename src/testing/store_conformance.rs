//! [`store_conformance`]: the rules every [`TokenStore`] keeps, as one test.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use zeroize::Zeroizing;

use super::FakeIdm;
use crate::store::{Session, StoredAccess, TokenStore};
use crate::{AccessToken, Credentials, TokenManager};

/// The subject of every session the suite writes.
const TOKEN_URL: &str = "https://store-conformance.invalid/token";
const CLIENT_ID: &str = "store-conformance";
const USERNAME: &str = "store-conformance-user";

/// Leases the suite takes: long enough that none expires while it runs.
const TTL: Duration = Duration::from_secs(300);
/// What the suite asks [`TokenStore::wait_for_release`] to wait at most: longer than
/// any run, so a waiter that returns did not merely give up.
const WAIT_AT_MOST: Duration = Duration::from_secs(3600);
/// How long the suite gives an operation that should return before calling the store
/// stuck: a bound on a hang, not a speed requirement.
const STUCK: Duration = Duration::from_secs(60);
/// Rounds of two concurrent saves of one version.
const RACE_ROUNDS: u64 = 8;

/// Checks that a [`TokenStore`] keeps the rules the token manager relies on; panics
/// with a message naming the broken rule.
///
/// `handle` is called for each handle the suite needs, and every handle it returns
/// must reach the **same, empty** store, as two processes sharing the store would: a
/// clone of one `Arc<MemoryStore>`, a new [`FileStore`](crate::store::FileStore) on one
/// path, a new client for one key of a shared cache. The suite leaves the store empty.
///
/// The rules:
///
/// - `load` of an empty store is `None`; a saved session loads back as it was saved
///   (the same [`Session::to_json`] bytes), through any handle;
/// - `save` is compare-and-swap: version 1 over nothing, `n + 1` over `n`, and anything
///   else (a stale or a skipped version) returns `false` and changes nothing; of two
///   concurrent saves of the same next version, through two handles, exactly one
///   returns `true` and its session is the one stored;
/// - `mark_rejected` marks the stored access token once (as one new version), and
///   returns `false` for a token that is not the stored one, or for an empty store;
/// - `delete` empties the store (and is fine on an empty one); a save of version 1
///   then lands again;
/// - the lease has one holder: while one handle holds it, `try_lease` through any
///   handle gets `None`; `renew` returns `true` while it is held; dropping it releases
///   it;
/// - `wait_for_release` returns once the holder drops the lease (the suite starts the
///   waiter, then drops the lease, and allows the waiter a minute), and returns when
///   nobody holds it.
///
/// Not checked here, because only the store can stage it: the expiry of a lease whose
/// holder neither renews nor releases it (a key's time to live, a killed process's
/// file lock). Test that next to the store: this crate does it for
/// [`MemoryStore`](crate::store::MemoryStore) under paused Tokio time, and for
/// [`FileStore`](crate::store::FileStore) by killing a process that holds the lease.
///
/// Run it on a runtime with real time: under paused time a store that waits on
/// anything Tokio does not drive (a socket to a cache server) would see Tokio jump its
/// clock past the suite's bounds. The tokens it stores come from a [`FakeIdm`] in
/// memory.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use bodhi_auth::store::MemoryStore;
/// use bodhi_auth::testing::store_conformance;
///
/// let store = Arc::new(MemoryStore::new());
/// store_conformance(|| store.clone()).await;
/// # }
/// ```
pub async fn store_conformance<S, F>(mut handle: F)
where
    F: FnMut() -> S,
    S: TokenStore,
{
    let a = handle();
    let b = handle();
    let (token, other_token) = two_tokens().await;

    // An empty store.
    assert!(
        loaded(&a).await.is_none(),
        "store_conformance needs an empty store: load() returned a session"
    );
    must(a.delete().await, "delete() of an empty store");
    assert!(
        !must(
            a.mark_rejected(&token).await,
            "mark_rejected() of an empty store"
        ),
        "rule broken: mark_rejected() on an empty store returned true"
    );

    // Compare-and-swap.
    let first = session(0, "first");
    assert!(
        must(a.save(&first).await, "save() of version 1 over nothing"),
        "rule broken: save() of version 1 over an empty store returned false"
    );
    expect_stored(&b, &first, "a session saved through one handle").await;
    for (stale, what) in [
        (session(0, "again"), "version 1 again"),
        (session(2, "skip"), "version 3 over 1"),
    ] {
        assert!(
            !must(a.save(&stale).await, "a stale save()"),
            "rule broken: save() of {what} returned true (it must be compare-and-swap)"
        );
        expect_stored(&b, &first, &format!("after the refused save() of {what}")).await;
    }

    // Two writers, one version: one wins.
    let mut current = first;
    for round in 0..RACE_ROUNDS {
        let x = session(current.version(), &format!("x{round}"));
        let y = session(current.version(), &format!("y{round}"));
        let (saved_x, saved_y) = tokio::join!(a.save(&x), b.save(&y));
        let (saved_x, saved_y) = (
            must(saved_x, "a concurrent save()"),
            must(saved_y, "a concurrent save()"),
        );
        assert!(
            saved_x != saved_y,
            "rule broken: of two concurrent save()s of version {} through two handles, \
             {} returned true (exactly one must)",
            x.version(),
            if saved_x { "both" } else { "neither" }
        );
        current = if saved_x { x } else { y };
        expect_stored(&a, &current, "the winner of two concurrent save()s").await;
    }

    // Rejected tokens.
    let with_token = with_access(session(current.version(), "unused"), &token);
    assert!(
        must(a.save(&with_token).await, "save() of the next version"),
        "rule broken: save() of version {} over {} returned false",
        with_token.version(),
        current.version()
    );
    assert!(
        !must(
            b.mark_rejected(&other_token).await,
            "mark_rejected() of another token"
        ),
        "rule broken: mark_rejected() of a token that is not the stored one returned true"
    );
    expect_stored(&a, &with_token, "after mark_rejected() of another token").await;
    assert!(
        must(
            b.mark_rejected(&token).await,
            "mark_rejected() of the stored token"
        ),
        "rule broken: mark_rejected() of the stored access token returned false"
    );
    let marked = with_token
        .marked_rejected(&token)
        .expect("the suite's session holds the token");
    expect_stored(&a, &marked, "after mark_rejected() of the stored token").await;
    assert!(
        !must(a.mark_rejected(&token).await, "mark_rejected() again"),
        "rule broken: mark_rejected() of an already marked token returned true"
    );
    expect_stored(&b, &marked, "after a second mark_rejected()").await;

    // Delete.
    must(b.delete().await, "delete()");
    assert!(
        loaded(&a).await.is_none(),
        "rule broken: load() after delete() returned a session"
    );
    let again = session(0, "after-delete");
    assert!(
        must(a.save(&again).await, "save() of version 1 after delete()"),
        "rule broken: save() of version 1 after delete() returned false (nothing stored \
         counts as version 0)"
    );
    must(a.delete().await, "delete()");

    // The lease.
    let held = must(a.try_lease(TTL).await, "try_lease()")
        .expect("rule broken: try_lease() on a store nobody leases returned None");
    for (store, which) in [(&a, "the holder's handle"), (&b, "another handle")] {
        assert!(
            must(store.try_lease(TTL).await, "try_lease() while held").is_none(),
            "rule broken: try_lease() through {which} while the lease is held returned \
             a second lease"
        );
    }
    assert!(
        must(held.renew(TTL).await, "renew()"),
        "rule broken: renew() of a held lease returned false"
    );
    drop(held);
    // A store that releases over the network may do it in the background: the release
    // must be visible by the time `wait_for_release` returns.
    let held = tokio::time::timeout(STUCK, async {
        loop {
            if let Some(lease) = must(b.try_lease(TTL).await, "try_lease() after a release") {
                return lease;
            }
            must(b.wait_for_release(WAIT_AT_MOST).await, "wait_for_release()");
        }
    })
    .await
    .expect(
        "rule broken: try_lease() after the holder dropped its lease kept returning None \
         (dropping a lease releases it)",
    );

    // Waiting for a release: the waiter has started before the lease is dropped.
    let mut waiter = pin!(a.wait_for_release(WAIT_AT_MOST));
    let early = poll_fn(|cx| Poll::Ready(waiter.as_mut().poll(cx))).await;
    drop(held);
    let waited = match early {
        Poll::Ready(waited) => waited,
        Poll::Pending => tokio::time::timeout(STUCK, waiter)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "rule broken: wait_for_release() did not return within {} s of the \
                 lease's release",
                    STUCK.as_secs()
                )
            }),
    };
    must(waited, "wait_for_release()");
    let free = tokio::time::timeout(STUCK, a.wait_for_release(WAIT_AT_MOST));
    must(
        free.await.unwrap_or_else(|_| {
            panic!(
                "rule broken: wait_for_release() with nobody holding the lease did not \
                 return within {} s",
                STUCK.as_secs()
            )
        }),
        "wait_for_release()",
    );
    let last = must(a.try_lease(TTL).await, "try_lease()");
    assert!(
        last.is_some(),
        "rule broken: try_lease() after every lease was dropped returned None"
    );
}

/// Two different access tokens from a fake IDM.
async fn two_tokens() -> (AccessToken, AccessToken) {
    let idm = FakeIdm::new();
    let login = || async {
        TokenManager::builder(Credentials::new("user", "secret"))
            .fake_idm(&idm)
            .build()
            .expect("a manager on a fake IDM builds")
            .access_token()
            .await
            .expect("a fake IDM logs in")
    };
    let first = login().await;
    let second = login().await;
    assert!(!first.same_token(&second), "a fake IDM issues new tokens");
    (first, second)
}

/// A session of the suite's subject, one version after `previous`, told apart from
/// others of its version by `tag`.
fn session(previous: u64, tag: &str) -> Session {
    let mut session = Session::new(previous, TOKEN_URL, CLIENT_ID, USERNAME);
    // A field a store never interprets.
    session.credentials_fingerprint = Some(tag.to_owned());
    session
}

fn with_access(mut session: Session, token: &AccessToken) -> Session {
    session.access = Some(StoredAccess {
        token: Zeroizing::new(token.secret().to_owned()),
        issued_at: 1_700_000_000_000,
        expires_at: 1_700_000_300_000,
        id_token: None,
        scope: None,
        rejected: false,
    });
    session
}

async fn loaded<S: TokenStore>(store: &S) -> Option<Session> {
    must(store.load().await, "load()")
}

/// Panics unless the store holds exactly `expected`.
async fn expect_stored<S: TokenStore>(store: &S, expected: &Session, when: &str) {
    let Some(stored) = loaded(store).await else {
        panic!(
            "rule broken: {when}, load() returned nothing (expected version {})",
            expected.version()
        );
    };
    assert!(
        *stored.to_json() == *expected.to_json(),
        "rule broken: {when}, load() returned {stored:?}, not the session saved as \
         version {} (a store keeps the record as it was saved)",
        expected.version()
    );
}

/// The value, or a panic naming the operation (at the caller's line).
#[track_caller]
fn must<T>(result: Result<T, crate::Error>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{what} failed: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn memory_store_keeps_the_rules() {
        let store = Arc::new(MemoryStore::new());
        store_conformance(|| store.clone()).await;
    }

    #[tokio::test(start_paused = true)]
    async fn memory_store_keeps_the_rules_under_paused_time() {
        let store = Arc::new(MemoryStore::new());
        store_conformance(|| store.clone()).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_memory_lease_neither_renewed_nor_released_expires_after_its_ttl() {
        let store = MemoryStore::new();
        let stalled = store.try_lease(TTL).await.unwrap().expect("a free lease");
        tokio::time::advance(TTL - Duration::from_millis(1)).await;
        assert!(store.try_lease(TTL).await.unwrap().is_none());

        tokio::time::advance(Duration::from_millis(1)).await;
        let next = store.try_lease(TTL).await.unwrap();
        assert!(next.is_some(), "the lease expired after its ttl");
        assert!(
            !stalled.renew(TTL).await.unwrap(),
            "the stalled holder learns it lost the lease"
        );
        drop(stalled);
        assert!(
            store.try_lease(TTL).await.unwrap().is_none(),
            "dropping the lost lease does not release the new holder's"
        );
    }
}
