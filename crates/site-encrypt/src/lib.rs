//! **Automatic HTTPS from inside your Rust service.**
//!
//! site-encrypt obtains and renews certificates over ACME (RFC 8555), answers
//! the CA's http-01 challenges with your own HTTP server, swaps new
//! certificates into your rustls listener without a restart, stores and backs
//! them up — and in development and tests certifies against a local ACME CA
//! running in the same process ([`DirectoryUrl::Internal`]). Production and
//! development run the same code; only the directory differs.
//!
//! # Design
//!
//! * [`Config`] — configuration as code, validated when built ([`ConfigBuilder`]
//!   is plain serde data, so values can also come from files or the environment).
//! * [`Certifier`] — a tokio task: first certification, renewal checks
//!   ([`config::DEFAULT_CHECKS_PER_DAY`] a day, at a random offset; at the
//!   threshold or in the CA's ARI window), backoff on failure
//!   ([`BACKOFF_SCHEDULE`]) honouring `Retry-After`, storage, backup, hooks,
//!   events. A valid certificate is never replaced by nothing or a worse one.
//! * [`CertResolver`] — the rustls resolver; it only reads memory (an atomic
//!   `Arc` swap), so handshakes never wait for I/O.
//! * [`Storage`] — the storage trait with its contract; [`FsStorage`] by default.
//! * [`Clock`] — time as a seam; tests move a [`FakeClock`].
//! * [`axum`](crate::axum) (feature `axum`, default) — challenge route,
//!   HTTP→HTTPS redirect, HTTP+HTTPS serving.
//! * `testing` (feature `testing`) — `clean_restart` and `get_cert`.
//!
//! The layers below are re-exported: [`proto`] (sans-io ACME), [`client`]
//! (low-level requests and the certify workflow), [`ca`] (the local CA).
//!
//! # Example
//!
//! ```no_run
//! use site_encrypt::{Certifier, Config, DirectoryUrl};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let http = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let https = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
//! let config = Config::builder()
//!     .domain("my-site.localhost")
//!     .directory(DirectoryUrl::Internal { port: 0 }) // LetsEncrypt in production
//!     .http_port(http.local_addr()?.port())
//!     .storage("target/my-site-certs")
//!     .build()?;
//! let certifier = Certifier::start(config).await?;
//! let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello over HTTPS" }));
//! let _servers = site_encrypt::axum::serve(app, &certifier, http, https)?;
//! # Ok(()) }
//! ```

#[cfg(feature = "axum")]
pub mod axum;
mod backup;
mod clock;
pub mod config;
mod error;
mod resolver;
mod service;
pub mod storage;
#[cfg(feature = "testing")]
pub mod testing;

pub use backup::{restore_backup, write_backup};
pub use clock::{Clock, FakeClock, Sleep, SystemClock};
pub use config::{Config, ConfigBuilder, ConfigError, DirectoryUrl, Mode};
pub use error::Error;
pub use resolver::{CertInfo, CertResolver, Served};
pub use service::{
    BACKOFF_MAX, BACKOFF_SCHEDULE, CERTIFY_LOCK_TTL, Certifier, Event, HISTORY_LEN, NewCertificate,
    Outcome, Status, backoff,
};
pub use storage::{FsStorage, Storage, StorageError, StorageLock};

/// The local ACME CA.
pub use site_encrypt_ca as ca;
/// The ACME client (low level and workflow).
pub use site_encrypt_client as client;
/// The sans-io ACME protocol core.
pub use site_encrypt_proto as proto;

/// The README's Rust examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
