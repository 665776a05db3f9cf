//! Configuration as code: a builder of plain data, validated into a [`Config`].

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use site_encrypt_proto::{Identifier, KeyType};

use crate::NewCertificate;

/// Let's Encrypt's production directory.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging directory (untrusted certificates, generous limits).
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";
/// Renew this long before expiry when the CA offers no renewal information:
/// 30 days, a third of a 90-day certificate, as Let's Encrypt recommends.
pub const DEFAULT_RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);
/// How often a day the service checks whether to renew: 3, like the
/// original's periodic check, each at a random offset.
pub const DEFAULT_CHECKS_PER_DAY: u32 = 3;
/// Default storage folder, relative to the working directory.
pub const DEFAULT_STORAGE: &str = "site-encrypt";
/// Default port of the site's plain-HTTP listener, where http-01 is answered.
pub const DEFAULT_HTTP_PORT: u16 = 80;

/// Which ACME directory to use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirectoryUrl {
    /// Let's Encrypt production.
    LetsEncrypt,
    /// Let's Encrypt staging.
    LetsEncryptStaging,
    /// Any ACME directory URL.
    Url(String),
    /// Run the local CA in this process on this loopback port (0: any free
    /// port) and certify against it.
    Internal {
        /// The port.
        port: u16,
    },
}

/// Whether the service certifies and renews by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Certify at start when needed and renew on schedule.
    #[default]
    Auto,
    /// Only certify when told to (`force_certify`).
    Manual,
}

/// The hook called after each new certificate is stored and backed up.
pub type Hook =
    Arc<dyn Fn(NewCertificate) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Invalid configuration, found when the configuration is built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No domain was configured.
    #[error("at least one domain is required")]
    NoDomains,
    /// A domain is not a valid DNS name or IP address.
    #[error("invalid domain {name:?}: {reason}")]
    InvalidDomain {
        /// The value.
        name: String,
        /// Why.
        reason: String,
    },
    /// An email is not an address.
    #[error("invalid contact email {0:?}")]
    InvalidEmail(String),
    /// The directory URL is not an https URL.
    #[error("directory URL must be https://…, got {0:?}")]
    InvalidDirectory(String),
    /// The renewal threshold cannot work.
    #[error("renew_before must be between 1 hour and 365 days, got {0:?}")]
    InvalidRenewBefore(Duration),
    /// The check frequency cannot work.
    #[error("checks_per_day must be between 1 and 1440, got {0}")]
    InvalidChecksPerDay(u32),
    /// An extra CA root is not PEM.
    #[error("ca_root_pem holds no PEM CERTIFICATE")]
    InvalidCaRoot,
}

/// The configuration as plain, mergeable data. Every field is optional;
/// [`ConfigBuilder::build`] fills defaults and validates. It implements serde's
/// `Serialize`/`Deserialize` (unknown fields are refused), so values can come
/// from a file or the environment and be merged with [`ConfigBuilder::merge`];
/// serde is never required to configure the service in code.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConfigBuilder {
    /// Names to certify; the first is the main name.
    pub domains: Vec<String>,
    /// Contact emails.
    pub emails: Vec<String>,
    /// Storage folder (default [`DEFAULT_STORAGE`]).
    pub storage: Option<PathBuf>,
    /// ACME directory (default: the local CA on a free port).
    pub directory: Option<DirectoryUrl>,
    /// Extra root certificates (PEM) to trust for the CA's HTTPS.
    pub ca_root_pem: Option<String>,
    /// Renew this long before expiry (default [`DEFAULT_RENEW_BEFORE`]); the
    /// CA's renewal-information window takes precedence when it offers one.
    #[serde(with = "opt_secs")]
    pub renew_before: Option<Duration>,
    /// Checks a day (default [`DEFAULT_CHECKS_PER_DAY`]).
    pub checks_per_day: Option<u32>,
    /// Certificate key type (default ECDSA P-256).
    pub key_type: Option<String>,
    /// Backup archive path (none by default).
    pub backup: Option<PathBuf>,
    /// Mode (default automatic).
    pub mode: Option<Mode>,
    /// The site's HTTP port, where http-01 is answered (default 80); the
    /// in-process CA validates there.
    pub http_port: Option<u16>,
    /// Agree to the CA's terms of service (default true: using the service is agreeing).
    pub agree_tos: Option<bool>,
    /// With `DirectoryUrl::Internal`: keep the local CA's root and
    /// intermediate in this folder, so a root that browsers or curl trust
    /// survives restarts (default: a fresh root each start).
    pub local_ca_state: Option<PathBuf>,
    #[serde(skip)]
    hook: Option<Hook>,
}

