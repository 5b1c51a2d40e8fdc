//! The crate against a real Keycloak (26.5.6), started by this binary.
//!
//! `harness = false`: `main` owns the one server the scenarios share, so it is started
//! once and stopped however the run ends (see `keycloak/server.rs`). Needs Java 17+,
//! and Maven the first time (the distribution is then cached in `~/.m2` and unpacked
//! under `target/keycloak/`).
//!
//! ```text
//! cargo test --test keycloak                 # every scenario
//! cargo test --test keycloak -- refresh      # scenarios whose name contains "refresh"
//! cargo test --test keycloak -- --list
//! ```

use std::process::ExitCode;
use std::time::Instant;

#[path = "keycloak/admin.rs"]
mod admin;
#[path = "keycloak/dist.rs"]
mod dist;
#[path = "keycloak/harness.rs"]
mod harness;
#[path = "keycloak/proxy.rs"]
mod proxy;
#[path = "keycloak/realm.rs"]
mod realm;
#[path = "support/redis.rs"]
mod redis_server;
#[path = "keycloak/scenarios/mod.rs"]
mod scenarios;
#[path = "keycloak/server.rs"]
mod server;
#[path = "keycloak/tls.rs"]
mod tls;
#[path = "keycloak/tools.rs"]
mod tools;
#[path = "keycloak/wait.rs"]
mod wait;

use harness::{Args, Report};
use server::KeycloakServer;

fn main() -> ExitCode {
    let args = Args::parse();
    let all = scenarios::all();
    if args.list {
        for scenario in &all {
            println!("{}: test", scenario.name);
        }
        return ExitCode::SUCCESS;
    }
    let selected: Vec<_> = all
        .iter()
        .filter(|s| !args.only_ignored && args.selects(s.name))
        .collect();
    let filtered_out = all.len() - selected.len();
    let plural = if selected.len() == 1 { "" } else { "s" };
    println!("\nrunning {} test{plural}", selected.len());
    let started = Instant::now();
    // Nothing selected (a filter meant for another test binary): no server at all.
    let report = if selected.is_empty() {
        Report::default()
    } else {
        run(&selected)
    };
    report.print_summary(filtered_out, started.elapsed());
    if report.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Starts the server, runs the scenarios, stops the server (also when this unwinds).
fn run(selected: &[&harness::Scenario]) -> Report {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start a Tokio runtime: {e}");
            return Report::all_failed(selected);
        }
    };
    let mut server = match KeycloakServer::start() {
        Ok(server) => server,
        Err(e) => {
            eprintln!("error: Keycloak did not start, so no scenario can run:\n{e}");
            return Report::all_failed(selected);
        }
    };
    let report = runtime.block_on(harness::run(selected, server.endpoints()));
    if !report.success() {
        let log = server.keep_run_dir();
        eprintln!("keycloak: the server's log is kept at {}", log.display());
    }
    report
}
