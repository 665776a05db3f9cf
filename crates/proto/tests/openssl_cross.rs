//! Cross-checks against an independent implementation: the `openssl` command.
//! Our ES256/RS256 signatures verify with openssl, and openssl's verify with ours.

use std::path::Path;
use std::process::Command;

use serde_json::json;
use site_encrypt_proto::*;

fn have_openssl() -> bool {
    site_encrypt_testkit::have("openssl")
}

fn openssl(args: &[&str], dir: &Path) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// DER length octets.
fn der_len(len: usize, out: &mut Vec<u8>) {
    if len < 128 {
        out.push(len as u8);
    } else {
        out.push(0x81);
        out.push(len as u8);
    }
}

/// r||s → DER ECDSA-Sig-Value (test helper; the library never needs DER signatures).
fn raw_to_der(sig: &[u8]) -> Vec<u8> {
    let (r, s) = sig.split_at(sig.len() / 2);
    let mut body = Vec::new();
    for int in [r, s] {
        let start = int.iter().position(|&b| b != 0).unwrap_or(int.len() - 1);
        let mut v = int[start..].to_vec();
        if v[0] & 0x80 != 0 {
            v.insert(0, 0);
        }
        body.push(0x02);
        der_len(v.len(), &mut body);
        body.extend(v);
    }
    let mut out = vec![0x30];
    der_len(body.len(), &mut out);
    out.extend(body);
    out
}

/// DER ECDSA-Sig-Value → r||s with `n`-byte halves.
fn der_to_raw(der: &[u8], n: usize) -> Vec<u8> {
    let mut i = if der[1] & 0x80 != 0 {
        2 + (der[1] & 0x7f) as usize
    } else {
        2
    };
    let mut out = Vec::new();
    for _ in 0..2 {
        assert_eq!(der[i], 0x02);
        let len = der[i + 1] as usize;
        let int = &der[i + 2..i + 2 + len];
        let int = &int[int.len().saturating_sub(n)..];
        out.extend(std::iter::repeat_n(0, n - int.len()));
        out.extend(int);
        i += 2 + len;
    }
    out
}

#[test]
fn our_signatures_verify_with_openssl() {
    if !have_openssl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for kind in [KeyType::EcP256, KeyType::EcP384, KeyType::Rsa2048] {
        let key = KeyPair::generate(kind).expect("key");
        std::fs::write(dir.path().join("key.pem"), key.pkcs8_pem()).expect("write");
        openssl(
            &["pkey", "-in", "key.pem", "-pubout", "-out", "pub.pem"],
            dir.path(),
        );

        let jws = sign(
            &key,
            Signer::Jwk,
            "bm9uY2U",
            "https://ca.test/x",
            Some(b"{\"k\":1}"),
        )
        .expect("sign");
        let input = format!("{}.{}", jws.protected, jws.payload);
        std::fs::write(dir.path().join("input"), &input).expect("write");
        let sig = b64_decode(&jws.signature, "sig").expect("b64");
        let (digest, sig) = match kind {
            KeyType::EcP256 => ("-sha256", raw_to_der(&sig)),
            KeyType::EcP384 => ("-sha384", raw_to_der(&sig)),
            _ => ("-sha256", sig),
        };
        std::fs::write(dir.path().join("sig"), sig).expect("write");
        let out = openssl(
            &[
                "dgst",
                digest,
                "-verify",
                "pub.pem",
                "-signature",
                "sig",
                "input",
            ],
            dir.path(),
        );
        assert_eq!(
            String::from_utf8_lossy(&out).trim(),
            "Verified OK",
            "{kind}"
        );
    }
}

#[test]
fn openssl_signatures_verify_with_ours() {
    if !have_openssl() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();

    // ES256: the JWK comes from openssl's SPKI (the point is its last 65 bytes).
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "ec.pem",
        ],
        d,
    );
    let spki = openssl(&["pkey", "-in", "ec.pem", "-pubout", "-outform", "DER"], d);
    let ec_jwk = Jwk::from_ec_point(Curve::P256, &spki[spki.len() - 65..]).expect("point");

    // RS256: the JWK comes from openssl's printed modulus.
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "rsa.pem",
        ],
        d,
    );
    let modulus = openssl(&["rsa", "-in", "rsa.pem", "-noout", "-modulus"], d);
    let hex = String::from_utf8(modulus).expect("utf8");
    let hex = hex.trim().trim_start_matches("Modulus=");
    let n: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    let rsa_jwk = Jwk::from_rsa_components(&n, &[1, 0, 1]);

    for (alg, keyfile, jwk) in [("ES256", "ec.pem", ec_jwk), ("RS256", "rsa.pem", rsa_jwk)] {
        let url = "https://ca.test/acme/new-account";
        let header = json!({"alg": alg, "jwk": jwk, "nonce": "bm9uY2U", "url": url});
        let protected = b64_encode(header.to_string());
        let payload = b64_encode(br#"{"termsOfServiceAgreed":true}"#);
        std::fs::write(d.join("input"), format!("{protected}.{payload}")).expect("write");
        openssl(
            &["dgst", "-sha256", "-sign", keyfile, "-out", "sig", "input"],
            d,
        );
        let mut sig = std::fs::read(d.join("sig")).expect("read");
        if alg == "ES256" {
            sig = der_to_raw(&sig, 32);
        }
        let body =
            json!({"protected": protected, "payload": payload, "signature": b64_encode(&sig)});
        let parsed = ParsedJws::parse_request(body.to_string().as_bytes()).expect("parse");
        parsed.check_url(url).expect("url");
        parsed.verify(&jwk).unwrap_or_else(|e| panic!("{alg}: {e}"));
        // And a flipped bit is caught, so the check above is not vacuous.
        let mut bad = sig.clone();
        bad[10] ^= 0x40;
        let body =
            json!({"protected": protected, "payload": payload, "signature": b64_encode(&bad)});
        let parsed = ParsedJws::parse_request(body.to_string().as_bytes()).expect("parse");
        assert!(
            parsed.verify(&jwk).is_err(),
            "{alg}: tampered signature accepted"
        );
    }
}