mod opt_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(d) => s.serialize_some(&d.as_secs()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_secs))
    }
}

impl fmt::Debug for ConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigBuilder")
            .field("domains", &self.domains)
            .field("directory", &self.directory)
            .field("storage", &self.storage)
            .finish_non_exhaustive()
    }
}

impl ConfigBuilder {
    /// Adds a domain.
    pub fn domain(mut self, d: impl Into<String>) -> Self {
        self.domains.push(d.into());
        self
    }
    /// Sets the domains.
    pub fn domains<I: IntoIterator<Item = S>, S: Into<String>>(mut self, ds: I) -> Self {
        self.domains = ds.into_iter().map(Into::into).collect();
        self
    }
    /// Adds a contact email.
    pub fn email(mut self, e: impl Into<String>) -> Self {
        self.emails.push(e.into());
        self
    }
    /// Sets the storage folder.
    pub fn storage(mut self, dir: impl Into<PathBuf>) -> Self {
        self.storage = Some(dir.into());
        self
    }
    /// Sets the directory.
    pub fn directory(mut self, d: DirectoryUrl) -> Self {
        self.directory = Some(d);
        self
    }
    /// Trusts extra roots (PEM) for the CA's HTTPS (e.g. Pebble's).
    pub fn ca_root_pem(mut self, pem: impl Into<String>) -> Self {
        self.ca_root_pem = Some(pem.into());
        self
    }
    /// Sets the renewal threshold.
    pub fn renew_before(mut self, d: Duration) -> Self {
        self.renew_before = Some(d);
        self
    }
    /// Sets how many checks a day.
    pub fn checks_per_day(mut self, n: u32) -> Self {
        self.checks_per_day = Some(n);
        self
    }
    /// Sets the certificate key type.
    pub fn key_type(mut self, k: KeyType) -> Self {
        self.key_type = Some(k.name().to_owned());
        self
    }
    /// Writes a backup archive here after each new certificate.
    pub fn backup(mut self, path: impl Into<PathBuf>) -> Self {
        self.backup = Some(path.into());
        self
    }
    /// Sets the mode.
    pub fn mode(mut self, m: Mode) -> Self {
        self.mode = Some(m);
        self
    }
    /// Sets the site's HTTP port.
    pub fn http_port(mut self, p: u16) -> Self {
        self.http_port = Some(p);
        self
    }
    /// Sets agreement to the CA's terms of service.
    pub fn agree_tos(mut self, yes: bool) -> Self {
        self.agree_tos = Some(yes);
        self
    }
    /// Keeps the in-process CA's root in this folder across restarts.
    pub fn local_ca_state(mut self, dir: impl Into<PathBuf>) -> Self {
        self.local_ca_state = Some(dir.into());
        self
    }
    /// Runs `hook` after each new certificate is stored and the backup written.
    pub fn on_new_certificate<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(NewCertificate) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.hook = Some(Arc::new(move |c| Box::pin(hook(c))));
        self
    }

    /// Overlays `other` on `self`: every value `other` sets wins; lists are
    /// replaced when `other`'s is non-empty.
    pub fn merge(mut self, other: ConfigBuilder) -> Self {
        if !other.domains.is_empty() {
            self.domains = other.domains;
        }
        if !other.emails.is_empty() {
            self.emails = other.emails;
        }
        macro_rules! take {
            ($($f:ident),*) => { $( if other.$f.is_some() { self.$f = other.$f; } )* };
        }
        take!(
            storage,
            directory,
            ca_root_pem,
            renew_before,
            checks_per_day,
            key_type,
            backup,
            mode,
            http_port,
            agree_tos,
            local_ca_state,
            hook
        );
        self
    }

    /// Validates and fills defaults.
    pub fn build(self) -> Result<Config, ConfigError> {
        if self.domains.is_empty() {
            return Err(ConfigError::NoDomains);
        }
        let mut domains = Vec::new();
        for d in &self.domains {
            let id = Identifier::parse(d.trim());
            if id.kind == site_encrypt_proto::IdentifierType::Dns {
                check_dns(&id.value).map_err(|reason| ConfigError::InvalidDomain {
                    name: d.clone(),
                    reason,
                })?;
            }
            if !domains.contains(&id) {
                domains.push(id);
            }
        }
        for e in &self.emails {
            let ok = e
                .split_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
                && !e.contains([' ', ',', '?', '<', '>']);
            if !ok {
                return Err(ConfigError::InvalidEmail(e.clone()));
            }
        }
        let directory = self.directory.unwrap_or(DirectoryUrl::Internal { port: 0 });
        if let DirectoryUrl::Url(u) = &directory {
            if !u.starts_with("https://") {
                return Err(ConfigError::InvalidDirectory(u.clone()));
            }
        }
        let renew_before = self.renew_before.unwrap_or(DEFAULT_RENEW_BEFORE);
        if !(Duration::from_secs(3600)..=Duration::from_secs(365 * 86400)).contains(&renew_before) {
            return Err(ConfigError::InvalidRenewBefore(renew_before));
        }
        let checks_per_day = self.checks_per_day.unwrap_or(DEFAULT_CHECKS_PER_DAY);
        if !(1..=1440).contains(&checks_per_day) {
            return Err(ConfigError::InvalidChecksPerDay(checks_per_day));
        }
        let key_type = match &self.key_type {
            Some(k) => k
                .parse::<KeyType>()
                .map_err(|e| ConfigError::InvalidDomain {
                    name: k.clone(),
                    reason: e.to_string(),
                })?,
            None => KeyType::default(),
        };
        if let Some(pem) = &self.ca_root_pem {
            if site_encrypt_proto::pem::decode_all(pem, "CERTIFICATE").is_empty() {
                return Err(ConfigError::InvalidCaRoot);
            }
        }
        Ok(Config {
            domains,
            emails: self.emails,
            storage: self
                .storage
                .unwrap_or_else(|| PathBuf::from(DEFAULT_STORAGE)),
            directory,
            ca_root_pem: self.ca_root_pem,
            renew_before,
            checks_per_day,
            key_type,
            backup: self.backup,
            mode: self.mode.unwrap_or_default(),
            http_port: self.http_port.unwrap_or(DEFAULT_HTTP_PORT),
            agree_tos: self.agree_tos.unwrap_or(true),
            local_ca_state: self.local_ca_state,
            hook: self.hook,
        })
    }
}

