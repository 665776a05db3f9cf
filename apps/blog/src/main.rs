//! `cargo run -p blog`: the demo site on its embedded defaults.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let settings = blog::Settings::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    // Register the handlers before the site announces itself, so a signal
    // sent right after start-up is a clean shutdown, not the default kill.
    use tokio::signal::unix::{SignalKind, signal};
    let (mut int, mut term) = match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(i), Ok(t)) => (i, t),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: cannot handle SIGINT/SIGTERM: {e}");
            return ExitCode::FAILURE;
        }
    };
    let site = match blog::start(settings, Arc::new(site_encrypt::SystemClock)).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    tracing::info!("Shutting down");
    site.shutdown().await;
    ExitCode::SUCCESS
}
