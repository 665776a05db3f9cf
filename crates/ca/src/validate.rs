//! Challenge validation against loopback only.
//!
//! http-01 is fetched with a plain HTTP/1.1 request to the configured port;
//! tls-alpn-01 opens TLS with ALPN `acme-tls/1` to the configured port. Names
//! resolve through the configured [`crate::config::Resolver`]; a name that
//! resolves off loopback fails before any connection is made.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::StatusCode;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use site_encrypt_proto::{
    ACME_IDENTIFIER_OID, ChallengeType, HTTP01_PATH_PREFIX, Identifier, IdentifierType, Problem,
    ProblemType, TLS_ALPN01_PROTOCOL,
};
use tokio::net::TcpStream;
use x509_parser::extensions::{GeneralName, ParsedExtension};

use crate::config::{CaConfig, MAX_HTTP01_BODY, MAX_REDIRECTS};

pub(crate) struct Validator {
    alpn: tokio_rustls::TlsConnector,
}

fn fail(kind: ProblemType, detail: impl Into<String>) -> Problem {
    Problem::new(kind, detail)
}

impl Validator {
    pub(crate) fn new(provider: Arc<CryptoProvider>) -> Result<Self, crate::Error> {
        // TLS 1.3 only: its handshake signature can be checked against the raw
        // SPKI, which the acmeIdentifier certificate needs (webpki refuses its
        // critical extension).
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(SelfSignedOk(provider)))
            .with_no_client_auth();
        cfg.alpn_protocols = vec![TLS_ALPN01_PROTOCOL.to_vec()];
        Ok(Validator {
            alpn: tokio_rustls::TlsConnector::from(Arc::new(cfg)),
        })
    }

    /// Validates one challenge. `Ok` on success; the problem says why not.
    pub(crate) async fn validate(
        &self,
        cfg: &CaConfig,
        kind: &ChallengeType,
        id: &Identifier,
        token: &str,
        key_authorization: &str,
    ) -> Result<(), Problem> {
        let ip = cfg.resolver.resolve(&id.value);
        if !ip.is_loopback() {
            return Err(fail(
                ProblemType::Dns,
                format!(
                    "{} resolves to {ip}, which is not a loopback address; this CA never validates off loopback",
                    id.value
                ),
            ));
        }
        let work = async {
            match kind {
                ChallengeType::Http01 => {
                    self.http01(ip, cfg.http01_port, id, token, key_authorization)
                        .await
                }
                ChallengeType::TlsAlpn01 => {
                    self.tls_alpn01(ip, cfg.tls_alpn01_port, id, key_authorization)
                        .await
                }
                other => Err(fail(
                    ProblemType::Malformed,
                    format!("{other} is not validated here"),
                )),
            }
        };
        match tokio::time::timeout(cfg.validation_timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(fail(
                ProblemType::Connection,
                format!(
                    "validation of {} timed out after {:?}",
                    id.value, cfg.validation_timeout
                ),
            )),
        }
    }

    async fn http01(
        &self,
        ip: IpAddr,
        port: u16,
        id: &Identifier,
        token: &str,
        expected: &str,
    ) -> Result<(), Problem> {
        let host = match (id.kind == IdentifierType::Ip, ip) {
            (true, IpAddr::V6(v6)) => format!("[{v6}]"),
            _ => id.value.clone(),
        };
        let host_header = if port == 80 {
            host.clone()
        } else {
            format!("{host}:{port}")
        };
        let mut path = format!("{HTTP01_PATH_PREFIX}{token}");
        let addr = SocketAddr::new(ip, port);
        for _ in 0..=MAX_REDIRECTS {
            let url = format!("http://{host_header}{path}");
            let stream = TcpStream::connect(addr).await.map_err(|e| {
                fail(
                    ProblemType::Connection,
                    format!("cannot connect to {addr} for {url}: {e}"),
                )
            })?;
            let _ = stream.set_nodelay(true);
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| fail(ProblemType::Connection, format!("{url}: {e}")))?;
            let conn = tokio::spawn(conn);
            let req = hyper::Request::get(&path)
                .header(hyper::header::HOST, &host_header)
                .header(hyper::header::USER_AGENT, "site-encrypt-ca validator")
                .header(hyper::header::CONNECTION, "close")
                .body(Empty::<Bytes>::new())
                .map_err(|e| fail(ProblemType::ServerInternal, e.to_string()))?;
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| fail(ProblemType::Connection, format!("{url}: {e}")))?;
            let status = resp.status();
            if status.is_redirection() {
                let loc = resp
                    .headers()
                    .get(hyper::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                conn.abort();
                path = same_origin_path(&loc, &host_header).ok_or_else(|| {
                    fail(
                        ProblemType::Connection,
                        format!("{url} redirected to another host, port or scheme; this CA follows redirects only on the same host and port"),
                    )
                })?;
                continue;
            }
            if status != StatusCode::OK {
                conn.abort();
                return Err(fail(
                    ProblemType::Unauthorized,
                    format!("{url} answered HTTP {status}"),
                ));
            }
            let mut body = resp.into_body();
            let mut buf = Vec::new();
            while let Some(frame) = body.frame().await {
                let frame =
                    frame.map_err(|e| fail(ProblemType::Connection, format!("{url}: {e}")))?;
                if let Some(data) = frame.data_ref() {
                    buf.extend_from_slice(data);
                    if buf.len() > MAX_HTTP01_BODY {
                        conn.abort();
                        return Err(fail(
                            ProblemType::Unauthorized,
                            format!("{url}: response body exceeds {MAX_HTTP01_BODY} bytes"),
                        ));
                    }
                }
            }
            conn.abort();
            let got = String::from_utf8_lossy(&buf);
            // RFC 8555 §8.3: trailing whitespace is tolerated. The body is never
            // echoed back: it is the validated party's content, not ours.
            return if got.trim_end() == expected {
                Ok(())
            } else {
                Err(fail(
                    ProblemType::IncorrectResponse,
                    format!(
                        "{url}: the {}-byte body is not the expected key authorization",
                        buf.len()
                    ),
                ))
            };
        }
        Err(fail(
            ProblemType::Connection,
            format!("more than {MAX_REDIRECTS} redirects"),
        ))
    }

    async fn tls_alpn01(
        &self,
        ip: IpAddr,
        port: u16,
        id: &Identifier,
        key_authorization: &str,
    ) -> Result<(), Problem> {
        let addr = SocketAddr::new(ip, port);
        let sni = match id.value.parse::<IpAddr>() {
            Ok(ip) => reverse_dns(ip),
            Err(_) => id.value.clone(),
        };
        let server_name = ServerName::try_from(sni.clone()).map_err(|_| {
            fail(
                ProblemType::Malformed,
                format!("{sni:?} is not a valid SNI name"),
            )
        })?;
        let stream = TcpStream::connect(addr).await.map_err(|e| {
            fail(
                ProblemType::Connection,
                format!("cannot connect to {addr}: {e}"),
            )
        })?;
        let tls = self.alpn.connect(server_name, stream).await.map_err(|e| {
            fail(
                ProblemType::Tls,
                format!("TLS with {addr} (SNI {sni}) failed: {e}"),
            )
        })?;
        let (_, conn) = tls.get_ref();
        if conn.alpn_protocol() != Some(TLS_ALPN01_PROTOCOL) {
            return Err(fail(
                ProblemType::Tls,
                format!("{addr} did not negotiate acme-tls/1"),
            ));
        }
        let cert = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .ok_or_else(|| fail(ProblemType::Tls, "no certificate presented"))?;
        let (_, cert) = x509_parser::parse_x509_certificate(cert)
            .map_err(|_| fail(ProblemType::Tls, "presented certificate does not parse"))?;
        let expected = site_encrypt_proto::tls_alpn01_extension_value(key_authorization);
        let mut san_ok = false;
        let mut ext_ok = false;
        for ext in cert.extensions() {
            if ext
                .oid
                .iter()
                .is_some_and(|o| o.eq(ACME_IDENTIFIER_OID.iter().copied()))
            {
                ext_ok = ext.critical && ext.value == expected.as_slice();
            }
            if let ParsedExtension::SubjectAlternativeName(san) = ext.parsed_extension() {
                san_ok = san.general_names.len() == 1
                    && match (&san.general_names[0], id.kind == IdentifierType::Ip) {
                        (GeneralName::DNSName(n), false) => n.eq_ignore_ascii_case(&id.value),
                        (GeneralName::IPAddress(b), true) => {
                            Some(ip_bytes(&id.value)).flatten().as_deref() == Some(*b)
                        }
                        _ => false,
                    };
            }
        }
        if !san_ok {
            return Err(fail(
                ProblemType::Unauthorized,
                format!("tls-alpn-01 certificate must name exactly {}", id.value),
            ));
        }
        if !ext_ok {
            return Err(fail(
                ProblemType::IncorrectResponse,
                "tls-alpn-01 certificate lacks a critical acmeIdentifier with the expected digest",
            ));
        }
        Ok(())
    }
}

