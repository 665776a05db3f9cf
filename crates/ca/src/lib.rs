//! A strict, fast ACME (RFC 8555) certificate authority for development and
//! tests, running inside your process or standalone (`site-encrypt ca`).
//!
//! It serves the whole protocol over HTTPS on a loopback port, issues real
//! X.509 certificates from a local root (persisted in a folder when asked, so
//! browsers and curl can trust it), and validates http-01 and tls-alpn-01
//! challenges for real — against loopback only: every name resolves to
//! 127.0.0.1 unless configured otherwise, and a name that resolves elsewhere
//! fails validation without a connection being made.
//!
//! ```no_run
//! # async fn demo() -> Result<(), site_encrypt_ca::Error> {
//! use site_encrypt_ca::{CaConfig, LocalCa};
//!
//! let ca = LocalCa::start(CaConfig::new().http01_port(8080)).await?;
//! println!("directory: {}", ca.directory_url());
//! std::fs::write("root.pem", ca.root_pem()).unwrap();
//! // ... point any ACME client at the directory, trusting root.pem ...
//! ca.stop().await;
//! # Ok(()) }
//! ```
//!
//! Strictness: every §6.2 JWS rule, single-use nonces (an unknown or used
//! nonce is `badNonce` with a fresh nonce, never a 500), CSRs that must name
//! exactly the order's identifiers with a key other than the account key,
//! problem documents with the right type for every refusal.
//!
//! Speed: a challenge response waits up to [`INLINE_VALIDATION_WAIT`] for its
//! validation, so on loopback it already reports the challenge `valid` (or
//! `invalid` with the reason) and a client need not poll, and finalize issues
//! before it answers. Set [`CaConfig::validation_delay`] or
//! [`CaConfig::issuance_delay`] to get `processing` answers and exercise a
//! client's polling instead.

mod config;
mod error;
mod pki;
mod server;
mod state;
mod validate;

use std::net::SocketAddr;
use std::sync::Arc;

use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{
    CaConfig, DEFAULT_CERT_LIFETIME, DEFAULT_HTTP01_PORT, DEFAULT_LISTEN, DEFAULT_ORDER_LIFETIME,
    DEFAULT_TLS_ALPN01_PORT, DEFAULT_VALIDATION_TIMEOUT, MAX_HTTP01_BODY, MAX_REDIRECTS,
    NONCE_CAPACITY, NOT_BEFORE_BACKDATE, NowFn, Profile, SHORTLIVED_LIFETIME,
};
pub use error::Error;
pub use pki::{INTERMEDIATE_VALIDITY, ROOT_VALIDITY};
pub use server::{INLINE_VALIDATION_WAIT, RENEWAL_INFO_RETRY_AFTER};

/// Entry points for fuzzing the parsers a stranger controls (not a stable API).
#[doc(hidden)]
pub mod fuzzing {
    /// Parses and checks a DER CSR the way finalize does; returns the names it asks for.
    pub fn check_csr(der: &[u8]) -> Result<Vec<String>, String> {
        crate::pki::check_csr(der).map(|c| c.names.into_iter().map(|n| n.value).collect())
    }

    /// Reads the facts the CA keeps about a DER certificate (revocation, ARI).
    pub fn cert_facts(der: &[u8]) -> Option<String> {
        crate::pki::cert_facts(der).map(|f| f.cert_id)
    }
}

/// How long a client may take to complete the TLS handshake with the API.
pub const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A running local CA. Dropping it stops it; [`LocalCa::stop`] also waits.
pub struct LocalCa {
    addr: SocketAddr,
    directory_url: String,
    root_pem: String,
    root_der: Vec<u8>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCa")
            .field("directory_url", &self.directory_url)
            .finish_non_exhaustive()
    }
}

impl LocalCa {
    /// Validates the configuration, loads or creates the root, binds the
    /// listen address and starts serving. Must run inside a tokio runtime.
    pub async fn start(cfg: CaConfig) -> Result<Self, Error> {
        cfg.validate()?;
        let state_dir = cfg.state_dir.clone();
        let pki =
            tokio::task::spawn_blocking(move || pki::Pki::load_or_create(state_dir.as_deref()))
                .await
                .map_err(|e| Error::Config(format!("key generation task failed: {e}")))??;
        let listener = TcpListener::bind(cfg.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: cfg.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: cfg.listen,
            source,
        })?;
        let host = match addr.ip() {
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            ip => ip.to_string(),
        };
        let base = format!("https://{host}:{}", addr.port());

        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let (chain, key) = pki.api_certificate(addr.ip())?;
        let mut tls = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                chain.into_iter().map(CertificateDer::from).collect(),
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
            )?;
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

        let root_pem = pki.root_pem.clone();
        let root_der = pki.root_der.clone();
        let validator = validate::Validator::new(provider)?;
        let app = Arc::new(server::App::new(cfg, pki, base.clone(), validator));
        let router = server::router(app);
        let (shutdown, mut stop) = watch::channel(false);
        tracing::info!("Running local ACME server at {addr}");
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        // Small request/response exchanges: never wait for Nagle.
                        let _ = stream.set_nodelay(true);
                        let acceptor = acceptor.clone();
                        let svc = TowerToHyperService::new(router.clone());
                        conns.spawn(async move {
                            let Ok(Ok(tls)) = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await else { return };
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(tls), svc)
                                .await;
                        });
                    }
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
            conns.shutdown().await;
        });
        Ok(LocalCa {
            addr,
            directory_url: format!("{base}/dir"),
            root_pem,
            root_der,
            shutdown,
            task: Some(task),
        })
    }

    /// The address the API listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The ACME directory URL (`https://127.0.0.1:PORT/dir`).
    pub fn directory_url(&self) -> &str {
        &self.directory_url
    }

    /// The root certificate in PEM, to trust in clients (also served at `/roots/0`).
    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }

    /// The root certificate in DER.
    pub fn root_der(&self) -> &[u8] {
        &self.root_der
    }

    /// Stops serving and waits until every connection is closed.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for LocalCa {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}
