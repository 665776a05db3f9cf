//! The CA's keys and certificates: root, intermediate, the API's TLS
//! certificate, CSR checks and leaf issuance.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber, SubjectPublicKeyInfo,
};
use site_encrypt_proto::{Identifier, IdentifierType, Jwk};
use time::OffsetDateTime;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

use crate::Error;
use site_encrypt_proto::fs::{create_private_dir, write_atomic};

/// Validity of the root: long, since a developer installs it once.
pub const ROOT_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Validity of the intermediate.
pub const INTERMEDIATE_VALIDITY: Duration = Duration::from_secs(5 * 365 * 24 * 3600);

pub(crate) struct Pki {
    pub(crate) root_pem: String,
    pub(crate) root_der: Vec<u8>,
    pub(crate) intermediate_pem: String,
    intermediate: Issuer<'static, KeyPair>,
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // The system RNG does not fail on supported platforms; zeros would only
    // weaken uniqueness, not safety, of serials and names.
    let _ = aws_lc_rs::rand::fill(&mut b);
    b
}

fn ca_params(cn: &str, validity: Duration) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationName, "site-encrypt local CA");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    p.not_before = now - crate::config::NOT_BEFORE_BACKDATE;
    p.not_after = now + validity;
    p.serial_number = Some(SerialNumber::from_slice(&positive_serial()));
    p.use_authority_key_identifier_extension = true;
    p
}

fn positive_serial() -> [u8; 16] {
    let mut s = random_bytes::<16>();
    s[0] &= 0x7f;
    s[0] |= 0x01; // keep 16 significant bytes: never a leading zero
    s
}

impl Pki {
    /// Loads the root and intermediate from `dir` when present, or creates them
    /// (and stores them there when `dir` is given).
    pub(crate) fn load_or_create(dir: Option<&Path>) -> Result<Self, Error> {
        if let Some(dir) = dir {
            let files = [
                "root.pem",
                "root.key",
                "intermediate.pem",
                "intermediate.key",
            ];
            if files.iter().all(|f| dir.join(f).exists()) {
                return Self::load(dir);
            }
        }
        let tag = hex(&random_bytes::<3>());
        let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let root_params = ca_params(&format!("site-encrypt local root {tag}"), ROOT_VALIDITY);
        let root_cert = root_params.self_signed(&root_key)?;
        let root = Issuer::new(root_params, &root_key);
        let int_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut int_params = ca_params(
            &format!("site-encrypt local intermediate {tag}"),
            INTERMEDIATE_VALIDITY,
        );
        int_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        let int_cert = int_params.signed_by(&int_key, &root)?;
        if let Some(dir) = dir {
            let io = |path: &Path, source| Error::State {
                path: path.to_owned(),
                source,
            };
            create_private_dir(dir).map_err(|e| io(dir, e))?;
            for (name, data, mode) in [
                ("root.key", root_key.serialize_pem(), 0o600),
                ("intermediate.key", int_key.serialize_pem(), 0o600),
                ("root.pem", root_cert.pem(), 0o644),
                ("intermediate.pem", int_cert.pem(), 0o644),
            ] {
                let p = dir.join(name);
                write_atomic(&p, data.as_bytes(), mode).map_err(|e| io(&p, e))?;
            }
        }
        Ok(Pki {
            root_pem: root_cert.pem(),
            root_der: root_cert.der().to_vec(),
            intermediate_pem: int_cert.pem(),
            intermediate: Issuer::new(int_params, int_key),
        })
    }

    fn load(dir: &Path) -> Result<Self, Error> {
        let read = |name: &str| {
            let p = dir.join(name);
            std::fs::read_to_string(&p).map_err(|source| Error::State { path: p, source })
        };
        let corrupt = |name: &str, detail: String| Error::CorruptState {
            path: dir.join(name),
            detail,
        };
        let root_pem = read("root.pem")?;
        let intermediate_pem = read("intermediate.pem")?;
        let int_key = KeyPair::from_pem(&read("intermediate.key")?)
            .map_err(|e| corrupt("intermediate.key", e.to_string()))?;
        // The root key is only needed to create an intermediate; check it still parses.
        KeyPair::from_pem(&read("root.key")?).map_err(|e| corrupt("root.key", e.to_string()))?;
        let root_der = site_encrypt_proto::pem::decode_one(&root_pem, "CERTIFICATE")
            .ok_or_else(|| corrupt("root.pem", "no CERTIFICATE block".into()))?;
        let intermediate = Issuer::from_ca_cert_pem(&intermediate_pem, int_key)
            .map_err(|e| corrupt("intermediate.pem", e.to_string()))?;
        Ok(Pki {
            root_pem,
            root_der,
            intermediate_pem,
            intermediate,
        })
    }

