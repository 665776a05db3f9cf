//! The client and workflow against the in-process local CA: certification,
//! key change, revocation, renewal info — through real HTTPS and real http-01.

use std::sync::Arc;

use site_encrypt_ca::{CaConfig, LocalCa};
use site_encrypt_client::*;
use site_encrypt_proto::{CertificateId, ProblemType};

struct Env {
    ca: LocalCa,
    client: AcmeClient,
    solver: Http01Solver,
    _server: Http01Server,
}

async fn env(cfg: CaConfig) -> Env {
    let solver = Http01Solver::default();
    let server = Http01Server::bind(
        "127.0.0.1:0".parse().expect("addr"),
        solver.registry().clone(),
    )
    .await
    .expect("bind");
    let ca = LocalCa::start(cfg.http01_port(server.addr().port()))
        .await
        .expect("CA starts");
    let http = Arc::new(DefaultHttpClient::with_root_pem(ca.root_pem()).expect("http"));
    let client = AcmeClient::new(ca.directory_url(), http)
        .await
        .expect("directory");
    Env {
        ca,
        client,
        solver,
        _server: server,
    }
}

impl Env {
    /// Certifies `ids` for `acct` with `opts` through this CA.
    async fn certify_with(
        &self,
        acct: &AccountCredentials,
        ids: &[Identifier],
        opts: &CertifyOptions,
    ) -> Result<IssuedCertificate, Error> {
        certify(&self.client, acct, ids, &self.solver, opts).await
    }

    /// Certifies `ids` for `acct` with default options.
    async fn certify(
        &self,
        acct: &AccountCredentials,
        ids: &[Identifier],
    ) -> Result<IssuedCertificate, Error> {
        self.certify_with(acct, ids, &CertifyOptions::default())
            .await
    }
}

async fn account(e: &Env) -> AccountCredentials {
    let opts = AccountOptions {
        emails: vec!["admin@example.test".into()],
        terms_of_service_agreed: true,
        ..Default::default()
    };
    let (creds, created) = ensure_account(&e.client, None, &opts)
        .await
        .expect("account");
    assert!(created);
    creds
}

fn leaf_der(chain: &str) -> Vec<u8> {
    site_encrypt_proto::pem::decode_all(chain, "CERTIFICATE")
        .into_iter()
        .next()
        .expect("leaf")
}

fn sans(der: &[u8]) -> Vec<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).expect("parse");
    let san = cert.subject_alternative_name().expect("ext").expect("SAN");
    san.value
        .general_names
        .iter()
        .map(|g| g.to_string())
        .collect()
}

fn cert_id(der: &[u8]) -> CertificateId {
    certificate_id(der).expect("certificate ID")
}

#[tokio::test]
async fn certifies_one_and_two_names() {
    let e = env(CaConfig::new()).await;
    let acct = account(&e).await;
    for names in [
        vec!["one.test"],
        vec!["site.localhost", "www.site.localhost"],
    ] {
        let ids: Vec<Identifier> = names.iter().map(|n| Identifier::dns(*n)).collect();
        let cert = e.certify(&acct, &ids).await.expect("certify");
        let got = sans(&leaf_der(&cert.chain_pem));
        for n in &names {
            assert!(got.contains(&format!("DNSName({n})")), "{n} not in {got:?}");
        }
        assert_eq!(
            site_encrypt_proto::pem::decode_all(&cert.chain_pem, "CERTIFICATE").len(),
            2,
            "leaf + intermediate"
        );
        assert!(cert.key.pkcs8_pem().contains("PRIVATE KEY"));
    }
    assert!(e.solver.registry().is_empty(), "tokens are cleaned up");
}

#[tokio::test]
async fn certifies_ip_identifiers_and_every_key_type() {
    let e = env(CaConfig::new()).await;
    let acct = account(&e).await;
    for kt in [KeyType::EcP384, KeyType::Rsa2048] {
        let ids = [
            Identifier::ip("127.0.0.1".parse().expect("ip")),
            Identifier::dns("k.test"),
        ];
        let opts = CertifyOptions {
            key_type: kt,
            ..Default::default()
        };
        let cert = e.certify_with(&acct, &ids, &opts).await.expect("certify");
        assert_eq!(cert.key.key_type(), kt);
        let got = sans(&leaf_der(&cert.chain_pem));
        assert!(
            got.contains(&"IPAddress(7f:00:00:01)".to_string()),
            "{got:?}"
        );
    }
}

