//! Error paths against a deliberately faulty CA (plain HTTP on loopback):
//! each failure is a typed error carrying the CA's detail, within the
//! configured timeout, and nothing panics.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use site_encrypt_client::*;
use site_encrypt_proto::ProblemType;

#[derive(Clone, Copy, PartialEq)]
enum Fault {
    Status500,
    Status503RetryAfter,
    Status429,
    GarbageJson,
    HtmlError,
    InvalidChallenge,
    Silent,
    GarbageDirectory,
    /// The challenge answer is already `valid`, but the first finalize is
    /// refused with orderNotReady (a CA whose order state lags).
    OrderNotReadyOnce,
}

#[derive(Clone)]
struct Fake {
    fault: Fault,
    base: String,
    /// Authorization reads so far.
    reads: Arc<AtomicUsize>,
    /// Finalize requests so far.
    finalizes: Arc<AtomicUsize>,
    /// Every request's path, in order.
    log: Arc<Mutex<Vec<String>>>,
}

fn nonce_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "replay-nonce",
        "bm9uY2Utbm9uY2Utbm9uY2U".parse().expect("header"),
    );
    h
}

fn problem(
    status: StatusCode,
    kind: &str,
    detail: &str,
    extra: &[(&'static str, &str)],
) -> Response {
    let mut h = nonce_headers();
    h.insert(
        header::CONTENT_TYPE,
        "application/problem+json".parse().expect("ct"),
    );
    for (k, v) in extra {
        h.insert(*k, v.parse().expect("header"));
    }
    let body = serde_json::json!({"type": format!("urn:ietf:params:acme:error:{kind}"), "detail": detail, "status": status.as_u16()});
    (status, h, body.to_string()).into_response()
}

fn json(status: StatusCode, location: Option<String>, body: serde_json::Value) -> Response {
    let mut h = nonce_headers();
    h.insert(
        header::CONTENT_TYPE,
        "application/json".parse().expect("ct"),
    );
    if let Some(l) = location {
        h.insert(header::LOCATION, l.parse().expect("loc"));
    }
    (status, h, body.to_string()).into_response()
}

async fn directory(State(f): State<Fake>) -> Response {
    if f.fault == Fault::GarbageDirectory {
        return (StatusCode::OK, "<html>not a directory</html>").into_response();
    }
    let b = &f.base;
    json(
        StatusCode::OK,
        None,
        serde_json::json!({
            "newNonce": format!("{b}/nonce"), "newAccount": format!("{b}/new-account"),
            "newOrder": format!("{b}/new-order"), "revokeCert": format!("{b}/revoke"),
            "keyChange": format!("{b}/key-change"), "renewalInfo": format!("{b}/ari")
        }),
    )
}

async fn nonce() -> Response {
    (StatusCode::OK, nonce_headers()).into_response()
}

async fn h_new_account(State(f): State<Fake>) -> Response {
    match f.fault {
        Fault::Status500 => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "serverInternal",
            "database on fire",
            &[],
        ),
        Fault::Status503RetryAfter => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "serverInternal",
            "down for maintenance",
            &[("retry-after", "7")],
        ),
        Fault::Status429 => problem(
            StatusCode::TOO_MANY_REQUESTS,
            "rateLimited",
            "too many new accounts from this IP",
            &[("retry-after", "Wed, 21 Oct 2099 07:28:00 GMT")],
        ),
        Fault::HtmlError => {
            let mut h = nonce_headers();
            h.insert("retry-after", "3".parse().expect("h"));
            (
                StatusCode::BAD_GATEWAY,
                h,
                "<html><body>502 Bad Gateway</body></html>",
            )
                .into_response()
        }
        Fault::Silent => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK.into_response()
        }
        _ => json(
            StatusCode::CREATED,
            Some(format!("{}/acct/1", f.base)),
            serde_json::json!({"status": "valid"}),
        ),
    }
}

async fn new_order(State(f): State<Fake>) -> Response {
    if f.fault == Fault::GarbageJson {
        return json_raw("{\"status\": \"pending\", \"identifiers\": [trunc");
    }
    let b = &f.base;
    json(
        StatusCode::CREATED,
        Some(format!("{b}/order/1")),
        serde_json::json!({
            "status": "pending", "identifiers": [{"type": "dns", "value": "bad.test"}],
            "authorizations": [format!("{b}/authz/1")], "finalize": format!("{b}/order/1/finalize")
        }),
    )
}

fn json_raw(body: &'static str) -> Response {
    let mut h = nonce_headers();
    h.insert(
        header::CONTENT_TYPE,
        "application/json".parse().expect("ct"),
    );
    (StatusCode::CREATED, h, body).into_response()
}

