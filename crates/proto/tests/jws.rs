//! JWS sign→verify round trips and one rejection test per RFC 8555 §6.2 rule.

use serde_json::{Value, json};
use site_encrypt_proto::*;

const URL: &str = "https://ca.test/acme/new-order";
const NONCE: &str = "Q_s3MWoqT05TrdkM2MTDcw";

fn all_key_types() -> [KeyType; 5] {
    [
        KeyType::EcP256,
        KeyType::EcP384,
        KeyType::Rsa2048,
        KeyType::Rsa3072,
        KeyType::Rsa4096,
    ]
}

#[test]
fn sign_verify_round_trip_every_algorithm() {
    for kind in all_key_types() {
        let key = KeyPair::generate(kind).expect("generate");
        for signer in [Signer::Jwk, Signer::Kid("https://ca.test/acct/1")] {
            let jws = sign(&key, signer, NONCE, URL, Some(br#"{"a":1}"#)).expect("sign");
            let parsed = ParsedJws::parse_request(jws.to_json().as_bytes()).expect("parse");
            parsed.check_url(URL).expect("url");
            assert_eq!(parsed.nonce(), NONCE);
            parsed
                .verify(&key.jwk())
                .unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert_eq!(parsed.payload(), br#"{"a":1}"#);
            assert_eq!(parsed.header().alg, kind.algorithm());
        }
        // The key reloads from its PKCS#8 encoding with the same public key.
        let again = KeyPair::from_pkcs8_pem(&key.pkcs8_pem()).expect("reload");
        assert_eq!(again.jwk(), key.jwk());
        assert_eq!(again.key_type(), kind);
    }
}

#[test]
fn post_as_get_has_empty_payload() {
    let key = KeyPair::generate(KeyType::EcP256).expect("key");
    let jws = sign(&key, Signer::Kid("k"), NONCE, URL, None).expect("sign");
    assert_eq!(jws.payload, "");
    let parsed = ParsedJws::parse_request(jws.to_json().as_bytes()).expect("parse");
    parsed.verify(&key.jwk()).expect("verify");
    assert!(parsed.is_post_as_get());
}

#[test]
fn wrong_key_fails() {
    let key = KeyPair::generate(KeyType::EcP256).expect("key");
    let other = KeyPair::generate(KeyType::EcP256).expect("key");
    let jws = sign(&key, Signer::Jwk, NONCE, URL, Some(b"{}")).expect("sign");
    let parsed = ParsedJws::parse_request(jws.to_json().as_bytes()).expect("parse");
    assert!(matches!(
        parsed.verify(&other.jwk()),
        Err(Error::BadSignature)
    ));
    // An RS256 signature checked against an EC key is a mismatch, not a crash.
    let rsa = KeyPair::generate(KeyType::Rsa2048).expect("key");
    let jws = sign(&rsa, Signer::Jwk, NONCE, URL, Some(b"{}")).expect("sign");
    let parsed = ParsedJws::parse_request(jws.to_json().as_bytes()).expect("parse");
    assert!(matches!(
        parsed.verify(&key.jwk()),
        Err(Error::AlgorithmKeyMismatch { .. })
    ));
}

/// Builds a JWS with a hand-made header, signed by `key`.
fn with_header(key: &KeyPair, header: Value, payload: &[u8]) -> String {
    let protected = b64_encode(header.to_string());
    let payload = b64_encode(payload);
    let sig = b64_encode(
        key.sign(format!("{protected}.{payload}").as_bytes())
            .expect("sign"),
    );
    json!({"protected": protected, "payload": payload, "signature": sig}).to_string()
}

fn reject(body: &str) -> Error {
    ParsedJws::parse_request(body.as_bytes()).expect_err("must be rejected")
}

#[test]
fn rejects_both_jwk_and_kid() {
    let key = KeyPair::generate(KeyType::EcP256).expect("key");
    let body = with_header(
        &key,
        json!({"alg":"ES256","jwk":key.jwk(),"kid":"https://ca.test/acct/1","nonce":NONCE,"url":URL}),
        b"{}",
    );
    let e = reject(&body);
    assert!(matches!(e, Error::BothJwkAndKid), "{e}");
    assert_eq!(e.problem_type(), ProblemType::Malformed);
}

#[test]
fn rejects_neither_jwk_nor_kid() {
    let key = KeyPair::generate(KeyType::EcP256).expect("key");
    let body = with_header(&key, json!({"alg":"ES256","nonce":NONCE,"url":URL}), b"{}");
    assert!(matches!(reject(&body), Error::NeitherJwkNorKid));
}

#[test]
fn rejects_missing_nonce() {
    let key = KeyPair::generate(KeyType::EcP256).expect("key");
    let body = with_header(
        &key,
        json!({"alg":"ES256","jwk":key.jwk(),"url":URL}),
        b"{}",
    );
    let e = reject(&body);
    assert!(matches!(e, Error::MissingNonce));
    assert_eq!(e.problem_type(), ProblemType::BadNonce);
}

#[test]
fn rejects_malformed_nonce() {
    let key = KeyPair::generate(KeyType::EcP256).expect("key");
    let body = with_header(
        &key,
        json!({"alg":"ES256","jwk":key.jwk(),"nonce":"not base64!","url":URL}),
        b"{}",
    );
    assert_eq!(reject(&body).problem_type(), ProblemType::BadNonce);
}

#[test]
fn rejects_missing_url() {
    let key = KeyPair::generate(KeyType::EcP256).expect("key");
    let body = with_header(
        &key,
        json!({"alg":"ES256","jwk":key.jwk(),"nonce":NONCE}),
        b"{}",
    );
    assert!(matches!(reject(&body), Error::MissingUrl));
}

#[test]
fn rejects_url_mismatch() {
    let key = KeyPair::generate(KeyType::EcP256).expect("key");
    let jws = sign(&key, Signer::Jwk, NONCE, URL, Some(b"{}")).expect("sign");
    let parsed = ParsedJws::parse_request(jws.to_json().as_bytes()).expect("parse");
    let e = parsed
        .check_url("https://ca.test/acme/new-account")
        .expect_err("mismatch");
    assert!(matches!(e, Error::UrlMismatch { .. }));
    assert_eq!(e.problem_type(), ProblemType::Unauthorized);
}

#[test]
fn rejects_alg_none() {
    let key = KeyPair::generate(KeyType::EcP256).expect("key");
    let header =
        b64_encode(json!({"alg":"none","jwk":key.jwk(),"nonce":NONCE,"url":URL}).to_string());
    let body =
        json!({"protected": header, "payload": b64_encode("{}"), "signature": ""}).to_string();
    let e = reject(&body);
    assert!(matches!(e, Error::BadAlgorithm(ref a) if a == "none"));
    assert_eq!(e.problem_type(), ProblemType::BadSignatureAlgorithm);
    assert!(
        Problem::from(&e)
            .algorithms
            .expect("algorithms listed")
            .contains(&"ES256".into())
    );
}

#[test]
fn rejects_hmac_on_requests() {
    let key = KeyPair::generate(KeyType::EcP256).expect("key");
    // A MAC "signed" with the public key as secret: the classic confusion attack.
    let eab = sign_eab("kid-1", b"secret", &key.jwk(), URL).expect("eab");
    let mut header: Value =
        serde_json::from_slice(&b64_decode(&eab.protected, "p").expect("b64")).expect("json");
    header["nonce"] = NONCE.into();
    header["jwk"] = serde_json::to_value(key.jwk()).expect("jwk");
    header.as_object_mut().expect("object").remove("kid");
    let body = json!({"protected": b64_encode(header.to_string()), "payload": eab.payload, "signature": eab.signature});
    assert!(matches!(reject(&body.to_string()), Error::BadAlgorithm(ref a) if a == "HS256"));
}

#[test]
fn rejects_more_than_one_signature() {
    let key = KeyPair::generate(KeyType::EcP256).expect("key");
    let jws = sign(&key, Signer::Jwk, NONCE, URL, Some(b"{}")).expect("sign");
    let general = json!({
        "payload": jws.payload,
        "signatures": [
            {"protected": jws.protected, "signature": jws.signature},
            {"protected": jws.protected, "signature": jws.signature}
        ]
    });
    assert!(matches!(reject(&general.to_string()), Error::NotFlattened));
    // Flattened members plus a "signatures" array is just as bad.
    let mut both: Value = serde_json::from_str(&jws.to_json()).expect("json");
    both["signatures"] = json!([{"protected": jws.protected, "signature": jws.signature}]);
    assert!(matches!(reject(&both.to_string()), Error::NotFlattened));
}

#[test]
fn rejects_unprotected_header() {
    let key = KeyPair::generate(KeyType::EcP256).expect("key");
    let jws = sign(&key, Signer::Jwk, NONCE, URL, Some(b"{}")).expect("sign");
    let mut v: Value = serde_json::from_str(&jws.to_json()).expect("json");
    v["header"] = json!({"kid": "x"});
    assert!(matches!(reject(&v.to_string()), Error::UnprotectedHeader));
}

#[test]
fn rejects_crit() {
    let key = KeyPair::generate(KeyType::EcP256).expect("key");
    let body = with_header(
        &key,
        json!({"alg":"ES256","jwk":key.jwk(),"nonce":NONCE,"url":URL,"crit":["exp"],"exp":1}),
        b"{}",
    );
    assert!(matches!(reject(&body), Error::UnsupportedCritical));
}

#[test]
fn tampered_payload_or_header_fails_verification() {
    let key = KeyPair::generate(KeyType::EcP256).expect("key");
    let jws = sign(&key, Signer::Jwk, NONCE, URL, Some(br#"{"a":1}"#)).expect("sign");

    let mut t = jws.clone();
    t.payload = b64_encode(br#"{"a":2}"#);
    let p = ParsedJws::parse_request(t.to_json().as_bytes()).expect("parse");
    assert!(matches!(p.verify(&key.jwk()), Err(Error::BadSignature)));

    let mut t = jws.clone();
    let other = sign(
        &key,
        Signer::Jwk,
        NONCE,
        "https://ca.test/other",
        Some(br#"{"a":1}"#),
    )
    .expect("s");
    t.protected = other.protected;
    let p = ParsedJws::parse_request(t.to_json().as_bytes()).expect("parse");
    assert!(matches!(p.verify(&key.jwk()), Err(Error::BadSignature)));

    let mut t = jws;
    let mut sig = b64_decode(&t.signature, "sig").expect("b64");
    sig[5] ^= 1;
    t.signature = b64_encode(sig);
    let p = ParsedJws::parse_request(t.to_json().as_bytes()).expect("parse");
    assert!(matches!(p.verify(&key.jwk()), Err(Error::BadSignature)));
}

#[test]
fn garbage_bodies_are_typed_errors() {
    for body in [
        "",
        "null",
        "[]",
        "{",
        r#"{"protected":1}"#,
        r#"{"protected":"!!","payload":"","signature":""}"#,
        r#"{"protected":"e30","payload":"","signature":""}"#,
    ] {
        let e = reject(body);
        assert_eq!(e.problem_type(), ProblemType::Malformed, "{body}: {e}");
    }
}

#[test]
fn small_rsa_keys_are_rejected() {
    // A 1024-bit modulus (128 bytes of 0xff) is refused before any verification.
    let jwk = Jwk::Rsa {
        n: b64_encode([0xffu8; 128]),
        e: "AQAB".into(),
    };
    let e = jwk
        .verify(&Algorithm::Rs256, b"x", b"y")
        .expect_err("too small");
    assert!(matches!(e, Error::BadPublicKey(_)));
    assert_eq!(e.problem_type(), ProblemType::BadPublicKey);
}

#[test]
fn key_change_round_trip_and_rules() {
    let old = KeyPair::generate(KeyType::EcP256).expect("old");
    let new = KeyPair::generate(KeyType::EcP384).expect("new");
    let acct = "https://ca.test/acct/7";
    let url = "https://ca.test/key-change";
    let inner = sign_key_change(&new, acct, &old.jwk(), url).expect("inner");
    let outer = sign(
        &old,
        Signer::Kid(acct),
        NONCE,
        url,
        Some(inner.to_json().as_bytes()),
    )
    .expect("outer");

    let parsed = ParsedJws::parse_request(outer.to_json().as_bytes()).expect("parse");
    parsed.verify(&old.jwk()).expect("outer verifies");
    let got = verify_key_change(parsed.payload(), url, acct, &old.jwk()).expect("inner verifies");
    assert_eq!(got, new.jwk());

    // Wrong account, wrong old key, wrong url: all refused.
    assert!(
        verify_key_change(parsed.payload(), url, "https://ca.test/acct/8", &old.jwk()).is_err()
    );
    assert!(verify_key_change(parsed.payload(), url, acct, &new.jwk()).is_err());
    assert!(verify_key_change(parsed.payload(), "https://ca.test/x", acct, &old.jwk()).is_err());
    // An inner JWS with a nonce is refused.
    let with_nonce = sign(&new, Signer::Jwk, NONCE, url, Some(b"{}")).expect("s");
    assert!(matches!(
        verify_key_change(with_nonce.to_json().as_bytes(), url, acct, &old.jwk()),
        Err(Error::KeyChange(_))
    ));
}

#[test]
fn external_account_binding_round_trip() {
    let key = KeyPair::generate(KeyType::EcP256).expect("key");
    let mac = b"0123456789abcdef0123456789abcdef";
    let url = "https://ca.test/new-account";
    let eab = sign_eab("eab-1", mac, &key.jwk(), url).expect("eab");
    let v = serde_json::to_value(&eab).expect("json");
    let lookup = |kid: &str| (kid == "eab-1").then(|| mac.to_vec());
    assert_eq!(
        verify_eab(&v, url, &key.jwk(), lookup).expect("verifies"),
        "eab-1"
    );

    let other = KeyPair::generate(KeyType::EcP256).expect("key");
    assert!(
        verify_eab(&v, url, &other.jwk(), lookup).is_err(),
        "bound to another key"
    );
    assert!(verify_eab(&v, "https://ca.test/other", &key.jwk(), lookup).is_err());
    assert!(verify_eab(&v, url, &key.jwk(), |_| Some(b"wrong".to_vec())).is_err());
    assert!(verify_eab(&v, url, &key.jwk(), |_| None).is_err());
}

#[test]
fn debug_output_hides_key_material() {
    let key = KeyPair::generate(KeyType::EcP256).expect("key");
    let dbg = format!("{key:?}");
    assert!(!dbg.contains(&key.pkcs8_pem()[30..60]));
    assert!(dbg.contains("EcP256"));
}
