//! The `metrics` feature: the same counts through the `metrics` facade, seen by a
//! recorder installed for this test binary (one test: the recorder is global).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bodhi_auth::testing::{FakeIdm, Fault};
use bodhi_auth::{Credentials, TokenManager};
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};

/// Every counter and gauge by name and labels.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<HashMap<String, f64>>>);

impl Seen {
    fn get(&self, name: &str) -> f64 {
        self.0.lock().unwrap().get(name).copied().unwrap_or(0.0)
    }
}

fn shown(key: &Key) -> String {
    let labels: Vec<_> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    if labels.is_empty() {
        key.name().to_owned()
    } else {
        format!("{}{{{}}}", key.name(), labels.join(","))
    }
}

struct Handle(Seen, String);

impl metrics::CounterFn for Handle {
    fn increment(&self, value: u64) {
        *self.0.0.lock().unwrap().entry(self.1.clone()).or_default() += value as f64;
    }
    fn absolute(&self, value: u64) {
        self.0
            .0
            .lock()
            .unwrap()
            .insert(self.1.clone(), value as f64);
    }
}

impl metrics::GaugeFn for Handle {
    fn increment(&self, value: f64) {
        *self.0.0.lock().unwrap().entry(self.1.clone()).or_default() += value;
    }
    fn decrement(&self, value: f64) {
        *self.0.0.lock().unwrap().entry(self.1.clone()).or_default() -= value;
    }
    fn set(&self, value: f64) {
        self.0.0.lock().unwrap().insert(self.1.clone(), value);
    }
}

impl Recorder for Seen {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(Arc::new(Handle(self.clone(), shown(key))))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(Arc::new(Handle(self.clone(), shown(key))))
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[tokio::test(start_paused = true)]
async fn the_facade_reports_what_stats_counts() {
    let seen = Seen::default();
    metrics::set_global_recorder(seen.clone()).unwrap();

    let idm = FakeIdm::new();
    let manager = TokenManager::builder(Credentials::new("user", "secret"))
        .fake_idm(&idm)
        .max_attempts(1)
        .build()
        .unwrap();
    let token = manager.access_token().await.unwrap();
    assert!(manager.invalidate(&token));
    manager.access_token().await.unwrap();
    idm.set_persistent_fault(Some(Fault::status(503)));
    manager.invalidate(&manager.cached().unwrap());
    tokio::time::advance(Duration::from_secs(5)).await;
    manager.invalidate(&manager.cached().unwrap());
    manager.access_token().await.unwrap_err();

    let stats = manager.stats();
    assert_eq!(seen.get("bodhi_auth_logins_total"), stats.logins as f64);
    assert_eq!(
        seen.get("bodhi_auth_refreshes_total"),
        stats.refreshes as f64
    );
    assert_eq!(
        seen.get("bodhi_auth_rejections_total"),
        stats.rejections as f64
    );
    assert_eq!(
        seen.get("bodhi_auth_throttled_total"),
        stats.throttled as f64
    );
    assert_eq!(
        seen.get("bodhi_auth_idm_failures_total{kind=unavailable}"),
        stats.idm_failures.unavailable as f64
    );
    assert_eq!((stats.logins, stats.refreshes), (1, 1));
    assert_eq!((stats.rejections, stats.throttled), (3, 1));
    assert_eq!(stats.idm_failures.unavailable, 1);
    let expiry = seen.get("bodhi_auth_token_expiry_seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        expiry > now + 29.0 * 3600.0,
        "the 30 h token's expiry: {expiry}"
    );
}
