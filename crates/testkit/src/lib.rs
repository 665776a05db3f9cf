//! Harness shared by the tests and benchmarks that drive external programs:
//! finding tools (skipping loudly, or failing under `CI=true`), free loopback
//! ports, processes killed on drop, and a Pebble + pebble-challtestsrv pair.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether `tool` is on the PATH. When it is not: under `CI=true` this
/// panics (CI must never skip), otherwise it prints a loud SKIPPED line.
pub fn have(tool: &str) -> bool {
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

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Child processes killed (and reaped) on drop.
#[derive(Debug, Default)]
pub struct Kill(pub Vec<Child>);

impl Drop for Kill {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits until 127.0.0.1:`port` accepts connections (20 s at most), failing
/// early if `child` exits.
pub fn wait_port(port: u16, child: &mut Child, what: &str) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited early with {status}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{what} did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A running Pebble with pebble-challtestsrv as its DNS (every name → 127.0.0.1).
#[derive(Debug)]
pub struct Pebble {
    procs: Kill,
    /// The ACME directory URL.
    pub directory: String,
    /// The root (PEM file) of Pebble's listener certificate.
    pub ca_root: PathBuf,
    /// The port Pebble fetches http-01 tokens from.
    pub http_port: u16,
    /// Pebble's stderr (its log).
    log: PathBuf,
}

impl Pebble {
    /// Pebble's process id (for its memory figures).
    pub fn pid(&self) -> u32 {
        self.procs.0[0].id()
    }

    /// Stops Pebble with SIGQUIT, which makes the Go runtime print every
    /// goroutine's stack, and returns its log with that dump (for finding
    /// out why it stopped answering).
    pub fn goroutine_dump(mut self) -> String {
        let pebble = &mut self.procs.0[0];
        let _ = Command::new("kill")
            .args(["-QUIT", &pebble.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = pebble.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Starts Pebble in `dir`, validating http-01 on `http_port`, rejecting
    /// `nonce_reject` % of nonces, with `PEBBLE_VA_NOSLEEP=1`.
    pub fn start(dir: &Path, http_port: u16, nonce_reject: u8) -> Pebble {
        let ca_root = listener_tls(dir);
        let (listen, mgmt, dns, dns_mgmt, tls) = (
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
            "httpPort": http_port,
            "tlsPort": tls,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }});
        std::fs::write(dir.join("pebble.json"), cfg.to_string()).expect("write pebble config");
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
            .stderr(log_file(dir, "pebble.log"))
            .spawn()
            .expect("start pebble");
        wait_port(listen, &mut pebble, "pebble");
        Pebble {
            procs: Kill(vec![pebble, dns_srv]),
            directory: format!("https://127.0.0.1:{listen}/dir"),
            ca_root,
            http_port,
            log: dir.join("pebble.log"),
        }
    }
}

/// A log file in `dir` for a child process's output (kept in the test's temp
/// dir, so a failing or stalling run can be read afterwards).
fn log_file(dir: &Path, name: &str) -> Stdio {
    match std::fs::File::create(dir.join(name)) {
        Ok(f) => Stdio::from(f),
        Err(_) => Stdio::null(),
    }
}

/// A throwaway CA and a localhost/127.0.0.1 certificate for a test server's
/// listener (Debian's Pebble ships none). Writes `listener.pem`,
/// `listener.key` and `listener-ca.pem` in `dir`; returns the CA file.
pub fn listener_tls(dir: &Path) -> PathBuf {
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "test listener CA");
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

/// A running `site-encrypt ca` process.
#[derive(Debug)]
pub struct CaProcess {
    procs: Kill,
    /// The ACME directory URL it printed.
    pub directory: String,
    /// Its root certificate (PEM file).
    pub root: PathBuf,
}

impl CaProcess {
    /// Starts `bin ca` on a free port, validating http-01 on `http_port`,
    /// writing its root to `dir/root.pem`; `extra` flags are appended.
    pub fn start(bin: &Path, dir: &Path, http_port: u16, extra: &[&str]) -> CaProcess {
        use std::io::{BufRead, BufReader};
        let root = dir.join("root.pem");
        let mut child = Command::new(bin)
            .args([
                "ca",
                "--listen",
                "127.0.0.1:0",
                "--http-01-port",
                &http_port.to_string(),
            ])
            .arg("--root-out")
            .arg(&root)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start site-encrypt ca");
        let stdout = child.stdout.take().expect("stdout");
        let mut directory = None;
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("line");
            if let Some(url) = line.strip_prefix("ACME directory: ") {
                directory = Some(url.to_owned());
                break;
            }
        }
        CaProcess {
            procs: Kill(vec![child]),
            directory: directory.expect("the CA printed its directory URL"),
            root,
        }
    }

    /// The process.
    pub fn child(&mut self) -> &mut Child {
        &mut self.procs.0[0]
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.procs.0[0].id()
    }
}

/// A line of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`), Linux only.
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find_map(|l| {
        l.strip_prefix(field)?
            .trim_start_matches(':')
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    })
}

/// User + system CPU time of a process so far (Linux `/proc/<pid>/stat`, 100 Hz ticks).
pub fn proc_cpu_time(pid: u32) -> Option<std::time::Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(std::time::Duration::from_millis((utime + stime) * 10))
}