async fn authz(State(f): State<Fake>, headers: HeaderMap) -> Response {
    let _ = headers;
    let b = &f.base;
    // The first read is pending; every later one is invalid with the CA's reason.
    let n = f.reads.fetch_add(1, Ordering::SeqCst);
    let (status, ch_status, error) = if n == 0 {
        ("pending", "pending", serde_json::Value::Null)
    } else {
        (
            "invalid",
            "invalid",
            serde_json::json!({"type": "urn:ietf:params:acme:error:incorrectResponse", "detail": "key authorization mismatch at http://bad.test/.well-known/acme-challenge/x"}),
        )
    };
    let mut ch = serde_json::json!({"type": "http-01", "url": format!("{b}/chall/1"), "status": ch_status, "token": "DGyRejmCefe7v4NfDGDKfA"});
    if !error.is_null() {
        ch["error"] = error;
    }
    json(
        StatusCode::OK,
        None,
        serde_json::json!({"status": status, "identifier": {"type": "dns", "value": "bad.test"}, "challenges": [ch]}),
    )
}

async fn chall(State(f): State<Fake>) -> Response {
    let status = if f.fault == Fault::OrderNotReadyOnce {
        "valid"
    } else {
        "processing"
    };
    json(
        StatusCode::OK,
        None,
        serde_json::json!({"type": "http-01", "url": format!("{}/chall/1", f.base), "status": status, "token": "DGyRejmCefe7v4NfDGDKfA"}),
    )
}

fn order_json(b: &str, status: &str) -> serde_json::Value {
    let mut o = serde_json::json!({
        "status": status, "identifiers": [{"type": "dns", "value": "bad.test"}],
        "authorizations": [format!("{b}/authz/1")], "finalize": format!("{b}/order/1/finalize")
    });
    if status == "valid" {
        o["certificate"] = format!("{b}/cert/1").into();
    }
    o
}

async fn order(State(f): State<Fake>) -> Response {
    json(StatusCode::OK, None, order_json(&f.base, "ready"))
}

async fn finalize(State(f): State<Fake>) -> Response {
    if f.finalizes.fetch_add(1, Ordering::SeqCst) == 0 {
        return problem(
            StatusCode::FORBIDDEN,
            "orderNotReady",
            "authorizations still settling",
            &[],
        );
    }
    json(StatusCode::OK, None, order_json(&f.base, "valid"))
}

async fn cert() -> Response {
    problem(
        StatusCode::INTERNAL_SERVER_ERROR,
        "serverInternal",
        "end of this script",
        &[],
    )
}

async fn record(State(f): State<Fake>, req: Request, next: Next) -> Response {
    f.log.lock().expect("log").push(req.uri().path().to_owned());
    next.run(req).await
}

async fn start(fault: Fault) -> (String, Fake) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let app = Router::new()
        .route("/dir", get(directory))
        .route("/nonce", get(nonce).head(nonce))
        .route("/new-account", post(h_new_account))
        .route("/new-order", post(new_order))
        .route("/authz/1", post(authz))
        .route("/chall/1", post(chall))
        .route("/order/1", post(order))
        .route("/order/1/finalize", post(finalize))
        .route("/cert/1", post(cert));
    let fake = Fake {
        fault,
        base: base.clone(),
        reads: Arc::default(),
        finalizes: Arc::default(),
        log: Arc::default(),
    };
    let app = app
        .layer(middleware::from_fn_with_state(fake.clone(), record))
        .with_state(fake.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("{base}/dir"), fake)
}

fn policy() -> RetryPolicy {
    RetryPolicy::default()
        .request_timeout(Duration::from_millis(500))
        .poll_timeout(Duration::from_secs(5))
}

async fn client(fault: Fault) -> AcmeClient {
    client_and_fake(fault).await.0
}

async fn client_and_fake(fault: Fault) -> (AcmeClient, Fake) {
    let (url, fake) = start(fault).await;
    let http = Arc::new(DefaultHttpClient::new().expect("http"));
    let c = AcmeClient::with_policy(&url, http, policy())
        .await
        .expect("directory");
    (c, fake)
}

/// Runs `f` with a hang guard far above the configured limits.
async fn guarded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("the client hung past every configured timeout")
}

/// Certifies `bad.test` (the only name the fake CA knows), hang-guarded.
async fn certify_bad_test(
    c: &AcmeClient,
    acct: &AccountCredentials,
    solver: &Http01Solver,
) -> Result<IssuedCertificate, Error> {
    guarded(certify(
        c,
        acct,
        &[Identifier::dns("bad.test")],
        solver,
        &CertifyOptions::default(),
    ))
    .await
}

async fn new_account(c: &AcmeClient) -> Result<(AccountCredentials, bool), Error> {
    guarded(ensure_account(c, None, &AccountOptions::default())).await
}