#[tokio::test]
async fn second_order_reuses_valid_authorizations() {
    let e = env(CaConfig::new()).await;
    let acct = account(&e).await;
    let ids = [Identifier::dns("reuse.test")];
    e.certify(&acct, &ids).await.expect("first");
    let (_, order) = e
        .client
        .new_order(
            &acct,
            &site_encrypt_proto::NewOrder {
                identifiers: ids.to_vec(),
                ..Default::default()
            },
        )
        .await
        .expect("order");
    assert_eq!(
        order.status,
        site_encrypt_proto::OrderStatus::Ready,
        "valid authz reused"
    );
    e.certify(&acct, &ids).await.expect("second");
}

#[tokio::test]
async fn existing_account_is_found_and_reused() {
    let e = env(CaConfig::new()).await;
    let acct = account(&e).await;
    let json = serde_json::to_string(&acct).expect("serialize");
    let restored: AccountCredentials = serde_json::from_str(&json).expect("deserialize");
    let (again, created) = ensure_account(&e.client, Some(restored), &AccountOptions::default())
        .await
        .expect("ensure");
    assert!(!created);
    assert_eq!(again.url, acct.url);
    let found = e
        .client
        .find_account(KeyPair::from_pkcs8_der(acct.key.pkcs8_der()).expect("key"))
        .await
        .expect("find");
    assert_eq!(found.expect("exists").0.url, acct.url);
    let stranger = e
        .client
        .find_account(KeyPair::generate(KeyType::EcP256).expect("key"))
        .await
        .expect("find");
    assert!(stranger.is_none());
}

#[tokio::test]
async fn key_change_rolls_the_account_key() {
    let e = env(CaConfig::new()).await;
    let acct = account(&e).await;
    let old_pem = acct.key.pkcs8_pem();
    let new = e
        .client
        .key_change(&acct, KeyPair::generate(KeyType::EcP384).expect("key"))
        .await
        .expect("key change");
    assert_eq!(new.url, acct.url);
    // The new key works; the old key no longer finds the account.
    e.client.account(&new).await.expect("new key works");
    let old = KeyPair::from_pkcs8_pem(&old_pem).expect("old");
    assert!(e.client.find_account(old).await.expect("lookup").is_none());
    let err = e.client.account(&acct).await.expect_err("old key refused");
    assert_eq!(
        err.problem().map(|p| p.kind.clone()),
        Some(ProblemType::Unauthorized),
        "{err}"
    );
    // Changing to a key another account uses is refused.
    let other = account(&e).await;
    let clash = KeyPair::from_pkcs8_der(other.key.pkcs8_der()).expect("key");
    let err = e
        .client
        .key_change(&new, clash)
        .await
        .expect_err("key in use");
    assert!(matches!(err, Error::Acme { .. }), "{err}");
}

#[tokio::test]
async fn revocation_by_account_and_by_certificate_key() {
    let e = env(CaConfig::new()).await;
    let acct = account(&e).await;
    let ids = [Identifier::dns("revoke.test")];
    let c1 = e.certify(&acct, &ids).await.expect("c1");
    let c2 = e.certify(&acct, &ids).await.expect("c2");
    let d1 = leaf_der(&c1.chain_pem);
    let d2 = leaf_der(&c2.chain_pem);

    // A bad reason code is refused with badRevocationReason.
    let err = e
        .client
        .revoke(RevokeBy::Account(&acct), &d1, Some(7))
        .await
        .expect_err("reason 7");
    assert_eq!(
        err.problem().expect("problem").kind,
        ProblemType::BadRevocationReason
    );
    // Another account, not authorized for the name, may not revoke.
    let stranger = account(&e).await;
    let err = e
        .client
        .revoke(RevokeBy::Account(&stranger), &d1, None)
        .await
        .expect_err("stranger");
    assert_eq!(
        err.problem().expect("problem").kind,
        ProblemType::Unauthorized
    );

    e.client
        .revoke(RevokeBy::Account(&acct), &d1, Some(4))
        .await
        .expect("revoke by account");
    let err = e
        .client
        .revoke(RevokeBy::Account(&acct), &d1, None)
        .await
        .expect_err("twice");
    assert_eq!(
        err.problem().expect("problem").kind,
        ProblemType::AlreadyRevoked
    );

    // By the certificate's own key (jwk), and not by some other key.
    let wrong = KeyPair::generate(KeyType::EcP256).expect("key");
    let err = e
        .client
        .revoke(RevokeBy::CertificateKey(&wrong), &d2, None)
        .await
        .expect_err("wrong key");
    assert_eq!(
        err.problem().expect("problem").kind,
        ProblemType::Unauthorized
    );
    e.client
        .revoke(RevokeBy::CertificateKey(&c2.key), &d2, None)
        .await
        .expect("revoke by cert key");

    // ARI for a revoked certificate says: renew now (a window in the past).
    let (info, _) = e
        .client
        .renewal_info(&cert_id(&d1))
        .await
        .expect("ari")
        .expect("offered");
    assert!(info.suggested_window.end < time::OffsetDateTime::now_utc());
}