fn check_dns(name: &str) -> Result<(), String> {
    let name = name.strip_prefix("*.").unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return Err("length must be 1..=253".into());
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("empty or over-long label".into());
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label may not start or end with '-'".into());
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err("only letters, digits and '-' are allowed".into());
        }
    }
    Ok(())
}

/// A validated configuration. Build with [`Config::builder`].
///
/// ```
/// use site_encrypt::{Config, DirectoryUrl};
/// let cfg = Config::builder()
///     .domain("blog.localhost")
///     .domain("www.blog.localhost")
///     .storage("/tmp/site-encrypt-doc")
///     .directory(DirectoryUrl::Internal { port: 0 })
///     .http_port(8080)
///     .build()?;
/// assert_eq!(cfg.domains()[0].value, "blog.localhost");
/// assert!(Config::builder().build().is_err(), "no domains");
/// # Ok::<(), site_encrypt::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Config {
    pub(crate) domains: Vec<Identifier>,
    pub(crate) emails: Vec<String>,
    pub(crate) storage: PathBuf,
    pub(crate) directory: DirectoryUrl,
    pub(crate) ca_root_pem: Option<String>,
    pub(crate) renew_before: Duration,
    pub(crate) checks_per_day: u32,
    pub(crate) key_type: KeyType,
    pub(crate) backup: Option<PathBuf>,
    pub(crate) mode: Mode,
    pub(crate) http_port: u16,
    pub(crate) agree_tos: bool,
    pub(crate) local_ca_state: Option<PathBuf>,
    pub(crate) hook: Option<Hook>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("domains", &self.domains)
            .field("directory", &self.directory)
            .field("storage", &self.storage)
            .field("renew_before", &self.renew_before)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// A new builder.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// The names to certify.
    pub fn domains(&self) -> &[Identifier] {
        &self.domains
    }
    /// The storage folder.
    pub fn storage(&self) -> &std::path::Path {
        &self.storage
    }
    /// The directory.
    pub fn directory(&self) -> &DirectoryUrl {
        &self.directory
    }
    /// The backup path.
    pub fn backup(&self) -> Option<&std::path::Path> {
        self.backup.as_deref()
    }
    /// The site's HTTP port.
    pub fn http_port(&self) -> u16 {
        self.http_port
    }
    /// The renewal threshold.
    pub fn renew_before(&self) -> Duration {
        self.renew_before
    }
    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }
}
