//! Renewal, backoff and recovery driven by a fake clock (no sleeping), plus
//! domain changes, backup/restore, hooks and manual operations.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use site_encrypt::ca::{CaConfig, LocalCa};
use site_encrypt::{Certifier, Clock, Config, ConfigBuilder, DirectoryUrl, Event, FakeClock, Mode};
use tokio::net::TcpListener;
use tokio::sync::broadcast::Receiver;

const DAY: Duration = Duration::from_secs(86_400);

/// Waits (at most 20 s of real time) for an event matching `pred`; returns it
/// and every event seen before it.
async fn until(rx: &mut Receiver<Event>, pred: impl Fn(&Event) -> bool) -> (Event, Vec<Event>) {
    let mut seen = Vec::new();
    let wait = async {
        loop {
            match rx.recv().await {
                Ok(e) if pred(&e) => return e,
                Ok(e) => seen.push(e),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("event stream ended: {e}"),
            }
        }
    };
    let e = tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .unwrap_or_else(|_| panic!("timed out; saw {seen:?}"));
    (e, seen)
}

fn obtained(e: &Event) -> bool {
    matches!(e, Event::Obtained { .. })
}

/// The HTTP side of a site (challenges only), on a listener bound before the certifier starts.
struct Http {
    listener: Option<TcpListener>,
    port: u16,
}

async fn http() -> Http {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    Http {
        listener: Some(l),
        port,
    }
}

fn serve_challenges(h: &mut Http, c: &Certifier) {
    let l = h.listener.take().expect("listener");
    let app = site_encrypt::axum::http_router(c.registry(), 443);
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
}

fn base(dir: &std::path::Path, port: u16) -> ConfigBuilder {
    Config::builder()
        .domain("renew.localhost")
        .storage(dir.join("certs"))
        .http_port(port)
}

#[tokio::test]
async fn renews_after_the_threshold_and_not_before() {
    let dir = tempfile::tempdir().expect("tmp");
    let clock = Arc::new(FakeClock::starting_now());
    let mut h = http().await;
    let cfg = base(dir.path(), h.port)
        .directory(DirectoryUrl::Internal { port: 0 })
        .build()
        .expect("cfg");
    let c = Certifier::start_with(cfg, clock.clone(), None)
        .await
        .expect("start");
    let mut rx = c.events();
    serve_challenges(&mut h, &c);
    let (first, _) = until(&mut rx, obtained).await;
    let Event::Obtained { info: first } = first else {
        unreachable!()
    };
    assert_eq!((first.not_after - first.not_before).whole_days(), 90);

    // 59 days later: checked, not due.
    clock.advance(59 * DAY);
    let now = clock.now();
    let (_, seen) = until(
        &mut rx,
        |e| matches!(e, Event::RenewalScheduled { at } if *at > now),
    )
    .await;
    assert!(
        !seen.iter().any(|e| matches!(e, Event::Certifying { .. })),
        "renewed too early: {seen:?}"
    );
    assert_eq!(c.status().serving, first);

    // 61 days later: past 30 days before expiry → renewed.
    clock.advance(2 * DAY);
    let (e, seen) = until(&mut rx, obtained).await;
    let Event::Obtained { info: second } = e else {
        unreachable!()
    };
    assert!(seen.iter().any(|e| matches!(e, Event::Certifying { .. })));
    assert!(
        second.not_after > first.not_after + 50 * DAY,
        "a fresh certificate"
    );
    assert_eq!(c.status().serving, second);
}

