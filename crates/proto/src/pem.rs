//! Minimal PEM (RFC 7468) encoding and decoding.
//!
//! Written by hand because the protocol core only needs "one labelled block in,
//! one out"; the PEM chains of certificate downloads are split with the same code.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Encodes DER as a PEM block with the given label, 64 characters a line.
pub fn encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Decodes every block with the given label, in order. Malformed blocks end the scan.
pub fn decode_all(pem: &str, label: &str) -> Vec<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(&begin) {
        let after = &rest[start + begin.len()..];
        let Some(stop) = after.find(&end) else { break };
        let body: String = after[..stop]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        match STANDARD.decode(body) {
            Ok(der) => out.push(der),
            Err(_) => break,
        }
        rest = &after[stop + end.len()..];
    }
    out
}

/// Decodes the first block with the given label.
pub fn decode_one(pem: &str, label: &str) -> Option<Vec<u8>> {
    decode_all(pem, label).into_iter().next()
}
