//! Published vectors: RFC 7638's thumbprint example and RFC 8555's example bodies.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use site_encrypt_proto::*;

/// RFC 7638 §3.1: the example RSA key and its thumbprint.
#[test]
fn rfc7638_thumbprint() {
    let jwk: Jwk = serde_json::from_str(
        r#"{
          "kty": "RSA",
          "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
          "e": "AQAB",
          "alg": "RS256",
          "kid": "2011-04-29"
        }"#,
    )
    .expect("RFC 7638 example parses");
    assert_eq!(
        jwk.thumbprint(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

/// The canonical JSON of an EC key orders members crv, kty, x, y.
#[test]
fn ec_thumbprint_member_order() {
    let jwk = Jwk::Ec {
        crv: Curve::P256,
        x: "AAAA".into(),
        y: "BBBB".into(),
    };
    assert_eq!(
        jwk.canonical_json(),
        r#"{"crv":"P-256","kty":"EC","x":"AAAA","y":"BBBB"}"#
    );
}

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(json: &str) -> T {
    let original: Value = serde_json::from_str(json).expect("vector is JSON");
    let parsed: T = serde_json::from_str(json).expect("vector parses");
    let again = serde_json::to_value(&parsed).expect("serializes");
    assert_eq!(again, original, "serialization differs from the vector");
    let reparsed: T = serde_json::from_value(again).expect("reparses");
    assert_eq!(reparsed, parsed);
    parsed
}

#[test]
fn rfc8555_directory() {
    let d: Directory = round_trip(
        r#"{
          "newNonce": "https://example.com/acme/new-nonce",
          "newAccount": "https://example.com/acme/new-account",
          "newOrder": "https://example.com/acme/new-order",
          "newAuthz": "https://example.com/acme/new-authz",
          "revokeCert": "https://example.com/acme/revoke-cert",
          "keyChange": "https://example.com/acme/key-change",
          "meta": {
            "termsOfService": "https://example.com/acme/terms/2017-5-30",
            "website": "https://www.example.com/",
            "caaIdentities": ["example.com"],
            "externalAccountRequired": true
          }
        }"#,
    );
    let meta = d.meta.expect("meta");
    assert_eq!(meta.caa_identities, ["example.com"]);
    assert!(meta.external_account_required);
    assert_eq!(
        d.new_authz.as_deref(),
        Some("https://example.com/acme/new-authz")
    );
}

#[test]
fn directory_tolerates_unknown_fields_and_profiles() {
    // Let's Encrypt adds a random key to its directory; profiles and ARI are newer.
    let d: Directory = serde_json::from_str(
        r#"{
          "Zq3_xk0AeHo": "https://community.letsencrypt.org/t/adding-random-entries-to-the-directory/33417",
          "keyChange": "https://ca.test/kc", "newAccount": "https://ca.test/na",
          "newNonce": "https://ca.test/nn", "newOrder": "https://ca.test/no",
          "revokeCert": "https://ca.test/rc", "renewalInfo": "https://ca.test/ari",
          "meta": {"profiles": {"classic": "90 days", "shortlived": "6 days"}, "futureThing": 1}
        }"#,
    )
    .expect("parses");
    assert_eq!(d.renewal_info.as_deref(), Some("https://ca.test/ari"));
    assert_eq!(d.meta.expect("meta").profiles.len(), 2);
}

#[test]
fn rfc8555_account() {
    let a: Account = round_trip(
        r#"{
          "status": "valid",
          "contact": ["mailto:cert-admin@example.org", "mailto:admin@example.org"],
          "termsOfServiceAgreed": true,
          "orders": "https://example.com/acme/orders/rzGoeA"
        }"#,
    );
    assert_eq!(a.status, AccountStatus::Valid);
    assert_eq!(a.contact.len(), 2);
}

#[test]
fn rfc8555_order() {
    let o: Order = serde_json::from_str(
        r#"{
          "status": "valid",
          "expires": "2016-01-20T14:09:07.99Z",
          "identifiers": [
            { "type": "dns", "value": "www.example.org" },
            { "type": "dns", "value": "example.org" }
          ],
          "notBefore": "2016-01-01T00:00:00Z",
          "notAfter": "2016-01-08T00:00:00Z",
          "authorizations": [
            "https://example.com/acme/authz/PAniVnsZcis",
            "https://example.com/acme/authz/r4HqLzrSrpI"
          ],
          "finalize": "https://example.com/acme/order/TOlocE8rfgo/finalize",
          "certificate": "https://example.com/acme/cert/mAt3xBGaobw"
        }"#,
    )
    .expect("parses");
    assert_eq!(o.status, OrderStatus::Valid);
    assert_eq!(o.identifiers[1], Identifier::dns("example.org"));
    assert_eq!(o.expires.expect("expires").millisecond(), 990);
    let back: Order = serde_json::from_value(serde_json::to_value(&o).expect("ser")).expect("de");
    assert_eq!(back, o);
}