#[tokio::test]
async fn failing_ca_backs_off_keeps_the_old_certificate_and_recovers() {
    let dir = tempfile::tempdir().expect("tmp");
    let clock = Arc::new(FakeClock::starting_now());
    let ca_state = dir.path().join("ca");
    let mut h = http().await;
    let site_port = h.port;
    let ca_cfg = |port: u16| {
        let clock = clock.clone();
        CaConfig::new()
            .listen(format!("127.0.0.1:{port}").parse().expect("addr"))
            .http01_port(site_port)
            .state_dir(&ca_state)
            .now_fn(move || clock.now())
    };
    let ca = LocalCa::start(ca_cfg(0)).await.expect("ca");
    let ca_port = ca.addr().port();
    let cfg = base(dir.path(), h.port)
        .directory(DirectoryUrl::Url(ca.directory_url().to_owned()))
        .ca_root_pem(ca.root_pem())
        .build()
        .expect("cfg");
    let c = Certifier::start_with(cfg, clock.clone(), None)
        .await
        .expect("start");
    let mut rx = c.events();
    serve_challenges(&mut h, &c);
    let (Event::Obtained { info: old }, _) = until(&mut rx, obtained).await else {
        unreachable!()
    };

    // The CA goes away; the renewal time comes.
    ca.stop().await;
    clock.advance(61 * DAY);
    let mut schedule = Vec::new();
    for _ in 0..4 {
        let (e, _) = until(&mut rx, |e| matches!(e, Event::Failed { .. })).await;
        let Event::Failed {
            attempt,
            retry_in,
            error,
        } = e
        else {
            unreachable!()
        };
        assert!(
            error.contains("connection failed") || error.contains("directory"),
            "{error}"
        );
        schedule.push((attempt, retry_in));
        assert_eq!(
            c.status().serving,
            old,
            "the old certificate stays in service"
        );
        clock.advance(retry_in);
    }
    assert_eq!(
        schedule,
        [
            (1, Duration::from_secs(60)),
            (2, Duration::from_secs(600)),
            (3, Duration::from_secs(6000)),
            (4, Duration::from_secs(4 * 3600))
        ]
    );
    assert_eq!(c.status().failures, 4);
    assert!(c.status().last_result().expect("result").result.is_err());

    // The CA is back (same port, same root): the next attempt succeeds.
    let _ca = LocalCa::start(ca_cfg(ca_port)).await.expect("ca again");
    let (e, _) = until(&mut rx, |e| {
        obtained(e) || matches!(e, Event::Failed { .. })
    })
    .await;
    let new = match e {
        Event::Obtained { info } => info,
        // The attempt right after the 4th failure may have started before the
        // CA was back; the one after it must succeed.
        _ => {
            clock.advance(site_encrypt::BACKOFF_MAX);
            let (Event::Obtained { info }, _) = until(&mut rx, obtained).await else {
                unreachable!()
            };
            info
        }
    };
    assert!(new.not_after > old.not_after);
    assert_eq!(c.status().serving, new);
    assert_eq!(c.status().failures, 0);
}

#[tokio::test]
async fn changed_domains_get_a_new_certificate_at_start() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut h = http().await;
    let cfg = base(dir.path(), h.port)
        .directory(DirectoryUrl::Internal { port: 0 })
        .build()
        .expect("cfg");
    let mut c = Certifier::start(cfg).await.expect("start");
    let mut rx = c.events();
    serve_challenges(&mut h, &c);
    until(&mut rx, obtained).await;
    c.stop().await;
    drop(c);

    let mut h = http().await;
    let cfg = base(dir.path(), h.port)
        .domain("www.renew.localhost")
        .directory(DirectoryUrl::Internal { port: 0 })
        .build()
        .expect("cfg");
    let c = Certifier::start(cfg).await.expect("restart");
    let mut rx = c.events();
    serve_challenges(&mut h, &c);
    let (Event::Obtained { info }, seen) = until(&mut rx, obtained).await else {
        unreachable!()
    };
    assert!(
        seen.iter().any(
            |e| matches!(e, Event::Certifying { reason } if reason.contains("domains changed"))
        ),
        "{seen:?}"
    );
    let mut names = info.names.clone();
    names.sort();
    assert_eq!(names, ["renew.localhost", "www.renew.localhost"]);
}

