use crate::problem::ProblemType;

/// Everything that can go wrong in the protocol core.
///
/// Each variant maps to the ACME problem type a server should answer with
/// ([`Error::problem_type`]), so the local CA and the client agree on what a
/// failure means.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A body or header is not the JSON it should be.
    #[error("malformed JSON in {what}: {detail}")]
    Json {
        /// Which object was being parsed.
        what: &'static str,
        /// The parser's message.
        detail: String,
    },
    /// A field is not valid base64url (without padding).
    #[error("{0} is not valid base64url")]
    Base64(&'static str),
    /// The JWS uses the general serialization or more than one signature.
    #[error("JWS must use the flattened JSON serialization with exactly one signature")]
    NotFlattened,
    /// The JWS carries an unprotected header, which RFC 8555 §6.2 forbids.
    #[error("JWS must not carry an unprotected header")]
    UnprotectedHeader,
    /// A required JWS member is missing.
    #[error("JWS is missing its {0} member")]
    MissingMember(&'static str),
    /// The protected header has both `jwk` and `kid`.
    #[error("JWS protected header must not contain both jwk and kid")]
    BothJwkAndKid,
    /// The protected header has neither `jwk` nor `kid`.
    #[error("JWS protected header must contain jwk or kid")]
    NeitherJwkNorKid,
    /// The protected header lacks a `nonce`.
    #[error("JWS protected header has no nonce")]
    MissingNonce,
    /// The nonce is not a base64url string.
    #[error("JWS nonce is not base64url")]
    MalformedNonce,
    /// The protected header lacks a `url`.
    #[error("JWS protected header has no url")]
    MissingUrl,
    /// The header's `url` is not the URL the request was sent to.
    #[error("JWS url {found:?} does not match the request URL {expected:?}")]
    UrlMismatch {
        /// The URL of the request.
        expected: String,
        /// The URL in the protected header.
        found: String,
    },
    /// A `crit` header parameter, which no ACME extension defines.
    #[error("JWS uses unsupported critical header parameters")]
    UnsupportedCritical,
    /// The algorithm is not in the allowlist for this use (`none`, HMAC on a request, ...).
    #[error("JWS algorithm {0:?} is not allowed here")]
    BadAlgorithm(String),
    /// The algorithm does not fit the key (e.g. ES256 with a P-384 key).
    #[error("JWS algorithm {alg} does not match the {key} key")]
    AlgorithmKeyMismatch {
        /// The header's algorithm.
        alg: String,
        /// A description of the key.
        key: &'static str,
    },
    /// The signature does not verify.
    #[error("JWS signature does not verify")]
    BadSignature,
    /// A public key is malformed or unsupported (curve, size).
    #[error("unsupported or malformed public key: {0}")]
    BadPublicKey(String),
    /// A private key could not be loaded or generated.
    #[error("private key rejected: {0}")]
    BadPrivateKey(String),
    /// The inner JWS of a key change (§7.3.5) breaks a rule.
    #[error("key change: {0}")]
    KeyChange(&'static str),
    /// External account binding (§7.3.4) breaks a rule or does not verify.
    #[error("external account binding: {0}")]
    ExternalAccountBinding(&'static str),
    /// A renewal-info certificate identifier (RFC 9773 §4.1) is malformed.
    #[error("malformed certificate identifier: {0}")]
    CertificateId(&'static str),
    /// The cryptographic library failed (e.g. signing).
    #[error("cryptographic operation failed")]
    Crypto,
}

impl Error {
    /// The ACME problem type a server answers with when a request fails this way.
    pub fn problem_type(&self) -> ProblemType {
        match self {
            Error::BadAlgorithm(_) => ProblemType::BadSignatureAlgorithm,
            Error::MissingNonce | Error::MalformedNonce => ProblemType::BadNonce,
            Error::BadPublicKey(_) => ProblemType::BadPublicKey,
            Error::BadSignature
            | Error::AlgorithmKeyMismatch { .. }
            | Error::UrlMismatch { .. } => ProblemType::Unauthorized,
            Error::ExternalAccountBinding(_) => ProblemType::Unauthorized,
            Error::Crypto => ProblemType::ServerInternal,
            _ => ProblemType::Malformed,
        }
    }

    pub(crate) fn json(what: &'static str, e: serde_json::Error) -> Self {
        Error::Json {
            what,
            detail: e.to_string(),
        }
    }
}