    /// A TLS certificate for the CA's own API (localhost, 127.0.0.1, ::1 and
    /// the listen address). Returns (chain DER, key DER).
    pub(crate) fn api_certificate(&self, listen: IpAddr) -> Result<(Vec<Vec<u8>>, Vec<u8>), Error> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        if !names.contains(&listen.to_string()) {
            names.push(listen.to_string());
        }
        let mut p = CertificateParams::new(names)?;
        p.distinguished_name = DistinguishedName::new();
        p.distinguished_name
            .push(DnType::CommonName, "site-encrypt local CA API");
        let now = OffsetDateTime::now_utc();
        p.not_before = now - crate::config::NOT_BEFORE_BACKDATE;
        p.not_after = now + Duration::from_secs(365 * 24 * 3600);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.serial_number = Some(SerialNumber::from_slice(&positive_serial()));
        p.use_authority_key_identifier_extension = true;
        let cert = p.signed_by(&key, &self.intermediate)?;
        let int_der = site_encrypt_proto::pem::decode_one(&self.intermediate_pem, "CERTIFICATE")
            .unwrap_or_default();
        Ok((vec![cert.der().to_vec(), int_der], key.serialize_der()))
    }

    /// Issues a leaf for a checked CSR. Returns the leaf DER.
    pub(crate) fn issue(
        &self,
        csr: &CheckedCsr,
        identifiers: &[Identifier],
        lifetime: Duration,
        now: OffsetDateTime,
    ) -> Result<Vec<u8>, Error> {
        let mut p = CertificateParams::default();
        p.distinguished_name = DistinguishedName::new();
        if let Some(first) = identifiers.iter().find(|i| i.kind == IdentifierType::Dns) {
            if first.value.len() <= 64 {
                p.distinguished_name
                    .push(DnType::CommonName, first.value.clone());
            }
        }
        for id in identifiers {
            p.subject_alt_names.push(match id.value.parse::<IpAddr>() {
                Ok(ip) if id.kind == IdentifierType::Ip => SanType::IpAddress(ip),
                _ => SanType::DnsName(id.value.clone().try_into()?),
            });
        }

        p.not_before = now - crate::config::NOT_BEFORE_BACKDATE;
        p.not_after = p.not_before + lifetime;
        p.serial_number = Some(SerialNumber::from_slice(&positive_serial()));
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if csr.is_rsa {
            p.key_usages.push(KeyUsagePurpose::KeyEncipherment);
        }
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.use_authority_key_identifier_extension = true;
        // ExplicitNoCa: basicConstraints CA:FALSE and a subjectKeyIdentifier,
        // as public CAs' leaves carry.
        p.is_ca = IsCa::ExplicitNoCa;
        let spki = SubjectPublicKeyInfo::from_der(&csr.spki_der)?;
        Ok(p.signed_by(&spki, &self.intermediate)?.der().to_vec())
    }
}

/// A CSR whose signature verified, with the names it asks for.
pub(crate) struct CheckedCsr {
    pub(crate) names: Vec<Identifier>,
    pub(crate) spki_der: Vec<u8>,
    pub(crate) jwk: Option<Jwk>,
    pub(crate) is_rsa: bool,
}

