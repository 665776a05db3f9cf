//! The one owner of the served certificate: a rustls resolver that only reads
//! memory. `resolve()` loads an `Arc` from an atomic cell; swaps never block
//! readers and a reader never sees a half-updated certificate.

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use time::OffsetDateTime;

use crate::Error;

/// What a served certificate says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// DNS names and IP addresses in the subjectAltName.
    pub names: Vec<String>,
    /// The issuer's distinguished name.
    pub issuer: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// Whether it is self-signed (the temporary certificate served until a real one exists).
    pub self_signed: bool,
}

impl CertInfo {
    /// Reads a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, Error> {
        let (_, c) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| Error::Certificate(format!("does not parse: {e}")))?;
        let names = site_encrypt_client::san_names(&c);
        Ok(CertInfo {
            names,
            issuer: c.issuer().to_string(),
            not_before: c.validity().not_before.to_datetime(),
            not_after: c.validity().not_after.to_datetime(),
            self_signed: c.issuer() == c.subject(),
        })
    }

    /// Reads the leaf of a PEM chain.
    pub fn from_chain_pem(pem: &str) -> Result<Self, Error> {
        let der = site_encrypt_proto::pem::decode_one(pem, "CERTIFICATE")
            .ok_or_else(|| Error::Certificate("no PEM certificate".into()))?;
        Self::from_der(&der)
    }
}

/// A certificate and key ready to serve, with its parsed facts.
#[derive(Debug, Clone)]
pub struct Served {
    /// What rustls serves.
    pub certified_key: Arc<CertifiedKey>,
    /// Its facts.
    pub info: CertInfo,
}

impl Served {
    /// Builds from a PEM chain (leaf first) and a PKCS#8 PEM key; checks the
    /// key matches the leaf.
    pub fn from_pem(chain_pem: &str, key_pem: &str) -> Result<Self, Error> {
        let chain: Vec<CertificateDer<'static>> =
            site_encrypt_proto::pem::decode_all(chain_pem, "CERTIFICATE")
                .into_iter()
                .map(CertificateDer::from)
                .collect();
        if chain.is_empty() {
            return Err(Error::Certificate("no certificate in the chain".into()));
        }
        let key_der = site_encrypt_proto::pem::decode_one(key_pem, "PRIVATE KEY")
            .ok_or_else(|| Error::Certificate("no PKCS#8 PRIVATE KEY".into()))?;
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let signing = provider
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der)))
            .map_err(|e| Error::Certificate(format!("key: {e}")))?;
        let info = CertInfo::from_der(&chain[0])?;
        let ck = CertifiedKey::new(chain, signing);
        ck.keys_match()
            .map_err(|e| Error::Certificate(format!("key does not match the certificate: {e}")))?;
        Ok(Served {
            certified_key: Arc::new(ck),
            info,
        })
    }

    /// A temporary self-signed certificate for `names`, served until a real one exists.
    pub fn self_signed(names: &[String]) -> Result<Self, Error> {
        let key = rcgen::KeyPair::generate().map_err(|e| Error::Certificate(e.to_string()))?;
        let mut params = rcgen::CertificateParams::new(names.to_vec())
            .map_err(|e| Error::Certificate(e.to_string()))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            "site-encrypt temporary certificate",
        );
        let now = OffsetDateTime::now_utc();
        params.not_before = now - std::time::Duration::from_secs(60);
        params.not_after = now + std::time::Duration::from_secs(7 * 86400);
        let cert = params
            .self_signed(&key)
            .map_err(|e| Error::Certificate(e.to_string()))?;
        Self::from_pem(&cert.pem(), &key.serialize_pem())
    }
}

/// A rustls [`ResolvesServerCert`] serving one certificate that can be
/// swapped at any time.
///
/// Use it with any rustls-based server:
///
/// ```no_run
/// # fn demo(certifier: &site_encrypt::Certifier) {
/// let mut tls = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
///         rustls::crypto::aws_lc_rs::default_provider()))
///     .with_safe_default_protocol_versions().unwrap()
///     .with_no_client_auth()
///     .with_cert_resolver(certifier.resolver());
/// tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
/// // hand `tls` to tokio-rustls, hyper-rustls, axum-server, ...
/// # }
/// ```
#[derive(Debug)]
pub struct CertResolver {
    current: ArcSwap<Served>,
}

impl CertResolver {
    /// A resolver serving `initial`.
    pub fn new(initial: Served) -> Self {
        CertResolver {
            current: ArcSwap::from_pointee(initial),
        }
    }

    /// Swaps in a new certificate; handshakes in flight keep the one they loaded.
    pub fn set(&self, served: Served) {
        self.current.store(Arc::new(served));
    }

    /// What is served now.
    pub fn current(&self) -> Arc<Served> {
        self.current.load_full()
    }

    /// A rustls server config using this resolver, ALPN h2 and http/1.1.
    pub fn server_config(self: &Arc<Self>) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        // The default protocol versions are always supported by the provider.
        let builder = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap_or_else(|_| unreachable!("aws-lc-rs supports TLS 1.2 and 1.3"));
        let mut cfg = builder
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(cfg)
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load().certified_key.clone())
    }
}