fn ip_bytes(s: &str) -> Option<Vec<u8>> {
    Some(match s.parse::<IpAddr>().ok()? {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    })
}

/// The reverse-DNS name RFC 8738 §6 uses as SNI for IP identifiers.
fn reverse_dns(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v) => {
            let o = v.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v) => {
            let mut s = String::new();
            for b in v.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
            }
            s + "ip6.arpa"
        }
    }
}

/// For a redirect `Location`, the path to follow when it stays on the same
/// scheme (http), host and port; `None` otherwise.
fn same_origin_path(location: &str, host_header: &str) -> Option<String> {
    if location.starts_with('/') && !location.starts_with("//") {
        return Some(location.to_owned());
    }
    let rest = location.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let norm = |a: &str| a.strip_suffix(":80").unwrap_or(a).to_ascii_lowercase();
    (norm(authority) == norm(host_header)).then(|| path.to_owned())
}

/// tls-alpn-01 certificates are self-signed by design (RFC 8737): trust comes
/// from the acmeIdentifier extension, which the caller checks. Handshake
/// signatures are still verified, so the server proves it holds the key.
#[derive(Debug)]
struct SelfSignedOk(Arc<CryptoProvider>);

impl ServerCertVerifier for SelfSignedOk {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Unreachable: the client config offers TLS 1.3 only.
        Err(rustls::Error::General(
            "tls-alpn-01 validation uses TLS 1.3 only".into(),
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let (_, parsed) = x509_parser::parse_x509_certificate(cert).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        let spki = rustls::pki_types::SubjectPublicKeyInfoDer::from(parsed.public_key().raw);
        rustls::crypto::verify_tls13_signature_with_raw_key(
            message,
            &spki,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_stay_on_origin() {
        assert_eq!(same_origin_path("/x", "a.test:5002").as_deref(), Some("/x"));
        assert_eq!(
            same_origin_path("http://a.test:5002/y", "a.test:5002").as_deref(),
            Some("/y")
        );
        assert_eq!(
            same_origin_path("http://a.test/y", "a.test").as_deref(),
            Some("/y")
        );
        assert!(same_origin_path("http://a.test:5003/y", "a.test:5002").is_none());
        assert!(same_origin_path("https://a.test:5002/y", "a.test:5002").is_none());
        assert!(same_origin_path("//evil.test/y", "a.test").is_none());
        assert!(same_origin_path("http://evil.test/y", "a.test").is_none());
    }

    #[test]
    fn reverse_dns_names() {
        assert_eq!(
            reverse_dns("127.0.0.1".parse().unwrap_or(IpAddr::from([0; 4]))),
            "1.0.0.127.in-addr.arpa"
        );
        assert!(reverse_dns("::1".parse().unwrap_or(IpAddr::from([0; 4]))).starts_with("1.0.0.0."));
    }
}
