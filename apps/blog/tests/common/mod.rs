//! Shared helpers for the blog's tests.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Starts the blog on free ports in `dir` and waits until it serves a real certificate.
pub(crate) async fn started(
    dir: &std::path::Path,
    clock: Arc<dyn site_encrypt::Clock>,
) -> blog::Blog {
    let site = blog::start(blog::Settings::for_tests(dir), clock)
        .await
        .expect("blog starts");
    let mut events = site.certifier.events();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while site.certifier.status().serving.self_signed {
        let _ = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("certified in time");
    }
    site
}

/// A plain HTTP/1.1 GET; returns the whole response as text.
pub(crate) async fn http_get(addr: SocketAddr, host: &str, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    out
}

/// An HTTPS GET to `addr` with SNI and Host `host`, verifying against `root_pem`.
pub(crate) async fn https_get(addr: SocketAddr, host: &str, path: &str, root_pem: &str) -> String {
    let mut roots = rustls::RootCertStore::empty();
    for der in site_encrypt::proto::pem::decode_all(root_pem, "CERTIFICATE") {
        roots.add(der.into()).expect("root");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from(host.to_owned()).expect("name");
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .expect("TLS verifies with the local root");
    tls.write_all(
        format!(
            "GET {path} HTTP/1.1\r\nHost: {host}:{}\r\nConnection: close\r\n\r\n",
            addr.port()
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// The status line.
pub(crate) fn status_line(resp: &str) -> &str {
    resp.lines().next().unwrap_or_default()
}

/// A response header.
pub(crate) fn header<'a>(resp: &'a str, name: &str) -> Option<&'a str> {
    resp.lines().take_while(|l| !l.is_empty()).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}
