//! ACME Renewal Information (RFC 9773).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{Error, b64};

/// A certificate identifier (RFC 9773 §4.1):
/// `base64url(AKI keyIdentifier) "." base64url(serial number bytes)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertificateId {
    /// The keyIdentifier of the certificate's Authority Key Identifier extension.
    pub authority_key_id: Vec<u8>,
    /// The DER INTEGER content octets of the serial number (leading zero kept).
    pub serial: Vec<u8>,
}

impl CertificateId {
    /// Builds an identifier from its two parts.
    pub fn new(authority_key_id: impl Into<Vec<u8>>, serial: impl Into<Vec<u8>>) -> Self {
        CertificateId {
            authority_key_id: authority_key_id.into(),
            serial: serial.into(),
        }
    }
}

impl fmt::Display for CertificateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}",
            b64::encode(&self.authority_key_id),
            b64::encode(&self.serial)
        )
    }
}

impl FromStr for CertificateId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let (aki, serial) = s
            .split_once('.')
            .ok_or(Error::CertificateId("no '.' separator"))?;
        let aki = b64::decode(aki, "keyIdentifier").map_err(|_| Error::CertificateId("bad AKI"))?;
        let serial =
            b64::decode(serial, "serial").map_err(|_| Error::CertificateId("bad serial"))?;
        if aki.is_empty() || serial.is_empty() {
            return Err(Error::CertificateId("empty part"));
        }
        Ok(CertificateId {
            authority_key_id: aki,
            serial,
        })
    }
}

impl Serialize for CertificateId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CertificateId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The window in which the CA suggests renewing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuggestedWindow {
    /// Start of the window.
    #[serde(with = "time::serde::rfc3339")]
    pub start: OffsetDateTime,
    /// End of the window.
    #[serde(with = "time::serde::rfc3339")]
    pub end: OffsetDateTime,
}

impl SuggestedWindow {
    /// Whether the window is well formed (end after start, RFC 9773 §4.2).
    pub fn is_valid(&self) -> bool {
        self.end > self.start
    }
}

/// A renewalInfo response (RFC 9773 §4.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewalInfo {
    /// When to renew.
    #[serde(rename = "suggestedWindow")]
    pub suggested_window: SuggestedWindow,
    /// A page explaining why the window is what it is (e.g. a mass revocation).
    #[serde(
        rename = "explanationURL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub explanation_url: Option<String>,
}
