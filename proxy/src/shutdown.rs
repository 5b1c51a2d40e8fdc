//! The signal to stop: SIGTERM or SIGINT. The server then stops accepting, lets
//! in-flight requests finish up to a deadline, and exits.

use tokio::signal::unix::{SignalKind, signal};

/// Resolves at the first SIGTERM or SIGINT. The handlers are installed when this is
/// called, so call it before the first connection is accepted.
pub(crate) fn signal_received() -> std::io::Result<impl Future<Output = &'static str>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    })
}
