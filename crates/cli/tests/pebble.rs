//! `site-encrypt certify` against Let's Encrypt's test server Pebble (Debian
//! package), with pebble-challtestsrv as its DNS so every name resolves to
//! 127.0.0.1. Everything listens on loopback on free ports.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn have(tool: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()));
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{tool} is required under CI=true (scripts/test installs it)"
        );
        eprintln!(
            "\n!!!!! SKIPPED: {tool} not found; run ./scripts/test as root to install it !!!!!\n"
        );
    }
    found
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

struct Kill(Vec<Child>);

impl Drop for Kill {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

struct Pebble {
    _procs: Kill,
    directory: String,
    ca_root: PathBuf,
    http_port: u16,
}

/// A throwaway CA and a 127.0.0.1/localhost certificate for Pebble's listener.
fn pebble_tls(dir: &Path) -> PathBuf {
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "pebble test listener CA");
    let ca_cert = ca.self_signed(&ca_key).expect("ca");
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().expect("key");
    let leaf =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("params");
    let leaf = leaf.signed_by(&key, &issuer).expect("leaf");
    std::fs::write(dir.join("listener.pem"), leaf.pem()).expect("write");
    std::fs::write(dir.join("listener.key"), key.serialize_pem()).expect("write");
    let root = dir.join("listener-ca.pem");
    std::fs::write(&root, ca_cert.pem()).expect("write");
    root
}

fn wait_port(port: u16, child: &mut Child, what: &str) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited early with {status}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{what} did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn start_pebble(dir: &Path, nonce_reject: u8) -> Pebble {
    let ca_root = pebble_tls(dir);
    let (listen, mgmt, dns, dns_mgmt, http, tls) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let cfg = serde_json::json!({"pebble": {
        "listenAddress": format!("127.0.0.1:{listen}"),
        "managementListenAddress": format!("127.0.0.1:{mgmt}"),
        "certificate": dir.join("listener.pem"),
        "privateKey": dir.join("listener.key"),
        "httpPort": http,
        "tlsPort": tls,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": false
    }});
    std::fs::write(dir.join("pebble.json"), cfg.to_string()).expect("write");
    let mut dns_srv = Command::new("pebble-challtestsrv")
        .args([
            "-dns01",
            &format!("127.0.0.1:{dns}"),
            "-http01",
            "",
            "-https01",
            "",
            "-tlsalpn01",
            "",
        ])
        .args([
            "-management",
            &format!("127.0.0.1:{dns_mgmt}"),
            "-defaultIPv4",
            "127.0.0.1",
            "-defaultIPv6",
            "",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start pebble-challtestsrv");
    wait_port(dns_mgmt, &mut dns_srv, "pebble-challtestsrv");
    let mut pebble = Command::new("pebble")
        .arg("-config")
        .arg(dir.join("pebble.json"))
        .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", nonce_reject.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start pebble");
    wait_port(listen, &mut pebble, "pebble");
    Pebble {
        _procs: Kill(vec![pebble, dns_srv]),
        directory: format!("https://127.0.0.1:{listen}/dir"),
        ca_root,
        http_port: http,
    }
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
