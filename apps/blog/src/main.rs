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
    let site = match blog::start(settings, Arc::new(site_encrypt::SystemClock)).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot listen for SIGTERM: {e}");
            return ExitCode::FAILURE;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("Shutting down");
    site.shutdown().await;
    ExitCode::SUCCESS
}
