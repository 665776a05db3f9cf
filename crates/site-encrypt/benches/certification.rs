//! Benchmark (release build): one full in-process certification against the
//! local CA (fresh account, one name), and `clean_restart` + `get_cert`.
//!
//! ```sh
//! cargo bench -p site-encrypt --bench certification
//! ```
//!
//! Prints median and p90 with the phases that make up the time. The anchors
//! printed beside them are the Elixir original's published figures (its native
//! certification test: about 0.8 s; via certbot: about 6 s); they are quoted,
//! not measured here. `scripts/bench` measures certbot on this machine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use site_encrypt::ca::{CaConfig, LocalCa};
use site_encrypt::client::{
    AccountOptions, AcmeClient, CertifyOptions, DefaultHttpClient, Http01Server, Http01Solver,
    Identifier, certify, ensure_account,
};
use site_encrypt::testing::{clean_restart, get_cert};
use site_encrypt::{Certifier, Config, DirectoryUrl};

fn stats(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    let p = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    (p(0.5), p(0.9))
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let iterations: usize = std::env::var("BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);

    // 1. One certification: new account + order + http-01 + finalize + download.
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
    let ids = [Identifier::dns("bench.localhost")];
    let (mut total, mut account_t, mut certify_t) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..iterations + 10 {
        let t0 = Instant::now();
        let (acct, _) = ensure_account(&client, None, &AccountOptions::default())
            .await
            .expect("account");
        let t1 = Instant::now();
        certify(&client, &acct, &ids, &solver, &CertifyOptions::default())
            .await
            .expect("certify");
        let t2 = Instant::now();
        if i >= 10 {
            total.push(t2 - t0);
            account_t.push(t1 - t0);
            certify_t.push(t2 - t1);
        }
    }
    let (med, p90) = stats(total);
    println!("in-process certification (fresh account, 1 name), {iterations} runs:");
    println!(
        "  median {}  p90 {}   (anchor: Elixir original's native test ~800 ms)",
        ms(med),
        ms(p90)
    );
    println!(
        "  phases (median): account {} · order→certificate {}",
        ms(stats(account_t).0),
        ms(stats(certify_t).0)
    );

    // 2. clean_restart + get_cert on a served site.
    let runs = (iterations / 4).max(10);
    let dir = tempfile::tempdir().expect("tmp");
    let http_l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let https_l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let https = https_l.local_addr().expect("addr");
    let cfg = Config::builder()
        .domain("bench.localhost")
        .storage(dir.path().join("certs"))
        .directory(DirectoryUrl::Internal { port: 0 })
        .http_port(http_l.local_addr().expect("addr").port())
        .build()
        .expect("config");
    let mut certifier = Certifier::start(cfg).await.expect("start");
    let _servers =
        site_encrypt::axum::serve(axum::Router::new(), &certifier, http_l, https_l).expect("serve");
    let (mut total, mut restart_t) = (Vec::new(), Vec::new());
    for i in 0..runs + 3 {
        let t0 = Instant::now();
        clean_restart(&mut certifier).await.expect("clean_restart");
        let t1 = Instant::now();
        let info = get_cert(https, "bench.localhost", certifier.local_ca_root_pem())
            .await
            .expect("get_cert");
        let t2 = Instant::now();
        assert_eq!(info.names, ["bench.localhost"]);
        if i >= 3 {
            total.push(t2 - t0);
            restart_t.push(t1 - t0);
        }
    }
    let (med, p90) = stats(total);
    println!("clean_restart + get_cert (local CA restarted with a fresh root), {runs} runs:");
    println!(
        "  median {}  p90 {}   (anchors: Elixir native ~800 ms, via certbot ~6 s)",
        ms(med),
        ms(p90)
    );
    println!(
        "  phases (median): clean_restart {}",
        ms(stats(restart_t).0)
    );
}
