//! Side-by-side benchmarks: site-encrypt against certbot, Pebble and nginx,
//! measured on this machine in one run. Writes `BENCHMARKS.md` and prints the
//! same tables. Run through `scripts/bench`, which installs the peers and
//! builds everything in release mode first.
//!
//! `BENCH_QUICK=1` cuts every iteration count (a smoke run, not for figures).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use site_encrypt::ca::{CaConfig, LocalCa};
use site_encrypt::client::{
    AccountCredentials, AccountOptions, AcmeClient, CertifyOptions, DefaultHttpClient,
    Http01Server, Http01Solver, Identifier, certify, ensure_account,
};
use site_encrypt_testkit::{
    CaProcess, Kill, Pebble, free_port, proc_cpu_time, proc_status_kib, wait_port,
};

/// Median and p90 of a sample.
fn stats(v: &[Duration]) -> (Duration, Duration) {
    let mut v = v.to_vec();
    v.sort();
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.9))
}

/// Median of a non-empty sample.
fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 100.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

struct Cfg {
    quick: bool,
    bin_dir: PathBuf,
}

impl Cfg {
    fn n(&self, full: usize) -> usize {
        if self.quick { (full / 10).max(2) } else { full }
    }
    fn site_encrypt(&self) -> PathBuf {
        self.bin_dir.join("site-encrypt")
    }
}

fn names(i: usize, count: usize, tld: &str) -> Vec<String> {
    let base = format!("n{i}.{tld}");
    let mut v = vec![base.clone()];
    if count == 2 {
        v.push(format!("www.{base}"));
    }
    v
}

/// (a) our client against our CA, in one process.
async fn in_process(cfg: &Cfg, count: usize) -> Vec<Duration> {
    let solver = Http01Solver::default();
    let server = Http01Server::bind(
        "127.0.0.1:0".parse().expect("addr"),
        solver.registry().clone(),
    )
    .await
    .expect("bind");
    let ca = LocalCa::start(CaConfig::new().http01_port(server.addr().port()))
        .await
        .expect("ca");
    let http = Arc::new(DefaultHttpClient::with_root_pem(ca.root_pem()).expect("http"));
    let client = AcmeClient::new(ca.directory_url(), http)
        .await
        .expect("client");
    let mut out = Vec::new();
    let runs = cfg.n(200);
    for i in 0..runs + 10 {
        let ids: Vec<Identifier> = names(i, count, "test")
            .iter()
            .map(|n| Identifier::dns(n.clone()))
            .collect();
        let t = Instant::now();
        let (acct, _) = ensure_account(&client, None, &AccountOptions::default())
            .await
            .expect("account");
        certify(&client, &acct, &ids, &solver, &CertifyOptions::default())
            .await
            .expect("certify");
        if i >= 10 {
            out.push(t.elapsed());
        }
    }
    out
}

/// Runs a command, returning its wall time; panics with its output on failure.
fn timed(cmd: &mut Command, what: &str) -> Duration {
    let t = Instant::now();
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let d = t.elapsed();
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    d
}

/// `site-encrypt certify` as a whole process. Fresh account each run (new out dir).
/// Where a whole-process client certifies.
struct Target<'a> {
    directory: &'a str,
    root: &'a Path,
    http_port: u16,
    tld: &'a str,
}

fn our_certify(cfg: &Cfg, dir: &Path, t: &Target<'_>, runs: usize, count: usize) -> Vec<Duration> {
    let Target {
        directory,
        root,
        http_port,
        tld,
    } = *t;
    (0..runs)
        .map(|i| {
            let out = dir.join(format!("se-{count}-{i}"));
            let mut cmd = Command::new(cfg.site_encrypt());
            cmd.args([
                "certify",
                "--directory",
                directory,
                "--http-01-port",
                &http_port.to_string(),
                "--http-01-address",
                "127.0.0.1",
                "--agree-tos",
            ])
            .arg("--ca-root")
            .arg(root)
            .arg("--out")
            .arg(&out);
            for n in names(i, count, tld) {
                cmd.args(["--domain", &n]);
            }
            timed(&mut cmd, "site-encrypt certify")
        })
        .collect()
}

/// certbot (standalone) as a whole process, under `/usr/bin/time` for its peak
/// RSS. Fresh config dir (and so account) each run. Returns times and peak RSS (KiB).
fn certbot(dir: &Path, t: &Target<'_>, runs: usize, count: usize) -> (Vec<Duration>, u64) {
    let Target {
        directory,
        root,
        http_port,
        tld,
    } = *t;
    let mut peak = 0;
    let times = (0..runs)
        .map(|i| {
            let d = dir.join(format!("cb-{count}-{i}"));
            let rss = dir.join(format!("cb-{count}-{i}.rss"));
            let mut cmd = Command::new("/usr/bin/time");
            cmd.arg("-f").arg("%M").arg("-o").arg(&rss).arg("certbot");
            cmd.args([
                "certonly",
                "--standalone",
                "--non-interactive",
                "--agree-tos",
                "--register-unsafely-without-email",
            ])
            .args([
                "--server",
                directory,
                "--http-01-port",
                &http_port.to_string(),
                "--http-01-address",
                "127.0.0.1",
            ])
            .arg("--config-dir")
            .arg(d.join("c"))
            .arg("--work-dir")
            .arg(d.join("w"))
            .arg("--logs-dir")
            .arg(d.join("l"))
            .env("REQUESTS_CA_BUNDLE", root);
            for n in names(i, count, tld) {
                cmd.args(["-d", &n]);
            }
            let t = timed(&mut cmd, "certbot");
            let kib: u64 = std::fs::read_to_string(&rss)
                .ok()
                .and_then(|s| s.trim().lines().last()?.trim().parse().ok())
                .unwrap_or(0);
            peak = peak.max(kib);
            t
        })
        .collect();
    (times, peak)
}

