//! The JSON resources of RFC 8555 §7.1 and the request bodies that create them.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::jws::Jws;
use crate::problem::Problem;
use crate::string_enum::string_enum;

/// The directory object (§7.1.1): where every other resource lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Directory {
    /// URL of newNonce.
    pub new_nonce: String,
    /// URL of newAccount.
    pub new_account: String,
    /// URL of newOrder.
    pub new_order: String,
    /// URL of newAuthz (pre-authorization), if supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_authz: Option<String>,
    /// URL of revokeCert.
    pub revoke_cert: String,
    /// URL of keyChange.
    pub key_change: String,
    /// URL of renewalInfo (RFC 9773), if supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_info: Option<String>,
    /// Metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<DirectoryMeta>,
}

/// The directory's `meta` object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryMeta {
    /// URL of the current terms of service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms_of_service: Option<String>,
    /// The CA's website.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    /// Domain names the CA recognises in CAA records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caa_identities: Vec<String>,
    /// Whether newAccount requires an external account binding.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub external_account_required: bool,
    /// Certificate profiles offered, name → description (ACME profiles extension).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub profiles: BTreeMap<String, String>,
}

string_enum! {
    /// The type of an identifier.
    pub enum IdentifierType {
        /// A DNS name (RFC 8555).
        Dns = "dns",
        /// An IP address (RFC 8738).
        Ip = "ip",
    }
}

/// An identifier a certificate is requested for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Identifier {
    /// Its type.
    #[serde(rename = "type")]
    pub kind: IdentifierType,
    /// The name or address as text.
    pub value: String,
}

impl PartialOrd for IdentifierType {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for IdentifierType {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Identifier {
    /// A DNS identifier.
    pub fn dns(name: impl Into<String>) -> Self {
        Identifier {
            kind: IdentifierType::Dns,
            value: name.into(),
        }
    }

    /// An IP identifier (RFC 8738), in its canonical text form.
    pub fn ip(addr: IpAddr) -> Self {
        Identifier {
            kind: IdentifierType::Ip,
            value: addr.to_string(),
        }
    }

    /// Parses user input: an IP address becomes an `ip` identifier, anything
    /// else a `dns` one (lower-cased).
    pub fn parse(text: &str) -> Self {
        match text.parse::<IpAddr>() {
            Ok(ip) => Identifier::ip(ip),
            Err(_) => Identifier::dns(text.to_ascii_lowercase()),
        }
    }

    /// Whether this is a wildcard DNS name (`*.example.com`).
    pub fn is_wildcard(&self) -> bool {
        self.kind == IdentifierType::Dns && self.value.starts_with("*.")
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

string_enum! {
    /// Account status (§7.1.6).
    pub enum AccountStatus {
        /// Usable.
        Valid = "valid",
        /// Deactivated by its holder.
        Deactivated = "deactivated",
        /// Revoked by the server.
        Revoked = "revoked",
    }
}

impl AccountStatus {
    /// Whether the account may move from `self` to `next` (§7.1.6).
    pub fn can_transition_to(&self, next: &AccountStatus) -> bool {
        matches!(
            (self, next),
            (
                AccountStatus::Valid,
                AccountStatus::Deactivated | AccountStatus::Revoked
            )
        )
    }
}

string_enum! {
    /// Order status (§7.1.6).
    pub enum OrderStatus {
        /// Authorizations not yet all valid.
        Pending = "pending",
        /// All authorizations valid; awaiting finalize.
        Ready = "ready",
        /// Finalize received; issuing.
        Processing = "processing",
        /// Certificate issued.
        Valid = "valid",
        /// Failed or expired.
        Invalid = "invalid",
    }
}

impl OrderStatus {
    /// Whether the order may move from `self` to `next` (§7.1.6).
    pub fn can_transition_to(&self, next: &OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, next),
            (Pending, Ready)
                | (Ready, Processing)
                | (Processing, Valid)
                | (Pending | Ready | Processing, Invalid)
        )
    }