#[test]
fn rfc8555_authorization_and_challenge() {
    let a: Authorization = serde_json::from_str(
        r#"{
          "status": "valid",
          "expires": "2015-03-01T14:09:07.99Z",
          "identifier": { "type": "dns", "value": "www.example.org" },
          "challenges": [
            {
              "url": "https://example.com/acme/chall/prV_B7yEyA4",
              "type": "http-01",
              "status": "valid",
              "token": "DGyRejmCefe7v4NfDGDKfA",
              "validated": "2014-12-01T12:05:58.16Z"
            }
          ],
          "wildcard": false
        }"#,
    )
    .expect("parses");
    assert_eq!(a.challenges[0].kind, ChallengeType::Http01);
    assert_eq!(
        a.challenges[0].token.as_deref(),
        Some("DGyRejmCefe7v4NfDGDKfA")
    );
    let back: Authorization =
        serde_json::from_value(serde_json::to_value(&a).expect("ser")).expect("de");
    assert_eq!(back, a);
}

#[test]
fn unknown_challenge_type_and_status_values_parse() {
    let c: Challenge = serde_json::from_str(
        r#"{"type":"dns-account-01","url":"https://ca.test/c/1","status":"pending","token":"x","extra":true}"#,
    )
    .expect("parses");
    assert_eq!(c.kind, ChallengeType::Other("dns-account-01".into()));
    let v = serde_json::to_value(&c).expect("ser");
    assert_eq!(v["type"], "dns-account-01");
}

#[test]
fn rfc8555_problem_with_subproblems() {
    let p: Problem = round_trip(
        r#"{
          "type": "urn:ietf:params:acme:error:malformed",
          "detail": "Some of the identifiers requested were rejected",
          "subproblems": [
            {
              "type": "urn:ietf:params:acme:error:malformed",
              "detail": "Invalid underscore in DNS name \"_example.org\"",
              "identifier": { "type": "dns", "value": "_example.org" }
            },
            {
              "type": "urn:ietf:params:acme:error:rejectedIdentifier",
              "detail": "This CA will not issue for \"example.net\"",
              "identifier": { "type": "dns", "value": "example.net" }
            }
          ]
        }"#,
    );
    assert_eq!(p.kind, ProblemType::Malformed);
    assert_eq!(p.subproblems[1].kind, ProblemType::RejectedIdentifier);
    assert_eq!(
        p.subproblems[1].identifier,
        Some(Identifier::dns("example.net"))
    );
    let text = p.to_string();
    assert!(text.contains("example.net: rejectedIdentifier"), "{text}");
}

#[test]
fn every_acme_error_type_parses_to_a_known_variant() {
    for short in [
        "accountDoesNotExist",
        "alreadyRevoked",
        "alreadyReplaced",
        "badCSR",
        "badNonce",
        "badPublicKey",
        "badRevocationReason",
        "badSignatureAlgorithm",
        "caa",
        "compound",
        "connection",
        "dns",
        "externalAccountRequired",
        "incorrectResponse",
        "invalidContact",
        "malformed",
        "orderNotReady",
        "rateLimited",
        "rejectedIdentifier",
        "serverInternal",
        "tls",
        "unauthorized",
        "unsupportedContact",
        "unsupportedIdentifier",
        "userActionRequired",
    ] {
        let kind = ProblemType::from(format!("{ACME_ERROR_PREFIX}{short}").as_str());
        assert!(
            !matches!(kind, ProblemType::Other(_)),
            "{short} is not a known variant"
        );
        assert_eq!(kind.short(), short);
    }
    assert_eq!(
        ProblemType::from("about:blank"),
        ProblemType::Other("about:blank".into())
    );
}

