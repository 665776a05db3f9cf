//! Every endpoint and every refusal of the local CA, at the level of raw JWS
//! requests over real HTTPS, with real http-01 and tls-alpn-01 validation.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::Method;
use serde_json::{Value, json};
use site_encrypt_ca::{CaConfig, LocalCa};
use site_encrypt_client::{
    DefaultHttpClient, Http01Registry, HttpClient, HttpRequest, HttpResponse,
};
use site_encrypt_proto::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

struct H {
    ca: LocalCa,
    http: DefaultHttpClient,
    dir: Directory,
    registry: Http01Registry,
}

/// What the fake site answers on the http-01 port.
#[derive(Clone)]
enum Site {
    Registry(Http01Registry),
    Raw(Arc<String>),
}

/// A tiny HTTP/1.1 server: answers from the registry, or a canned raw response.
async fn serve_site(site: Site) -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let hits = Arc::new(AtomicUsize::new(0));
    let h2 = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                continue;
            };
            h2.fetch_add(1, Ordering::SeqCst);
            let site = site.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).into_owned();
                let path = req.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let resp = match &site {
                    Site::Registry(r) => match r.respond_path(&path) {
                        Some(body) => format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len()),
                        None => "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".into(),
                    },
                    Site::Raw(raw) => raw.to_string(),
                };
                let _ = s.write_all(resp.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    (addr, hits)
}

/// A CA validating http-01 against a fake site answering as `site` says.
async fn harness_on(site: Site, registry: Http01Registry, cfg: CaConfig) -> (H, Arc<AtomicUsize>) {
    let (addr, hits) = serve_site(site).await;
    let ca = LocalCa::start(cfg.http01_port(addr.port()))
        .await
        .expect("CA");
    let http = DefaultHttpClient::with_root_pem(ca.root_pem()).expect("http");
    let resp = http
        .request(HttpRequest {
            method: Method::GET,
            url: ca.directory_url().into(),
            body: None,
        })
        .await
        .expect("dir");
    let dir: Directory = serde_json::from_slice(&resp.body).expect("directory json");
    (
        H {
            ca,
            http,
            dir,
            registry,
        },
        hits,
    )
}

async fn harness(cfg: CaConfig) -> H {
    let registry = Http01Registry::new();
    harness_on(Site::Registry(registry.clone()), registry, cfg)
        .await
        .0
}

impl H {
    async fn send(&self, method: Method, url: &str, body: Option<Vec<u8>>) -> HttpResponse {
        self.http
            .request(HttpRequest {
                method,
                url: url.into(),
                body,
            })
            .await
            .expect("request")
    }

    async fn nonce(&self) -> String {
        let r = self.send(Method::HEAD, &self.dir.new_nonce, None).await;
        r.header("replay-nonce").expect("nonce").to_owned()
    }

    async fn post(
        &self,
        key: &KeyPair,
        signer: Signer<'_>,
        url: &str,
        payload: Option<Value>,
    ) -> HttpResponse {
        let nonce = self.nonce().await;
        let body = payload.map(|p| p.to_string().into_bytes());
        let jws = sign(key, signer, &nonce, url, body.as_deref()).expect("sign");
        self.send(Method::POST, url, Some(jws.to_json().into_bytes()))
            .await
    }

