//! The demo site like the original's tests: redirects, certification,
//! content, statistics, dashboard, restore from backup.

mod common;

use std::sync::Arc;

use common::*;
use site_encrypt::testing::{clean_restart, get_cert};

#[tokio::test]
async fn http_redirects_to_https_keeping_path_and_query() {
    let dir = tempfile::tempdir().expect("tmp");
    let site = started(dir.path(), Arc::new(site_encrypt::SystemClock)).await;
    let http = site.http_addr;
    let r = http_get(
        http,
        &format!("www.blog.localhost:{}", http.port()),
        "/articles/local-ca?utm=x",
    )
    .await;
    assert!(status_line(&r).contains("301"), "{r}");
    assert_eq!(
        header(&r, "location"),
        Some(
            format!(
                "https://www.blog.localhost:{}/articles/local-ca?utm=x",
                site.https_addr.port()
            )
            .as_str()
        )
    );
    // The ACME challenge path is never redirected.
    let r = http_get(
        http,
        "www.blog.localhost",
        "/.well-known/acme-challenge/abc",
    )
    .await;
    assert!(status_line(&r).contains("404"), "{r}");
}

#[tokio::test]
async fn apex_redirects_to_www_and_pages_render() {
    let dir = tempfile::tempdir().expect("tmp");
    let site = started(dir.path(), Arc::new(site_encrypt::SystemClock)).await;
    let root = std::fs::read_to_string(dir.path().join("ca-root.pem"))
        .expect("root written to the data folder");
    let r = https_get(
        site.https_addr,
        "blog.localhost",
        "/articles/local-ca?x=1",
        &root,
    )
    .await;
    assert!(status_line(&r).contains("301"), "{r}");
    assert_eq!(
        header(&r, "location"),
        Some(
            format!(
                "https://www.blog.localhost:{}/articles/local-ca?x=1",
                site.https_addr.port()
            )
            .as_str()
        )
    );

    let r = https_get(site.https_addr, "www.blog.localhost", "/", &root).await;
    assert!(
        status_line(&r).contains("200")
            && r.contains("<h1>Articles</h1>")
            && r.contains("/articles/local-ca"),
        "{r}"
    );
    let r = https_get(
        site.https_addr,
        "www.blog.localhost",
        "/articles/local-ca",
        &root,
    )
    .await;
    assert!(
        r.contains("A certificate authority in the same process") && r.contains("<pre><code"),
        "{r}"
    );
    let r = https_get(
        site.https_addr,
        "www.blog.localhost",
        "/static/style.css",
        &root,
    )
    .await;
    assert!(header(&r, "content-type").is_some_and(|c| c.starts_with("text/css")));
    let r = https_get(
        site.https_addr,
        "www.blog.localhost",
        "/no/such/page",
        &root,
    )
    .await;
    assert!(
        status_line(&r).contains("404") && r.contains("Not found"),
        "{r}"
    );
    let r = https_get(
        site.https_addr,
        "www.blog.localhost",
        "/articles/nope",
        &root,
    )
    .await;
    assert!(status_line(&r).contains("404"), "{r}");
}

#[tokio::test]
async fn certification_clean_restart_serves_both_names() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut site = started(dir.path(), Arc::new(site_encrypt::SystemClock)).await;
    let info = clean_restart(&mut site.certifier)
        .await
        .expect("clean restart certifies");
    assert!(!info.self_signed);
    let root = site.certifier.local_ca_root_pem().expect("root").to_owned();
    for name in ["blog.localhost", "www.blog.localhost"] {
        let served = get_cert(site.https_addr, name, Some(&root))
            .await
            .expect("TLS");
        let mut names = served.names.clone();
        names.sort();
        assert_eq!(names, ["blog.localhost", "www.blog.localhost"]);
    }
}

#[tokio::test]
async fn views_are_counted_and_the_dashboard_shows_them() {
    let dir = tempfile::tempdir().expect("tmp");
    let site = started(dir.path(), Arc::new(site_encrypt::SystemClock)).await;
    let root = std::fs::read_to_string(dir.path().join("ca-root.pem")).expect("root");
    for _ in 0..3 {
        https_get(
            site.https_addr,
            "www.blog.localhost",
            "/articles/reading-stats",
            &root,
        )
        .await;
    }
    https_get(
        site.https_addr,
        "www.blog.localhost",
        "/articles/local-ca",
        &root,
    )
    .await;
    let totals = site.app.stats.totals();
    assert_eq!(totals.get("reading-stats"), Some(&3));
    assert_eq!(totals.get("local-ca"), Some(&1));

    let page = http_get(site.dashboard_addr, "127.0.0.1", "/").await;
    assert!(
        page.contains("blog.localhost, www.blog.localhost"),
        "certificate names shown"
    );
    assert!(
        page.contains("site-encrypt local intermediate"),
        "issuer shown"
    );
    assert!(
        page.contains("<svg id=\"views-chart\"") && page.contains("class=\"bar\""),
        "chart drawn"
    );
    assert!(page.contains("obtained at"), "last result shown");
    let metrics = http_get(site.dashboard_addr, "127.0.0.1", "/metrics").await;
    assert!(
        metrics.contains("blog_article_views_total{article=\"reading-stats\"} 3"),
        "{metrics}"
    );
    assert!(metrics.contains("blog_certificate_self_signed 0"));
    assert!(
        metrics.contains("blog_http_responses_total{server=\"blog\",class=\"2xx\"} 4"),
        "{metrics}"
    );
    // The dashboard listens on loopback only.
    assert!(site.dashboard_addr.ip().is_loopback());
}

#[tokio::test]
async fn restores_certificates_and_statistics_from_backup() {
    let dir = tempfile::tempdir().expect("tmp");
    let site = started(dir.path(), Arc::new(site_encrypt::SystemClock)).await;
    let root = std::fs::read_to_string(dir.path().join("ca-root.pem")).expect("root");
    https_get(
        site.https_addr,
        "www.blog.localhost",
        "/articles/in-process-https",
        &root,
    )
    .await;
    let served = site.certifier.status().serving;
    site.app.stats.flush().expect("flush");
    site.shutdown().await;

    std::fs::remove_dir_all(dir.path().join("certs")).expect("lose certs");
    std::fs::remove_dir_all(dir.path().join("stats")).expect("lose stats");
    let site = blog::start(
        blog::Settings::for_tests(dir.path()),
        Arc::new(site_encrypt::SystemClock),
    )
    .await
    .expect("restart");
    assert_eq!(
        site.certifier.status().serving,
        served,
        "certificate restored from backup and served at once"
    );
    assert_eq!(
        site.app.stats.totals().get("in-process-https"),
        Some(&1),
        "statistics restored from backup"
    );
    // The persisted local CA root still verifies the restored certificate.
    get_cert(site.https_addr, "www.blog.localhost", Some(&root))
        .await
        .expect("verifies");
}
