//! What `RedisStore` logs, against a real `redis-server`: an outage and the
//! reconnection once each, and one warning naming the key id for each stored entry that
//! does not open. One test: it owns this binary's global subscriber.

#[path = "support/redis.rs"]
mod redis_server;
mod support;

use std::sync::Arc;
use std::time::Duration;

use bodhi_auth::store::RedisStore;
use bodhi_auth::testing::FakeIdm;
use bodhi_auth::{Credentials, TokenManager};
use redis_server::{KEY_B, RedisServer, key_ids};
use support::{CapturedLogs, builder, everyone};

fn count(logs: &CapturedLogs, needle: &str) -> usize {
    logs.text().lines().filter(|l| l.contains(needle)).count()
}

const UNREADABLE: &str = "the stored session cannot be read";
const DOWN: &str = "Redis is unreachable";
const BACK: &str = "reconnected to Redis";

#[tokio::test]
async fn outages_and_unreadable_entries_are_logged_once_each() {
    let logs = CapturedLogs::install();
    let mut redis = RedisServer::start();
    let idm = FakeIdm::new();
    idm.set_latency(Duration::from_millis(100));

    // Redis stopped mid-run and restarted on the same port: no request fails, each
    // process goes to the IDM on its own meanwhile, and one login serves the fleet again
    // once it is back. One store shared by the fleet, so "once" is one line.
    let store = Arc::new(redis.store());
    let managers: Vec<_> = (0..10)
        .map(|_| {
            builder(&idm)
                .store(store.clone())
                .min_relogin_interval(Duration::ZERO)
                .build()
                .unwrap()
        })
        .collect();
    let first = everyone(&managers).await;
    assert_eq!(idm.token_requests(), 1);

    redis.stop();
    for (manager, token) in managers.iter().zip(&first) {
        assert!(manager.invalidate(token));
    }
    let during = everyone(&managers).await;
    assert_eq!(idm.token_requests(), 1 + managers.len(), "each on its own");
    // Still down a while later: no new outage line.
    tokio::time::sleep(RedisStore::RECONNECT_BACKOFF + Duration::from_millis(200)).await;
    for (manager, token) in managers.iter().zip(&during) {
        assert!(manager.invalidate(token));
    }
    let during = everyone(&managers).await;
    assert_eq!(idm.token_requests(), 1 + 2 * managers.len());

    redis.restart();
    tokio::time::sleep(RedisStore::RECONNECT_BACKOFF + Duration::from_millis(200)).await;
    for (manager, token) in managers.iter().zip(&during) {
        assert!(manager.invalidate(token));
    }
    let after = everyone(&managers).await;
    assert!(after.iter().all(|t| t.same_token(&after[0])));
    assert_eq!(
        idm.token_requests(),
        2 + 2 * managers.len(),
        "one login for the fleet again"
    );
    assert_eq!(count(&logs, DOWN), 1, "the outage, once:\n{}", logs.text());
    assert_eq!(
        count(&logs, BACK),
        1,
        "the reconnection, once:\n{}",
        logs.text()
    );
    assert!(
        last_line(&logs, DOWN).contains(&redis.url()),
        "names the URL"
    );

    // Unreadable entries: each a miss, with one warning naming the key id.
    let before = idm.token_requests();
    let store = redis.store();
    let ours = key_ids(&store)[0].clone();
    let session_key = redis.keys("bodhi-auth:*:session").pop().unwrap();

    // Tampered with: one byte of the sealed value flipped.
    redis.cli(&[
        "EVAL",
        "local s = redis.call('HGET', KEYS[1], 's') \
         local b = string.byte(s, 40) \
         redis.call('HSET', KEYS[1], 's', string.sub(s, 1, 39) .. string.char((b + 1) % 256) .. string.sub(s, 41)) \
         return 1",
        "1",
        &session_key,
    ]);
    let fresh = builder(&idm).store(store).build().unwrap();
    let token = fresh.access_token().await.unwrap();
    assert_eq!(idm.token_requests(), before + 1, "a miss: a login");
    assert_eq!(count(&logs, UNREADABLE), 1, "{}", logs.text());
    let warning = last_line(&logs, UNREADABLE);
    assert!(
        warning.contains(&format!("does not open with key {ours}")),
        "{warning}"
    );
    // The login replaced it: the next process adopts, with no warning.
    let next = builder(&idm).store(redis.store()).build().unwrap();
    assert!(next.access_token().await.unwrap().same_token(&token));
    assert_eq!(idm.token_requests(), before + 1);
    assert_eq!(count(&logs, UNREADABLE), 1);

    // Moved: another account's entry copied over this one's key.
    idm.add_user("other", "pw", None);
    let other = TokenManager::builder(Credentials::new("other", "pw"))
        .fake_idm(&idm)
        .store(redis.store_builder_for("other").build().unwrap())
        .build()
        .unwrap();
    other.access_token().await.unwrap();
    let keys = redis.keys("bodhi-auth:*:session");
    let other_key = keys.iter().find(|k| **k != session_key).unwrap();
    assert_eq!(
        redis.cli(&["COPY", other_key, &session_key, "REPLACE"]),
        "1"
    );
    let fresh = builder(&idm).store(redis.store()).build().unwrap();
    fresh.access_token().await.unwrap();
    assert_eq!(idm.token_requests(), before + 3, "a miss: a login");
    assert_eq!(count(&logs, UNREADABLE), 2, "{}", logs.text());
    let warning = last_line(&logs, UNREADABLE);
    assert!(
        warning.contains(&format!("does not open with key {ours}")),
        "{warning}"
    );

    // Sealed with a key this process does not have.
    let stranger = redis.store_builder().keys(KEY_B).build().unwrap();
    let theirs = key_ids(&stranger)[0].clone();
    let fresh = builder(&idm).store(stranger).build().unwrap();
    fresh.access_token().await.unwrap();
    assert_eq!(idm.token_requests(), before + 4, "a miss: a login");
    assert_eq!(count(&logs, UNREADABLE), 3, "{}", logs.text());
    let warning = last_line(&logs, UNREADABLE);
    assert!(
        warning.contains(&format!("sealed with key {ours}, which is not among")),
        "{warning}"
    );
    assert!(
        warning.contains(&theirs),
        "names this process's keys too: {warning}"
    );

    eprintln!(
        "{}",
        logs.text()
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("INFO"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // No key reached a log line.
    let text = logs.text();
    for key in [redis_server::KEY, KEY_B] {
        assert!(!text.contains(key) && !text.contains(&key[..16]));
    }
}

fn last_line(logs: &CapturedLogs, needle: &str) -> String {
    logs.text()
        .lines()
        .rfind(|l| l.contains(needle))
        .unwrap()
        .to_owned()
}