#[tokio::test]
async fn renewal_info_and_replaces() {
    let e = env(CaConfig::new()).await;
    let acct = account(&e).await;
    let ids = [Identifier::dns("ari.test")];
    let c1 = e.certify(&acct, &ids).await.expect("c1");
    let id = cert_id(&leaf_der(&c1.chain_pem));
    let (info, retry) = e
        .client
        .renewal_info(&id)
        .await
        .expect("ari")
        .expect("offered");
    let der = leaf_der(&c1.chain_pem);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("parse");
    let nb = cert.validity().not_before.to_datetime();
    let na = cert.validity().not_after.to_datetime();
    assert!(
        info.suggested_window.start > nb && info.suggested_window.end < na,
        "window inside validity"
    );
    assert!(info.suggested_window.is_valid());
    assert!(retry.is_some(), "Retry-After tells when to ask again");

    // An unknown certificate ID is a typed error with the CA's detail.
    let err = e
        .client
        .renewal_info(&CertificateId::new([1u8; 20], [2u8; 8]))
        .await
        .expect_err("unknown");
    assert!(err.to_string().contains("no such certificate"), "{err}");

    // Replacing it works once; replacing it again is alreadyReplaced.
    let opts = CertifyOptions {
        replaces: Some(id.to_string()),
        ..Default::default()
    };
    e.certify_with(&acct, &ids, &opts)
        .await
        .expect("replacement");
    let err = e
        .certify_with(&acct, &ids, &opts)
        .await
        .expect_err("replaced twice");
    assert_eq!(
        err.problem().expect("problem").kind,
        ProblemType::AlreadyReplaced
    );
}

#[tokio::test]
async fn profiles_set_the_lifetime() {
    let e = env(CaConfig::new()).await;
    let acct = account(&e).await;
    let ids = [Identifier::dns("short.test")];
    let opts = CertifyOptions {
        profile: Some("shortlived".into()),
        ..Default::default()
    };
    let cert = e.certify_with(&acct, &ids, &opts).await.expect("certify");
    let der = leaf_der(&cert.chain_pem);
    let (_, c) = x509_parser::parse_x509_certificate(&der).expect("parse");
    let life = c.validity().not_after.to_datetime() - c.validity().not_before.to_datetime();
    assert_eq!(life.whole_days(), 6);
    let opts = CertifyOptions {
        profile: Some("nope".into()),
        ..Default::default()
    };
    let err = e
        .certify_with(&acct, &ids, &opts)
        .await
        .expect_err("unknown profile");
    assert_eq!(
        err.problem().expect("problem").kind,
        ProblemType::InvalidProfile
    );
}

#[tokio::test]
async fn short_lifetimes_work() {
    let e = env(CaConfig::new().cert_lifetime(std::time::Duration::from_secs(3600))).await;
    let acct = account(&e).await;
    let cert = e
        .certify(&acct, &[Identifier::dns("hour.test")])
        .await
        .expect("certify");
    let der = leaf_der(&cert.chain_pem);
    let (_, c) = x509_parser::parse_x509_certificate(&der).expect("parse");
    let life = c.validity().not_after.to_datetime() - c.validity().not_before.to_datetime();
    assert_eq!(life.whole_seconds(), 3600);
    let _ = &e.ca;
}

#[tokio::test]
async fn deactivated_account_is_refused() {
    let e = env(CaConfig::new()).await;
    let acct = account(&e).await;
    let a = e
        .client
        .update_account(&acct, vec!["mailto:new@example.test".into()])
        .await
        .expect("update");
    assert_eq!(a.contact, ["mailto:new@example.test"]);
    let err = e
        .client
        .update_account(&acct, vec!["tel:+1555".into()])
        .await
        .expect_err("tel");
    assert_eq!(
        err.problem().expect("problem").kind,
        ProblemType::UnsupportedContact
    );
    let a = e
        .client
        .deactivate_account(&acct)
        .await
        .expect("deactivate");
    assert_eq!(a.status, site_encrypt_proto::AccountStatus::Deactivated);
    let err = e
        .certify(&acct, &[Identifier::dns("x.test")])
        .await
        .expect_err("deactivated");
    assert_eq!(
        err.problem().expect("problem").kind,
        ProblemType::Unauthorized
    );
}

#[tokio::test]
async fn badnonce_is_retried() {
    let e = env(CaConfig::new().nonce_reject_percent(50)).await;
    let acct = account(&e).await;
    e.certify(&acct, &[Identifier::dns("nonce.test")])
        .await
        .expect("certify despite badNonce");
}

