//! Facts read from an issued certificate: the names it covers and its ARI
//! certificate ID (RFC 9773 §4.1).

use std::net::IpAddr;

use site_encrypt_proto::CertificateId;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};

/// The DNS names (lower-cased) and IP addresses in a parsed certificate's
/// subjectAltName, in order.
pub fn san_names(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut names = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext.parsed_extension() {
            for gn in &san.general_names {
                match gn {
                    GeneralName::DNSName(n) => names.push(n.to_ascii_lowercase()),
                    GeneralName::IPAddress(b) => {
                        let ip = match b.len() {
                            4 => <[u8; 4]>::try_from(*b).ok().map(IpAddr::from),
                            16 => <[u8; 16]>::try_from(*b).ok().map(IpAddr::from),
                            _ => None,
                        };
                        names.extend(ip.map(|ip| ip.to_string()));
                    }
                    _ => {}
                }
            }
        }
    }
    names
}

/// The DNS names and IP addresses a DER certificate covers; empty when it
/// does not parse.
pub fn certificate_names(der: &[u8]) -> Vec<String> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, c)| san_names(&c))
        .unwrap_or_default()
}

/// The ARI certificate ID of a DER certificate: its Authority Key Identifier
/// and serial number. `None` when it does not parse or has no AKI.
///
/// ```
/// # fn demo(leaf_der: &[u8], client: &site_encrypt_client::AcmeClient) {
/// if let Some(id) = site_encrypt_client::certificate_id(leaf_der) {
///     // client.renewal_info(&id).await ...
/// }
/// # }
/// ```
pub fn certificate_id(der: &[u8]) -> Option<CertificateId> {
    let (_, c) = x509_parser::parse_x509_certificate(der).ok()?;
    let aki = c
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                a.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        })?;
    Some(CertificateId::new(aki, c.raw_serial().to_vec()))
}
