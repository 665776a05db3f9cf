//! Configuration of the local CA, with named defaults.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Default listen address: loopback, any free port.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
/// Default port the CA fetches http-01 tokens from (the standard port 80).
pub const DEFAULT_HTTP01_PORT: u16 = 80;
/// Default port the CA connects to for tls-alpn-01 (the standard port 443).
pub const DEFAULT_TLS_ALPN01_PORT: u16 = 443;
/// Default certificate lifetime: 90 days, like Let's Encrypt's classic profile.
pub const DEFAULT_CERT_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);
/// How far notBefore is backdated, so clocks that lag a little accept new certificates.
pub const NOT_BEFORE_BACKDATE: Duration = Duration::from_secs(60);
/// How long an order or authorization stays usable: 7 days, like Let's Encrypt.
pub const DEFAULT_ORDER_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// Upper bound for one validation (connect, TLS, request, body).
pub const DEFAULT_VALIDATION_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest http-01 response body the validator reads (RFC 8555 bodies are ~90 bytes).
pub const MAX_HTTP01_BODY: usize = 1024;
/// Redirects followed during http-01, and only to the same host and port.
pub const MAX_REDIRECTS: usize = 3;
/// How many unused nonces are remembered; the oldest are forgotten first.
pub const NONCE_CAPACITY: usize = 100_000;
/// Lifetime of the "shortlived" profile: 6 days, like Let's Encrypt's.
pub const SHORTLIVED_LIFETIME: Duration = Duration::from_secs(6 * 24 * 3600);

/// How the CA decides where an identifier lives.
#[derive(Debug, Clone, Default)]
pub(crate) struct Resolver {
    overrides: HashMap<String, IpAddr>,
}

impl Resolver {
    /// Every DNS name resolves to 127.0.0.1 unless overridden; IP identifiers are themselves.
    pub(crate) fn resolve(&self, name: &str) -> IpAddr {
        if let Ok(ip) = name.parse::<IpAddr>() {
            return ip;
        }
        self.overrides
            .get(name)
            .copied()
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }
}

/// A certificate profile offered in `meta.profiles`.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Shown to clients.
    pub description: String,
    /// Lifetime of certificates issued under it.
    pub lifetime: Duration,
}

/// The CA's source of "now" (issuance, expiry, renewal info).
pub type NowFn = std::sync::Arc<dyn Fn() -> time::OffsetDateTime + Send + Sync>;

/// Configuration of a [`crate::LocalCa`]. Build with [`CaConfig::new`] and the setters.
///
/// ```
/// use std::time::Duration;
/// let cfg = site_encrypt_ca::CaConfig::new()
///     .http01_port(5002)
///     .cert_lifetime(Duration::from_secs(3600))
///     .allow_name("my-site.example");
/// ```
#[derive(Clone)]
pub struct CaConfig {
    pub(crate) now: NowFn,
    pub(crate) listen: SocketAddr,
    pub(crate) http01_port: u16,
    pub(crate) tls_alpn01_port: u16,
    pub(crate) cert_lifetime: Duration,
    pub(crate) state_dir: Option<PathBuf>,
    pub(crate) allowed_names: Vec<String>,
    pub(crate) resolver: Resolver,
    pub(crate) eab_keys: HashMap<String, Vec<u8>>,
    pub(crate) eab_required: bool,
    pub(crate) nonce_reject_percent: u8,
    pub(crate) validation_delay: Duration,
    pub(crate) issuance_delay: Duration,
    pub(crate) validation_timeout: Duration,
    pub(crate) profiles: BTreeMap<String, Profile>,
}

impl std::fmt::Debug for CaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaConfig")
            .field("listen", &self.listen)
            .field("http01_port", &self.http01_port)
            .field("tls_alpn01_port", &self.tls_alpn01_port)
            .field("cert_lifetime", &self.cert_lifetime)
            .field("state_dir", &self.state_dir)
            .finish_non_exhaustive()
    }
}

impl Default for CaConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl CaConfig {
    /// Defaults: listen on 127.0.0.1 with a free port, validate http-01 on port
    /// 80 and tls-alpn-01 on 443 of 127.0.0.1, 90-day certificates, a fresh root
    /// every start, profiles `classic` (the lifetime) and `shortlived` (6 days).
    pub fn new() -> Self {
        let mut profiles = BTreeMap::new();
        profiles.insert(
            "classic".to_owned(),
            Profile {
                description: "The default lifetime".into(),
                lifetime: DEFAULT_CERT_LIFETIME,
            },
        );
        profiles.insert(
            "shortlived".to_owned(),
            Profile {
                description: "6-day certificates".into(),
                lifetime: SHORTLIVED_LIFETIME,
            },
        );
        CaConfig {
            now: std::sync::Arc::new(time::OffsetDateTime::now_utc),
            listen: DEFAULT_LISTEN,
            http01_port: DEFAULT_HTTP01_PORT,
            tls_alpn01_port: DEFAULT_TLS_ALPN01_PORT,
            cert_lifetime: DEFAULT_CERT_LIFETIME,
            state_dir: None,
            allowed_names: Vec::new(),
            resolver: Resolver::default(),
            eab_keys: HashMap::new(),
            eab_required: false,
            nonce_reject_percent: 0,
            validation_delay: Duration::ZERO,
            issuance_delay: Duration::ZERO,
            validation_timeout: DEFAULT_VALIDATION_TIMEOUT,
            profiles,
        }
    }

    /// The CA's clock for issuance, expiry and renewal info (default: wall
    /// time). Services under test with a fake clock pass theirs, so the
    /// certificates they get are dated in the same time.
    pub fn now_fn(
        mut self,
        now: impl Fn() -> time::OffsetDateTime + Send + Sync + 'static,
    ) -> Self {
        self.now = std::sync::Arc::new(now);
        self
    }