#[tokio::test]
async fn failed_validation_names_the_cause() {
    // The CA fetches from a port where nothing answers the token (our solver
    // publishes, but the CA is pointed elsewhere).
    let solver = Http01Solver::default();
    let port = site_encrypt_testkit::free_port();
    let ca = LocalCa::start(CaConfig::new().http01_port(port))
        .await
        .expect("ca");
    let http = Arc::new(DefaultHttpClient::with_root_pem(ca.root_pem()).expect("http"));
    let client = AcmeClient::new(ca.directory_url(), http)
        .await
        .expect("dir");
    let (acct, _) = ensure_account(&client, None, &AccountOptions::default())
        .await
        .expect("acct");
    let err = certify(
        &client,
        &acct,
        &[Identifier::dns("dead.test")],
        &solver,
        &CertifyOptions::default(),
    )
    .await
    .expect_err("must fail");
    match &err {
        Error::ChallengeFailed {
            identifier,
            problem,
        } => {
            assert_eq!(identifier.value, "dead.test");
            assert_eq!(problem.kind, ProblemType::Connection);
            assert!(
                problem
                    .detail
                    .as_deref()
                    .unwrap_or_default()
                    .contains("cannot connect"),
                "{err}"
            );
        }
        other => panic!("unexpected error: {other}"),
    }
}

/// An [`HttpClient`] that records every request it passes on as the
/// resource kind: `POST order/finalize` for `POST .../order/ID/finalize`.
struct Recording {
    inner: DefaultHttpClient,
    seen: std::sync::Mutex<Vec<String>>,
}

impl HttpClient for Recording {
    fn request(&self, req: HttpRequest) -> HttpFuture<'_> {
        let parts: Vec<&str> = req.url.split('/').skip(3).collect();
        let kind = match parts.as_slice() {
            [kind, _, last] => format!("{kind}/{last}"),
            [kind, ..] => (*kind).to_owned(),
            [] => String::new(),
        };
        self.seen
            .lock()
            .expect("lock")
            .push(format!("{} {kind}", req.method));
        self.inner.request(req)
    }
}

/// Certifies `rounds` names in a row and returns the requests of each.
async fn requests_per_certification(cfg: CaConfig, rounds: usize) -> Vec<Vec<String>> {
    let e = env(cfg).await;
    let acct = account(&e).await;
    let rec = Arc::new(Recording {
        inner: DefaultHttpClient::with_root_pem(e.ca.root_pem()).expect("http"),
        seen: Default::default(),
    });
    let client = AcmeClient::new(e.ca.directory_url(), rec.clone())
        .await
        .expect("directory");
    let mut out = Vec::new();
    for round in 0..rounds {
        rec.seen.lock().expect("lock").clear();
        let id = [Identifier::dns(format!("r{round}.example.test"))];
        certify(&client, &acct, &id, &e.solver, &CertifyOptions::default())
            .await
            .expect("certified");
        out.push(rec.seen.lock().expect("lock").clone());
    }
    out
}

#[tokio::test]
async fn one_certification_takes_five_requests() {
    // The challenge answer already says valid (the CA validated on loopback
    // before answering) and a ready order is finalized without polling.
    for seen in requests_per_certification(CaConfig::new(), 3).await {
        assert_eq!(
            seen,
            [
                "POST new-order",
                "POST authz",
                "POST chall",
                "POST order/finalize",
                "POST cert"
            ]
        );
    }
}

#[tokio::test]
async fn a_slow_validation_is_polled() {
    // With a validation delay the challenge answer says processing: the
    // client polls the authorization until it is valid, then finalizes.
    let cfg = CaConfig::new().validation_delay(std::time::Duration::from_millis(30));
    for seen in requests_per_certification(cfg, 3).await {
        let polls = seen.len().saturating_sub(5);
        assert!(polls >= 1, "{seen:?}");
        let mut want = vec!["POST new-order", "POST authz", "POST chall"];
        want.extend(std::iter::repeat_n("POST authz", polls));
        want.extend(["POST order/finalize", "POST cert"]);
        assert_eq!(seen, want);
    }
}

#[tokio::test]
async fn a_slow_issuance_is_polled() {
    // With an issuance delay finalize answers processing (Retry-After: 1):
    // the client waits, polls the order until it is valid, then downloads.
    let cfg = CaConfig::new().issuance_delay(std::time::Duration::from_millis(30));
    for seen in requests_per_certification(cfg, 1).await {
        let polls = seen.len().saturating_sub(5);
        assert!(polls >= 1, "{seen:?}");
        let mut want = vec![
            "POST new-order",
            "POST authz",
            "POST chall",
            "POST order/finalize",
        ];
        want.extend(std::iter::repeat_n("POST order", polls));
        want.push("POST cert");
        assert_eq!(seen, want);
    }
}