/// Parses a DER CSR, verifies its self-signature and collects its names
/// (subject CN and SAN DNS/IP entries). Errors are badCSR details.
pub(crate) fn check_csr(der: &[u8]) -> Result<CheckedCsr, String> {
    let (rest, csr) = x509_parser::certification_request::X509CertificationRequest::from_der(der)
        .map_err(|e| format!("CSR does not parse: {e}"))?;
    if !rest.is_empty() {
        return Err("trailing bytes after the CSR".into());
    }
    csr.verify_signature()
        .map_err(|e| format!("CSR signature does not verify: {e}"))?;
    let info = &csr.certification_request_info;
    let spki = &info.subject_pki;
    let (jwk, is_rsa) = match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => {
            let bits = rsa.key_size();
            if !(2048..=4096).contains(&bits) {
                return Err(format!("RSA key of {bits} bits; 2048 to 4096 accepted"));
            }
            (
                Some(Jwk::from_rsa_components(rsa.modulus, rsa.exponent)),
                true,
            )
        }
        Ok(PublicKey::EC(point)) => {
            let crv = match point.key_size() {
                256 => site_encrypt_proto::Curve::P256,
                384 => site_encrypt_proto::Curve::P384,
                n => {
                    return Err(format!(
                        "EC key on a {n}-bit curve; P-256 and P-384 accepted"
                    ));
                }
            };
            (Jwk::from_ec_point(crv, point.data()).ok(), false)
        }
        _ => return Err("unsupported public key type; EC P-256/P-384 or RSA accepted".into()),
    };
    let mut names = Vec::new();
    for cn in info.subject.iter_common_name() {
        let cn = cn.as_str().map_err(|_| "CN is not a string".to_string())?;
        names.push(Identifier::parse(cn));
    }
    if let Some(exts) = csr.requested_extensions() {
        for ext in exts {
            if let ParsedExtension::SubjectAlternativeName(san) = ext {
                for gn in &san.general_names {
                    match gn {
                        GeneralName::DNSName(n) => {
                            names.push(Identifier::dns(n.to_ascii_lowercase()))
                        }
                        GeneralName::IPAddress(b) => {
                            let ip = match b.len() {
                                4 => IpAddr::from(<[u8; 4]>::try_from(*b).map_err(|_| "bad IP")?),
                                16 => IpAddr::from(<[u8; 16]>::try_from(*b).map_err(|_| "bad IP")?),
                                _ => return Err("malformed IP address SAN".into()),
                            };
                            names.push(Identifier::ip(ip));
                        }
                        other => return Err(format!("unsupported SAN type {other:?}")),
                    }
                }
            }
        }
    }
    names.sort();
    names.dedup();
    Ok(CheckedCsr {
        names,
        spki_der: spki.raw.to_vec(),
        jwk,
        is_rsa,
    })
}

/// Facts about an issued certificate the CA needs later.
pub(crate) struct CertFacts {
    pub(crate) cert_id: String,
    pub(crate) not_before: OffsetDateTime,
    pub(crate) not_after: OffsetDateTime,
    pub(crate) jwk: Option<Jwk>,
}

pub(crate) fn cert_facts(der: &[u8]) -> Option<CertFacts> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let mut aki = None;
    for ext in cert.extensions() {
        if let ParsedExtension::AuthorityKeyIdentifier(a) = ext.parsed_extension() {
            aki = a.key_identifier.as_ref().map(|k| k.0.to_vec());
        }
    }
    let id = site_encrypt_proto::CertificateId::new(aki?, cert.raw_serial().to_vec());
    let jwk = match cert.public_key().parsed() {
        Ok(PublicKey::RSA(rsa)) => Some(Jwk::from_rsa_components(rsa.modulus, rsa.exponent)),
        Ok(PublicKey::EC(p)) => {
            let crv = if p.key_size() == 384 {
                site_encrypt_proto::Curve::P384
            } else {
                site_encrypt_proto::Curve::P256
            };
            Jwk::from_ec_point(crv, p.data()).ok()
        }
        _ => None,
    };
    Some(CertFacts {
        cert_id: id.to_string(),
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
        jwk,
    })
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub(crate) fn random_id() -> String {
    site_encrypt_proto::b64_encode(random_bytes::<12>())
}

pub(crate) fn random_token() -> String {
    site_encrypt_proto::b64_encode(random_bytes::<32>())
}

pub(crate) fn random_percent() -> u8 {
    (u16::from_le_bytes(random_bytes::<2>()) % 100) as u8
}
