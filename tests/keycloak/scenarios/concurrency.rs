//! Single flight against the real server: 200 concurrent requests at cold start cost
//! one login, and 200 more at refresh-due cost one refresh.

use std::sync::Arc;

use bodhi_auth::IdmAuthMiddleware;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use tokio::sync::Barrier;

use super::manager_for;
use crate::admin::{Admin, Event};
use crate::harness::{BoxError, Outcome};
use crate::realm::{self, Endpoints};
use crate::wait;

const CALLERS: usize = 200;

pub async fn two_hundred_requests_share_one_login_and_one_refresh(
    keycloak: Arc<Endpoints>,
) -> Outcome {
    let user = realm::user("kc-concurrent");
    let admin = Admin::new(&keycloak.base_url);
    let manager = manager_for(&keycloak, &user).build()?;
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(IdmAuthMiddleware::with_manager(manager.clone()))
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

    // Refresh-due comes at most half the lifetime after the login was sent; go to
    // halfway between that and expiry.
    let first = manager.cached().ok_or("no token cached after the burst")?;
    let due = first.expires_at() - realm::access_token_lifespan() / 4;
    wait::sleep_until(due, "refresh-due").await?;
    burst(&client, &url).await?;
    wait::until("the refreshed token", || {
        let (manager, first) = (manager.clone(), first.clone());
        async move {
            Ok(manager
                .cached()
                .filter(|t| !t.same_token(&first))
                .map(|_| ()))
        }
    })
    .await?;
    assert_eq!(
        admin
            .settled_event_count(Event::RefreshToken, Some(&user), 1)
            .await?,
        1,
        "refreshes for {CALLERS} concurrent requests at refresh-due"
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
