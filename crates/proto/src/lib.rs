//! The sans-io core of site-encrypt: everything ACME (RFC 8555) and ACME
//! Renewal Information (RFC 9773) say about bytes on the wire, with no I/O.
//!
//! * [`types`]-level resources: [`Directory`], [`Account`], [`Order`],
//!   [`Authorization`], [`Challenge`] and their request bodies, with the
//!   status transitions of §7.1.6 as functions.
//! * [`Problem`] documents with every ACME error type.
//! * JWS in the flattened JSON serialization: [`sign`] for clients,
//!   [`ParsedJws`] for servers, plus key change ([`sign_key_change`],
//!   [`verify_key_change`]) and external account binding ([`sign_eab`],
//!   [`verify_eab`]).
//! * [`Jwk`] with RFC 7638 thumbprints, [`KeyPair`] (EC P-256/P-384, RSA
//!   2048–4096) and the challenge values ([`key_authorization`],
//!   [`dns01_txt_value`], [`tls_alpn01_extension_value`]).
//!
//! The client and the local CA of site-encrypt are both built on this crate, so
//! they cannot disagree about the wire format.
//!
//! ```
//! use site_encrypt_proto::{KeyPair, KeyType, ParsedJws, Signer, sign};
//!
//! let key = KeyPair::generate(KeyType::EcP256)?;
//! let url = "https://ca.test/acme/new-account";
//! let jws = sign(&key, Signer::Jwk, "bm9uY2Utb25l", url, Some(br#"{"termsOfServiceAgreed":true}"#))?;
//!
//! // What a server does with the body:
//! let parsed = ParsedJws::parse_request(jws.to_json().as_bytes())?;
//! parsed.check_url(url)?;
//! parsed.verify(parsed.header().jwk.as_ref().unwrap())?;
//! assert_eq!(parsed.payload(), br#"{"termsOfServiceAgreed":true}"#);
//! # Ok::<(), site_encrypt_proto::Error>(())
//! ```

mod b64;
mod challenge;
mod error;
pub mod fs;
mod jwk;
mod jws;
mod key;
pub mod pem;
mod problem;
mod renewal;
mod string_enum;
mod types;

pub use b64::{decode as b64_decode, encode as b64_encode};
pub use challenge::{
    ACME_IDENTIFIER_OID, HTTP01_PATH_PREFIX, MIN_TOKEN_BYTES, TLS_ALPN01_PROTOCOL, check_token,
    dns01_txt_value, http01_body, key_authorization, tls_alpn01_extension_value,
};
pub use error::Error;
pub use jwk::{Curve, Jwk, MAX_RSA_BITS, MIN_RSA_BITS};
pub use jws::{
    Algorithm, Jws, KeyChange, ParsedJws, ProtectedHeader, Signer, sign, sign_eab, sign_header,
    sign_key_change, verify_eab, verify_key_change,
};
pub use key::{KeyPair, KeyType};
pub use problem::{ACME_ERROR_PREFIX, Problem, ProblemType, Subproblem};
pub use renewal::{CertificateId, RenewalInfo, SuggestedWindow};
pub use types::{
    Account, AccountStatus, AccountUpdate, Authorization, AuthorizationStatus, AuthorizationUpdate,
    Challenge, ChallengeStatus, ChallengeType, Directory, DirectoryMeta, Finalize, Identifier,
    IdentifierType, NewAccount, NewOrder, Order, OrderStatus, Revocation,
    is_valid_revocation_reason,
};
