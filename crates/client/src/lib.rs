//! The ACME (RFC 8555) client of site-encrypt.
//!
//! * **Low level** — [`AcmeClient`]: one async function per ACME request
//!   (directory, nonce, account create/find/update/deactivate, order,
//!   authorization, challenge, finalize, certificate with alternate chains,
//!   revoke, key change, renewal info), over the [`HttpClient`] seam with a
//!   hyper + rustls default. A nonce pool, `badNonce` retries, `Retry-After`
//!   (seconds or HTTP-date, bounded), polling with backoff and timeouts; every
//!   CA refusal is an [`Error`] carrying the problem document and the operation.
//! * **Mid level** — [`ensure_account`] and [`certify`] with a [`Solver`]. The
//!   http-01 solver publishes to an [`Http01Registry`] that your HTTP server
//!   answers from; the registry tells the workflow the moment the CA fetched
//!   the token, so it polls immediately instead of sleeping.
//!
//! ```no_run
//! # async fn demo() -> Result<(), site_encrypt_client::Error> {
//! use std::sync::Arc;
//! use site_encrypt_client::*;
//!
//! let http = Arc::new(DefaultHttpClient::with_root_pem(&std::fs::read_to_string("root.pem").unwrap())?);
//! let client = AcmeClient::new("https://127.0.0.1:14000/dir", http).await?;
//! let opts = AccountOptions { terms_of_service_agreed: true, ..Default::default() };
//! let (account, _created) = ensure_account(&client, None, &opts).await?;
//!
//! let solver = Http01Solver::default();
//! let _server = Http01Server::bind("127.0.0.1:5002".parse().unwrap(), solver.registry().clone()).await.unwrap();
//! let ids = [Identifier::dns("example.test")];
//! let cert = certify(&client, &account, &ids, &solver, &CertifyOptions::default()).await?;
//! println!("{}", cert.chain_pem);
//! # Ok(()) }
//! ```

mod account;
mod cert;
mod certify;
mod client;
mod error;
mod http;
mod policy;
mod solver;

pub use account::{AccountCredentials, AccountOptions, ExternalAccountKey, ensure_account};
pub use cert::{certificate_id, certificate_names, san_names};
pub use certify::{CertifyOptions, IssuedCertificate, build_csr, certify};
pub use client::{
    AcmeClient, CertificateChain, MAX_ERROR_RETRY_AFTER, RevokeBy, parse_retry_after,
};
pub use error::Error;
pub use http::{
    DEFAULT_REQUEST_TIMEOUT as DEFAULT_HTTP_TIMEOUT, DefaultHttpClient, HttpClient, HttpFuture,
    HttpRequest, HttpResponse, MAX_RESPONSE_BODY,
};
pub use policy::{
    DEFAULT_BAD_NONCE_RETRIES, DEFAULT_MAX_RETRY_AFTER, DEFAULT_POLL_INITIAL, DEFAULT_POLL_MAX,
    DEFAULT_POLL_TIMEOUT, DEFAULT_REQUEST_TIMEOUT, RetryPolicy,
};
pub use site_encrypt_proto::{Identifier, KeyPair, KeyType};
pub use solver::{Http01Registry, Http01Server, Http01Solver, Solver};
