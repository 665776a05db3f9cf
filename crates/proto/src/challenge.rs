//! Key authorizations and the values each challenge type publishes
//! (RFC 8555 §8.1, §8.3, §8.4; RFC 8737).

use aws_lc_rs::digest;

use crate::jwk::Jwk;
use crate::{Error, b64};

/// The path prefix under which http-01 tokens are served.
pub const HTTP01_PATH_PREFIX: &str = "/.well-known/acme-challenge/";
/// The ALPN protocol name of tls-alpn-01 (RFC 8737 §6.2).
pub const TLS_ALPN01_PROTOCOL: &[u8] = b"acme-tls/1";
/// The OID of the acmeIdentifier extension (RFC 8737 §6.1): 1.3.6.1.5.5.7.1.31.
pub const ACME_IDENTIFIER_OID: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 31];
/// The smallest token entropy RFC 8555 §8.1 allows, in bytes (128 bits).
pub const MIN_TOKEN_BYTES: usize = 16;

/// `token || '.' || base64url(thumbprint(accountKey))` (§8.1).
pub fn key_authorization(token: &str, account_key: &Jwk) -> String {
    format!("{token}.{}", account_key.thumbprint())
}

/// Checks that a token is base64url with at least 128 bits of entropy, so it
/// is safe to put into a URL path (§8.3).
pub fn check_token(token: &str) -> Result<(), Error> {
    let raw = b64::decode(token, "token")?;
    if raw.len() < MIN_TOKEN_BYTES {
        return Err(Error::Base64("token (too short)"));
    }
    Ok(())
}

/// The body an http-01 server returns for the token: the key authorization.
pub fn http01_body(token: &str, account_key: &Jwk) -> String {
    key_authorization(token, account_key)
}

/// The TXT record value for dns-01: base64url(SHA-256(key authorization)).
pub fn dns01_txt_value(key_authorization: &str) -> String {
    b64::encode(digest::digest(
        &digest::SHA256,
        key_authorization.as_bytes(),
    ))
}

/// The DER value of the acmeIdentifier extension for tls-alpn-01: an OCTET
/// STRING holding SHA-256(key authorization) (RFC 8737 §3).
pub fn tls_alpn01_extension_value(key_authorization: &str) -> Vec<u8> {
    let d = digest::digest(&digest::SHA256, key_authorization.as_bytes());
    let mut der = Vec::with_capacity(34);
    der.push(0x04);
    der.push(0x20);
    der.extend_from_slice(d.as_ref());
    der
}
