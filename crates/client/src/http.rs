//! The HTTP seam: a small trait the client sends every request through, and
//! the default implementation on hyper + rustls.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;

use crate::Error;

/// Default limit for one request (connect, send, whole response).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response body accepted: certificate chains are a few KiB.
pub const MAX_RESPONSE_BODY: usize = 1024 * 1024;

/// An HTTP request as the client makes it.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// GET, HEAD or POST.
    pub method: Method,
    /// The absolute URL.
    pub url: String,
    /// The body (POST only): a JWS.
    pub body: Option<Vec<u8>>,
}

/// An HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl HttpResponse {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Every `Link` header target with the given `rel`.
    pub fn links(&self, rel: &str) -> Vec<String> {
        let mut out = Vec::new();
        for v in self.headers.get_all(http::header::LINK) {
            let Ok(v) = v.to_str() else { continue };
            for part in v.split(',') {
                let mut pieces = part.split(';');
                let Some(target) = pieces.next() else {
                    continue;
                };
                let target = target.trim().trim_start_matches('<').trim_end_matches('>');
                if pieces.any(|p| {
                    let p = p.trim().replace(' ', "");
                    p == format!("rel=\"{rel}\"") || p == format!("rel={rel}")
                }) {
                    out.push(target.to_owned());
                }
            }
        }
        out
    }
}

/// The future an [`HttpClient`] returns.
pub type HttpFuture<'a> = Pin<Box<dyn Future<Output = Result<HttpResponse, String>> + Send + 'a>>;

/// Sends HTTP requests for the ACME client. Implement it to route requests
/// through your own stack or to inject faults in tests; errors are transport
/// failures described as text (the client adds the operation and URL).
pub trait HttpClient: Send + Sync {
    /// Sends one request.
    fn request(&self, req: HttpRequest) -> HttpFuture<'_>;
}

/// The default [`HttpClient`]: hyper with a connection pool over rustls
/// (aws-lc-rs), HTTP/1.1, trusting the Mozilla roots plus any extra roots.
#[derive(Clone)]
pub struct DefaultHttpClient {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl std::fmt::Debug for DefaultHttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DefaultHttpClient").finish_non_exhaustive()
    }
}

impl DefaultHttpClient {
    /// Trusts the Mozilla root program (for Let's Encrypt and other public CAs).
    pub fn new() -> Result<Self, Error> {
        Self::with_roots(&[])
    }

    /// Trusts the Mozilla roots plus these DER certificates (the local CA's
    /// root, Pebble's, a corporate CA).
    pub fn with_roots(extra: &[Vec<u8>]) -> Result<Self, Error> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for der in extra {
            roots
                .add(CertificateDer::from(der.clone()))
                .map_err(|e| Error::Tls(format!("extra root rejected: {e}")))?;
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self::with_tls_config(cfg))
    }

    /// Trusts the Mozilla roots plus the certificates of a PEM bundle.
    pub fn with_root_pem(pem: &str) -> Result<Self, Error> {
        let ders = site_encrypt_proto::pem::decode_all(pem, "CERTIFICATE");
        if ders.is_empty() {
            return Err(Error::Tls("the root PEM holds no CERTIFICATE".into()));
        }
        Self::with_roots(&ders)
    }

    /// Uses a custom rustls configuration as is.
    pub fn with_tls_config(cfg: rustls::ClientConfig) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(cfg)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        DefaultHttpClient {
            client,
            timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// Sets the limit for one request.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl HttpClient for DefaultHttpClient {
    fn request(&self, req: HttpRequest) -> HttpFuture<'_> {
        Box::pin(async move {
            let mut b = http::Request::builder()
                .method(req.method)
                .uri(&req.url)
                .header(
                    http::header::USER_AGENT,
                    concat!("site-encrypt/", env!("CARGO_PKG_VERSION")),
                );
            if req.body.is_some() {
                b = b.header(http::header::CONTENT_TYPE, "application/jose+json");
            }
            let request = b
                .body(Full::new(Bytes::from(req.body.unwrap_or_default())))
                .map_err(|e| format!("bad request: {e}"))?;
            let work = async {
                let resp = self.client.request(request).await.map_err(|e| {
                    let mut msg = e.to_string();
                    let mut src = std::error::Error::source(&e);
                    while let Some(s) = src {
                        msg.push_str(&format!(": {s}"));
                        src = s.source();
                    }
                    msg
                })?;
                let (parts, body) = resp.into_parts();
                let limited = http_body_util::Limited::new(body, MAX_RESPONSE_BODY);
                let body = limited
                    .collect()
                    .await
                    .map_err(|e| format!("reading body: {e}"))?
                    .to_bytes();
                Ok(HttpResponse {
                    status: parts.status.as_u16(),
                    headers: parts.headers,
                    body,
                })
            };
            match tokio::time::timeout(self.timeout, work).await {
                Ok(r) => r,
                Err(_) => Err(format!("timed out after {:?}", self.timeout)),
            }
        })
    }
}
