//! axum/tower integration: the http-01 challenge route, an HTTP→HTTPS redirect
//! that never redirects challenge requests, and a helper running a router on
//! HTTP and HTTPS with the certifier's resolver.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use site_encrypt_client::Http01Registry;
use tokio::net::TcpListener;

use crate::Certifier;
use crate::resolver::CertResolver;

/// Largest time a client may take to finish a TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

async fn challenge(State(registry): State<Http01Registry>, Path(token): Path<String>) -> Response {
    match registry.respond(&token) {
        Some(body) => ([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response(),
        None => {
            tracing::debug!(%token, "http-01: unknown token");
            (StatusCode::NOT_FOUND, "unknown challenge token").into_response()
        }
    }
}

/// A router answering `/.well-known/acme-challenge/{token}` from `registry`
/// (unknown token: 404). Merge it into your HTTP router.
pub fn challenge_router(registry: Http01Registry) -> Router {
    Router::new()
        .route("/.well-known/acme-challenge/{token}", get(challenge))
        .with_state(registry)
}

/// The `Location` for redirecting `uri` (with `Host`) to HTTPS on `https_port`,
/// keeping path and query.
pub fn https_location(headers: &HeaderMap, uri: &Uri, https_port: u16) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let host = strip_port(host);
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-[]:".contains(&b))
    {
        return None;
    }
    let port = if https_port == 443 {
        String::new()
    } else {
        format!(":{https_port}")
    };
    let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    Some(format!("https://{host}{port}{pq}"))
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map(|(h, _)| &host[..h.len() + 1])
            .unwrap_or(host);
    }
    host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
}

/// The plain-HTTP side of a site: ACME challenges are answered, everything
/// else is a 301 to HTTPS on `https_port` keeping path and query.
pub fn http_router(registry: Http01Registry, https_port: u16) -> Router {
    challenge_router(registry).fallback(move |headers: HeaderMap, uri: Uri| async move {
        match https_location(&headers, &uri, https_port) {
            Some(loc) => (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, loc)]).into_response(),
            None => (StatusCode::BAD_REQUEST, "missing or invalid Host header").into_response(),
        }
    })
}

/// Running HTTP and HTTPS servers; dropping the handle stops them.
#[derive(Debug)]
pub struct Servers {
    /// Where plain HTTP listens.
    pub http_addr: SocketAddr,
    /// Where HTTPS listens.
    pub https_addr: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Servers {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Serves `app` over HTTPS on `https` with the certifier's resolver, and the
/// [`http_router`] (challenges + redirect) on `http`.
pub fn serve(
    app: Router,
    certifier: &Certifier,
    http: TcpListener,
    https: TcpListener,
) -> std::io::Result<Servers> {
    let http_addr = http.local_addr()?;
    let https_addr = https.local_addr()?;
    let redirect = http_router(certifier.registry(), https_addr.port());
    let t1 = tokio::spawn(async move {
        let http = http.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let _ = axum::serve(http, redirect).await;
    });
    let t2 = tokio::spawn(serve_tls(app, certifier.resolver(), https));
    Ok(Servers {
        http_addr,
        https_addr,
        tasks: vec![t1, t2],
    })
}

/// Serves `app` over TLS on `listener` with `resolver` until aborted.
pub async fn serve_tls(app: Router, resolver: Arc<CertResolver>, listener: TcpListener) {
    let acceptor = tokio_rustls::TlsAcceptor::from(resolver.server_config());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let svc = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let Ok(Ok(tls)) =
                tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
            else {
                return;
            };
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), svc)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        let mut h = HeaderMap::new();
        h.insert(
            header::HOST,
            "blog.localhost:20080"
                .parse()
                .unwrap_or(header::HeaderValue::from_static("x")),
        );
        let uri: Uri = "/a/b?c=d".parse().unwrap_or_default();
        assert_eq!(
            https_location(&h, &uri, 20443).as_deref(),
            Some("https://blog.localhost:20443/a/b?c=d")
        );
        assert_eq!(
            https_location(&h, &uri, 443).as_deref(),
            Some("https://blog.localhost/a/b?c=d")
        );
        h.insert(
            header::HOST,
            "[::1]:80"
                .parse()
                .unwrap_or(header::HeaderValue::from_static("x")),
        );
        assert_eq!(
            https_location(&h, &uri, 8443).as_deref(),
            Some("https://[::1]:8443/a/b?c=d")
        );
        h.insert(
            header::HOST,
            "evil\"host"
                .parse()
                .unwrap_or(header::HeaderValue::from_static("x")),
        );
        assert_eq!(https_location(&h, &uri, 443), None);
    }
}
