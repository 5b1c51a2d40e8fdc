//! `bodhi-proxy`: a local HTTP proxy that adds a Bodhi token to every request and sends
//! it to one upstream origin. Built only on `bodhi-auth`'s public API: `IdmAuthLayer`
//! scoped to exactly that origin, `BufferBodyLayer` for the one resend after a 401, and a
//! hyper-util client below them. See `bodhi-proxy --help` and the README.

#![forbid(unsafe_code)]
#![warn(rust_2018_idioms, unreachable_pub)]

mod config;
mod cors;
mod forward;
mod guard;
mod ops;
mod reply;
mod server;
mod shutdown;

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match config::Config::from_flags(config::Flags::from_env_and_args()) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("bodhi-proxy: {message}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_max_level(config.log)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    match server::run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bodhi-proxy: {message}");
            ExitCode::FAILURE
        }
    }
}
