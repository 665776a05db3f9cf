//! Test helpers (feature `testing`): restart a site from nothing and watch it
//! certify itself, then look at what it serves over real TLS.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::service::Event;
use crate::{CertInfo, Certifier, Error};

/// How long [`clean_restart`] waits for the new certificate.
pub const CLEAN_RESTART_TIMEOUT: Duration = Duration::from_secs(30);

/// Stops the certifier, wipes its storage and backup, starts it again and
/// returns once the site serves a newly obtained certificate (through the
/// real protocol: with `DirectoryUrl::Internal`, the in-process CA).
pub async fn clean_restart(certifier: &mut Certifier) -> Result<CertInfo, Error> {
    let mut events = certifier.restart(true).await?;
    let wait = async {
        loop {
            match events.recv().await {
                Ok(Event::Obtained { info }) => return Ok(info),
                Ok(Event::Failed { error, .. }) => {
                    return Err(Error::Certificate(format!("certification failed: {error}")));
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return Err(Error::Stopped),
            }
        }
    };
    tokio::time::timeout(CLEAN_RESTART_TIMEOUT, wait)
        .await
        .map_err(|_| {
            Error::Certificate(format!("no certificate within {CLEAN_RESTART_TIMEOUT:?}"))
        })?
}

/// Errors of [`get_cert`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GetCertError {
    /// TCP or TLS failed (with a root given: the chain did not verify).
    #[error("TLS connection to {addr} failed: {detail}")]
    Connect {
        /// Where.
        addr: SocketAddr,
        /// Why.
        detail: String,
    },
    /// The certificate could not be read.
    #[error(transparent)]
    Certificate(#[from] Error),
}

/// TLS-connects to `addr` with SNI `server_name` and returns the served
/// certificate's names, issuer and validity. With `root_pem`, the chain must
/// verify against it for `server_name`; without, any certificate is read.
pub async fn get_cert(
    addr: SocketAddr,
    server_name: &str,
    root_pem: Option<&str>,
) -> Result<CertInfo, GetCertError> {
    let connect_err = |detail: String| GetCertError::Connect { addr, detail };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| connect_err(e.to_string()))?;
    let cfg = match root_pem {
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for der in site_encrypt_proto::pem::decode_all(pem, "CERTIFICATE") {
                roots
                    .add(CertificateDer::from(der))
                    .map_err(|e| connect_err(e.to_string()))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ReadAny(provider)))
            .with_no_client_auth(),
    };
    let name =
        ServerName::try_from(server_name.to_owned()).map_err(|e| connect_err(e.to_string()))?;
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| connect_err(e.to_string()))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, stream)
        .await
        .map_err(|e| connect_err(e.to_string()))?;
    let (_, conn) = tls.get_ref();
    let leaf = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| connect_err("no certificate served".into()))?;
    Ok(CertInfo::from_der(leaf)?)
}

/// Reads whatever certificate is served (test helper only).
#[derive(Debug)]
struct ReadAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for ReadAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
