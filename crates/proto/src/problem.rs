//! Problem documents (RFC 7807 as used by RFC 8555 §6.7).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::string_enum::string_enum;
use crate::types::Identifier;

/// The namespace of ACME error types.
pub const ACME_ERROR_PREFIX: &str = "urn:ietf:params:acme:error:";

string_enum! {
    /// The type of an ACME problem: every error of RFC 8555 §6.7, RFC 9773's
    /// `alreadyReplaced`, and any other URI as `Other`.
    pub enum ProblemType {
        /// The request specified an account that does not exist.
        AccountDoesNotExist = "urn:ietf:params:acme:error:accountDoesNotExist",
        /// The certificate was already revoked.
        AlreadyRevoked = "urn:ietf:params:acme:error:alreadyRevoked",
        /// The certificate named in `replaces` was already replaced (RFC 9773).
        AlreadyReplaced = "urn:ietf:params:acme:error:alreadyReplaced",
        /// The CSR is unacceptable.
        BadCsr = "urn:ietf:params:acme:error:badCSR",
        /// The nonce is unknown, used or malformed.
        BadNonce = "urn:ietf:params:acme:error:badNonce",
        /// The JWS key is unacceptable.
        BadPublicKey = "urn:ietf:params:acme:error:badPublicKey",
        /// The revocation reason is not allowed.
        BadRevocationReason = "urn:ietf:params:acme:error:badRevocationReason",
        /// The JWS algorithm is not supported.
        BadSignatureAlgorithm = "urn:ietf:params:acme:error:badSignatureAlgorithm",
        /// CAA records forbid issuance.
        Caa = "urn:ietf:params:acme:error:caa",
        /// Several errors; see `subproblems`.
        Compound = "urn:ietf:params:acme:error:compound",
        /// The server could not connect to the validation target.
        Connection = "urn:ietf:params:acme:error:connection",
        /// A DNS lookup failed during validation.
        Dns = "urn:ietf:params:acme:error:dns",
        /// An external account binding is required.
        ExternalAccountRequired = "urn:ietf:params:acme:error:externalAccountRequired",
        /// The challenge response was wrong.
        IncorrectResponse = "urn:ietf:params:acme:error:incorrectResponse",
        /// A contact URL is invalid.
        InvalidContact = "urn:ietf:params:acme:error:invalidContact",
        /// The request is malformed.
        Malformed = "urn:ietf:params:acme:error:malformed",
        /// The order is not ready for finalization.
        OrderNotReady = "urn:ietf:params:acme:error:orderNotReady",
        /// A rate limit was exceeded.
        RateLimited = "urn:ietf:params:acme:error:rateLimited",
        /// The server will not issue for the identifier.
        RejectedIdentifier = "urn:ietf:params:acme:error:rejectedIdentifier",
        /// The server failed internally.
        ServerInternal = "urn:ietf:params:acme:error:serverInternal",
        /// The TLS connection for validation failed.
        Tls = "urn:ietf:params:acme:error:tls",
        /// The client is not authorized for the action.
        Unauthorized = "urn:ietf:params:acme:error:unauthorized",
        /// A contact URL scheme is not supported.
        UnsupportedContact = "urn:ietf:params:acme:error:unsupportedContact",
        /// The identifier type is not supported.
        UnsupportedIdentifier = "urn:ietf:params:acme:error:unsupportedIdentifier",
        /// The user must visit `instance` (e.g. new terms of service).
        UserActionRequired = "urn:ietf:params:acme:error:userActionRequired",
        /// The requested profile is unknown (ACME profiles extension).
        InvalidProfile = "urn:ietf:params:acme:error:invalidProfile",
    }
}

impl ProblemType {
    /// The short name after the ACME prefix (`badNonce`), or the whole URI.
    pub fn short(&self) -> &str {
        let s = self.as_str();
        s.strip_prefix(ACME_ERROR_PREFIX).unwrap_or(s)
    }

    /// The HTTP status a server answers this problem with.
    pub fn default_status(&self) -> u16 {
        match self {
            ProblemType::Unauthorized | ProblemType::AccountDoesNotExist => 403,
            ProblemType::ExternalAccountRequired | ProblemType::UserActionRequired => 403,
            ProblemType::OrderNotReady => 403,
            ProblemType::RateLimited => 429,
            ProblemType::ServerInternal => 500,
            ProblemType::AlreadyReplaced => 409,
            _ => 400,
        }
    }
}

/// A problem document: why a server refused a request or a validation failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The problem type.
    #[serde(rename = "type")]
    pub kind: ProblemType,
    /// A short summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// A human-readable explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The HTTP status code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// A URL with more information (e.g. for `userActionRequired`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Per-identifier problems (§6.7.1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subproblems: Vec<Subproblem>,
    /// Supported algorithms, with `badSignatureAlgorithm` (§6.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithms: Option<Vec<String>>,
}

impl Problem {
    /// A problem of the given type with a detail and the type's default status.
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        let status = Some(kind.default_status());
        Problem {
            kind,
            title: None,
            detail: Some(detail.into()),
            status,
            instance: None,
            subproblems: Vec::new(),
            algorithms: None,
        }
    }

    /// Adds subproblems.
    pub fn with_subproblems(mut self, subproblems: Vec<Subproblem>) -> Self {
        self.subproblems = subproblems;
        self
    }
}

impl From<&crate::Error> for Problem {
    fn from(e: &crate::Error) -> Self {
        let mut p = Problem::new(e.problem_type(), e.to_string());
        if p.kind == ProblemType::BadSignatureAlgorithm {
            p.algorithms = Some(
                crate::Algorithm::REQUEST_ALGORITHMS
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            );
        }
        p
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind.short())?;
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        for sp in &self.subproblems {
            write!(f, "; {sp}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problem {}

/// A problem about one identifier inside a compound problem (§6.7.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subproblem {
    /// The problem type.
    #[serde(rename = "type")]
    pub kind: ProblemType,
    /// A human-readable explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The identifier the problem is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier>,
}

impl fmt::Display for Subproblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(id) = &self.identifier {
            write!(f, "{}: ", id.value)?;
        }
        write!(f, "{}", self.kind.short())?;
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}
