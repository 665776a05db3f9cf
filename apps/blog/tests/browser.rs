//! A real browser: headless Chromium (Debian `chromium`) loads the HTTPS index
//! page trusting only the local CA (by SPKI pin, not a blanket ignore), and
//! the dashboard renders its chart. Chromium matches the pin against the keys
//! of the chain the server presents, which ends at the local CA's
//! intermediate (the root is not sent), so the pin is the intermediate's key —
//! the local CA's issuing key, kept in the data folder across restarts. Screenshots are kept in
//! `target/test-artifacts/`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

fn chromium() -> Option<&'static str> {
    site_encrypt_testkit::have("chromium").then_some("chromium")
}

/// base64(SHA-256(SubjectPublicKeyInfo)) of every certificate in `pem`.
fn spki_hashes(pem: &str) -> Vec<String> {
    use base64::Engine;
    site_encrypt::proto::pem::decode_all(pem, "CERTIFICATE")
        .iter()
        .map(|der| {
            let (_, c) = x509_parser::parse_x509_certificate(der).expect("parse");
            let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, c.public_key().raw);
            base64::engine::general_purpose::STANDARD.encode(d.as_ref())
        })
        .collect()
}

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

fn run_chromium(
    bin: &str,
    profile: &Path,
    spki: Option<&str>,
    extra: &[&str],
    url: &str,
) -> String {
    let mut cmd = Command::new("timeout");
    cmd.args([
        "90",
        bin,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
    ])
    .args([
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    if let Some(h) = spki {
        cmd.arg(format!("--ignore-certificate-errors-spki-list={h}"));
    }
    let out = cmd.args(extra).arg(url).output().expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_loads_the_site_and_the_dashboard_chart() {
    let Some(bin) = chromium() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let site = common::started(dir.path(), Arc::new(site_encrypt::SystemClock)).await;
    let root = std::fs::read_to_string(dir.path().join("ca-root.pem")).expect("root");
    // A view for the chart to show.
    common::https_get(
        site.https_addr,
        "www.blog.localhost",
        "/articles/local-ca",
        &root,
    )
    .await;
    let intermediate = std::fs::read_to_string(dir.path().join("local-ca/intermediate.pem"))
        .expect("intermediate");
    let pin = spki_hashes(&intermediate).remove(0);
    let url = format!("https://www.blog.localhost:{}/", site.https_addr.port());
    let dash = format!("http://{}/", site.dashboard_addr);
    let art = artifacts();

    let (index_dom, untrusted_dom, dash_dom) = tokio::task::spawn_blocking({
        let (bin, url, dash, art, pin, profile) = (
            bin.to_owned(),
            url.clone(),
            dash.clone(),
            art.clone(),
            pin.clone(),
            dir.path().join("profile"),
        );
        move || {
            let index_dom =
                run_chromium(&bin, &profile.join("a"), Some(&pin), &["--dump-dom"], &url);
            let shot = format!("--screenshot={}", art.join("blog-index.png").display());
            run_chromium(
                &bin,
                &profile.join("b"),
                Some(&pin),
                &[&shot, "--window-size=1100,800"],
                &url,
            );
            // Control: without the pin, the same page is refused.
            let untrusted_dom = run_chromium(&bin, &profile.join("c"), None, &["--dump-dom"], &url);
            let dash_dom = run_chromium(&bin, &profile.join("d"), None, &["--dump-dom"], &dash);
            let shot = format!("--screenshot={}", art.join("blog-dashboard.png").display());
            run_chromium(
                &bin,
                &profile.join("e"),
                None,
                &[&shot, "--window-size=1100,1400"],
                &dash,
            );
            (index_dom, untrusted_dom, dash_dom)
        }
    })
    .await
    .expect("chromium task");

    assert!(
        index_dom.contains("<h1>Articles</h1>")
            && index_dom.contains("A certificate authority in the same process"),
        "index not loaded:\n{index_dom}"
    );
    assert!(
        !untrusted_dom.contains("<h1>Articles</h1>"),
        "without trusting the local root the page must not load"
    );
    assert!(
        dash_dom.contains("id=\"views-chart\"") && dash_dom.contains("class=\"bar\""),
        "chart not rendered:\n{dash_dom}"
    );
    assert!(dash_dom.contains("blog.localhost, www.blog.localhost"));
    for f in ["blog-index.png", "blog-dashboard.png"] {
        let len = std::fs::metadata(art.join(f)).map(|m| m.len()).unwrap_or(0);
        assert!(len > 10_000, "{f} is missing or blank ({len} bytes)");
    }
}
