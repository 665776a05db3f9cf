//! certbot (Debian package) obtains certificates from the standalone CA
//! (`site-encrypt ca`); the chain verifies with openssl against the CA root.

use std::path::Path;
use std::process::Command;

use site_encrypt_testkit::{CaProcess, free_port, have};

fn start_ca(dir: &Path, http_port: u16) -> CaProcess {
    CaProcess::start(
        Path::new(env!("CARGO_BIN_EXE_site-encrypt")),
        dir,
        http_port,
        &[],
    )
}

fn openssl(args: &[&str], dir: &Path) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn certbot_obtains(names: &[&str]) {
    if !have("certbot") || !have("openssl") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let http_port = free_port();
    let ca = start_ca(d, http_port);
    let mut cmd = Command::new("certbot");
    cmd.args([
        "certonly",
        "--standalone",
        "--non-interactive",
        "--agree-tos",
    ])
    .args([
        "--register-unsafely-without-email",
        "--server",
        &ca.directory,
    ])
    .args([
        "--http-01-port",
        &http_port.to_string(),
        "--http-01-address",
        "127.0.0.1",
    ])
    .arg("--config-dir")
    .arg(d.join("config"))
    .arg("--work-dir")
    .arg(d.join("work"))
    .arg("--logs-dir")
    .arg(d.join("logs"))
    .args(["--cert-name", "test"])
    .env("REQUESTS_CA_BUNDLE", d.join("root.pem"));
    for n in names {
        cmd.args(["-d", n]);
    }
    let out = cmd.output().expect("run certbot");
    assert!(
        out.status.success(),
        "certbot failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let live = d.join("config/live/test");
    let cert = live.join("cert.pem");
    let chain = live.join("chain.pem");
    let verify = openssl(
        &[
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            chain.to_str().expect("utf8"),
            cert.to_str().expect("utf8"),
        ],
        d,
    );
    assert!(verify.trim().ends_with(": OK"), "openssl verify: {verify}");
    let text = openssl(
        &[
            "x509",
            "-in",
            cert.to_str().expect("utf8"),
            "-noout",
            "-text",
        ],
        d,
    );
    for n in names {
        assert!(
            text.contains(&format!("DNS:{n}")),
            "{n} missing from SANs:\n{text}"
        );
    }
    let sans = text.matches("DNS:").count();
    assert_eq!(sans, names.len(), "unexpected extra names:\n{text}");
    assert!(
        text.contains("TLS Web Server Authentication"),
        "serverAuth EKU missing:\n{text}"
    );
    assert!(!text.contains("CA:TRUE"), "leaf must not be a CA");
}

#[test]
fn certbot_one_name() {
    certbot_obtains(&["one.test"]);
}

#[test]
fn certbot_two_names() {
    certbot_obtains(&["two.localhost", "www.two.localhost"]);
}

#[test]
fn ca_help_documents_every_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_site-encrypt"))
        .args(["ca", "--help"])
        .output()
        .expect("run");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--http-01-port",
        "--tls-alpn-01-port",
        "--state",
        "--root-out",
        "--cert-lifetime",
        "--allow-name",
        "--reject-nonces",
        "--validation-delay",
        "--issuance-delay",
    ] {
        assert!(help.contains(flag), "{flag} is not documented:\n{help}");
    }
}

#[test]
fn ca_bad_flag_fails_clearly() {
    let out = Command::new(env!("CARGO_BIN_EXE_site-encrypt"))
        .args(["ca", "--listen", "not-an-address"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--listen") && err.contains("not-an-address"),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_site-encrypt"))
        .args(["ca", "--listen", "10.1.2.3:14000"])
        .output()
        .expect("run");
    assert!(
        !out.status.success(),
        "a non-loopback listen address must be refused"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not loopback"));
}

#[test]
fn ca_stops_cleanly_on_sigterm() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut ca = start_ca(tmp.path(), free_port());
    let pid = ca.pid().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = ca.child().try_wait().expect("wait") {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "did not stop on SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(!ca.directory.is_empty());
}