#[tokio::test]
async fn status_500_carries_the_problem() {
    let c = client(Fault::Status500).await;
    let err = new_account(&c).await.expect_err("500");
    match &err {
        Error::Acme { op, problem, .. } => {
            assert_eq!(*op, "newAccount");
            assert_eq!(problem.kind, ProblemType::ServerInternal);
            assert_eq!(problem.detail.as_deref(), Some("database on fire"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("database on fire"), "{err}");
}

#[tokio::test]
async fn status_503_surfaces_retry_after() {
    let c = client(Fault::Status503RetryAfter).await;
    let err = new_account(&c).await.expect_err("503");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(
        err.problem().and_then(|p| p.detail.clone()).as_deref(),
        Some("down for maintenance")
    );
}

#[tokio::test]
async fn status_429_is_rate_limited_with_bounded_retry_time() {
    let c = client(Fault::Status429).await;
    let err = new_account(&c).await.expect_err("429");
    match &err {
        Error::RateLimited {
            problem,
            retry_after,
            ..
        } => {
            assert_eq!(problem.kind, ProblemType::RateLimited);
            // An HTTP-date far in the future is capped to a day.
            assert_eq!(*retry_after, Some(MAX_ERROR_RETRY_AFTER));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("too many new accounts"), "{err}");
}

#[tokio::test]
async fn non_problem_error_body_is_reported() {
    let c = client(Fault::HtmlError).await;
    let err = new_account(&c).await.expect_err("502");
    match &err {
        Error::Http {
            status,
            body,
            retry_after,
            ..
        } => {
            assert_eq!(*status, 502);
            assert!(body.contains("Bad Gateway"));
            assert_eq!(*retry_after, Some(Duration::from_secs(3)));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn malformed_json_is_a_typed_error() {
    let c = client(Fault::GarbageJson).await;
    let (acct, _) = new_account(&c).await.expect("account");
    let err = guarded(certify(
        &c,
        &acct,
        &[Identifier::dns("bad.test")],
        &Http01Solver::default(),
        &CertifyOptions::default(),
    ))
    .await
    .expect_err("garbage");
    match &err {
        Error::MalformedResponse { op, detail, .. } => {
            assert_eq!(*op, "newOrder");
            assert!(detail.contains("trunc"), "{detail}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn garbage_directory_is_a_typed_error() {
    let (url, _) = start(Fault::GarbageDirectory).await;
    let http = Arc::new(DefaultHttpClient::new().expect("http"));
    let err = AcmeClient::with_policy(&url, http, policy())
        .await
        .expect_err("garbage");
    assert!(
        matches!(
            err,
            Error::MalformedResponse {
                op: "directory",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn invalid_challenge_names_the_cause() {
    let c = client(Fault::InvalidChallenge).await;
    let (acct, _) = new_account(&c).await.expect("account");
    let solver = Http01Solver::default();
    let err = certify_bad_test(&c, &acct, &solver)
        .await
        .expect_err("invalid");
    match &err {
        Error::ChallengeFailed {
            identifier,
            problem,
        } => {
            assert_eq!(identifier.value, "bad.test");
            assert_eq!(problem.kind, ProblemType::IncorrectResponse);
            assert!(
                problem
                    .detail
                    .as_deref()
                    .unwrap_or_default()
                    .contains("mismatch")
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(solver.registry().is_empty(), "token removed after failure");
}

#[tokio::test]
async fn silent_ca_times_out() {
    let c = client(Fault::Silent).await;
    let err = new_account(&c).await.expect_err("silent");
    match err {
        Error::Timeout { op, after, .. } => {
            assert_eq!(op, "newAccount");
            assert_eq!(after, Duration::from_millis(500));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn unreachable_ca_is_a_transport_error() {
    let port = site_encrypt_testkit::free_port();
    let http = Arc::new(DefaultHttpClient::new().expect("http"));
    let err = AcmeClient::with_policy(&format!("http://127.0.0.1:{port}/dir"), http, policy())
        .await
        .expect_err("refused");
    assert!(
        matches!(
            err,
            Error::Transport {
                op: "directory",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn retry_after_parsing() {
    let now = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let max = Duration::from_secs(60);
    assert_eq!(
        parse_retry_after("30", now, max),
        Some(Duration::from_secs(30))
    );
    assert_eq!(parse_retry_after("3600", now, max), Some(max));
    let date = httpdate::fmt_http_date(now + Duration::from_secs(20));
    assert_eq!(
        parse_retry_after(&date, now, max),
        Some(Duration::from_secs(20))
    );
    let past = httpdate::fmt_http_date(now - Duration::from_secs(20));
    assert_eq!(parse_retry_after(&past, now, max), Some(Duration::ZERO));
    assert_eq!(parse_retry_after("soon", now, max), None);
}

#[tokio::test]
async fn a_valid_challenge_answer_skips_polling_and_order_not_ready_is_retried() {
    let (c, fake) = client_and_fake(Fault::OrderNotReadyOnce).await;
    let (acct, _) = new_account(&c).await.expect("account");
    fake.log.lock().expect("log").clear();
    let err = certify_bad_test(&c, &acct, &Http01Solver::default())
        .await
        .expect_err("the script ends at the download");
    // The challenge answer said valid: no authorization poll. The first
    // finalize was refused as not ready: the order is read, then finalized
    // again, then the certificate is asked for.
    assert_eq!(
        *fake.log.lock().expect("log"),
        [
            "/new-order",
            "/authz/1",
            "/chall/1",
            "/order/1/finalize",
            "/order/1",
            "/order/1/finalize",
            "/cert/1"
        ]
    );
    match &err {
        Error::Acme { op, problem, .. } => {
            assert_eq!(*op, "certificate");
            assert_eq!(problem.detail.as_deref(), Some("end of this script"));
        }
        other => panic!("unexpected {other:?}"),
    }
}
