//! JSON Web Keys (RFC 7517) for the key types ACME uses, and RFC 7638 thumbprints.

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::{Error, b64};

/// Smallest RSA modulus accepted for signatures, in bits (RFC 8555 implementations
/// and the CA/Browser Forum both set 2048).
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits: larger keys only cost CPU on the verifier.
pub const MAX_RSA_BITS: usize = 4096;

/// An elliptic curve named in a JWK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Curve {
    /// NIST P-256, used with ES256.
    #[serde(rename = "P-256")]
    P256,
    /// NIST P-384, used with ES384.
    #[serde(rename = "P-384")]
    P384,
}

impl Curve {
    /// Length in bytes of one coordinate.
    pub fn coordinate_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
        }
    }
}

/// A public JSON Web Key: EC (P-256, P-384) or RSA.
///
/// Members other than the ones needed for the key (`kid`, `use`, `alg`, ...) are
/// tolerated when parsing and dropped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kty")]
pub enum Jwk {
    /// An elliptic-curve public key.
    #[serde(rename = "EC")]
    Ec {
        /// The curve.
        crv: Curve,
        /// base64url of the x coordinate, fixed length.
        x: String,
        /// base64url of the y coordinate, fixed length.
        y: String,
    },
    /// An RSA public key.
    #[serde(rename = "RSA")]
    Rsa {
        /// base64url of the modulus, big-endian, no leading zeros.
        n: String,
        /// base64url of the public exponent.
        e: String,
    },
}

impl Jwk {
    /// Builds an EC JWK from an uncompressed SEC1 point (`04 || x || y`).
    pub fn from_ec_point(crv: Curve, point: &[u8]) -> Result<Self, Error> {
        let len = crv.coordinate_len();
        if point.len() != 1 + 2 * len || point[0] != 4 {
            return Err(Error::BadPublicKey(
                "EC point is not uncompressed or has the wrong size".into(),
            ));
        }
        Ok(Jwk::Ec {
            crv,
            x: b64::encode(&point[1..1 + len]),
            y: b64::encode(&point[1 + len..]),
        })
    }

    /// Builds an RSA JWK from big-endian modulus and exponent.
    pub fn from_rsa_components(n: &[u8], e: &[u8]) -> Self {
        Jwk::Rsa {
            n: b64::encode(strip_zeros(n)),
            e: b64::encode(strip_zeros(e)),
        }
    }

    /// The RFC 7638 thumbprint: SHA-256 over the required members in
    /// lexicographic order, without whitespace, as base64url.
    pub fn thumbprint(&self) -> String {
        b64::encode(digest::digest(
            &digest::SHA256,
            self.canonical_json().as_bytes(),
        ))
    }

    /// The canonical JSON of RFC 7638 §3.2 (required members, sorted, no whitespace).
    pub fn canonical_json(&self) -> String {
        // serde_json escapes nothing in base64url strings or curve names, so
        // formatting by hand yields exactly the canonical form.
        match self {
            Jwk::Ec { crv, x, y } => {
                let crv = match crv {
                    Curve::P256 => "P-256",
                    Curve::P384 => "P-384",
                };
                format!(r#"{{"crv":"{crv}","kty":"EC","x":"{x}","y":"{y}"}}"#)
            }
            Jwk::Rsa { n, e } => format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#),
        }
    }

    /// A short description for messages ("EC P-256", "RSA 2048").
    pub fn describe(&self) -> String {
        match self {
            Jwk::Ec {
                crv: Curve::P256, ..
            } => "EC P-256".into(),
            Jwk::Ec {
                crv: Curve::P384, ..
            } => "EC P-384".into(),
            Jwk::Rsa { n, .. } => match b64::decode(n, "n") {
                Ok(n) => format!("RSA {}", strip_zeros(&n).len() * 8),
                Err(_) => "RSA (malformed)".into(),
            },
        }
    }

    /// Checks that the key is well formed and of an accepted size; returns the
    /// decoded material used for verification.
    pub(crate) fn decode(&self) -> Result<DecodedKey, Error> {
        match self {
            Jwk::Ec { crv, x, y } => {
                let x = b64::decode(x, "jwk.x")?;
                let y = b64::decode(y, "jwk.y")?;
                let len = crv.coordinate_len();
                if x.len() != len || y.len() != len {
                    return Err(Error::BadPublicKey(format!(
                        "EC coordinates must be {len} bytes"
                    )));
                }
                let mut point = Vec::with_capacity(1 + 2 * len);
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Ok(DecodedKey::Ec(*crv, point))
            }
            Jwk::Rsa { n, e } => {
                let n = b64::decode(n, "jwk.n")?;
                let e = b64::decode(e, "jwk.e")?;
                let n = strip_zeros(&n).to_vec();
                let bits = n.len() * 8;
                if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                    return Err(Error::BadPublicKey(format!(
                        "RSA modulus of {bits} bits is outside {MIN_RSA_BITS}..={MAX_RSA_BITS}"
                    )));
                }
                if e.is_empty() || e.len() > 8 {
                    return Err(Error::BadPublicKey("RSA exponent has an odd size".into()));
                }
                Ok(DecodedKey::Rsa { n, e })
            }
        }
    }

    /// Verifies `signature` over `message` with this key under `alg`.
    pub fn verify(&self, alg: &crate::Algorithm, message: &[u8], sig: &[u8]) -> Result<(), Error> {
        use crate::Algorithm;
        let key = self.decode()?;
        let mismatch = || Error::AlgorithmKeyMismatch {
            alg: alg.to_string(),
            key: key.kind(),
        };
        let ok = match (alg, &key) {
            (Algorithm::Es256, DecodedKey::Ec(Curve::P256, point)) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, sig)
            }
            (Algorithm::Es384, DecodedKey::Ec(Curve::P384, point)) => {
                UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point)
                    .verify(message, sig)
            }
            (Algorithm::Rs256, DecodedKey::Rsa { n, e }) => signature::RsaPublicKeyComponents {
                n: n.as_slice(),
                e: e.as_slice(),
            }
            .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig),
            (Algorithm::Es256 | Algorithm::Es384 | Algorithm::Rs256, _) => return Err(mismatch()),
            _ => return Err(Error::BadAlgorithm(alg.to_string())),
        };
        ok.map_err(|_| Error::BadSignature)
    }
}

pub(crate) enum DecodedKey {
    Ec(Curve, Vec<u8>),
    Rsa { n: Vec<u8>, e: Vec<u8> },
}

impl DecodedKey {
    fn kind(&self) -> &'static str {
        match self {
            DecodedKey::Ec(Curve::P256, _) => "EC P-256",
            DecodedKey::Ec(Curve::P384, _) => "EC P-384",
            DecodedKey::Rsa { .. } => "RSA",
        }
    }
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[first..]
}