#[tokio::test]
async fn backup_restores_without_certifying_and_the_hook_fires_once_per_certificate() {
    let dir = tempfile::tempdir().expect("tmp");
    let hook_calls = Arc::new(AtomicUsize::new(0));
    let make = |port: u16, directory: DirectoryUrl| {
        let calls = hook_calls.clone();
        base(dir.path(), port)
            .directory(directory)
            .backup(dir.path().join("backup").join("certs.tgz"))
            .on_new_certificate(move |cert| {
                let calls = calls.clone();
                async move {
                    assert!(cert.key_pem.contains("PRIVATE KEY"));
                    calls.fetch_add(1, Ordering::SeqCst);
                }
            })
            .build()
            .expect("cfg")
    };
    let mut h = http().await;
    let mut c = Certifier::start(make(h.port, DirectoryUrl::Internal { port: 0 }))
        .await
        .expect("start");
    let mut rx = c.events();
    serve_challenges(&mut h, &c);
    let (Event::Obtained { info: original }, _) = until(&mut rx, obtained).await else {
        unreachable!()
    };
    assert_eq!(hook_calls.load(Ordering::SeqCst), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |rel: &str| {
            std::fs::metadata(dir.path().join(rel))
                .unwrap_or_else(|e| panic!("{rel}: {e}"))
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("backup/certs.tgz"), 0o600);
        assert_eq!(mode("certs/current/key.pem"), 0o600);
        assert_eq!(mode("certs"), 0o700);
    }
    c.stop().await;
    drop(c);

    // Storage lost; the backup brings it back and it is served as is — with
    // the CA unreachable, so the CA cannot have been involved.
    std::fs::remove_dir_all(dir.path().join("certs")).expect("wipe storage");
    let dead = site_encrypt_testkit::free_port();
    let mut h = http().await;
    let offline = DirectoryUrl::Url(format!("https://127.0.0.1:{dead}/dir"));
    let mut c = Certifier::start(make(h.port, offline))
        .await
        .expect("restart");
    let mut rx = c.events();
    serve_challenges(&mut h, &c);
    assert_eq!(
        c.status().serving,
        original,
        "restored certificate is served at once"
    );
    let (_, seen) = until(&mut rx, |e| matches!(e, Event::RenewalScheduled { .. })).await;
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, Event::Certifying { .. } | Event::Failed { .. })),
        "no certification: {seen:?}"
    );
    assert!(
        dir.path().join("certs/current/key.pem").exists(),
        "storage repopulated from the backup"
    );
    assert_eq!(
        hook_calls.load(Ordering::SeqCst),
        1,
        "no new certificate, no hook"
    );
    assert!(c.status().history.is_empty(), "no attempt was made");
    c.stop().await;
    drop(c);

    // Back on a working CA, the restored state certifies normally.
    let mut h = http().await;
    let c = Certifier::start(make(h.port, DirectoryUrl::Internal { port: 0 }))
        .await
        .expect("restart");
    serve_challenges(&mut h, &c);
    assert_eq!(c.status().serving, original);

    // A forced certification is one new certificate: one more hook call.
    let forced = c.force_certify().await.expect("force");
    assert!(forced.not_before >= original.not_before);
    assert_eq!(hook_calls.load(Ordering::SeqCst), 2);
    let archived = std::fs::read_dir(dir.path().join("certs/archive"))
        .expect("archive")
        .count();
    assert_eq!(archived, 1, "the previous certificate is archived");
}

#[tokio::test]
async fn manual_mode_dry_certify_and_set_certificate() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut h = http().await;
    let cfg = base(dir.path(), h.port)
        .directory(DirectoryUrl::Internal { port: 0 })
        .mode(Mode::Manual)
        .build()
        .expect("cfg");
    let c = Certifier::start(cfg).await.expect("start");
    serve_challenges(&mut h, &c);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        c.status().serving.self_signed,
        "manual mode does not certify by itself"
    );

    let dry = c.dry_certify().await.expect("dry");
    assert!(!dry.info.self_signed);
    assert!(c.status().serving.self_signed, "a dry run is not applied");
    assert!(
        !dir.path().join("certs/current/cert.pem").exists(),
        "nor stored"
    );

    // A certificate for other names, or with a key that does not match, is refused.
    let other =
        rcgen::generate_simple_self_signed(vec!["other.localhost".to_string()]).expect("cert");
    let err = c
        .set_certificate(other.cert.pem(), other.signing_key.serialize_pem())
        .await
        .expect_err("other names");
    assert!(
        err.to_string().contains("not the configured domains"),
        "{err}"
    );
    let err = c
        .set_certificate(dry.chain_pem.clone(), other.signing_key.serialize_pem())
        .await
        .expect_err("key mismatch");
    assert!(err.to_string().contains("does not match"), "{err}");
    assert!(c.status().serving.self_signed, "refusals change nothing");

    let set = c
        .set_certificate(dry.chain_pem.clone(), dry.key_pem.clone())
        .await
        .expect("set");
    assert_eq!(set, dry.info);
    assert_eq!(c.status().serving, dry.info);
    assert!(dir.path().join("certs/current/cert.pem").exists());
}

