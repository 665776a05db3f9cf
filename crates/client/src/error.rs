use std::time::Duration;

use site_encrypt_proto::{Identifier, Problem};

/// Everything the client can fail with. Each variant names the operation and,
/// where the CA answered, carries its problem document.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The CA refused a request with a problem document.
    #[error("{op} ({url}) refused by the CA: {problem}")]
    Acme {
        /// The operation (`newOrder`, `finalize`, ...).
        op: &'static str,
        /// The URL requested.
        url: String,
        /// What the CA said.
        problem: Box<Problem>,
        /// The CA's `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// The CA rate-limited the request (`rateLimited` or HTTP 429).
    #[error("{op} ({url}) rate-limited by the CA{}: {problem}", retry_hint(.retry_after))]
    RateLimited {
        /// The operation.
        op: &'static str,
        /// The URL requested.
        url: String,
        /// What the CA said.
        problem: Box<Problem>,
        /// When to try again, if the CA said.
        retry_after: Option<Duration>,
    },
    /// The CA answered an error status without a problem document.
    #[error("{op} ({url}) failed with HTTP {status}{}: {body}", retry_hint(.retry_after))]
    Http {
        /// The operation.
        op: &'static str,
        /// The URL requested.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the body, for diagnosis.
        body: String,
        /// The CA's `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// The CA answered something that is not the expected document.
    #[error("{op} ({url}): malformed response: {detail}")]
    MalformedResponse {
        /// The operation.
        op: &'static str,
        /// The URL requested.
        url: String,
        /// What was wrong.
        detail: String,
    },
    /// The request could not be sent or the answer not received.
    #[error("{op} ({url}): connection failed: {detail}")]
    Transport {
        /// The operation.
        op: &'static str,
        /// The URL requested.
        url: String,
        /// The cause.
        detail: String,
    },
    /// The CA did not answer in time.
    #[error("{op} ({url}): no answer within {after:?}")]
    Timeout {
        /// The operation.
        op: &'static str,
        /// The URL requested.
        url: String,
        /// The limit.
        after: Duration,
    },
    /// Polling gave up: the resource never left a pending state.
    #[error("{what} at {url} still {status} after {after:?}")]
    PollTimeout {
        /// Order or authorization.
        what: &'static str,
        /// Its URL.
        url: String,
        /// Its last status.
        status: String,
        /// How long we polled.
        after: Duration,
    },
    /// Validation of an identifier failed.
    #[error("validation of {identifier} failed: {problem}")]
    ChallengeFailed {
        /// The identifier.
        identifier: Identifier,
        /// The CA's reason (from the challenge's `error`).
        problem: Box<Problem>,
    },
    /// The order became invalid.
    #[error("order {url} became invalid: {problem}")]
    OrderFailed {
        /// The order URL.
        url: String,
        /// The CA's reason.
        problem: Box<Problem>,
    },
    /// The CA offered no challenge the solver can answer.
    #[error("no {wanted} challenge offered for {identifier}")]
    NoSuitableChallenge {
        /// The identifier.
        identifier: Identifier,
        /// The type the solver needs.
        wanted: String,
    },
    /// A solver could not publish or remove a challenge response.
    #[error("challenge solver: {0}")]
    Solver(String),
    /// A protocol-level error (keys, JWS, encoding).
    #[error(transparent)]
    Proto(#[from] site_encrypt_proto::Error),
    /// The certificate signing request could not be built.
    #[error("cannot build the CSR: {0}")]
    Csr(String),
    /// Bad input from the caller (no identifiers, a bad URL, ...).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// TLS configuration failed.
    #[error("TLS configuration: {0}")]
    Tls(String),
}

fn retry_hint(r: &Option<Duration>) -> String {
    match r {
        Some(d) => format!(" (retry after {}s)", d.as_secs()),
        None => String::new(),
    }
}

impl Error {
    /// The CA's problem document, if this error carries one.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Error::Acme { problem, .. }
            | Error::RateLimited { problem, .. }
            | Error::ChallengeFailed { problem, .. }
            | Error::OrderFailed { problem, .. } => Some(problem),
            _ => None,
        }
    }

    /// When the CA asked us to come back, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Acme { retry_after, .. }
            | Error::RateLimited { retry_after, .. }
            | Error::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
