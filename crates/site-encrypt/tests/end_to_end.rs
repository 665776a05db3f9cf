//! The classic certification test: restart the site with everything wiped,
//! let it certify itself through the in-process CA (real keys, real HTTP,
//! real TLS), then connect over TLS and check the served names.

use site_encrypt::testing::{clean_restart, get_cert};
use site_encrypt::{Certifier, Config, DirectoryUrl};
use tokio::net::TcpListener;

struct Site {
    certifier: Certifier,
    _servers: site_encrypt::axum::Servers,
    https: std::net::SocketAddr,
    _dir: tempfile::TempDir,
}

async fn site(names: &[&str], backup: bool) -> Site {
    let dir = tempfile::tempdir().expect("tmp");
    let http = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let https = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let mut b = Config::builder()
        .domains(names.iter().copied())
        .storage(dir.path().join("certs"))
        .directory(DirectoryUrl::Internal { port: 0 })
        .http_port(http.local_addr().expect("addr").port());
    if backup {
        b = b.backup(dir.path().join("backup.tgz"));
    }
    let certifier = Certifier::start(b.build().expect("config"))
        .await
        .expect("start");
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
    let https_addr = https.local_addr().expect("addr");
    let servers = site_encrypt::axum::serve(app, &certifier, http, https).expect("serve");
    Site {
        certifier,
        _servers: servers,
        https: https_addr,
        _dir: dir,
    }
}

#[tokio::test]
async fn clean_restart_then_get_cert() {
    let mut s = site(&["site.localhost", "www.site.localhost"], false).await;
    let info = clean_restart(&mut s.certifier).await.expect("certified");
    assert!(!info.self_signed);
    let root = s
        .certifier
        .local_ca_root_pem()
        .expect("local CA root")
        .to_owned();
    for name in ["site.localhost", "www.site.localhost"] {
        // Verified against the local CA's root, for each name.
        let served = get_cert(s.https, name, Some(&root)).await.expect("TLS");
        let mut names = served.names.clone();
        names.sort();
        assert_eq!(names, ["site.localhost", "www.site.localhost"]);
        assert!(
            served.issuer.contains("site-encrypt local intermediate"),
            "{}",
            served.issuer
        );
        assert!(
            served.not_after
                > time::OffsetDateTime::now_utc() + std::time::Duration::from_secs(80 * 86400)
        );
    }
    // A second clean restart gets a new certificate from a new CA root.
    let again = clean_restart(&mut s.certifier).await.expect("again");
    assert_ne!(again.not_before, time::OffsetDateTime::UNIX_EPOCH);
    let new_root = s.certifier.local_ca_root_pem().expect("root").to_owned();
    assert_ne!(new_root, root);
    get_cert(s.https, "site.localhost", Some(&new_root))
        .await
        .expect("verifies with the new root");
    assert!(
        get_cert(s.https, "site.localhost", Some(&root))
            .await
            .is_err(),
        "old root no longer verifies"
    );
}

async fn http_get(addr: std::net::SocketAddr, host: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    out
}

#[tokio::test]
async fn temporary_certificate_then_real_one_and_http_side_behaviour() {
    let s = site(&["tmp.localhost"], false).await;
    assert_eq!(s.certifier.status().serving.names, ["tmp.localhost"]);
    let mut events = s.certifier.events();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while s.certifier.status().serving.self_signed {
        let _ = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("certified in time");
    }
    let got = get_cert(s.https, "tmp.localhost", s.certifier.local_ca_root_pem())
        .await
        .expect("tls");
    assert_eq!(got.names, ["tmp.localhost"]);
    assert!(matches!(s.certifier.status().last_result(), Some(o) if o.result.is_ok()));

    // HTTP → HTTPS: 301 keeping path and query.
    let http = s._servers.http_addr;
    let r = http_get(http, &format!("tmp.localhost:{}", http.port()), "/a/b?c=d").await;
    assert!(r.starts_with("HTTP/1.1 301"), "{r}");
    let want = format!("location: https://tmp.localhost:{}/a/b?c=d", s.https.port());
    assert!(r.to_ascii_lowercase().contains(&want), "{r}");
    // The challenge path is never redirected: an unknown token is a 404.
    let r = http_get(
        http,
        "tmp.localhost",
        "/.well-known/acme-challenge/unknown-token",
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
}
