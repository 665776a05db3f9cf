//! `site-encrypt certify` against Let's Encrypt's test server Pebble (Debian
//! package), with pebble-challtestsrv as its DNS so every name resolves to
//! 127.0.0.1. Everything listens on loopback on free ports.

use std::path::Path;
use std::process::{Command, Output};

use site_encrypt_testkit::{Pebble, free_port, have};

fn start_pebble(dir: &Path, nonce_reject: u8) -> Pebble {
    Pebble::start(dir, free_port(), nonce_reject)
}

fn certify(p: &Pebble, out: &Path, names: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_site-encrypt"));
    cmd.args([
        "certify",
        "--directory",
        &p.directory,
        "--http-01-port",
        &p.http_port.to_string(),
    ])
    .args([
        "--http-01-address",
        "127.0.0.1",
        "--email",
        "ops@example.test",
        "--agree-tos",
    ])
    .arg("--ca-root")
    .arg(&p.ca_root)
    .arg("--out")
    .arg(out);
    for n in names {
        cmd.args(["--domain", n]);
    }
    cmd.output().expect("run site-encrypt certify")
}

fn assert_certified(out: &Output, dir: &Path, names: &[&str]) {
    assert!(
        out.status.success(),
        "certify failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let chain = std::fs::read_to_string(dir.join("cert.pem")).expect("cert.pem");
    let ders = site_encrypt_proto::pem::decode_all(&chain, "CERTIFICATE");
    assert!(ders.len() >= 2, "full chain expected");
    let text = String::from_utf8_lossy(&ders[0]).into_owned();
    for n in names {
        assert!(text.contains(n), "{n} missing from the leaf");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("key.pem"))
            .expect("key.pem")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "key.pem must be 0600");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("cert.pem") && stdout.contains("Took "),
        "{stdout}"
    );
}

#[test]
fn pebble_one_and_two_names() {
    if !have("pebble") || !have("pebble-challtestsrv") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = start_pebble(tmp.path(), 0);
    let one = tmp.path().join("one");
    assert_certified(
        &certify(&p, &one, &["one.example.com"]),
        &one,
        &["one.example.com"],
    );
    let two = tmp.path().join("two");
    let names = ["site.example.com", "www.site.example.com"];
    assert_certified(&certify(&p, &two, &names), &two, &names);
}

#[test]
fn pebble_twenty_in_a_row_with_30_percent_bad_nonces() {
    if !have("pebble") || !have("pebble-challtestsrv") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = start_pebble(tmp.path(), 30);
    let out = tmp.path().join("out");
    for i in 0..20 {
        let name = format!("n{i}.example.com");
        assert_certified(&certify(&p, &out, &[&name]), &out, &[&name]);
    }
}

#[test]
fn certify_failure_exits_nonzero_with_the_problem() {
    if !have("pebble") || !have("pebble-challtestsrv") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = start_pebble(tmp.path(), 0);
    // Pebble refuses this name by policy; the CA's detail must reach the user.
    let out = certify(&p, &tmp.path().join("bad"), &["not_a valid name"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("{err}");
    assert!(
        err.contains("newOrder") && err.contains("refused by the CA"),
        "{err}"
    );
    assert!(
        err.contains("malformed: ") && err.contains("illegal character"),
        "{err}"
    );
}

#[test]
fn certify_help_documents_every_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_site-encrypt"))
        .args(["certify", "--help"])
        .output()
        .expect("run");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--directory",
        "--domain",
        "--email",
        "--agree-tos",
        "--http-01-port",
        "--http-01-address",
        "--ca-root",
        "--out",
        "--key-type",
        "--profile",
    ] {
        assert!(help.contains(flag), "{flag} is not documented:\n{help}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_site-encrypt"))
        .args([
            "certify",
            "--directory",
            "x",
            "--domain",
            "a.test",
            "--http-01-port",
            "1",
            "--out",
            "o",
            "--key-type",
            "dsa",
        ])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown key type"));
}