    async fn account(&self) -> (KeyPair, String) {
        let key = KeyPair::generate(KeyType::EcP256).expect("key");
        let r = self
            .post(
                &key,
                Signer::Jwk,
                &self.dir.new_account,
                Some(json!({"termsOfServiceAgreed": true})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        let kid = r.header("location").expect("location").to_owned();
        (key, kid)
    }

    async fn order(&self, key: &KeyPair, kid: &str, names: &[&str]) -> (String, Order) {
        let ids: Vec<Identifier> = names.iter().map(|n| Identifier::parse(n)).collect();
        let r = self
            .post(
                key,
                Signer::Kid(kid),
                &self.dir.new_order,
                Some(json!({"identifiers": ids})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        (
            r.header("location").expect("location").to_owned(),
            serde_json::from_slice(&r.body).expect("order"),
        )
    }

    /// Validates every authorization of an order over http-01; returns the ready order.
    async fn make_ready(&self, key: &KeyPair, kid: &str, order: &Order) {
        for az in &order.authorizations {
            let r = self.post(key, Signer::Kid(kid), az, None).await;
            let authz: Authorization = serde_json::from_slice(&r.body).expect("authz");
            let ch = authz
                .challenges
                .iter()
                .find(|c| c.kind == ChallengeType::Http01)
                .expect("http-01");
            let token = ch.token.clone().expect("token");
            self.registry
                .publish(&token, &key_authorization(&token, &key.jwk()));
            let r = self
                .post(key, Signer::Kid(kid), &ch.url, Some(json!({})))
                .await;
            assert_eq!(r.status, 200);
            // On loopback the answer waits for the validation: already valid.
            let answered: Challenge = serde_json::from_slice(&r.body).expect("challenge");
            assert_eq!(answered.status, ChallengeStatus::Valid);
            assert!(answered.validated.is_some());
            assert_eq!(r.header("retry-after"), None);
            self.wait_authz(key, kid, az, AuthorizationStatus::Valid)
                .await;
        }
    }

    async fn wait_authz(
        &self,
        key: &KeyPair,
        kid: &str,
        url: &str,
        want: AuthorizationStatus,
    ) -> Authorization {
        for _ in 0..500 {
            let r = self.post(key, Signer::Kid(kid), url, None).await;
            let a: Authorization = serde_json::from_slice(&r.body).expect("authz");
            if a.status == want {
                return a;
            }
            if a.status != AuthorizationStatus::Pending {
                panic!("authorization became {}: {:?}", a.status, a.challenges);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("authorization never became {want}");
    }
}

/// Asserts a problem response of the given type, with the headers every
/// ACME response carries; returns the problem.
fn problem(r: &HttpResponse, kind: ProblemType) -> Problem {
    assert_eq!(
        r.header("content-type"),
        Some("application/problem+json"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(
        r.header("replay-nonce").is_some(),
        "errors carry a fresh nonce"
    );
    assert!(!r.links("index").is_empty(), "errors carry Link rel=index");
    let p: Problem = serde_json::from_slice(&r.body).expect("problem json");
    assert_eq!(p.kind, kind, "{p}");
    assert_eq!(Some(r.status), p.status);
    p
}

fn csr(key: &KeyPair, names: &[&str]) -> Value {
    let ids: Vec<Identifier> = names.iter().map(|n| Identifier::parse(n)).collect();
    json!({"csr": b64_encode(site_encrypt_client::build_csr(key, &ids).expect("csr"))})
}

#[tokio::test]
async fn directory_and_nonces() {
    let h = harness(CaConfig::new().profile("tiny", "one hour", Duration::from_secs(3600))).await;
    assert!(h.dir.renewal_info.is_some());
    let meta = h.dir.meta.clone().expect("meta");
    assert!(meta.profiles.contains_key("classic") && meta.profiles.contains_key("tiny"));
    let head = h.send(Method::HEAD, &h.dir.new_nonce, None).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("cache-control"), Some("no-store"));
    let get = h.send(Method::GET, &h.dir.new_nonce, None).await;
    assert_eq!(get.status, 204);
    assert_ne!(head.header("replay-nonce"), get.header("replay-nonce"));
    assert!(get.links("index").iter().any(|l| l.ends_with("/dir")));
    let root = h
        .send(
            Method::GET,
            &h.ca.directory_url().replace("/dir", "/roots/0"),
            None,
        )
        .await;
    assert_eq!(String::from_utf8_lossy(&root.body), h.ca.root_pem());
    let missing = h
        .send(
            Method::GET,
            &h.ca.directory_url().replace("/dir", "/nope"),
            None,
        )
        .await;
    assert_eq!(missing.status, 404);
    problem(&missing, ProblemType::Malformed);
}

#[tokio::test]
async fn replayed_and_unknown_nonces_are_bad_nonce_with_a_fresh_one() {
    let h = harness(CaConfig::new()).await;
    let key = KeyPair::generate(KeyType::EcP256).expect("key");
    let nonce = h.nonce().await;
    let body = sign(&key, Signer::Jwk, &nonce, &h.dir.new_account, Some(b"{}"))
        .expect("sign")
        .to_json();
    let first = h
        .send(
            Method::POST,
            &h.dir.new_account,
            Some(body.clone().into_bytes()),
        )
        .await;
    assert_eq!(first.status, 201);
    let replay = h
        .send(Method::POST, &h.dir.new_account, Some(body.into_bytes()))
        .await;
    problem(&replay, ProblemType::BadNonce);
    let fresh = replay
        .header("replay-nonce")
        .expect("fresh nonce")
        .to_owned();
    // The fresh nonce from the error works.
    let body = sign(&key, Signer::Jwk, &fresh, &h.dir.new_account, Some(b"{}"))
        .expect("sign")
        .to_json();
    assert_eq!(
        h.send(Method::POST, &h.dir.new_account, Some(body.into_bytes()))
            .await
            .status,
        200
    );
    // A nonce the CA never issued.
    let body = sign(
        &key,
        Signer::Jwk,
        "bm90LWlzc3VlZA",
        &h.dir.new_account,
        Some(b"{}"),
    )
    .expect("sign")
    .to_json();
    problem(
        &h.send(Method::POST, &h.dir.new_account, Some(body.into_bytes()))
            .await,
        ProblemType::BadNonce,
    );
}

#[tokio::test]
async fn jws_rules_are_enforced() {
    let h = harness(CaConfig::new()).await;
    let (key, kid) = h.account().await;
    // url in the header differs from the URL the request went to.
    let nonce = h.nonce().await;
    let body = sign(
        &key,
        Signer::Kid(&kid),
        &nonce,
        &h.dir.new_account,
        Some(b"{}"),
    )
    .expect("sign")
    .to_json();
    let r = h
        .send(Method::POST, &h.dir.new_order, Some(body.into_bytes()))
        .await;
    assert!(
        problem(&r, ProblemType::Unauthorized)
            .detail
            .expect("detail")
            .contains("does not match")
    );
    // jwk where kid is required.
    let r = h
        .post(
            &key,
            Signer::Jwk,
            &h.dir.new_order,
            Some(json!({"identifiers": [{"type":"dns","value":"a.test"}]})),
        )
        .await;
    problem(&r, ProblemType::Malformed);
    // kid naming an account that does not exist.
    let fake = format!(
        "{}/acct/doesnotexist",
        h.ca.directory_url().trim_end_matches("/dir")
    );
    let r = h
        .post(
            &key,
            Signer::Kid(&fake),
            &h.dir.new_order,
            Some(json!({"identifiers": []})),
        )
        .await;
    problem(&r, ProblemType::AccountDoesNotExist);
    // Signed by another key than the account's.
    let other = KeyPair::generate(KeyType::EcP256).expect("key");
    let r = h
        .post(
            &other,
            Signer::Kid(&kid),
            &h.dir.new_order,
            Some(json!({"identifiers": []})),
        )
        .await;
    problem(&r, ProblemType::Unauthorized);
    // alg none.
    let header = b64_encode(json!({"alg": "none", "jwk": key.jwk(), "nonce": h.nonce().await, "url": h.dir.new_account}).to_string());
    let body =
        json!({"protected": header, "payload": b64_encode("{}"), "signature": ""}).to_string();
    let r = h
        .send(Method::POST, &h.dir.new_account, Some(body.into_bytes()))
        .await;
    assert!(
        problem(&r, ProblemType::BadSignatureAlgorithm)
            .algorithms
            .expect("algorithms")
            .contains(&"ES256".to_string())
    );
    // Garbage body.
    let r = h
        .send(
            Method::POST,
            &h.dir.new_account,
            Some(b"{not json".to_vec()),
        )
        .await;
    problem(&r, ProblemType::Malformed);
}

#[tokio::test]
async fn wrong_content_type_is_refused() {
    let h = harness(CaConfig::new()).await;
    let (key, kid) = h.account().await;
    let nonce = h.nonce().await;
    let body = sign(
        &key,
        Signer::Kid(&kid),
        &nonce,
        &h.dir.new_order,
        Some(b"{}"),
    )
    .expect("sign")
    .to_json();
    // Raw HTTPS request with Content-Type: application/json.
    let cfg = rustls_client(&h.ca);
    let stream = tokio::net::TcpStream::connect(h.ca.addr())
        .await
        .expect("tcp");
    let mut tls = tokio_rustls::TlsConnector::from(cfg)
        .connect("127.0.0.1".try_into().expect("name"), stream)
        .await
        .expect("tls");
    let path = h
        .dir
        .new_order
        .split_once("://")
        .and_then(|(_, r)| r.find('/').map(|i| r[i..].to_owned()))
        .expect("path");
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        h.ca.addr(),
        body.len()
    );
    tls.write_all(req.as_bytes()).await.expect("write");
    let mut out = String::new();
    tls.read_to_string(&mut out).await.ok();
    assert!(out.starts_with("HTTP/1.1 415"), "{out}");
    assert!(out.contains("application/problem+json"));
}

fn rustls_client(ca: &LocalCa) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(
            ca.root_der().to_vec(),
        ))
        .expect("root");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

#[tokio::test]
async fn accounts() {
    let h = harness(CaConfig::new()).await;
    let key = KeyPair::generate(KeyType::Rsa2048).expect("key");
    let r = h
        .post(
            &key,
            Signer::Jwk,
            &h.dir.new_account,
            Some(json!({"onlyReturnExisting": true})),
        )
        .await;
    problem(&r, ProblemType::AccountDoesNotExist);
    let r = h
        .post(
            &key,
            Signer::Jwk,
            &h.dir.new_account,
            Some(json!({"contact": ["tel:+15551234"]})),
        )
        .await;
    problem(&r, ProblemType::UnsupportedContact);
    let r = h
        .post(
            &key,
            Signer::Jwk,
            &h.dir.new_account,
            Some(json!({"contact": ["mailto:not-an-address"]})),
        )
        .await;
    problem(&r, ProblemType::InvalidContact);
    let r = h
        .post(
            &key,
            Signer::Jwk,
            &h.dir.new_account,
            Some(json!({"contact": ["mailto:a@b.test"], "termsOfServiceAgreed": true})),
        )
        .await;
    assert_eq!(r.status, 201);
    let loc = r.header("location").expect("location").to_owned();
    let again = h
        .post(&key, Signer::Jwk, &h.dir.new_account, Some(json!({})))
        .await;
    assert_eq!(again.status, 200, "existing key → 200");
    assert_eq!(again.header("location"), Some(loc.as_str()));
    let acct: Account = serde_json::from_slice(&again.body).expect("account");
    let orders_url = acct.orders.expect("orders URL");
    h.order(&key, &loc, &["list.test"]).await;
    let r = h.post(&key, Signer::Kid(&loc), &orders_url, None).await;
    let v: Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(v["orders"].as_array().expect("array").len(), 1);
    // One account may not read another.
    let (k2, kid2) = h.account().await;
    let r = h.post(&k2, Signer::Kid(&kid2), &loc, None).await;
    problem(&r, ProblemType::Unauthorized);
}

#[tokio::test]
async fn external_account_binding() {
    let mac = b"a-very-secret-mac-key-of-32-byte".to_vec();
    let h = harness(
        CaConfig::new()
            .require_eab(true)
            .eab_key("kid-1", mac.clone()),
    )
    .await;
    assert!(h.dir.meta.clone().expect("meta").external_account_required);
    let key = KeyPair::generate(KeyType::EcP256).expect("key");
    let r = h
        .post(&key, Signer::Jwk, &h.dir.new_account, Some(json!({})))
        .await;
    problem(&r, ProblemType::ExternalAccountRequired);
    let bad = sign_eab("kid-1", b"wrong", &key.jwk(), &h.dir.new_account).expect("eab");
    let r = h
        .post(
            &key,
            Signer::Jwk,
            &h.dir.new_account,
            Some(json!({"externalAccountBinding": bad})),
        )
        .await;
    problem(&r, ProblemType::Unauthorized);
    let good = sign_eab("kid-1", &mac, &key.jwk(), &h.dir.new_account).expect("eab");
    let r = h
        .post(
            &key,
            Signer::Jwk,
            &h.dir.new_account,
            Some(json!({"externalAccountBinding": good})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
}

#[tokio::test]
async fn orders_identifiers_and_profiles() {
    let h = harness(CaConfig::new()).await;
    let (key, kid) = h.account().await;
    let r = h.post(&key, Signer::Kid(&kid), &h.dir.new_order, Some(json!({"identifiers": [{"type":"dns","value":"example.com"},{"type":"dns","value":"ok.test"},{"type":"ip","value":"10.0.0.1"}]}))).await;
    let p = problem(&r, ProblemType::RejectedIdentifier);
    assert_eq!(p.subproblems.len(), 2, "{p}");
    assert_eq!(
        p.subproblems[0].identifier.clone().expect("id").value,
        "example.com"
    );
    let r = h
        .post(
            &key,
            Signer::Kid(&kid),
            &h.dir.new_order,
            Some(json!({"identifiers": [{"type":"email","value":"a@b.test"}]})),
        )
        .await;
    problem(&r, ProblemType::UnsupportedIdentifier);
    let r = h
        .post(
            &key,
            Signer::Kid(&kid),
            &h.dir.new_order,
            Some(json!({"identifiers": [{"type":"dns","value":"*.wild.test"}]})),
        )
        .await;
    problem(&r, ProblemType::RejectedIdentifier);
    let r = h
        .post(
            &key,
            Signer::Kid(&kid),
            &h.dir.new_order,
            Some(json!({"identifiers": []})),
        )
        .await;
    problem(&r, ProblemType::Malformed);
    let r = h
        .post(
            &key,
            Signer::Kid(&kid),
            &h.dir.new_order,
            Some(json!({"identifiers": [{"type":"dns","value":"p.test"}], "profile": "bogus"})),
        )
        .await;
    problem(&r, ProblemType::InvalidProfile);
    let r = h
        .post(
            &key,
            Signer::Kid(&kid),
            &h.dir.new_order,
            Some(
                json!({"identifiers": [{"type":"dns","value":"p.test"}], "replaces": "not-an-id"}),
            ),
        )
        .await;
    problem(&r, ProblemType::Malformed);

    let (url, order) = h.order(&key, &kid, &["b.test", "A.test", "::1"]).await;
    assert_eq!(order.status, OrderStatus::Pending);
    assert_eq!(order.identifiers.len(), 3, "names are normalised and kept");
    assert!(order.identifiers.contains(&Identifier::dns("a.test")));
    let r = h.post(&key, Signer::Kid(&kid), &url, None).await;
    assert_eq!(
        serde_json::from_slice::<Order>(&r.body).expect("order"),
        order
    );
    // Another account may not read it.
    let (k2, kid2) = h.account().await;
    problem(
        &h.post(&k2, Signer::Kid(&kid2), &url, None).await,
        ProblemType::Unauthorized,
    );
    problem(
        &h.post(&k2, Signer::Kid(&kid2), &order.authorizations[0], None)
            .await,
        ProblemType::Unauthorized,
    );
}

#[tokio::test]
async fn finalize_rules_and_certificate_download() {
    let h = harness(CaConfig::new()).await;
    let (key, kid) = h.account().await;
    let (url, order) = h.order(&key, &kid, &["fin.test", "www.fin.test"]).await;
    let cert_key = KeyPair::generate(KeyType::EcP256).expect("key");
    // Before the order is ready.
    let r = h
        .post(
            &key,
            Signer::Kid(&kid),
            &order.finalize,
            Some(csr(&cert_key, &["fin.test", "www.fin.test"])),
        )
        .await;
    problem(&r, ProblemType::OrderNotReady);
    h.make_ready(&key, &kid, &order).await;
    let r = h.post(&key, Signer::Kid(&kid), &url, None).await;
    assert_eq!(
        serde_json::from_slice::<Order>(&r.body)
            .expect("order")
            .status,
        OrderStatus::Ready
    );
    // A CSR with an extra name, a missing name, the account key, garbage.
    let r = h
        .post(
            &key,
            Signer::Kid(&kid),
            &order.finalize,
            Some(csr(&cert_key, &["fin.test", "www.fin.test", "extra.test"])),
        )
        .await;
    assert!(
        problem(&r, ProblemType::BadCsr)
            .detail
            .expect("d")
            .contains("extra.test")
    );
    let r = h
        .post(
            &key,
            Signer::Kid(&kid),
            &order.finalize,
            Some(csr(&cert_key, &["fin.test"])),
        )
        .await;
    problem(&r, ProblemType::BadCsr);
    let r = h
        .post(
            &key,
            Signer::Kid(&kid),
            &order.finalize,
            Some(csr(&key, &["fin.test", "www.fin.test"])),
        )
        .await;
    assert!(
        problem(&r, ProblemType::BadCsr)
            .detail
            .expect("d")
            .contains("account key")
    );
    let r = h
        .post(
            &key,
            Signer::Kid(&kid),
            &order.finalize,
            Some(json!({"csr": b64_encode(b"\x30\x03\x02\x01\x00")})),
        )
        .await;
    problem(&r, ProblemType::BadCsr);
    // A CSR whose signature does not verify.
    let mut der = site_encrypt_client::build_csr(
        &cert_key,
        &[Identifier::dns("fin.test"), Identifier::dns("www.fin.test")],
    )
    .expect("csr");
    let last = der.len() - 1;
    der[last] ^= 1;
    let r = h
        .post(
            &key,
            Signer::Kid(&kid),
            &order.finalize,
            Some(json!({"csr": b64_encode(&der)})),
        )
        .await;
    problem(&r, ProblemType::BadCsr);
    // The right CSR.
    let r = h
        .post(
            &key,
            Signer::Kid(&kid),
            &order.finalize,
            Some(csr(&cert_key, &["www.fin.test", "fin.test"])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let done: Order = serde_json::from_slice(&r.body).expect("order");
    assert_eq!(done.status, OrderStatus::Valid);
    // Finalizing again is refused.
    let r = h
        .post(
            &key,
            Signer::Kid(&kid),
            &order.finalize,
            Some(csr(&cert_key, &["www.fin.test", "fin.test"])),
        )
        .await;
    problem(&r, ProblemType::OrderNotReady);
    // Download: leaf + intermediate, alternate with the root.
    let cert_url = done.certificate.expect("certificate URL");
    let r = h.post(&key, Signer::Kid(&kid), &cert_url, None).await;
    assert_eq!(
        r.header("content-type"),
        Some("application/pem-certificate-chain")
    );
    let chain = String::from_utf8(r.body.to_vec()).expect("pem");
    assert_eq!(pem::decode_all(&chain, "CERTIFICATE").len(), 2);
    let alt = r.links("alternate");
    assert_eq!(alt.len(), 1);
    let r = h.post(&key, Signer::Kid(&kid), &alt[0], None).await;
    let alt_chain = String::from_utf8(r.body.to_vec()).expect("pem");
    assert!(alt_chain.ends_with(h.ca.root_pem()));
    // The leaf: names, serverAuth, not a CA, notBefore backdated, issued by the intermediate.
    let leaf = pem::decode_all(&chain, "CERTIFICATE").remove(0);
    let (_, c) = x509_parser::parse_x509_certificate(&leaf).expect("parse");
    let eku = c.extended_key_usage().expect("ext").expect("eku");
    assert!(eku.value.server_auth);
    assert!(
        c.basic_constraints()
            .expect("ext")
            .is_none_or(|b| !b.value.ca)
    );
    assert!(
        c.validity().not_before.to_datetime()
            < time::OffsetDateTime::now_utc() - Duration::from_secs(30)
    );
    let san: Vec<String> = c
        .subject_alternative_name()
        .expect("e")
        .expect("san")
        .value
        .general_names
        .iter()
        .map(|g| g.to_string())
        .collect();
    assert_eq!(san.len(), 2);
    assert!(c.tbs_certificate.serial.bits() > 64, "random serial");
    let has = |f: fn(&x509_parser::extensions::ParsedExtension<'_>) -> bool| {
        c.extensions().iter().any(|e| f(e.parsed_extension()))
    };
    assert!(
        has(|e| matches!(
            e,
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(_)
        )),
        "SKI"
    );
    assert!(
        has(|e| matches!(
            e,
            x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(_)
        )),
        "AKI"
    );
    assert!(
        c.basic_constraints()
            .expect("ext")
            .is_some_and(|b| b.critical && !b.value.ca),
        "basicConstraints CA:FALSE"
    );
}

#[tokio::test]
async fn authorization_deactivation_and_retry_after_while_processing() {
    let h = harness(CaConfig::new().validation_delay(Duration::from_millis(300))).await;
    let (key, kid) = h.account().await;
    let (_, order) = h.order(&key, &kid, &["slow.test", "gone.test"]).await;
    let az = &order.authorizations[0];
    let r = h.post(&key, Signer::Kid(&kid), az, None).await;
    let authz: Authorization = serde_json::from_slice(&r.body).expect("authz");
    let ch = authz
        .challenges
        .iter()
        .find(|c| c.kind == ChallengeType::Http01)
        .expect("http-01")
        .clone();
    let token = ch.token.clone().expect("token");
    h.registry
        .publish(&token, &key_authorization(&token, &key.jwk()));
    let r = h
        .post(&key, Signer::Kid(&kid), &ch.url, Some(json!({})))
        .await;
    assert!(
        r.links("up").iter().any(|u| u == az),
        "challenge carries Link rel=up"
    );
    let c: Challenge = serde_json::from_slice(&r.body).expect("challenge");
    assert_eq!(c.status, ChallengeStatus::Processing);
    let r = h.post(&key, Signer::Kid(&kid), az, None).await;
    assert!(
        r.header("retry-after").is_some(),
        "Retry-After while processing"
    );
    h.wait_authz(&key, &kid, az, AuthorizationStatus::Valid)
        .await;
    // Deactivate the other authorization: the order becomes invalid.
    let r = h
        .post(
            &key,
            Signer::Kid(&kid),
            &order.authorizations[1],
            Some(json!({"status": "deactivated"})),
        )
        .await;
    let a: Authorization = serde_json::from_slice(&r.body).expect("authz");
    assert_eq!(a.status, AuthorizationStatus::Deactivated);
    let r = h
        .post(
            &key,
            Signer::Kid(&kid),
            &order.authorizations[1],
            Some(json!({"status": "valid"})),
        )
        .await;
    problem(&r, ProblemType::Malformed);
}

#[tokio::test]
async fn delayed_issuance_answers_processing_then_valid() {
    let h = harness(CaConfig::new().issuance_delay(Duration::from_millis(200))).await;
    let (key, kid) = h.account().await;
    let (url, order) = h.order(&key, &kid, &["later.test"]).await;
    h.make_ready(&key, &kid, &order).await;
    let cert_key = KeyPair::generate(KeyType::EcP256).expect("key");
    // A bad CSR is still refused at once.
    let r = h
        .post(
            &key,
            Signer::Kid(&kid),
            &order.finalize,
            Some(csr(&cert_key, &["other.test"])),
        )
        .await;
    problem(&r, ProblemType::BadCsr);
    let r = h
        .post(
            &key,
            Signer::Kid(&kid),
            &order.finalize,
            Some(csr(&cert_key, &["later.test"])),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("location"), Some(url.as_str()));
    assert!(
        r.header("retry-after").is_some(),
        "Retry-After while processing"
    );
    let o: Order = serde_json::from_slice(&r.body).expect("order");
    assert_eq!(o.status, OrderStatus::Processing);
    assert!(o.certificate.is_none());
    // Refinalizing while processing is refused.
    let r = h
        .post(
            &key,
            Signer::Kid(&kid),
            &order.finalize,
            Some(csr(&cert_key, &["later.test"])),
        )
        .await;
    problem(&r, ProblemType::OrderNotReady);
    let mut polls = 0;
    let valid = loop {
        let r = h.post(&key, Signer::Kid(&kid), &url, None).await;
        let o: Order = serde_json::from_slice(&r.body).expect("order");
        if o.status == OrderStatus::Valid {
            break o;
        }
        assert_eq!(o.status, OrderStatus::Processing);
        assert!(r.header("retry-after").is_some());
        polls += 1;
        assert!(polls < 200, "the certificate never came");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(polls >= 1, "the order was valid before the delay passed");
    let cert_url = valid.certificate.expect("certificate URL");
    let r = h.post(&key, Signer::Kid(&kid), &cert_url, None).await;
    assert_eq!(r.status, 200);
    let pem = String::from_utf8_lossy(&r.body);
    assert_eq!(pem.matches("BEGIN CERTIFICATE").count(), 2, "{pem}");
}

async fn validation_error(h: &H, name: &str) -> Problem {
    let (key, kid) = h.account().await;
    let (_, order) = h.order(&key, &kid, &[name]).await;
    let az = &order.authorizations[0];
    let r = h.post(&key, Signer::Kid(&kid), az, None).await;
    let authz: Authorization = serde_json::from_slice(&r.body).expect("authz");
    let ch = authz
        .challenges
        .iter()
        .find(|c| c.kind == ChallengeType::Http01)
        .expect("http-01");
    let r = h
        .post(&key, Signer::Kid(&kid), &ch.url, Some(json!({})))
        .await;
    // The answer already carries the failure, the same the authorization shows.
    let answered: Challenge = serde_json::from_slice(&r.body).expect("challenge");
    assert_eq!(answered.status, ChallengeStatus::Invalid);
    let a = h
        .wait_authz(&key, &kid, az, AuthorizationStatus::Invalid)
        .await;
    let error = a
        .challenges
        .into_iter()
        .find_map(|c| c.error)
        .expect("challenge error");
    assert_eq!(answered.error.as_ref(), Some(&error));
    error
}

async fn harness_with_site(raw: String, cfg: CaConfig) -> (H, Arc<AtomicUsize>) {
    harness_on(Site::Raw(Arc::new(raw)), Http01Registry::new(), cfg).await
}

#[tokio::test]
async fn redirect_to_another_port_is_refused_without_connecting() {
    let (_, other_hits) = serve_site(Site::Raw(Arc::new(
        "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".into(),
    )))
    .await;
    let other = site_encrypt_testkit::free_port();
    let raw = format!(
        "HTTP/1.1 302 Found\r\nlocation: http://redirect.test:{other}/x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    let (h, hits) = harness_with_site(raw, CaConfig::new()).await;
    let p = validation_error(&h, "redirect.test").await;
    assert_eq!(p.kind, ProblemType::Connection);
    assert!(p.detail.expect("d").contains("redirected to another host"));
    assert_eq!(hits.load(Ordering::SeqCst), 1, "one fetch, no retry loop");
    assert_eq!(other_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn names_resolving_off_loopback_are_never_contacted() {
    let (h, hits) = harness_with_site(
        "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".into(),
        CaConfig::new().resolve("evil.test", "192.0.2.7".parse().expect("ip")),
    )
    .await;
    let p = validation_error(&h, "evil.test").await;
    assert_eq!(p.kind, ProblemType::Dns);
    assert!(p.detail.expect("d").contains("192.0.2.7"));
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "no connection was made anywhere"
    );
}

#[tokio::test]
async fn large_or_wrong_bodies_fail_without_echo() {
    let big = "x".repeat(4000);
    let raw = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{big}",
        big.len()
    );
    let (h, _) = harness_with_site(raw, CaConfig::new()).await;
    let p = validation_error(&h, "big.test").await;
    assert!(p.detail.expect("d").contains("exceeds 1024 bytes"));

    let secret = "SECRET-CONTENT-OF-THE-SITE";
    let raw = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{secret}",
        secret.len()
    );
    let (h, _) = harness_with_site(raw, CaConfig::new()).await;
    let p = validation_error(&h, "wrong.test").await;
    assert_eq!(p.kind, ProblemType::IncorrectResponse);
    assert!(
        !p.to_string().contains(secret),
        "the body is never echoed: {p}"
    );

    let raw =
        "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_string();
    let (h, _) = harness_with_site(raw, CaConfig::new()).await;
    let p = validation_error(&h, "missing.test").await;
    assert_eq!(p.kind, ProblemType::Unauthorized);
    assert!(p.detail.expect("d").contains("404"));
}

#[tokio::test]
async fn tls_alpn_01_validation() {
    for good in [true, false] {
        // The token is only known after the order, so start the CA first on a
        // placeholder port and run the responder on the port it will use.
        let key = KeyPair::generate(KeyType::EcP256).expect("key");
        let port = site_encrypt_testkit::free_port();
        let h = harness(CaConfig::new().tls_alpn01_port(port)).await;
        let r = h
            .post(&key, Signer::Jwk, &h.dir.new_account, Some(json!({})))
            .await;
        let kid = r.header("location").expect("l").to_owned();
        let (_, order) = h.order(&key, &kid, &["alpn.test"]).await;
        let az = &order.authorizations[0];
        let r = h.post(&key, Signer::Kid(&kid), az, None).await;
        let authz: Authorization = serde_json::from_slice(&r.body).expect("authz");
        let ch = authz
            .challenges
            .iter()
            .find(|c| c.kind == ChallengeType::TlsAlpn01)
            .expect("tls-alpn-01")
            .clone();
        let ka = key_authorization(ch.token.as_deref().expect("token"), &key.jwk());
        let bound = tls_alpn_responder_on(port, "alpn.test", good.then_some(ka)).await;
        assert!(bound);
        h.post(&key, Signer::Kid(&kid), &ch.url, Some(json!({})))
            .await;
        let want = if good {
            AuthorizationStatus::Valid
        } else {
            AuthorizationStatus::Invalid
        };
        let a = h.wait_authz(&key, &kid, az, want).await;
        if !good {
            let p = a
                .challenges
                .into_iter()
                .find_map(|c| c.error)
                .expect("error");
            assert_eq!(p.kind, ProblemType::IncorrectResponse, "{p}");
        }
    }
}

/// Presents one fixed certificate, whatever the SNI. (`with_single_cert`
/// refuses the critical acmeIdentifier extension, as it should for normal use.)
#[derive(Debug)]
struct Fixed(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for Fixed {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// A tls-alpn-01 responder on `port`: ALPN acme-tls/1 and the RFC 8737 certificate.
async fn tls_alpn_responder_on(port: u16, name: &str, key_auth: Option<String>) -> bool {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).expect("params");
    if let Some(ka) = key_auth {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, ka.as_bytes());
        params
            .custom_extensions
            .push(rcgen::CustomExtension::new_acme_identifier(digest.as_ref()));
    }
    let cert = params.self_signed(&key).expect("cert");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let signing = provider
        .key_provider
        .load_private_key(rustls::pki_types::PrivateKeyDer::Pkcs8(
            key.serialize_der().into(),
        ))
        .expect("key");
    let ck = rustls::sign::CertifiedKey::new(vec![cert.der().clone()], signing);
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("v")
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Fixed(Arc::new(ck))));
    cfg.alpn_protocols = vec![b"acme-tls/1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let Ok(l) = TcpListener::bind(("127.0.0.1", port)).await else {
        return false;
    };
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(s).await {
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    true
}

#[tokio::test]
async fn state_dir_keeps_the_root_with_private_permissions() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("ca-state");
    let a = LocalCa::start(CaConfig::new().state_dir(&dir))
        .await
        .expect("first");
    let root = a.root_pem().to_owned();
    a.stop().await;
    let b = LocalCa::start(CaConfig::new().state_dir(&dir))
        .await
        .expect("second");
    assert_eq!(b.root_pem(), root, "the root survives restarts");
    let c = LocalCa::start(CaConfig::new()).await.expect("ephemeral");
    assert_ne!(c.root_pem(), root, "without a state dir the root is fresh");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode =
            |p: &std::path::Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("root.key")), 0o600);
        assert_eq!(mode(&dir.join("intermediate.key")), 0o600);
    }
    std::fs::write(dir.join("intermediate.key"), "garbage").expect("corrupt");
    let err = LocalCa::start(CaConfig::new().state_dir(&dir))
        .await
        .expect_err("corrupt state");
    assert!(err.to_string().contains("intermediate.key"), "{err}");
}

#[tokio::test]
async fn config_is_validated() {
    let err = LocalCa::start(CaConfig::new().listen("192.0.2.1:0".parse().expect("addr")))
        .await
        .expect_err("not loopback");
    assert!(err.to_string().contains("not loopback"));
    let err = LocalCa::start(CaConfig::new().cert_lifetime(Duration::from_secs(1)))
        .await
        .expect_err("too short");
    assert!(err.to_string().contains("lifetime"));
}
