//! Account credentials and the account load-or-create workflow.

use serde::{Deserialize, Serialize};
use site_encrypt_proto::{AccountStatus, KeyPair, KeyType, NewAccount, ProblemType};

use crate::{AcmeClient, Error};

/// What identifies an account to the CA: its key and URL (and the directory
/// it belongs to).
///
/// Serialized as JSON `{"directory": URL, "url": URL, "key": PKCS#8 PEM}`.
/// The key is secret: store the JSON with mode 0600. `Debug` hides it.
pub struct AccountCredentials {
    /// The account key.
    pub key: KeyPair,
    /// The account URL (the `kid`).
    pub url: String,
    /// The directory URL of the CA.
    pub directory: String,
}

impl std::fmt::Debug for AccountCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountCredentials")
            .field("url", &self.url)
            .field("directory", &self.directory)
            .field("key", &self.key.key_type())
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
struct Stored {
    directory: String,
    url: String,
    key: String,
}

impl Serialize for AccountCredentials {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Stored {
            directory: self.directory.clone(),
            url: self.url.clone(),
            key: self.key.pkcs8_pem(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for AccountCredentials {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Stored::deserialize(d)?;
        let key = KeyPair::from_pkcs8_pem(&s.key).map_err(serde::de::Error::custom)?;
        Ok(AccountCredentials {
            key,
            url: s.url,
            directory: s.directory,
        })
    }
}

/// An external account binding key issued by the CA (§7.3.4).
#[derive(Clone)]
pub struct ExternalAccountKey {
    /// The key identifier.
    pub kid: String,
    /// The MAC key (decoded from the CA's base64url).
    pub mac_key: Vec<u8>,
}

impl std::fmt::Debug for ExternalAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalAccountKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// How to create an account when none exists.
#[derive(Debug, Clone, Default)]
pub struct AccountOptions {
    /// Contact email addresses (without `mailto:`).
    pub emails: Vec<String>,
    /// Whether the user agreed to the CA's terms of service.
    pub terms_of_service_agreed: bool,
    /// External account binding, for CAs that require one.
    pub external_account: Option<ExternalAccountKey>,
    /// The account key type (default ECDSA P-256).
    pub key_type: KeyType,
}

/// Loads the stored account when it is still valid at this CA, or creates a
/// new one. Returns the credentials and whether a new account was created.
pub async fn ensure_account(
    client: &AcmeClient,
    stored: Option<AccountCredentials>,
    opts: &AccountOptions,
) -> Result<(AccountCredentials, bool), Error> {
    if let Some(creds) = stored {
        if creds.directory == client.directory_url() {
            match client.account(&creds).await {
                Ok(a) if a.status == AccountStatus::Valid => return Ok((creds, false)),
                Ok(a) => {
                    tracing::warn!(status = %a.status, "stored ACME account is not valid; creating a new one")
                }
                Err(Error::Acme { problem, .. })
                    if matches!(
                        problem.kind,
                        ProblemType::AccountDoesNotExist | ProblemType::Unauthorized
                    ) =>
                {
                    tracing::warn!(%problem, "stored ACME account is unknown to the CA; creating a new one");
                }
                Err(e) => return Err(e),
            }
        }
    }
    let key = KeyPair::generate(opts.key_type)?;
    let eab = match &opts.external_account {
        Some(k) => Some(site_encrypt_proto::sign_eab(
            &k.kid,
            &k.mac_key,
            &key.jwk(),
            &client.directory().new_account,
        )?),
        None => None,
    };
    let req = NewAccount {
        contact: opts.emails.iter().map(|e| format!("mailto:{e}")).collect(),
        terms_of_service_agreed: Some(opts.terms_of_service_agreed),
        only_return_existing: false,
        external_account_binding: eab,
    };
    let (creds, _, created) = client.new_account(key, &req).await?;
    tracing::info!(account = %creds.url, "ACME account ready");
    Ok((creds, created))
}
