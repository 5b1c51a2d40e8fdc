//! Waiting on a real server: Keycloak's clock cannot be moved, so scenarios poll for
//! a condition, never longer than [`MAX_WAIT`] at a time.

use std::future::Future;
use std::time::Duration;

use tokio::time::{Instant, sleep};

use crate::harness::BoxError;

/// The longest single wait in any scenario.
pub const MAX_WAIT: Duration = Duration::from_secs(15);

/// Polls `probe` every 100 ms until it yields a value; an error after [`MAX_WAIT`].
pub async fn until<T, F, Fut>(what: &str, mut probe: F) -> Result<T, BoxError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, BoxError>>,
{
    let deadline = Instant::now() + MAX_WAIT;
    loop {
        if let Some(value) = probe().await? {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            return Err(format!("waited {MAX_WAIT:?} for {what}").into());
        }
        sleep(Duration::from_millis(100)).await;
    }
}

/// Sleeps until `instant`, refusing waits longer than [`MAX_WAIT`].
pub async fn sleep_until(instant: Instant, what: &str) -> Result<(), BoxError> {
    let wait = instant.saturating_duration_since(Instant::now());
    if wait > MAX_WAIT {
        return Err(format!("{what} is {wait:?} away, more than {MAX_WAIT:?}").into());
    }
    tokio::time::sleep_until(instant).await;
    Ok(())
}