/// Certifications per second with `concurrency` clients of ours, each with its
/// own account, unique names, until `total` are done or `limit` passes.
async fn throughput(
    directory: &str,
    root_pem: &str,
    solver: &Http01Solver,
    tld: &str,
    concurrency: usize,
    total: usize,
    limit: Duration,
) -> Level {
    let http = Arc::new(DefaultHttpClient::with_root_pem(root_pem).expect("http"));
    let failed_level = Level {
        rate: 0.0,
        done: 0,
        failed: concurrency,
        active_rate: 0.0,
    };
    let Ok(client) = AcmeClient::new(directory, http).await else {
        eprintln!("throughput: the directory did not answer");
        return failed_level;
    };
    let mut accounts: Vec<AccountCredentials> = Vec::new();
    let opts = AccountOptions {
        terms_of_service_agreed: true,
        ..Default::default()
    };
    for _ in 0..concurrency {
        match ensure_account(&client, None, &opts).await {
            Ok((a, _)) => accounts.push(a),
            Err(e) => {
                eprintln!("throughput: account: {e}");
                return failed_level;
            }
        }
    }
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    // Microseconds from the start to the latest completed certification.
    let last_done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers = accounts.into_iter().map(|acct| {
        let (client, solver, next, done, failed, last_done) = (
            client.clone(),
            solver.clone(),
            next.clone(),
            done.clone(),
            failed.clone(),
            last_done.clone(),
        );
        let tld = tld.to_owned();
        async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total || start.elapsed() > limit {
                    return;
                }
                let id = [Identifier::dns(format!("t{concurrency}-{i}.{tld}"))];
                match certify(&client, &acct, &id, &solver, &CertifyOptions::default()).await {
                    Ok(_) => {
                        last_done.fetch_max(start.elapsed().as_micros() as u64, Ordering::Relaxed);
                        done.fetch_add(1, Ordering::Relaxed)
                    }
                    Err(e) => {
                        eprintln!("throughput: {e}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }
    });
    futures_util::future::join_all(workers).await;
    let secs = start.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    let active = last_done.load(Ordering::Relaxed) as f64 / 1e6;
    Level {
        rate: n as f64 / secs,
        done: n,
        failed: failed.load(Ordering::Relaxed),
        active_rate: if active > 0.0 { n as f64 / active } else { 0.0 },
    }
}

/// One concurrency level's outcome.
#[derive(Clone, Copy)]
struct Level {
    /// Completed certifications per second over the whole level.
    rate: f64,
    done: usize,
    failed: usize,
    /// Completed per second up to the last completion (what a CA that
    /// stalls managed while it still answered).
    active_rate: f64,
}

/// Throughput of one CA at each concurrency level.
struct Throughput {
    levels: Vec<Level>,
    peak_kib: u64,
    cpu_per_cert: Option<Duration>,
}

/// Measures a CA process (`pid`) at each level, with its peak RSS and CPU per certification.
#[allow(clippy::too_many_arguments)]
async fn ca_throughput(
    directory: &str,
    root: &str,
    pid: u32,
    solver: &Http01Solver,
    tld: &str,
    levels: &[usize],
    total: usize,
    limit: Duration,
) -> Throughput {
    let cpu0 = proc_cpu_time(pid).unwrap_or_default();
    let mut out = Vec::new();
    for c in levels {
        eprintln!("[bench]   {directory}: {c} clients");
        out.push(throughput(directory, root, solver, tld, *c, total, limit).await);
    }
    let cpu = proc_cpu_time(pid).unwrap_or_default().saturating_sub(cpu0);
    let done: usize = out.iter().map(|l| l.done).sum();
    Throughput {
        levels: out,
        peak_kib: proc_status_kib(pid, "VmHWM").unwrap_or(0),
        cpu_per_cert: (done > 0).then(|| cpu / done as u32),
    }
}

/// Seconds of 8-client load the CA is profiled for.
const PROFILE_SECS: u64 = 3;

/// Where a process's CPU went, as shares of the samples.
struct Profile {
    samples: usize,
    shares: Vec<(&'static str, f64)>,
}

/// Profiles the CA process `pid` with `perf` (when it is installed) during
/// [`PROFILE_SECS`] of 8 concurrent clients.
async fn profile_ca(
    dir: &Path,
    pid: u32,
    directory: &str,
    root: &str,
    solver: &Http01Solver,
) -> Option<Profile> {
    let data = dir.join("ca.perf");
    let mut perf = Command::new("perf")
        .args(["record", "-e", "cpu-clock", "-F", "999"])
        .args(["--call-graph", "dwarf,16384", "-p", &pid.to_string(), "-o"])
        .arg(&data)
        .args(["--", "sleep", &PROFILE_SECS.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| eprintln!("[bench] no profile: perf did not start ({e})"))
        .ok()?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let load = Duration::from_secs(PROFILE_SECS);
    throughput(directory, root, solver, "test", 8, usize::MAX, load).await;
    let recorded = tokio::task::spawn_blocking(move || perf.wait())
        .await
        .ok()?
        .ok()?;
    if !recorded.success() {
        eprintln!("[bench] no profile: perf record failed ({recorded})");
        return None;
    }
    let out = Command::new("perf")
        .args(["script", "-F", "ip,sym,dso", "-i"])
        .arg(&data)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    let mut samples = 0;
    for stack in text.split("\n\n") {
        let frames: Vec<&str> = stack
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if frames.is_empty() {
            continue;
        }
        samples += 1;
        let cat = classify(&frames);
        match counts.iter_mut().find(|(c, _)| *c == cat) {
            Some((_, n)) => *n += 1,
            None => counts.push((cat, 1)),
        }
    }
    if samples == 0 {
        eprintln!("[bench] no profile: perf recorded no samples");
        return None;
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    Some(Profile {
        samples,
        shares: counts
            .into_iter()
            .map(|(c, n)| (c, n as f64 / samples as f64))
            .collect(),
    })
}

/// The category of one sampled stack (innermost frame first).
fn classify(frames: &[&str]) -> &'static str {
    if frames[0].contains("[kernel") {
        return "kernel: loopback TCP, scheduling, syscalls";
    }
    const RULES: &[(&str, &str)] = &[
        ("Jwk::verify", "JWS signature verification (ECDSA P-256)"),
        ("check_csr", "CSR check (parse, signature, names)"),
        ("Pki::issue", "certificate issuance (build, sign)"),
        (
            "site_encrypt_ca::validate",
            "http-01 validation (connect, fetch)",
        ),
        ("rustls", "TLS (rustls: handshakes, records)"),
        ("hyper", "HTTP (hyper)"),
        (
            "site_encrypt_",
            "request handling (JWS parsing, JSON, state)",
        ),
        ("tokio", "async runtime (tokio)"),
    ];
    for f in frames {
        for (needle, cat) in RULES {
            if f.contains(needle) {
                return cat;
            }
        }
    }
    "other (allocator, libc)"
}

/// Goroutines blocked on a lock, grouped.
struct LockWait {
    count: usize,
    /// The request handler or task the goroutine was running.
    task: String,
    /// The innermost Pebble function, where it waits.
    blocked_in: String,
    /// `read lock` or `write lock`.
    lock: &'static str,
}

/// Groups the lock waits of a Go goroutine dump (Pebble's SIGQUIT output).
fn lock_waits(dump: &str) -> Vec<LockWait> {
    // "github.com/letsencrypt/pebble/db.(*MemoryStore).AddCertificate(0xc0, 0xc0)"
    // becomes "db.(*MemoryStore).AddCertificate": the arguments are the last
    // parenthesised group.
    fn short(f: &str) -> String {
        let f = match f.rfind('(') {
            Some(i) if f.ends_with(')') => &f[..i],
            _ => f,
        };
        f.trim_start_matches("github.com/letsencrypt/pebble/")
            .to_owned()
    }
    let mut out: Vec<LockWait> = Vec::new();
    for block in dump.split("\n\n") {
        let mut lines = block.lines();
        let Some(head) = lines.next() else { continue };
        if !head.starts_with("goroutine ") || !head.contains("[semacquire") {
            continue;
        }
        // Function lines are the unindented ones; file:line lines are indented.
        let funcs: Vec<&str> = block
            .lines()
            .skip(1)
            .filter(|l| !l.starts_with(char::is_whitespace))
            .collect();
        let Some(lock_at) = funcs
            .iter()
            .position(|f| f.starts_with("sync.(*RWMutex).") || f.starts_with("sync.(*Mutex).Lock"))
        else {
            continue;
        };
        let lock = if funcs[lock_at].starts_with("sync.(*RWMutex).RLock") {
            "read lock"
        } else {
            "write lock"
        };
        let ours: Vec<&str> = funcs[lock_at..]
            .iter()
            .copied()
            .filter(|f| f.contains("letsencrypt/pebble/"))
            .collect();
        let Some(blocked) = ours.first() else {
            continue;
        };
        let task = ours
            .iter()
            .rev()
            .find(|f| {
                !f.starts_with("created by")
                    && !f.contains(".func")
                    && !f.contains("wfeHandlerFunc")
                    && !f.contains("topHandler")
                    && !f.contains("-fm")
            })
            .unwrap_or(blocked);
        let (task, blocked_in) = (short(task), short(blocked));
        match out
            .iter_mut()
            .find(|w| w.task == task && w.blocked_in == blocked_in && w.lock == lock)
        {
            Some(w) => w.count += 1,
            None => out.push(LockWait {
                count: 1,
                task,
                blocked_in,
                lock,
            }),
        }
    }
    out.sort_by_key(|w| std::cmp::Reverse(w.count));
    out
}

/// Runs wrk and returns requests per second.
fn wrk(url: &str, close: bool, secs: u64) -> f64 {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t2", "-c16", &format!("-d{secs}s")]);
    if close {
        cmd.args(["-H", "Connection: close"]);
    }
    let out = cmd.arg(url).output().expect("run wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "wrk failed: {text}");
    text.lines()
        .find_map(|l| {
            l.strip_prefix("Requests/sec:")
                .map(|v| v.trim().parse::<f64>().unwrap_or(0.0))
        })
        .unwrap_or_else(|| panic!("no Requests/sec in wrk output:\n{text}"))
}

fn child_pids(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            let ppid = stat
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u32>().ok());
            if ppid == Some(pid) {
                out.push(p);
            }
        }
    }
    out
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|k| k.parse::<u64>().ok())
                    .unwrap_or(0)
                    / 1024
                    / 1024
            })
        })
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cores} cores ({cpu}), {mem} GiB RAM, Linux {}",
        kernel.trim()
    )
}

