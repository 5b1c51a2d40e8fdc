//! Single flight against the real server: 200 concurrent requests at cold start cost
//! one login, and 200 more at refresh-due cost one refresh.
//!
//! Keycloak's clock cannot be moved, so the scenario chooses which tokens are short-lived
//! (the client's lifespan attribute, set through the admin API): every token a burst can
//! see is long-lived (minutes), so no burst reaches refresh-due however slow the machine is, and
//! the one short token is taken and left to reach refresh-due with nothing in flight.

use std::sync::Arc;
use std::time::Duration;

use bodhi_auth::{IdmAuthMiddleware, TokenScope};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use tokio::sync::Barrier;
use tokio::time::Instant;

use super::manager_for;
use crate::admin::{Admin, Event};
use crate::harness::{BoxError, Outcome};
use crate::realm::{self, ADJUSTABLE_LIFESPAN_CLIENT, Endpoints};
use crate::wait;

const CALLERS: usize = 200;
/// Asked for an hour; Keycloak caps an access token at its session's maximum lifespan
/// (`ssoSessionMaxLifespan`, 10 minutes in the fixture), which is still far beyond any
/// burst.
const LONG: Duration = Duration::from_secs(3600);
/// What a long token must at least live for the scenario to mean anything.
const LONG_ENOUGH: Duration = Duration::from_secs(120);
const SHORT: Duration = Duration::from_secs(10);

pub async fn two_hundred_requests_share_one_login_and_one_refresh(
    keycloak: Arc<Endpoints>,
) -> Outcome {
    let user = realm::user("kc-concurrent");
    let admin = Admin::new(&keycloak.base_url);
    admin
        .set_access_token_lifespan(ADJUSTABLE_LIFESPAN_CLIENT, LONG)
        .await?;
    let manager = manager_for(&keycloak, &user)
        .client_id(ADJUSTABLE_LIFESPAN_CLIENT)
        .build()?;
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(IdmAuthMiddleware::with_manager(
            manager.clone(),
            TokenScope::origins([keycloak.userinfo_url()])?,
        ))
        .build();
    let url = keycloak.userinfo_url();

    burst(&client, &url).await?;
    assert_eq!(
        admin
            .settled_event_count(Event::Login, Some(&user), 1)
            .await?,
        1,
        "logins for {CALLERS} concurrent requests at cold start"
    );
    let first = manager.cached().ok_or("no token cached after the burst")?;
    eprintln!(
        "    long-lived token: {} s left",
        first.expires_in().as_secs()
    );
    assert!(
        first.expires_in() > LONG_ENOUGH,
        "the client's lifespan attribute took effect"
    );

    // One short-lived token, fetched outside any burst: drop the long one (as after a
    // 401), and the next caller refreshes it with a 10 s lifetime.
    admin
        .set_access_token_lifespan(ADJUSTABLE_LIFESPAN_CLIENT, SHORT)
        .await?;
    assert!(manager.invalidate(&first), "the first token was current");
    let short = manager.access_token().await?;
    assert!(
        short.expires_in() <= SHORT,
        "the short lifespan took effect"
    );
    admin
        .set_access_token_lifespan(ADJUSTABLE_LIFESPAN_CLIENT, LONG)
        .await?;

    // Refresh-due comes at most half the lifetime after the refresh was sent; go to
    // halfway between that and expiry. Should the machine wake up later than that, the
    // burst still makes one refresh (a waiting one instead of a background one).
    let due = Instant::now() + short.expires_in() - SHORT / 4;
    wait::sleep_until(due, "refresh-due").await?;
    burst(&client, &url).await?;
    manager.settled().await;
    let renewed = manager
        .cached()
        .ok_or("no token cached after the refresh")?;
    assert!(!renewed.same_token(&short), "the short token was renewed");
    assert!(
        renewed.expires_in() > LONG_ENOUGH,
        "the renewed token is long-lived again"
    );
    assert_eq!(
        admin
            .settled_event_count(Event::RefreshToken, Some(&user), 2)
            .await?,
        2,
        "refreshes: one for the short token, one for {CALLERS} concurrent requests at refresh-due"
    );
    assert_eq!(admin.event_count(Event::Login, Some(&user)).await?, 1);
    Ok(())
}

/// [`CALLERS`] requests to userinfo released together; every one must get a 200.
async fn burst(client: &ClientWithMiddleware, url: &str) -> Outcome {
    let start = Arc::new(Barrier::new(CALLERS));
    let tasks: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (client, url, start) = (client.clone(), url.to_owned(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                Ok::<_, BoxError>(client.get(url).send().await?.status())
            })
        })
        .collect();
    for task in tasks {
        let status = task.await??;
        assert_eq!(status, 200);
    }
    Ok(())
}
