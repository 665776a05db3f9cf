//! `site-encrypt`: run a local ACME CA for any client, or certify names with
//! the site-encrypt ACME client.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Prints a line to stdout, ignoring a closed pipe (println! would panic and
/// turn a clean shutdown into a crash when the reader went away).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod certify;
use site_encrypt_ca::{CaConfig, LocalCa};

#[derive(Parser, Debug)]
#[command(
    name = "site-encrypt",
    version,
    about = "Automatic HTTPS tooling: a local ACME CA and an ACME client"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the local ACME CA standalone: a fast, strict test CA for any ACME client.
    Ca(CaArgs),
    /// Obtain a certificate from any ACME CA, answering http-01 with a built-in server.
    Certify(certify::CertifyArgs),
}

#[derive(Args, Debug)]
struct CaArgs {
    /// Address the ACME API listens on (HTTPS). Must be loopback; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:14000")]
    listen: SocketAddr,
    /// Port on 127.0.0.1 the CA fetches http-01 tokens from.
    #[arg(long = "http-01-port", default_value_t = 5002)]
    http_01_port: u16,
    /// Port on 127.0.0.1 the CA connects to for tls-alpn-01.
    #[arg(long = "tls-alpn-01-port", default_value_t = 5001)]
    tls_alpn_01_port: u16,
    /// Folder that keeps the root and intermediate keys across restarts
    /// (created 0700, keys 0600). Without it, a fresh root is made each start.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Write the root certificate (PEM) here, e.g. for REQUESTS_CA_BUNDLE or curl --cacert.
    #[arg(long)]
    root_out: Option<PathBuf>,
    /// Lifetime of issued certificates, e.g. 90d, 6d, 1h, 30m.
    #[arg(long, default_value = "90d", value_parser = parse_duration)]
    cert_lifetime: Duration,
    /// Also issue for this DNS name (besides localhost, *.localhost, *.test). Repeatable.
    #[arg(long = "allow-name")]
    allow_names: Vec<String>,
    /// Testing aid: reject this percentage of valid nonces with badNonce.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    reject_nonces: u8,
    /// Testing aid: delay every validation by this long (e.g. 500ms, 2s);
    /// challenge answers then say `processing`, so clients must poll.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    validation_delay: Duration,
    /// Testing aid: issue this long after finalize (e.g. 500ms); finalize then
    /// answers `processing`, so clients must poll the order.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    issuance_delay: Duration,
}

/// Parses `90d`, `6h`, `30m`, `10s`, `500ms`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map(|i| s.split_at(i))
        .ok_or_else(|| format!("{s:?} needs a unit: ms, s, m, h or d"))?;
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} does not start with a number"))?;
    let secs = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {s:?}; use ms, s, m, h or d"
            ));
        }
    };
    Ok(Duration::from_secs(secs))
}

/// SIGINT and SIGTERM, registered when created: create it before announcing
/// readiness, so a supervisor that signals right after never meets the
/// default action (an unclean kill).
struct Shutdown {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Shutdown {
    fn register() -> Result<Self, String> {
        use tokio::signal::unix::{SignalKind, signal};
        let int =
            signal(SignalKind::interrupt()).map_err(|e| format!("cannot handle SIGINT: {e}"))?;
        let term =
            signal(SignalKind::terminate()).map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
        Ok(Shutdown { int, term })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

async fn run_ca(args: CaArgs) -> Result<(), String> {
    let shutdown = Shutdown::register()?;
    let mut cfg = CaConfig::new()
        .listen(args.listen)
        .http01_port(args.http_01_port)
        .tls_alpn01_port(args.tls_alpn_01_port)
        .cert_lifetime(args.cert_lifetime)
        .nonce_reject_percent(args.reject_nonces)
        .validation_delay(args.validation_delay)
        .issuance_delay(args.issuance_delay);
    if let Some(dir) = args.state {
        cfg = cfg.state_dir(dir);
    }
    for n in args.allow_names {
        cfg = cfg.allow_name(n);
    }
    let ca = LocalCa::start(cfg).await.map_err(|e| e.to_string())?;
    if let Some(path) = &args.root_out {
        std::fs::write(path, ca.root_pem())
            .map_err(|e| format!("cannot write the root to {}: {e}", path.display()))?;
        say!("Root certificate written to {}", path.display());
    }
    say!("ACME directory: {}", ca.directory_url());
    say!(
        "http-01 validated on 127.0.0.1:{}, tls-alpn-01 on 127.0.0.1:{}",
        args.http_01_port,
        args.tls_alpn_01_port
    );
    shutdown.wait().await;
    say!("Shutting down");
    ca.stop().await;
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Ca(args) => run_ca(args).await,
            Command::Certify(args) => certify::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90d"), Ok(Duration::from_secs(90 * 86400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5y").is_err());
    }
}
