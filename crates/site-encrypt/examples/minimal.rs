//! A minimal axum site with automatic HTTPS, certified by the in-process CA.
//!
//! ```sh
//! cargo run -p site-encrypt --example minimal
//! curl --cacert target/minimal-site/ca-root.pem https://minimal.localhost:8443/ --resolve minimal.localhost:8443:127.0.0.1
//! ```
//! In production: `DirectoryUrl::LetsEncrypt`, your domain, ports 80 and 443.

use site_encrypt::{Certifier, Config, DirectoryUrl};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let http = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    let https = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
    let config = Config::builder()
        .domain("minimal.localhost")
        .directory(DirectoryUrl::Internal { port: 0 })
        .http_port(http.local_addr()?.port())
        .storage("target/minimal-site/certs")
        .build()?;
    let certifier = Certifier::start(config).await?;
    if let Some(root) = certifier.local_ca_root_pem() {
        std::fs::write("target/minimal-site/ca-root.pem", root)?;
    }
    let app =
        axum::Router::new().route("/", axum::routing::get(|| async { "Hello over HTTPS!\n" }));
    let _servers = site_encrypt::axum::serve(app, &certifier, http, https)?;
    println!("Serving https://minimal.localhost:8443/ (Ctrl-C to stop)");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
