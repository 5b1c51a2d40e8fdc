//! `RedisStore` across real OS processes: twenty runs of the `token` example at once,
//! configured only by the environment (`BODHI_STORE=redis://...`, `BODHI_STORE_KEY`),
//! share one login. Counts only: tokens live 30 hours. `cargo test` builds the examples
//! first; to run this file alone, `cargo build --examples` before.

#[path = "support/processes.rs"]
mod processes;
#[path = "support/redis.rs"]
mod redis_server;

use bodhi_auth::testing::FakeIdm;
use processes::stdout;
use redis_server::{KEY, RedisServer};

#[tokio::test]
async fn twenty_processes_at_once_make_one_login() {
    let redis = RedisServer::start();
    let idm = FakeIdm::new();
    let server = idm.serve().await.unwrap();
    let env = [
        ("BODHI_PASSWORD", "secret"),
        ("BODHI_TOKEN_URL", &server.token_url()),
        ("BODHI_STORE", &redis.url()),
        ("BODHI_STORE_KEY", KEY),
    ];
    let outputs = processes::token_runs(20, &env).await;
    for output in &outputs {
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_eq!(idm.token_requests(), 1, "one login for twenty processes");
    let token = stdout(&outputs[0]);
    assert!(outputs.iter().all(|o| stdout(o) == token));

    // Without the key, the store is refused with an error naming the variable.
    let unkeyed = processes::token_runs(1, &env[..3]).await;
    assert!(!unkeyed[0].status.success());
    assert!(String::from_utf8_lossy(&unkeyed[0].stderr).contains("BODHI_STORE_KEY"));
    assert_eq!(idm.token_requests(), 1);
}
