//! Private keys for accounts and certificates, and signing.

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _, RsaKeyPair};

use crate::jwk::{Curve, Jwk};
use crate::{Algorithm, Error};

/// The kinds of key an account or certificate can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum KeyType {
    /// ECDSA on P-256 with SHA-256 (ES256): small, fast, accepted everywhere.
    #[default]
    EcP256,
    /// ECDSA on P-384 with SHA-384 (ES384).
    EcP384,
    /// RSA 2048 with PKCS#1 v1.5 SHA-256 (RS256).
    Rsa2048,
    /// RSA 3072 (RS256).
    Rsa3072,
    /// RSA 4096 (RS256).
    Rsa4096,
}

impl KeyType {
    /// The JWS algorithm used with this key type.
    pub fn algorithm(self) -> Algorithm {
        match self {
            KeyType::EcP256 => Algorithm::Es256,
            KeyType::EcP384 => Algorithm::Es384,
            _ => Algorithm::Rs256,
        }
    }

    /// The short name used in configuration and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::EcP256 => "ec256",
            KeyType::EcP384 => "ec384",
            KeyType::Rsa2048 => "rsa2048",
            KeyType::Rsa3072 => "rsa3072",
            KeyType::Rsa4096 => "rsa4096",
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Ok(match s {
            "ec256" | "p256" | "ecdsa-p256" => KeyType::EcP256,
            "ec384" | "p384" | "ecdsa-p384" => KeyType::EcP384,
            "rsa2048" => KeyType::Rsa2048,
            "rsa3072" => KeyType::Rsa3072,
            "rsa4096" => KeyType::Rsa4096,
            other => {
                return Err(Error::BadPrivateKey(format!(
                    "unknown key type {other:?} (expected ec256, ec384, rsa2048, rsa3072 or rsa4096)"
                )));
            }
        })
    }
}

enum Inner {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// A private key that signs JWS and CSRs. Its `Debug` output never shows key material.
pub struct KeyPair {
    kind: KeyType,
    inner: Inner,
    pkcs8: Vec<u8>,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    /// Generates a fresh key of the given type.
    pub fn generate(kind: KeyType) -> Result<Self, Error> {
        let crypto = |_| Error::Crypto;
        let (inner, pkcs8) = match kind {
            KeyType::EcP256 | KeyType::EcP384 => {
                let kp = EcdsaKeyPair::generate(ec_alg(kind)).map_err(crypto)?;
                let der = kp.to_pkcs8v1().map_err(crypto)?.as_ref().to_vec();
                (Inner::Ec(kp), der)
            }
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
                let size = match kind {
                    KeyType::Rsa2048 => KeySize::Rsa2048,
                    KeyType::Rsa3072 => KeySize::Rsa3072,
                    _ => KeySize::Rsa4096,
                };
                let kp = RsaKeyPair::generate(size).map_err(crypto)?;
                let der = kp.as_der().map_err(crypto)?.as_ref().to_vec();
                (Inner::Rsa(kp), der)
            }
        };
        Ok(KeyPair { kind, inner, pkcs8 })
    }

    /// Loads a PKCS#8 DER private key (EC P-256, EC P-384 or RSA 2048–4096).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, Error> {
        for kind in [KeyType::EcP256, KeyType::EcP384] {
            if let Ok(kp) = EcdsaKeyPair::from_pkcs8(ec_alg(kind), der) {
                return Ok(KeyPair {
                    kind,
                    inner: Inner::Ec(kp),
                    pkcs8: der.to_vec(),
                });
            }
        }
        let kp = RsaKeyPair::from_pkcs8(der)
            .map_err(|e| Error::BadPrivateKey(format!("not an EC or RSA PKCS#8 key: {e}")))?;
        let kind = match kp.public_modulus_len() * 8 {
            2048 => KeyType::Rsa2048,
            3072 => KeyType::Rsa3072,
            4096 => KeyType::Rsa4096,
            bits => return Err(Error::BadPrivateKey(format!("unsupported RSA size {bits}"))),
        };
        Ok(KeyPair {
            kind,
            inner: Inner::Rsa(kp),
            pkcs8: der.to_vec(),
        })
    }

    /// Loads a PEM `PRIVATE KEY` (PKCS#8).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, Error> {
        let der = crate::pem::decode_one(pem, "PRIVATE KEY")
            .ok_or_else(|| Error::BadPrivateKey("no PEM PRIVATE KEY block".into()))?;
        Self::from_pkcs8_der(&der)
    }

    /// The key type.
    pub fn key_type(&self) -> KeyType {
        self.kind
    }

    /// The JWS algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.kind.algorithm()
    }

    /// The PKCS#8 DER encoding. Treat as secret.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The PKCS#8 PEM encoding. Treat as secret.
    pub fn pkcs8_pem(&self) -> String {
        crate::pem::encode("PRIVATE KEY", &self.pkcs8)
    }

    /// The public key as it stands in a certificate's `subjectPublicKey`
    /// bits: the uncompressed point for EC keys, the DER `RSAPublicKey` for
    /// RSA keys.
    pub fn public_key_bytes(&self) -> &[u8] {
        match &self.inner {
            Inner::Ec(kp) => kp.public_key().as_ref(),
            Inner::Rsa(kp) => kp.public_key().as_ref(),
        }
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Jwk {
        match &self.inner {
            Inner::Ec(kp) => {
                let crv = if self.kind == KeyType::EcP384 {
                    Curve::P384
                } else {
                    Curve::P256
                };
                // The point comes from our own key, so its shape is right.
                Jwk::from_ec_point(crv, kp.public_key().as_ref())
                    .unwrap_or_else(|_| unreachable!("aws-lc-rs returns uncompressed points"))
            }
            Inner::Rsa(kp) => {
                let pk = kp.public_key();
                Jwk::from_rsa_components(
                    pk.modulus().big_endian_without_leading_zero(),
                    pk.exponent().big_endian_without_leading_zero(),
                )
            }
        }
    }

    /// Signs `message` with the key's algorithm. EC signatures are the fixed-size
    /// `r || s` that JWS requires (RFC 7518 §3.4), not DER.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let rng = SystemRandom::new();
        match &self.inner {
            Inner::Ec(kp) => Ok(kp
                .sign(&rng, message)
                .map_err(|_| Error::Crypto)?
                .as_ref()
                .to_vec()),
            Inner::Rsa(kp) => {
                let mut sig = vec![0; kp.public_modulus_len()];
                kp.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut sig)
                    .map_err(|_| Error::Crypto)?;
                Ok(sig)
            }
        }
    }
}

fn ec_alg(kind: KeyType) -> &'static signature::EcdsaSigningAlgorithm {
    if kind == KeyType::EcP384 {
        &signature::ECDSA_P384_SHA384_FIXED_SIGNING
    } else {
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING
    }
}