    pub(crate) fn now(&self) -> time::OffsetDateTime {
        (self.now)()
    }

    /// Where the ACME API listens; must be a loopback address. Port 0 picks a free port.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// The port http-01 tokens are fetched from.
    pub fn http01_port(mut self, port: u16) -> Self {
        self.http01_port = port;
        self
    }

    /// The port tls-alpn-01 connects to.
    pub fn tls_alpn01_port(mut self, port: u16) -> Self {
        self.tls_alpn01_port = port;
        self
    }

    /// Lifetime of issued certificates (and of the `classic` profile). Short
    /// lifetimes such as one hour work.
    pub fn cert_lifetime(mut self, lifetime: Duration) -> Self {
        self.cert_lifetime = lifetime;
        if let Some(p) = self.profiles.get_mut("classic") {
            p.lifetime = lifetime;
        }
        self
    }

    /// Keep the root and intermediate keys in this folder (created 0700, keys
    /// 0600), so a root that browsers or curl trust survives restarts.
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// Also allow this DNS name (besides `localhost`, `*.localhost`, `*.test`,
    /// 127.0.0.1 and ::1), e.g. the names the embedding site configured.
    pub fn allow_name(mut self, name: impl Into<String>) -> Self {
        self.allowed_names.push(name.into().to_ascii_lowercase());
        self
    }

    /// Make `name` resolve to `ip` for validation (default: every name is
    /// 127.0.0.1). A non-loopback address makes validation fail: the CA never
    /// connects off loopback.
    pub fn resolve(mut self, name: impl Into<String>, ip: IpAddr) -> Self {
        self.resolver
            .overrides
            .insert(name.into().to_ascii_lowercase(), ip);
        self
    }

    /// Accept an external account binding with this key id and MAC key.
    pub fn eab_key(mut self, kid: impl Into<String>, mac_key: impl Into<Vec<u8>>) -> Self {
        self.eab_keys.insert(kid.into(), mac_key.into());
        self
    }

    /// Require an external account binding on newAccount.
    pub fn require_eab(mut self, required: bool) -> Self {
        self.eab_required = required;
        self
    }

    /// Testing aid: reject this percentage (0–100) of valid nonces with `badNonce`.
    pub fn nonce_reject_percent(mut self, percent: u8) -> Self {
        self.nonce_reject_percent = percent.min(100);
        self
    }

    /// Testing aid: wait this long before each validation. With a delay, a
    /// challenge answer says `processing` at once (exercising clients'
    /// polling); without one it waits up to
    /// [`INLINE_VALIDATION_WAIT`](crate::INLINE_VALIDATION_WAIT) for the outcome.
    pub fn validation_delay(mut self, delay: Duration) -> Self {
        self.validation_delay = delay;
        self
    }

    /// Testing aid: issue this long after finalize. With a delay, finalize
    /// answers the order as `processing` (with Retry-After) and the
    /// certificate comes later, as with CAs that issue asynchronously, so a
    /// client's polling after finalize can be exercised; without one the
    /// certificate is issued before finalize answers.
    pub fn issuance_delay(mut self, delay: Duration) -> Self {
        self.issuance_delay = delay;
        self
    }

    /// Upper bound for one validation.
    pub fn validation_timeout(mut self, timeout: Duration) -> Self {
        self.validation_timeout = timeout;
        self
    }

    /// Offer a profile (or replace one) in `meta.profiles`.
    pub fn profile(
        mut self,
        name: impl Into<String>,
        description: impl Into<String>,
        lifetime: Duration,
    ) -> Self {
        self.profiles.insert(
            name.into(),
            Profile {
                description: description.into(),
                lifetime,
            },
        );
        self
    }

    pub(crate) fn validate(&self) -> Result<(), crate::Error> {
        if !self.listen.ip().is_loopback() {
            return Err(crate::Error::Config(format!(
                "listen address {} is not loopback; the local CA serves loopback only",
                self.listen
            )));
        }
        if self.cert_lifetime < Duration::from_secs(60) {
            return Err(crate::Error::Config(
                "certificate lifetime must be at least a minute".into(),
            ));
        }
        Ok(())
    }

    /// Whether the CA will issue for this identifier value (type already known).
    pub(crate) fn is_allowed(
        &self,
        kind: &site_encrypt_proto::IdentifierType,
        value: &str,
    ) -> Result<(), String> {
        use site_encrypt_proto::IdentifierType;
        match kind {
            IdentifierType::Ip => match value.parse::<IpAddr>() {
                Ok(ip) if ip.is_loopback() => Ok(()),
                Ok(_) => Err(format!(
                    "this CA only issues for loopback addresses, not {value}"
                )),
                Err(_) => Err(format!("{value:?} is not an IP address")),
            },
            IdentifierType::Dns => {
                check_dns_name(value)?;
                let ok = value == "localhost"
                    || value.ends_with(".localhost")
                    || value.ends_with(".test")
                    || self.allowed_names.iter().any(|n| n == value);
                if ok {
                    Ok(())
                } else {
                    Err(format!(
                        "this CA issues only for localhost, *.localhost, *.test and configured names, not {value:?}"
                    ))
                }
            }
            other => Err(format!("identifier type {other} is not supported")),
        }
    }
}

/// RFC 1035 syntax (letters, digits, hyphens; labels 1–63; name ≤ 253), lower case.
fn check_dns_name(name: &str) -> Result<(), String> {
    if name.starts_with("*.") {
        return Err("wildcard names need dns-01, which this CA does not validate".into());
    }
    if name.is_empty() || name.len() > 253 {
        return Err("DNS name length must be 1..=253".into());
    }
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return Err(format!("{name:?} is not a valid lower-case DNS name"));
        }
    }
    Ok(())
}