    /// Whether the status can no longer change.
    pub fn is_final(&self) -> bool {
        matches!(self, OrderStatus::Valid | OrderStatus::Invalid)
    }
}

string_enum! {
    /// Authorization status (§7.1.6).
    pub enum AuthorizationStatus {
        /// Awaiting a challenge.
        Pending = "pending",
        /// A challenge succeeded.
        Valid = "valid",
        /// A challenge failed.
        Invalid = "invalid",
        /// Deactivated by the client.
        Deactivated = "deactivated",
        /// Past its expiry.
        Expired = "expired",
        /// Revoked by the server.
        Revoked = "revoked",
    }
}

impl AuthorizationStatus {
    /// Whether the authorization may move from `self` to `next` (§7.1.6).
    pub fn can_transition_to(&self, next: &AuthorizationStatus) -> bool {
        use AuthorizationStatus::*;
        matches!(
            (self, next),
            (Pending, Valid | Invalid) | (Pending | Valid, Deactivated | Expired | Revoked)
        )
    }
}

string_enum! {
    /// Challenge status (§7.1.6).
    pub enum ChallengeStatus {
        /// Not yet attempted.
        Pending = "pending",
        /// The client said it is ready; validation under way.
        Processing = "processing",
        /// Validation succeeded.
        Valid = "valid",
        /// Validation failed.
        Invalid = "invalid",
    }
}

impl ChallengeStatus {
    /// Whether the challenge may move from `self` to `next` (§7.1.6). A
    /// processing challenge may stay processing while the server retries.
    pub fn can_transition_to(&self, next: &ChallengeStatus) -> bool {
        use ChallengeStatus::*;
        matches!(
            (self, next),
            (Pending, Processing) | (Processing, Processing | Valid | Invalid)
        )
    }
}

string_enum! {
    /// A challenge type.
    pub enum ChallengeType {
        /// http-01 (§8.3).
        Http01 = "http-01",
        /// dns-01 (§8.4).
        Dns01 = "dns-01",
        /// tls-alpn-01 (RFC 8737).
        TlsAlpn01 = "tls-alpn-01",
    }
}

/// An account object (§7.1.2), as the server returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    /// Status.
    pub status: AccountStatus,
    /// Contact URLs (`mailto:`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contact: Vec<String>,
    /// Whether the terms of service were agreed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms_of_service_agreed: Option<bool>,
    /// The external account binding the account was created with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_account_binding: Option<Value>,
    /// URL of the account's order list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orders: Option<String>,
}

/// The newAccount request body (§7.3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAccount {
    /// Contact URLs (`mailto:`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contact: Vec<String>,
    /// Agreement to the terms of service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms_of_service_agreed: Option<bool>,
    /// Only look up an existing account; never create one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub only_return_existing: bool,
    /// External account binding (§7.3.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_account_binding: Option<Jws>,
}

/// An account update request body (§7.3.2, §7.3.6).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountUpdate {
    /// New contact URLs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Vec<String>>,
    /// `deactivated` to deactivate the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<AccountStatus>,
}

/// An order object (§7.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// Status.
    pub status: OrderStatus,
    /// When the order expires.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires: Option<OffsetDateTime>,
    /// The identifiers ordered.
    pub identifiers: Vec<Identifier>,
    /// Requested notBefore.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub not_before: Option<OffsetDateTime>,
    /// Requested notAfter.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub not_after: Option<OffsetDateTime>,
    /// Why the order became invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
    /// URLs of the authorizations.
    pub authorizations: Vec<String>,
    /// URL to finalize the order.
    pub finalize: String,
    /// URL of the certificate, once valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// The profile requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The certificate this order replaces (RFC 9773).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

/// The newOrder request body (§7.4).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewOrder {
    /// The identifiers to certify.
    pub identifiers: Vec<Identifier>,
    /// Requested notBefore.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub not_before: Option<OffsetDateTime>,
    /// Requested notAfter.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub not_after: Option<OffsetDateTime>,
    /// A profile from the directory's `meta.profiles`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The certificate ID (RFC 9773) this order replaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

/// An authorization object (§7.1.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Authorization {
    /// The identifier being authorized (without `*.` for wildcards).
    pub identifier: Identifier,
    /// Status.
    pub status: AuthorizationStatus,
    /// When it expires.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires: Option<OffsetDateTime>,
    /// The challenges offered.
    pub challenges: Vec<Challenge>,
    /// Whether it was created for a wildcard name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wildcard: Option<bool>,
}

/// The newAuthz / authorization-deactivation request body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationUpdate {
    /// `deactivated` to deactivate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<AuthorizationStatus>,
}

/// A challenge object (§7.1.5, §8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// The challenge type.
    #[serde(rename = "type")]
    pub kind: ChallengeType,
    /// Where to POST to say it is ready.
    pub url: String,
    /// Status.
    pub status: ChallengeStatus,
    /// The token (http-01, dns-01, tls-alpn-01).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// When it was validated.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub validated: Option<OffsetDateTime>,
    /// Why validation failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
}

/// The finalize request body (§7.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finalize {
    /// base64url of the DER CSR.
    pub csr: String,
}

/// The revokeCert request body (§7.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// base64url of the DER certificate.
    pub certificate: String,
    /// RFC 5280 reason code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<u8>,
}

/// RFC 5280 revocation reasons allowed on revokeCert (7 is unused by RFC 5280).
pub fn is_valid_revocation_reason(reason: u8) -> bool {
    matches!(reason, 0..=6 | 8..=10)
}
