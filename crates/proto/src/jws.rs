//! JWS in the flattened JSON serialization (RFC 7515 §7.2.2) as RFC 8555 §6.2 uses it:
//! signing requests, verifying them on the server side, the key-change inner JWS
//! (§7.3.5) and external account binding (§7.3.4).

use std::fmt;

use aws_lc_rs::hmac;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::jwk::Jwk;
use crate::key::KeyPair;
use crate::{Error, b64};

/// A JWS algorithm name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// ECDSA P-256 SHA-256.
    Es256,
    /// ECDSA P-384 SHA-384.
    Es384,
    /// RSASSA-PKCS1-v1_5 SHA-256.
    Rs256,
    /// HMAC SHA-256: only for external account binding.
    Hs256,
    /// Any other name, `none` included. Never accepted.
    Other(String),
}

impl Algorithm {
    /// The registered name.
    pub fn as_str(&self) -> &str {
        match self {
            Algorithm::Es256 => "ES256",
            Algorithm::Es384 => "ES384",
            Algorithm::Rs256 => "RS256",
            Algorithm::Hs256 => "HS256",
            Algorithm::Other(s) => s,
        }
    }

    /// The asymmetric algorithms accepted on ACME requests, for `badSignatureAlgorithm`.
    pub const REQUEST_ALGORITHMS: [&'static str; 3] = ["ES256", "ES384", "RS256"];

    fn parse(s: &str) -> Self {
        match s {
            "ES256" => Algorithm::Es256,
            "ES384" => Algorithm::Es384,
            "RS256" => Algorithm::Rs256,
            "HS256" => Algorithm::Hs256,
            other => Algorithm::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Algorithm {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Algorithm {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Algorithm::parse(&String::deserialize(d)?))
    }
}

/// A JWS in the flattened JSON serialization: what goes over the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jws {
    /// base64url of the protected header JSON.
    pub protected: String,
    /// base64url of the payload; empty for POST-as-GET.
    pub payload: String,
    /// base64url of the signature.
    pub signature: String,
}

impl Jws {
    /// The JSON body to send.
    pub fn to_json(&self) -> String {
        // Three plain string members cannot fail to serialize.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The protected header of an ACME JWS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtectedHeader {
    /// The signature algorithm.
    pub alg: Algorithm,
    /// The signer's public key, for newAccount, revocation by certificate key,
    /// and the inner key-change JWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwk: Option<Jwk>,
    /// The account URL, for every other request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// The anti-replay nonce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The URL the request is sent to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Critical extensions: never allowed by ACME.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crit: Option<Value>,
}

/// How the signer identifies itself in the protected header.
#[derive(Debug, Clone, Copy)]
pub enum Signer<'a> {
    /// Embed the public key (`jwk`): newAccount and revocation by certificate key.
    Jwk,
    /// Name the account (`kid`): every other request.
    Kid(&'a str),
}

/// Signs an ACME request. `payload` is the JSON body, or `None` for POST-as-GET.
pub fn sign(
    key: &KeyPair,
    signer: Signer<'_>,
    nonce: &str,
    url: &str,
    payload: Option<&[u8]>,
) -> Result<Jws, Error> {
    let (jwk, kid) = match signer {
        Signer::Jwk => (Some(key.jwk()), None),
        Signer::Kid(k) => (None, Some(k.to_owned())),
    };
    let header = ProtectedHeader {
        alg: key.algorithm(),
        jwk,
        kid,
        nonce: Some(nonce.to_owned()),
        url: Some(url.to_owned()),
        crit: None,
    };
    sign_header(key, &header, payload.unwrap_or_default())
}

/// Signs with an arbitrary header (for tests and the key-change inner JWS).
pub fn sign_header(key: &KeyPair, header: &ProtectedHeader, payload: &[u8]) -> Result<Jws, Error> {
    let protected = b64::encode(serde_json::to_vec(header).map_err(|e| Error::json("header", e))?);
    let payload = b64::encode(payload);
    let signature = b64::encode(key.sign(format!("{protected}.{payload}").as_bytes())?);
    Ok(Jws {
        protected,
        payload,
        signature,
    })
}

/// The payload of a key-change inner JWS (RFC 8555 §7.3.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyChange {
    /// The account URL.
    pub account: String,
    /// The account's current key.
    pub old_key: Jwk,
}

/// Builds the inner JWS of a key change: signed by the *new* key, with `jwk`
/// and `url` but no nonce. The result is the payload of the outer request,
/// which the old key signs with its `kid`.
pub fn sign_key_change(
    new_key: &KeyPair,
    account_url: &str,
    old_key: &Jwk,
    url: &str,
) -> Result<Jws, Error> {
    let header = ProtectedHeader {
        alg: new_key.algorithm(),
        jwk: Some(new_key.jwk()),
        kid: None,
        nonce: None,
        url: Some(url.to_owned()),
        crit: None,
    };
    let payload = KeyChange {
        account: account_url.to_owned(),
        old_key: old_key.clone(),
    };
    let payload = serde_json::to_vec(&payload).map_err(|e| Error::json("keyChange", e))?;
    sign_header(new_key, &header, &payload)
}

/// Builds the `externalAccountBinding` JWS (RFC 8555 §7.3.4): HS256 with the
/// CA-issued MAC key over the account's public JWK.
pub fn sign_eab(eab_kid: &str, mac_key: &[u8], account_key: &Jwk, url: &str) -> Result<Jws, Error> {
    let header = serde_json::json!({ "alg": "HS256", "kid": eab_kid, "url": url });
    let protected = b64::encode(header.to_string());
    let payload = b64::encode(serde_json::to_vec(account_key).map_err(|e| Error::json("jwk", e))?);
    let key = hmac::Key::new(hmac::HMAC_SHA256, mac_key);
    let tag = hmac::sign(&key, format!("{protected}.{payload}").as_bytes());
    Ok(Jws {
        protected,
        payload,
        signature: b64::encode(tag),
    })
}

/// A JWS that passed the structural checks; its signature is not yet verified.
#[derive(Debug, Clone)]
pub struct ParsedJws {
    header: ProtectedHeader,
    signing_input: Vec<u8>,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

/// Parses a flattened JWS from a request body, applying only the generic
/// structural rules (one signature, no unprotected header, base64url members).
fn parse_flattened(body: &[u8]) -> Result<ParsedJws, Error> {
    let value: Value = serde_json::from_slice(body).map_err(|e| Error::json("JWS", e))?;
    parse_value(&value)
}

fn parse_value(value: &Value) -> Result<ParsedJws, Error> {
    let obj = value.as_object().ok_or(Error::Json {
        what: "JWS",
        detail: "expected a JSON object".into(),
    })?;
    if obj.contains_key("signatures") {
        return Err(Error::NotFlattened);
    }
    if obj.contains_key("header") {
        return Err(Error::UnprotectedHeader);
    }
    let member = |name: &'static str| -> Result<&str, Error> {
        obj.get(name)
            .and_then(Value::as_str)
            .ok_or(Error::MissingMember(name))
    };
    let protected = member("protected")?;
    let payload = member("payload")?;
    let signature = member("signature")?;
    let header_json = b64::decode(protected, "protected")?;
    let header: ProtectedHeader =
        serde_json::from_slice(&header_json).map_err(|e| Error::json("protected header", e))?;
    if header.crit.is_some() {
        return Err(Error::UnsupportedCritical);
    }
    Ok(ParsedJws {
        header,
        signing_input: format!("{protected}.{payload}").into_bytes(),
        payload: b64::decode(payload, "payload")?,
        signature: b64::decode(signature, "signature")?,
    })
}

impl ParsedJws {
    /// Parses an ACME request body and enforces RFC 8555 §6.2: flattened
    /// serialization with one signature, an asymmetric algorithm from the
    /// allowlist (never `none` or MAC), exactly one of `jwk`/`kid`, a base64url
    /// `nonce` and a `url`. The caller then checks the URL ([`ParsedJws::check_url`]),
    /// consumes the nonce, finds the key and calls [`ParsedJws::verify`].
    pub fn parse_request(body: &[u8]) -> Result<Self, Error> {
        let jws = parse_flattened(body)?;
        let h = &jws.header;
        match h.alg {
            Algorithm::Es256 | Algorithm::Es384 | Algorithm::Rs256 => {}
            _ => return Err(Error::BadAlgorithm(h.alg.to_string())),
        }
        match (&h.jwk, &h.kid) {
            (Some(_), Some(_)) => return Err(Error::BothJwkAndKid),
            (None, None) => return Err(Error::NeitherJwkNorKid),
            _ => {}
        }
        let nonce = h.nonce.as_deref().ok_or(Error::MissingNonce)?;
        if nonce.is_empty() || b64::decode(nonce, "nonce").is_err() {
            return Err(Error::MalformedNonce);
        }
        if h.url.is_none() {
            return Err(Error::MissingUrl);
        }
        Ok(jws)
    }

    /// The protected header.
    pub fn header(&self) -> &ProtectedHeader {
        &self.header
    }

    /// The nonce (always present after [`ParsedJws::parse_request`]).
    pub fn nonce(&self) -> &str {
        self.header.nonce.as_deref().unwrap_or_default()
    }

    /// The decoded payload (empty for POST-as-GET). Only trust it after `verify`.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Whether this is a POST-as-GET (empty payload, RFC 8555 §6.3).
    pub fn is_post_as_get(&self) -> bool {
        self.payload.is_empty()
    }

    /// Checks that the header's `url` equals the URL the request arrived at.
    pub fn check_url(&self, request_url: &str) -> Result<(), Error> {
        match self.header.url.as_deref() {
            Some(u) if u == request_url => Ok(()),
            Some(u) => Err(Error::UrlMismatch {
                expected: request_url.into(),
                found: u.into(),
            }),
            None => Err(Error::MissingUrl),
        }
    }

    /// Verifies the signature with `key` (the header's `jwk`, or the account's
    /// key found through `kid`).
    pub fn verify(&self, key: &Jwk) -> Result<(), Error> {
        key.verify(&self.header.alg, &self.signing_input, &self.signature)
    }

    /// Parses the verified payload as JSON of type `T`.
    pub fn json<T: serde::de::DeserializeOwned>(&self, what: &'static str) -> Result<T, Error> {
        serde_json::from_slice(&self.payload).map_err(|e| Error::json(what, e))
    }
}

/// Verifies the inner JWS of a key change (RFC 8555 §7.3.5) carried as the
/// payload of an already verified outer request. Checks: `jwk` present and no
/// `kid`, no nonce, same `url` as the outer JWS, a valid signature by the new
/// key, `account` equal to the outer `kid`, and `oldKey` equal to the account's
/// current key. Returns the new key.
pub fn verify_key_change(
    inner: &[u8],
    outer_url: &str,
    account_url: &str,
    current_key: &Jwk,
) -> Result<Jwk, Error> {
    let jws = parse_flattened(inner)?;
    let h = &jws.header;
    match h.alg {
        Algorithm::Es256 | Algorithm::Es384 | Algorithm::Rs256 => {}
        _ => return Err(Error::BadAlgorithm(h.alg.to_string())),
    }
    let new_key = h
        .jwk
        .clone()
        .ok_or(Error::KeyChange("inner JWS must carry jwk"))?;
    if h.kid.is_some() {
        return Err(Error::KeyChange("inner JWS must not carry kid"));
    }
    if h.nonce.is_some() {
        return Err(Error::KeyChange("inner JWS must not carry a nonce"));
    }
    if h.url.as_deref() != Some(outer_url) {
        return Err(Error::KeyChange("inner url differs from the outer url"));
    }
    jws.verify(&new_key)?;
    let change: KeyChange = jws.json("keyChange")?;
    if change.account != account_url {
        return Err(Error::KeyChange(
            "account does not match the signing account",
        ));
    }
    if &change.old_key != current_key {
        return Err(Error::KeyChange("oldKey is not the account's current key"));
    }
    Ok(new_key)
}

/// Verifies an `externalAccountBinding` (RFC 8555 §7.3.4): HS256, `kid` known
/// to the CA (`mac_key_for` returns its MAC key), `url` equal to the newAccount
/// URL, no nonce, and a payload equal to the account's JWK. Returns the EAB key id.
pub fn verify_eab(
    eab: &Value,
    new_account_url: &str,
    account_key: &Jwk,
    mac_key_for: impl Fn(&str) -> Option<Vec<u8>>,
) -> Result<String, Error> {
    let jws = parse_value(eab)?;
    let h = &jws.header;
    if h.alg != Algorithm::Hs256 {
        return Err(Error::ExternalAccountBinding("algorithm must be HS256"));
    }
    if h.nonce.is_some() || h.jwk.is_some() {
        return Err(Error::ExternalAccountBinding(
            "must not carry a nonce or jwk",
        ));
    }
    if h.url.as_deref() != Some(new_account_url) {
        return Err(Error::ExternalAccountBinding(
            "url must be the newAccount URL",
        ));
    }
    let kid = h
        .kid
        .clone()
        .ok_or(Error::ExternalAccountBinding("kid missing"))?;
    let mac = mac_key_for(&kid).ok_or(Error::ExternalAccountBinding("unknown key identifier"))?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, &mac);
    hmac::verify(&key, &jws.signing_input, &jws.signature)
        .map_err(|_| Error::ExternalAccountBinding("MAC does not verify"))?;
    let bound: Jwk = jws.json("externalAccountBinding payload")?;
    if &bound != account_key {
        return Err(Error::ExternalAccountBinding(
            "payload is not the account key",
        ));
    }
    Ok(kid)
}
