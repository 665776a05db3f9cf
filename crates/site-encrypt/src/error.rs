use crate::config::ConfigError;
use crate::storage::StorageError;

/// Errors of the site-encrypt service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The ACME exchange failed; carries the CA's problem document when there is one.
    #[error(transparent)]
    Acme(#[from] site_encrypt_client::Error),
    /// The in-process CA could not start.
    #[error("local CA: {0}")]
    LocalCa(#[from] site_encrypt_ca::Error),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A certificate or key is unusable (does not parse, key mismatch, expired, wrong names).
    #[error("unusable certificate: {0}")]
    Certificate(String),
    /// Writing or restoring the backup failed.
    #[error("backup {path}: {detail}")]
    Backup {
        /// The archive.
        path: std::path::PathBuf,
        /// What failed.
        detail: String,
    },
    /// The service has stopped.
    #[error("the certifier is not running")]
    Stopped,
}
