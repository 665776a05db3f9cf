//! Challenge solvers. The http-01 solver publishes tokens to a registry that
//! the application's own HTTP server answers from, and tells the workflow the
//! moment the CA fetched a token, so it polls at once instead of sleeping.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use site_encrypt_proto::{ChallengeType, HTTP01_PATH_PREFIX, Identifier};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::Error;

/// Answers challenges of one type for the certification workflow.
pub trait Solver: Send + Sync {
    /// The challenge type this solver answers.
    fn challenge_type(&self) -> ChallengeType;

    /// Publishes the response for `token` (the key authorization).
    fn present(
        &self,
        identifier: &Identifier,
        token: &str,
        key_authorization: &str,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Completes when the CA fetched the response for `token`. Solvers that
    /// cannot tell keep the default, which never completes (the workflow then
    /// polls on its backoff alone).
    fn fetched(&self, token: &str) -> impl Future<Output = ()> + Send {
        let _ = token;
        std::future::pending()
    }

    /// Removes the response for `token`.
    fn cleanup(&self, token: &str) -> impl Future<Output = ()> + Send;
}

struct Entry {
    key_authorization: String,
    fetched: Arc<Notify>,
}

/// The tokens currently published for http-01, shared between the workflow
/// and the HTTP server that answers `/.well-known/acme-challenge/{token}`.
/// Cheap to clone.
#[derive(Clone, Default)]
pub struct Http01Registry {
    inner: Arc<Mutex<HashMap<String, Entry>>>,
}

impl std::fmt::Debug for Http01Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http01Registry").finish_non_exhaustive()
    }
}

impl Http01Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes a key authorization under `token`.
    pub fn publish(&self, token: &str, key_authorization: &str) {
        self.map().insert(
            token.to_owned(),
            Entry {
                key_authorization: key_authorization.to_owned(),
                fetched: Arc::new(Notify::new()),
            },
        );
    }

    /// Removes `token`.
    pub fn remove(&self, token: &str) {
        self.map().remove(token);
    }

    /// Whether nothing is published.
    pub fn is_empty(&self) -> bool {
        self.map().is_empty()
    }

    /// The body to answer for `token`, signalling the workflow that the CA
    /// fetched it. `None` for an unknown token (answer 404).
    pub fn respond(&self, token: &str) -> Option<String> {
        let map = self.map();
        let e = map.get(token)?;
        e.fetched.notify_one();
        Some(e.key_authorization.clone())
    }

    /// Like [`Http01Registry::respond`] for a request path; `None` when the
    /// path is not a challenge path or the token is unknown.
    pub fn respond_path(&self, path: &str) -> Option<String> {
        let token = path.strip_prefix(HTTP01_PATH_PREFIX)?;
        if token.is_empty() || token.contains('/') {
            return None;
        }
        self.respond(token)
    }

    fn notifier(&self, token: &str) -> Option<Arc<Notify>> {
        self.map().get(token).map(|e| e.fetched.clone())
    }
}

/// The http-01 [`Solver`] over an [`Http01Registry`].
#[derive(Debug, Clone, Default)]
pub struct Http01Solver {
    registry: Http01Registry,
}

impl Http01Solver {
    /// A solver publishing to `registry`.
    pub fn new(registry: Http01Registry) -> Self {
        Http01Solver { registry }
    }

    /// The registry the HTTP server answers from.
    pub fn registry(&self) -> &Http01Registry {
        &self.registry
    }
}

impl Solver for Http01Solver {
    fn challenge_type(&self) -> ChallengeType {
        ChallengeType::Http01
    }

    async fn present(
        &self,
        _identifier: &Identifier,
        token: &str,
        key_authorization: &str,
    ) -> Result<(), Error> {
        self.registry.publish(token, key_authorization);
        Ok(())
    }

    async fn fetched(&self, token: &str) {
        match self.registry.notifier(token) {
            Some(n) => n.notified().await,
            None => std::future::pending().await,
        }
    }

    async fn cleanup(&self, token: &str) {
        self.registry.remove(token);
    }
}

/// A minimal HTTP server answering http-01 challenges from a registry, for
/// programs without their own HTTP server (the `site-encrypt certify`
/// command). Unknown paths get 404. Stops when the returned handle is aborted
/// or dropped with [`Http01Server`].
pub struct Http01Server {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Http01Server {
    /// Binds `addr` and serves `registry` until dropped.
    pub async fn bind(addr: SocketAddr, registry: Http01Registry) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let registry = registry.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let found = registry.respond_path(req.uri().path());
                        async move {
                            let resp = match found {
                                Some(body) => hyper::Response::builder()
                                    .header("content-type", "application/octet-stream")
                                    .body(Full::new(Bytes::from(body))),
                                None => {
                                    tracing::debug!(path = %req.uri().path(), "http-01: unknown token");
                                    hyper::Response::builder()
                                        .status(404)
                                        .body(Full::new(Bytes::from_static(b"not found")))
                                }
                            };
                            Ok::<_, Infallible>(resp.unwrap_or_default())
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(Http01Server { addr, task })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Http01Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}