#[test]
fn config_is_validated_when_built() {
    assert!(Config::builder().build().is_err());
    assert!(Config::builder().domain("bad_name.test").build().is_err());
    assert!(
        Config::builder()
            .domain("ok.test")
            .email("not-an-email")
            .build()
            .is_err()
    );
    assert!(
        Config::builder()
            .domain("ok.test")
            .directory(DirectoryUrl::Url("http://insecure".into()))
            .build()
            .is_err()
    );
    assert!(
        Config::builder()
            .domain("ok.test")
            .renew_before(Duration::from_secs(5))
            .build()
            .is_err()
    );
    assert!(
        Config::builder()
            .domain("ok.test")
            .checks_per_day(0)
            .build()
            .is_err()
    );
    let err = Config::builder()
        .domain("a.test")
        .ca_root_pem("garbage")
        .build()
        .expect_err("pem");
    assert!(err.to_string().contains("PEM"));

    // Values from a file (serde) merged with code.
    let from_file: ConfigBuilder = serde_json::from_str(
        r#"{"domains": ["file.test"], "renew_before": 864000, "mode": "manual"}"#,
    )
    .expect("json");
    let cfg = Config::builder()
        .domain("code.test")
        .email("ops@code.test")
        .merge(from_file)
        .build()
        .expect("merged");
    assert_eq!(cfg.domains()[0].value, "file.test");
    assert_eq!(cfg.renew_before(), Duration::from_secs(864_000));
    assert_eq!(cfg.mode(), Mode::Manual);
    assert!(
        serde_json::from_str::<ConfigBuilder>(r#"{"domain": "typo.test"}"#).is_err(),
        "unknown keys are refused"
    );
}

#[test]
fn backoff_schedule() {
    use site_encrypt::backoff;
    assert_eq!(backoff(1), Duration::from_secs(60));
    assert_eq!(backoff(2), Duration::from_secs(600));
    assert_eq!(backoff(3), Duration::from_secs(6000));
    assert_eq!(backoff(4), site_encrypt::BACKOFF_MAX);
    assert_eq!(backoff(40), site_encrypt::BACKOFF_MAX);
}

/// A CA that rate-limits newOrder with `Retry-After: 7200`: the service waits
/// the two hours, not its own first backoff step of one minute.
#[tokio::test]
async fn rate_limit_retry_after_is_honoured() {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    let dir = tempfile::tempdir().expect("tmp");
    let ca_root = site_encrypt_testkit::listener_tls(dir.path());
    let served = site_encrypt::Served::from_pem(
        &std::fs::read_to_string(dir.path().join("listener.pem")).expect("pem"),
        &std::fs::read_to_string(dir.path().join("listener.key")).expect("key"),
    )
    .expect("served");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().expect("addr").port()
    );
    let nonce = [("replay-nonce", "bm9uY2Utbm9uY2U")];
    let b = base.clone();
    let app = axum::Router::new()
        .route(
            "/dir",
            axum::routing::get(move || {
                let b = b.clone();
                async move {
                    axum::Json(serde_json::json!({
                        "newNonce": format!("{b}/nonce"), "newAccount": format!("{b}/acct"),
                        "newOrder": format!("{b}/order"), "revokeCert": format!("{b}/revoke"),
                        "keyChange": format!("{b}/kc")
                    }))
                }
            }),
        )
        .route("/nonce", axum::routing::head(move || async move { (StatusCode::OK, nonce) }))
        .route(
            "/acct",
            axum::routing::post({
                let b = base.clone();
                move || {
                    let b = b.clone();
                    async move { (StatusCode::CREATED, nonce, [(header::LOCATION, format!("{b}/acct/1"))], axum::Json(serde_json::json!({"status": "valid"}))).into_response() }
                }
            }),
        )
        .route(
            "/order",
            axum::routing::post(move || async move {
                let problem = serde_json::json!({"type": "urn:ietf:params:acme:error:rateLimited", "detail": "too many certificates for this name this week", "status": 429});
                (StatusCode::TOO_MANY_REQUESTS, nonce, [(header::RETRY_AFTER, "7200"), (header::CONTENT_TYPE, "application/problem+json")], problem.to_string()).into_response()
            }),
        );
    let server = tokio::spawn(site_encrypt::axum::serve_tls(
        app,
        Arc::new(site_encrypt::CertResolver::new(served)),
        listener,
    ));

    let clock = Arc::new(FakeClock::starting_now());
    let start = clock.now();
    let h = http().await;
    let cfg = base_cfg_for_url(
        dir.path(),
        h.port,
        &format!("{base}/dir"),
        &std::fs::read_to_string(ca_root).expect("root"),
    );
    let c = Certifier::start_with(cfg, clock.clone(), None)
        .await
        .expect("start");
    let mut rx = c.events();
    let (e, _) = until(&mut rx, |e| matches!(e, Event::Failed { .. })).await;
    let Event::Failed {
        attempt,
        retry_in,
        error,
    } = e
    else {
        unreachable!()
    };
    assert_eq!(attempt, 1);
    assert_eq!(
        retry_in,
        Duration::from_secs(7200),
        "Retry-After wins over the 60 s first step"
    );
    assert!(
        error.contains("rateLimited") && error.contains("too many certificates"),
        "{error}"
    );
    let (Event::RenewalScheduled { at }, _) =
        until(&mut rx, |e| matches!(e, Event::RenewalScheduled { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(at, start + Duration::from_secs(7200));
    // A minute later nothing is retried.
    clock.advance(Duration::from_secs(60));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(c.status().failures, 1);
    assert_eq!(c.status().history.len(), 1);
    server.abort();
}

fn base_cfg_for_url(dir: &std::path::Path, port: u16, url: &str, root: &str) -> Config {
    base(dir, port)
        .directory(DirectoryUrl::Url(url.to_owned()))
        .ca_root_pem(root)
        .build()
        .expect("cfg")
}