fn version(cmd: &str, arg: &str) -> String {
    Command::new(cmd)
        .arg(arg)
        .output()
        .map(|o| {
            let s = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&s)
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}

#[tokio::main]
async fn main() {
    let quick = std::env::var("BENCH_QUICK").is_ok();
    let only_throughput = std::env::var("BENCH_ONLY").as_deref() == Ok("throughput");
    let levels: Vec<usize> = std::env::var("BENCH_LEVELS")
        .ok()
        .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .filter(|v: &Vec<usize>| !v.is_empty())
        .unwrap_or_else(|| vec![1, 8, 64]);
    let exe = std::env::current_exe().expect("exe");
    let cfg = Cfg {
        quick,
        bin_dir: exe.parent().expect("bin dir").to_owned(),
    };
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let started = Instant::now();
    let mut md = String::new();
    let today = time::OffsetDateTime::now_utc().date();
    let _ = writeln!(
        md,
        "# Benchmarks\n\nMeasured by `scripts/bench` on {today}, on {}. All servers and clients on loopback, on the same machine, in the same run.{}\n",
        machine(),
        if quick {
            " **Quick smoke run (BENCH_QUICK): figures are not meaningful.**"
        } else {
            ""
        }
    );
    let _ = writeln!(
        md,
        "Peers: {}; {}; {}; {}.\n",
        version("certbot", "--version"),
        "pebble 2.4 (Debian) with PEBBLE_VA_NOSLEEP=1".to_owned(),
        version("nginx", "-v"),
        version("wrk", "-v")
            .split(" Copyright")
            .next()
            .unwrap_or_default()
    );

    // 1. Certification latency.
    eprintln!("[bench] certification latency");
    let mut lat = Vec::new();
    for count in if only_throughput { vec![] } else { vec![1, 2] } {
        let a = in_process(&cfg, count).await;
        // (b) and (c): our CA as its own process.
        let http_port = free_port();
        let ca = CaProcess::start(&cfg.site_encrypt(), dir, http_port, &[]);
        let ours = Target {
            directory: &ca.directory,
            root: &ca.root,
            http_port,
            tld: "test",
        };
        let b = our_certify(&cfg, dir, &ours, cfg.n(20), count);
        let (c, certbot_rss1) = certbot(dir, &ours, cfg.n(5).max(2), count);
        drop(ca);
        // (d) and (e): Pebble.
        let pdir = dir.join(format!("pebble-{count}"));
        std::fs::create_dir_all(&pdir).expect("dir");
        let pebble = Pebble::start(&pdir, free_port(), 0);
        let peer = Target {
            directory: &pebble.directory,
            root: &pebble.ca_root,
            http_port: pebble.http_port,
            tld: "example.com",
        };
        let d = our_certify(&cfg, dir, &peer, cfg.n(10), count);
        let (e, certbot_rss2) = certbot(dir, &peer, cfg.n(5).max(2), count);
        drop(pebble);
        lat.push((count, a, b, c, d, e, certbot_rss1.max(certbot_rss2)));
    }
    md.push_str("## Certification latency\n\nOne full certification with a fresh account (new account, order, http-01 validation, finalize, download).\n\n| | names | median | p90 | runs |\n|---|---|---|---|---|\n");
    let mut certbot_peak = 0;
    let mut ratios = String::new();
    for (count, a, b, c, d, e, rss) in &lat {
        certbot_peak = certbot_peak.max(*rss);
        for (label, v) in [
            ("(a) site-encrypt client → site-encrypt CA, in-process", a),
            (
                "(b) `site-encrypt certify` → `site-encrypt ca` (processes)",
                b,
            ),
            ("(c) certbot → `site-encrypt ca`", c),
            ("(d) `site-encrypt certify` → Pebble", d),
            ("(e) certbot → Pebble", e),
        ] {
            let (m, p) = stats(v);
            let _ = writeln!(
                md,
                "| {label} | {count} | {} | {} | {} |",
                ms(m),
                ms(p),
                v.len()
            );
        }
        let r = |x: &Vec<Duration>, y: &Vec<Duration>| {
            stats(x).0.as_secs_f64() / stats(y).0.as_secs_f64()
        };
        let _ = writeln!(
            ratios,
            "| {count} | {:.0}× | {:.1}× | {:.1}× |",
            r(e, a),
            r(c, b),
            r(e, d)
        );
    }
    md.push_str("\n(b) and (d) are whole processes: start, directory, account, certification, files written. The workspace builds aws-lc without CPU jitter entropy (`.cargo/config.toml`); with it, every process would spend about 30 ms of CPU at its first random number.\n");
    md.push_str("\nRatios of medians (how many times faster):\n\n| names | (e)/(a) certbot+Pebble vs in-process | (c)/(b) certbot vs our client, same CA | (e)/(d) certbot vs our client, Pebble |\n|---|---|---|---|\n");
    md.push_str(&ratios);

    // 2. CA throughput.
    eprintln!("[bench] CA throughput");
    let solver = Http01Solver::default();
    let solver_srv = Http01Server::bind(
        "127.0.0.1:0".parse().expect("addr"),
        solver.registry().clone(),
    )
    .await
    .expect("bind");
    let sport = solver_srv.addr().port();
    let limit = Duration::from_secs(if quick { 3 } else { 15 });
    let (ours, profile) = {
        let ca = CaProcess::start(&cfg.site_encrypt(), dir, sport, &[]);
        let root = std::fs::read_to_string(&ca.root).expect("root");
        let t = ca_throughput(
            &ca.directory,
            &root,
            ca.pid(),
            &solver,
            "test",
            &levels,
            cfg.n(600),
            limit,
        )
        .await;
        let profile = if quick || std::env::var("BENCH_PROFILE").as_deref() == Ok("0") {
            None
        } else {
            profile_ca(dir, ca.pid(), &ca.directory, &root, &solver).await
        };
        (t, profile)
    };
    // A fresh Pebble for each level: under load Pebble can stop answering,
    // and one level must not spoil the next.
    let (pebble_tp, pebble_stalls) = {
        let mut merged = Throughput {
            levels: Vec::new(),
            peak_kib: 0,
            cpu_per_cert: None,
        };
        let (mut cpu, mut done) = (Duration::ZERO, 0usize);
        let mut stalls = Vec::new();
        for (i, c) in levels.iter().enumerate() {
            let pdir = dir.join(format!("pebble-tp-{i}"));
            std::fs::create_dir_all(&pdir).expect("dir");
            let pebble = Pebble::start(&pdir, sport, 0);
            let root = std::fs::read_to_string(&pebble.ca_root).expect("root");
            let t = ca_throughput(
                &pebble.directory,
                &root,
                pebble.pid(),
                &solver,
                "example.com",
                &[*c],
                cfg.n(300),
                limit,
            )
            .await;
            let n = t.levels[0].done;
            if let Some(per) = t.cpu_per_cert {
                cpu += per * n as u32;
                done += n;
            }
            merged.peak_kib = merged.peak_kib.max(t.peak_kib);
            merged.levels.push(t.levels[0]);
            if t.levels[0].failed > 0 {
                // Requests timed out: ask Go where every goroutine waits.
                stalls.push((*c, lock_waits(&pebble.goroutine_dump())));
            }
        }
        merged.cpu_per_cert = (done > 0).then(|| cpu / done as u32);
        (merged, stalls)
    };
    drop(solver_srv);
    let header: Vec<String> = levels
        .iter()
        .map(|c| format!("{c} client{}", if *c == 1 { "" } else { "s" }))
        .collect();
    let _ = write!(
        md,
        "\n## CA throughput\n\nCertifications per second completed by N concurrent site-encrypt clients (one account each, a unique name per certification, at most {} s a level; a fresh Pebble process for each level), the CA process's peak RSS over all levels, and its CPU time (user + system) per completed certification. The clients run in the benchmark process on the same 2 cores.\n\n| CA | {} | peak RSS | CA CPU per certification |\n|---|{}---|---|\n",
        limit.as_secs(),
        header.join(" | "),
        "---|".repeat(levels.len())
    );
    for (name, t) in [("site-encrypt ca", &ours), ("Pebble", &pebble_tp)] {
        let cells: Vec<String> = t
            .levels
            .iter()
            .map(|l| {
                let (r, n, f) = (l.rate, l.done, l.failed);
                if n == 0 {
                    format!("none completed ({f} failed)")
                } else if f > 0 {
                    format!(
                        "{r:.1}/s: {n} done, then {f} timed out ({:.1}/s until then)",
                        l.active_rate
                    )
                } else {
                    format!("{r:.1}/s ({n} done)")
                }
            })
            .collect();
        let _ = writeln!(
            md,
            "| {name} | {} | {:.1} MiB | {} |",
            cells.join(" | "),
            t.peak_kib as f64 / 1024.0,
            t.cpu_per_cert
                .map(|d| format!("{:.2} ms", d.as_secs_f64() * 1000.0))
                .unwrap_or_else(|| "–".into())
        );
    }
    let top = levels.len() - 1;
    let (our_top, peer_top) = (ours.levels[top], pebble_tp.levels[top]);
    let peer_failed_at_top = peer_top.failed > 0;
    let ratio_top = (peer_top.done > 0).then(|| our_top.rate / peer_top.rate);
    // Sustained: levels that ended without a failed certification.
    let best = |t: &Throughput| {
        t.levels
            .iter()
            .filter(|l| l.failed == 0)
            .map(|l| l.rate)
            .fold(0.0, f64::max)
    };
    let best_ratio = best(&ours) / best(&pebble_tp).max(f64::MIN_POSITIVE);
    match ratio_top {
        Some(r) if !peer_failed_at_top => {
            let _ = writeln!(
                md,
                "\nAt {} clients site-encrypt's CA completes **{r:.1}×** Pebble's certifications per second.",
                levels[top]
            );
        }
        Some(r) => {
            let _ = writeln!(
                md,
                "\nAt {} clients Pebble stopped answering: after {} certifications ({:.1}/s until then) its {} outstanding requests timed out after 30 s (why: below). Over the level site-encrypt's CA completed **{r:.1}×** Pebble's certifications per second; against Pebble's rate before it stopped, {:.1}×.",
                levels[top],
                peer_top.done,
                peer_top.active_rate,
                peer_top.failed,
                our_top.rate / peer_top.active_rate.max(f64::MIN_POSITIVE),
            );
        }
        None => {
            let _ = writeln!(
                md,
                "\nAt {} clients Pebble completed no certification within the limit (its requests timed out), so no ratio is given there.",
                levels[top]
            );
        }
    }
    let _ = writeln!(
        md,
        "Best sustained rate of each (levels without a failure): site-encrypt ca {:.1}/s, Pebble {:.1}/s: **{best_ratio:.1}×**.",
        best(&ours),
        best(&pebble_tp)
    );
    let cpu_ratio = match (ours.cpu_per_cert, pebble_tp.cpu_per_cert) {
        (Some(a), Some(b)) => b.as_secs_f64() / a.as_secs_f64(),
        _ => 0.0,
    };
    let _ = writeln!(
        md,
        "\nWhat dominates: site-encrypt's CA spends {} of CPU per certification, Pebble {} ({cpu_ratio:.1}× more). At about {:.0} certifications/s the CA process uses about {:.1} of the 2 cores and the clients generating the load (JWS signing, key generation, CSR, TLS, in the benchmark process) the rest: on this 2-core box the machine, not the CA, sets the ceiling, so a 10× sustained ratio cannot show while the clients share the cores.",
        ours.cpu_per_cert
            .map(|d| format!("{:.2} ms", d.as_secs_f64() * 1000.0))
            .unwrap_or_default(),
        pebble_tp
            .cpu_per_cert
            .map(|d| format!("{:.2} ms", d.as_secs_f64() * 1000.0))
            .unwrap_or_default(),
        best(&ours),
        best(&ours)
            * ours
                .cpu_per_cert
                .map(|d| d.as_secs_f64())
                .unwrap_or_default(),
    );
    if let Some(p) = &profile {
        let per_cert = ours.cpu_per_cert.unwrap_or_default().as_secs_f64() * 1e6;
        let _ = writeln!(
            md,
            "\n### Where site-encrypt's CA spends its CPU\n\n`perf record` (cpu-clock, DWARF call graphs) of the CA process during {} s of 8 clients: {} samples, each put in the first category its stack matches, innermost frame first. One certification is five requests (newOrder, authorization, challenge — answered `valid` because the CA validates on loopback before it replies —, finalize, download): five JWS signatures and the CSR's signature to verify.\n\n| category | share | ≈ per certification |\n|---|---|---|",
            PROFILE_SECS, p.samples
        );
        for (cat, share) in &p.shares {
            let _ = writeln!(
                md,
                "| {cat} | {:.1} % | {:.0} µs |",
                share * 100.0,
                share * per_cert
            );
        }
    }
    if let Some((c, waits)) = pebble_stalls.last() {
        let _ = writeln!(
            md,
            "\n### Why Pebble stops answering\n\nWhen requests to Pebble timed out (at {c} clients here), the benchmark stopped it with SIGQUIT, which makes Go print every goroutine's stack. Goroutines blocked on a lock, by what they were doing and where they wait:\n\n| goroutines | doing | blocked in | waiting for |\n|---|---|---|---|"
        );
        // The largest groups, and every writer (there are few, and they matter).
        for (_, w) in waits
            .iter()
            .enumerate()
            .filter(|(i, w)| *i < 8 || w.lock == "write lock")
        {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                w.count, w.task, w.blocked_in, w.lock
            );
        }
        let writer = waits.iter().find(|w| w.lock == "write lock");
        let nested = waits
            .iter()
            .find(|w| w.blocked_in.contains("FindValidAuthorization"));
        if let (Some(writer), Some(nested)) = (writer, nested) {
            let _ = writeln!(
                md,
                "\n`{}` requests inside `FindValidAuthorization` ({} here): each holds the store's read lock and waits at a second, nested read lock. A writer (`{}` in `{}`) waits for the store's write lock, and Go's RWMutex admits no new reader while a writer waits, so the nested read lock never comes and the writer never gets in; every other request queues behind them. This is a deadlock inside Pebble's in-memory store (recursive read locking). All it takes is a new order that overlaps any write, which concurrent clients make likely; the clients send only ordinary requests.",
                nested.task, nested.count, writer.blocked_in, writer.task,
            );
        }
    }
    if only_throughput {
        println!("{md}");
        return;
    }

    // 3. TLS serving: the demo site with and without a swap every second, and nginx.
    eprintln!("[bench] TLS serving");
    let bdir = dir.join("blog");
    let site = blog::start(
        blog::Settings::for_tests(&bdir),
        Arc::new(site_encrypt::SystemClock),
    )
    .await
    .expect("blog");
    let mut ev = site.certifier.events();
    while site.certifier.status().serving.self_signed {
        let _ = tokio::time::timeout(Duration::from_secs(30), ev.recv())
            .await
            .expect("certified");
    }
    let alt = site
        .certifier
        .dry_certify()
        .await
        .expect("second certificate");
    let alt = site_encrypt::Served::from_pem(&alt.chain_pem, &alt.key_pem).expect("served");
    let cur = (*site.certifier.resolver().current()).clone();
    let url = format!("https://127.0.0.1:{}/", site.https_addr.port());
    let secs = if quick { 2 } else { 8 };
    // One wrk run per row, cut into phases that alternate between swapping
    // and not; each phase's rate comes from the server's own response
    // counter. The swap's effect is read from adjacent phases, so drift in
    // the machine's speed cancels out and wrk's start-up is not in it.
    // The handshake row decides a target, so it gets more pairs.
    let (hs_pairs, ka_pairs, phase_secs) = if quick { (1, 1, 2) } else { (12, 6, 3) };
    let swapping = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swaps = Arc::new(AtomicUsize::new(0));
    let swapper = {
        let (resolver, swapping, swaps) =
            (site.certifier.resolver(), swapping.clone(), swaps.clone());
        tokio::spawn(async move {
            let mut flip = false;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if swapping.load(Ordering::Relaxed) {
                    resolver.set(if flip { cur.clone() } else { alt.clone() });
                    flip = !flip;
                    swaps.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    // nginx with the same certificate and the same page.
    let ndir = dir.join("nginx");
    std::fs::create_dir_all(ndir.join("www")).expect("dir");
    let page = blog::content::index_page(&blog::content::articles());
    std::fs::write(ndir.join("www/index.html"), &page).expect("page");
    std::fs::copy(bdir.join("certs/current/cert.pem"), ndir.join("cert.pem")).expect("cert");
    std::fs::copy(bdir.join("certs/current/key.pem"), ndir.join("key.pem")).expect("key");
    let nport = free_port();
    let conf = format!(
        "worker_processes 2;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{ worker_connections 1024; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp; uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;\n  default_type text/html;\n  server {{\n    listen 127.0.0.1:{nport} ssl;\n    ssl_certificate {d}/cert.pem;\n    ssl_certificate_key {d}/key.pem;\n    ssl_protocols TLSv1.2 TLSv1.3;\n    location / {{ root {d}/www; index index.html; }}\n  }}\n}}\n",
        d = ndir.display()
    );
    std::fs::write(ndir.join("nginx.conf"), conf).expect("conf");
    let mut nginx = Command::new("nginx")
        .arg("-c")
        .arg(ndir.join("nginx.conf"))
        .arg("-p")
        .arg(&ndir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    wait_port(nport, &mut nginx, "nginx");
    let nginx_pid = nginx.id();
    let _nginx = Kill(vec![nginx]);
    let nurl = format!("https://127.0.0.1:{nport}/");
    let mut rows = Vec::new();
    for (label, close, pairs) in [
        (
            "TLS handshakes/s (new connection per request)",
            true,
            hs_pairs,
        ),
        ("requests/s (keep-alive)", false, ka_pairs),
    ] {
        let total = 1 + 2 * pairs * phase_secs + 1;
        let load = {
            let url = url.clone();
            std::thread::spawn(move || wrk(&url, close, total))
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (mut none, mut swap, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..pairs {
            let phase = |swapped: bool| {
                swapping.store(swapped, Ordering::Relaxed);
                let start = (Instant::now(), site.app.metrics.total());
                std::thread::sleep(Duration::from_secs(phase_secs));
                let n = site.app.metrics.total() - start.1;
                n as f64 / start.0.elapsed().as_secs_f64()
            };
            // Alternate which condition goes first.
            let (n, w) = if i % 2 == 0 {
                let n = phase(false);
                (n, phase(true))
            } else {
                let w = phase(true);
                (phase(false), w)
            };
            none.push(n);
            swap.push(w);
            ratios.push(w / n);
        }
        swapping.store(false, Ordering::Relaxed);
        load.join().expect("wrk thread");
        swapping.store(false, Ordering::Relaxed);
        let ng = wrk(&nurl, close, secs);
        rows.push((
            label,
            median(&none),
            median(&swap),
            median(&ratios),
            ratios,
            ng,
        ));
    }
    swapper.abort();
    let nginx_rss: u64 = std::iter::once(nginx_pid)
        .chain(child_pids(nginx_pid))
        .filter_map(|p| proc_status_kib(p, "VmRSS"))
        .sum();
    md.push_str(&format!("\n## TLS serving\n\nwrk (2 threads, 16 connections) against the demo site's HTTPS index page, with the certificate swapped every second ({} swaps) and without: one wrk run per row, cut into pairs of {phase_secs} s phases ({hs_pairs} pairs for handshakes, {ka_pairs} for keep-alive), one phase swapping and one not, the order alternating pair by pair; each phase's rate is counted by the server. The figures are medians; \"swap vs none\" is the median of the pairs' ratios, with their range showing the machine's noise. nginx (2 workers) serves the same page with the same certificate ({secs} s). The server, wrk and the swapper share the 2 cores.\n\n| | demo, no swap | demo, swap every second | swap vs none (pair range) | nginx | demo vs nginx |\n|---|---|---|---|---|---|\n", swaps.load(Ordering::Relaxed)));
    for (label, none, swap, ratio, ratios, ng) in &rows {
        let lo = ratios.iter().copied().fold(f64::MAX, f64::min);
        let hi = ratios.iter().copied().fold(f64::MIN, f64::max);
        let _ = writeln!(
            md,
            "| {label} | {none:.0} | {swap:.0} | {:+.1} % ({:+.1} … {:+.1} %) | {ng:.0} | {:.2}× |",
            (ratio - 1.0) * 100.0,
            (lo - 1.0) * 100.0,
            (hi - 1.0) * 100.0,
            none / ng
        );
    }
    site.shutdown().await;

    // 4. Memory.
    eprintln!("[bench] memory");
    let mdir = dir.join("blog-rss");
    let (h, s, c, d) = (free_port(), free_port(), free_port(), free_port());
    let mut blog_proc = Command::new(cfg.bin_dir.join("blog"))
        .arg("--data-dir")
        .arg(&mdir)
        .args([
            "--http-port",
            &h.to_string(),
            "--https-port",
            &s.to_string(),
            "--ca-port",
            &c.to_string(),
            "--dashboard-port",
            &d.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start blog");
    wait_port(s, &mut blog_proc, "blog");
    let blog_pid = blog_proc.id();
    let _blog = Kill(vec![blog_proc]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let root = std::fs::read_to_string(mdir.join("ca-root.pem")).unwrap_or_default();
        let addr = format!("127.0.0.1:{s}").parse().expect("addr");
        if !root.is_empty()
            && site_encrypt::testing::get_cert(addr, "www.blog.localhost", Some(&root))
                .await
                .is_ok()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the demo site did not serve a verified certificate"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let blog_rss = proc_status_kib(blog_pid, "VmRSS").unwrap_or(0);
    let _ = writeln!(
        md,
        "\n## Memory\n\n| process | RSS |\n|---|---|\n| demo site, idle (blog + in-process CA + dashboard) | {:.1} MiB |\n| certbot, peak over the runs above | {:.1} MiB |\n| nginx, master + 2 workers after the load test | {:.1} MiB |",
        blog_rss as f64 / 1024.0,
        certbot_peak as f64 / 1024.0,
        nginx_rss as f64 / 1024.0
    );

    // Targets.
    let a1 = stats(&lat[0].1).0;
    let e1 = stats(&lat[0].5).0;
    let hs = &rows[0];
    let swap_delta = (hs.3 - 1.0) * 100.0;
    let pct = |r: f64| (r - 1.0) * 100.0;
    let hs_lo = hs.4.iter().copied().fold(f64::MAX, f64::min);
    let hs_hi = hs.4.iter().copied().fold(f64::MIN, f64::max);
    let check = |ok: bool| if ok { "met" } else { "**not met**" };
    let _ = writeln!(md, "\n## Targets\n\n| target | measured | |\n|---|---|---|");
    let _ = writeln!(
        md,
        "| (a) median ≤ 5 ms | {} | {} |",
        ms(a1),
        check(a1 <= Duration::from_millis(5))
    );
    let _ = writeln!(
        md,
        "| (a) ≥ 500× faster than (e) | {:.0}× | {} |",
        e1.as_secs_f64() / a1.as_secs_f64(),
        check(e1.as_secs_f64() / a1.as_secs_f64() >= 500.0)
    );
    // When Pebble stops answering, the measured ratio meets the target only
    // through Pebble's failure; the row says so and gives the like-for-like
    // figure beside it.
    let (tp_measured, tp_verdict) = match ratio_top {
        Some(r) if !peer_failed_at_top => (format!("{r:.1}×"), check(r >= 10.0).to_owned()),
        Some(r) => (
            format!(
                "{r:.1}× (Pebble stopped answering); like for like, best sustained rates {best_ratio:.1}×"
            ),
            format!(
                "met only because Pebble stalls; like for like {}",
                check(best_ratio >= 10.0)
            ),
        ),
        None => (
            format!("Pebble completed none; best sustained rates {best_ratio:.1}×"),
            format!(
                "met only because Pebble stalls; like for like {}",
                check(best_ratio >= 10.0)
            ),
        ),
    };
    let _ = writeln!(
        md,
        "| our CA ≥ 10× Pebble's throughput at {} clients | {tp_measured} | {tp_verdict} |",
        levels[top],
    );
    let _ = writeln!(
        md,
        "| demo idle RSS ≤ 20 MiB | {:.1} MiB | {} |",
        blog_rss as f64 / 1024.0,
        check(blog_rss <= 20 * 1024)
    );
    let _ = writeln!(
        md,
        "| handshake rate with swaps within 2 % of without | {swap_delta:+.1} % (pairs {:+.1} … {:+.1} %) | {} |",
        pct(hs_lo),
        pct(hs_hi),
        check(swap_delta.abs() <= 2.0)
    );
    let _ = writeln!(
        md,
        "\nThe whole run took {:.0} s.",
        started.elapsed().as_secs_f64()
    );

    println!("{md}");
    if !quick {
        std::fs::write(repo.join("BENCHMARKS.md"), &md).expect("write BENCHMARKS.md");
        eprintln!("[bench] wrote BENCHMARKS.md");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str = "SIGQUIT: quit\nPC=0x468ce1 m=0 sigcode=0\n\n\
goroutine 7 [semacquire]:\n\
sync.(*RWMutex).Lock(0x0?)\n\
\tsync/rwmutex.go:152 +0x71\n\
github.com/letsencrypt/pebble/db.(*MemoryStore).AddCertificate(0xc0000fe080, 0xc000a6cc00)\n\
\tgithub.com/letsencrypt/pebble/db/memorystore.go:306 +0x5d\n\
github.com/letsencrypt/pebble/ca.(*CAImpl).CompleteOrder(0xc0000da440, 0xc0005b7680)\n\
\tgithub.com/letsencrypt/pebble/ca/ca.go:409 +0x2e7\n\
github.com/letsencrypt/pebble/wfe.(*WebFrontEndImpl).FinalizeOrder.func1()\n\
\tgithub.com/letsencrypt/pebble/wfe/wfe.go:1952 +0x2a\n\
created by github.com/letsencrypt/pebble/wfe.(*WebFrontEndImpl).FinalizeOrder\n\
\tgithub.com/letsencrypt/pebble/wfe/wfe.go:1952 +0xdfc\n\n\
goroutine 8 [semacquire]:\n\
sync.(*RWMutex).RLock(...)\n\
\tsync/rwmutex.go:71\n\
github.com/letsencrypt/pebble/db.(*MemoryStore).GetAccountByID(...)\n\
\tgithub.com/letsencrypt/pebble/db/memorystore.go:81\n\
github.com/letsencrypt/pebble/wfe.(*WebFrontEndImpl).Authz(0xc0000a4140, {0xc0000a6008?, 0xa53f20?})\n\
\tgithub.com/letsencrypt/pebble/wfe/wfe.go:2014 +0x1\n\
github.com/letsencrypt/pebble/wfe.(*WebFrontEndImpl).Authz-fm({0x8533a8?, 0xc00098d680?})\n\
\t<autogenerated>:1 +0x4c\n\
github.com/letsencrypt/pebble/wfe.wfeHandlerFunc.ServeHTTP(0x40f5a7?)\n\
\tgithub.com/letsencrypt/pebble/wfe/wfe.go:132 +0x43\n\n\
goroutine 9 [semacquire]:\n\
sync.(*RWMutex).RLock(...)\n\
\tsync/rwmutex.go:71\n\
github.com/letsencrypt/pebble/db.(*MemoryStore).GetAccountByID(...)\n\
\tgithub.com/letsencrypt/pebble/db/memorystore.go:81\n\
github.com/letsencrypt/pebble/wfe.(*WebFrontEndImpl).Authz(0xc0000a4140, {0xc0000a6008?, 0xa53f20?})\n\
\tgithub.com/letsencrypt/pebble/wfe/wfe.go:2014 +0x1\n\n\
goroutine 10 [IO wait]:\n\
internal/poll.runtime_pollWait(0x7f, 0x72)\n\
\truntime/netpoll.go:305 +0x89\n";

    #[test]
    fn lock_waits_group_goroutines_by_task_and_lock() {
        let w = lock_waits(DUMP);
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].count, 2);
        assert_eq!(w[0].task, "wfe.(*WebFrontEndImpl).Authz");
        assert_eq!(w[0].blocked_in, "db.(*MemoryStore).GetAccountByID");
        assert_eq!(w[0].lock, "read lock");
        assert_eq!(w[1].count, 1);
        assert_eq!(w[1].task, "ca.(*CAImpl).CompleteOrder");
        assert_eq!(w[1].blocked_in, "db.(*MemoryStore).AddCertificate");
        assert_eq!(w[1].lock, "write lock");
        assert!(lock_waits("goroutine 1 [running]:\nmain.main()\n").is_empty());
    }

    #[test]
    fn samples_are_classified_innermost_first() {
        let verify = [
            "55d1 __ecp_nistz256_mul_montx (/x/site-encrypt)",
            "55d2 site_encrypt_proto::jwk::Jwk::verify (/x/site-encrypt)",
            "55d3 hyper::proto::h1::dispatch::Dispatcher::poll (/x/site-encrypt)",
        ];
        assert_eq!(
            classify(&verify),
            "JWS signature verification (ECDSA P-256)"
        );
        let kernel = [
            "ffff tcp_sendmsg ([kernel.kallsyms])",
            "55d3 rustls::conn::write (/x/site-encrypt)",
        ];
        assert_eq!(
            classify(&kernel),
            "kernel: loopback TCP, scheduling, syscalls"
        );
        assert_eq!(
            classify(&["55d0 malloc (/lib/libc.so.6)"]),
            "other (allocator, libc)"
        );
    }
}