#[test]
fn ip_identifiers_rfc8738() {
    let id: Identifier = serde_json::from_str(r#"{"type":"ip","value":"::1"}"#).expect("parses");
    assert_eq!(id.kind, IdentifierType::Ip);
    assert_eq!(Identifier::parse("127.0.0.1").kind, IdentifierType::Ip);
    assert_eq!(
        Identifier::parse("WWW.Example.test"),
        Identifier::dns("www.example.test")
    );
}

#[test]
fn new_order_with_profile_and_replaces() {
    let o = NewOrder {
        identifiers: vec![Identifier::dns("a.test")],
        profile: Some("shortlived".into()),
        replaces: Some("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE".into()),
        ..Default::default()
    };
    let v = serde_json::to_value(&o).expect("ser");
    assert_eq!(v["profile"], "shortlived");
    assert_eq!(v["replaces"], "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
    assert!(v.get("notBefore").is_none());
}

/// RFC 9773 §4.1's example: AKI 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4
/// and serial 00:87:65:43:21.
#[test]
fn rfc9773_certificate_id() {
    let aki = [
        0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3, 0x7B, 0x84, 0x7B, 0xA0, 0xAE,
        0x2C, 0xDE, 0x01, 0xC8, 0xD4,
    ];
    let id = CertificateId::new(aki, [0x00, 0x87, 0x65, 0x43, 0x21]);
    assert_eq!(id.to_string(), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
    assert_eq!(
        "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
            .parse::<CertificateId>()
            .expect("parses"),
        id
    );
    assert!("no-dot".parse::<CertificateId>().is_err());
    assert!("!!.AIdlQyE".parse::<CertificateId>().is_err());
}

#[test]
fn renewal_info_parses() {
    let r: RenewalInfo = round_trip(
        r#"{
          "suggestedWindow": {"start": "2025-01-02T04:00:00Z", "end": "2025-01-03T04:00:00Z"},
          "explanationURL": "https://acme.example.com/docs/ari"
        }"#,
    );
    assert!(r.suggested_window.is_valid());
}

#[test]
fn status_transitions_follow_section_7_1_6() {
    use OrderStatus as O;
    assert!(O::Pending.can_transition_to(&O::Ready));
    assert!(O::Ready.can_transition_to(&O::Processing));
    assert!(O::Processing.can_transition_to(&O::Valid));
    assert!(O::Processing.can_transition_to(&O::Invalid));
    assert!(!O::Pending.can_transition_to(&O::Valid));
    assert!(!O::Valid.can_transition_to(&O::Invalid));
    assert!(!O::Invalid.can_transition_to(&O::Pending));
    assert!(O::Valid.is_final() && !O::Ready.is_final());

    use AuthorizationStatus as A;
    assert!(A::Pending.can_transition_to(&A::Valid));
    assert!(A::Valid.can_transition_to(&A::Deactivated));
    assert!(A::Valid.can_transition_to(&A::Revoked));
    assert!(!A::Invalid.can_transition_to(&A::Valid));
    assert!(!A::Valid.can_transition_to(&A::Pending));

    use ChallengeStatus as C;
    assert!(C::Pending.can_transition_to(&C::Processing));
    assert!(C::Processing.can_transition_to(&C::Valid));
    assert!(!C::Pending.can_transition_to(&C::Valid));
    assert!(!C::Valid.can_transition_to(&C::Invalid));

    use AccountStatus as S;
    assert!(S::Valid.can_transition_to(&S::Deactivated));
    assert!(!S::Deactivated.can_transition_to(&S::Valid));
}

#[test]
fn key_authorization_and_challenge_values() {
    let jwk: Jwk = serde_json::from_str(
        r#"{"kty":"RSA","e":"AQAB","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}"#,
    )
    .expect("jwk");
    let ka = key_authorization("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA", &jwk);
    assert_eq!(
        ka,
        "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
    assert_eq!(
        http01_body("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA", &jwk),
        ka
    );
    // dns-01: base64url(SHA-256(ka)) is 43 characters.
    let txt = dns01_txt_value(&ka);
    assert_eq!(txt.len(), 43);
    assert_eq!(b64_decode(&txt, "txt").expect("b64").len(), 32);
    // tls-alpn-01: DER OCTET STRING (0x04, 32) followed by the same digest.
    let ext = tls_alpn01_extension_value(&ka);
    assert_eq!(&ext[..2], &[0x04, 0x20]);
    assert_eq!(&ext[2..], b64_decode(&txt, "txt").expect("b64").as_slice());
    assert!(check_token("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA").is_ok());
    assert!(check_token("short").is_err());
    assert!(check_token("../../etc/passwd").is_err());
}
