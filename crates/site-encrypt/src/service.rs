//! The certifier: a tokio task next to your server that certifies, renews,
//! stores, backs up and swaps certificates, driven by a [`Clock`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use site_encrypt_ca::{CaConfig, LocalCa};
use site_encrypt_client::{
    AccountCredentials, AccountOptions, AcmeClient, CertifyOptions, DefaultHttpClient,
    Http01Registry, Http01Solver, HttpClient,
};
use time::OffsetDateTime;
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{info, warn};

use crate::Error;
use crate::backup::{restore_backup, write_backup};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, DirectoryUrl, LETS_ENCRYPT, LETS_ENCRYPT_STAGING, Mode};
use crate::resolver::{CertInfo, CertResolver, Served};
use crate::storage::{FsStorage, Storage, StorageError, keys};

/// Delays after the 1st, 2nd and 3rd failed certification in a row
/// (about 1 min, 10 min, 100 min); later failures wait [`BACKOFF_MAX`].
pub const BACKOFF_SCHEDULE: [Duration; 3] = [
    Duration::from_secs(60),
    Duration::from_secs(600),
    Duration::from_secs(6000),
];
/// The delay after the 4th and later failures in a row: every few hours.
pub const BACKOFF_MAX: Duration = Duration::from_secs(4 * 3600);
/// Lease on the storage lock while certifying; refreshed every third of it.
pub const CERTIFY_LOCK_TTL: Duration = Duration::from_secs(600);
/// How many past results [`Status::history`] keeps.
pub const HISTORY_LEN: usize = 20;

/// The delay before retry number `failures + 1`.
pub fn backoff(failures: u32) -> Duration {
    match failures {
        0 => Duration::ZERO,
        n => BACKOFF_SCHEDULE
            .get(n as usize - 1)
            .copied()
            .unwrap_or(BACKOFF_MAX),
    }
}

/// A new certificate, as given to the `on_new_certificate` hook.
#[derive(Clone)]
pub struct NewCertificate {
    /// The chain in PEM, leaf first.
    pub chain_pem: String,
    /// The private key in PKCS#8 PEM. Secret: never log it.
    pub key_pem: String,
    /// What the certificate says.
    pub info: CertInfo,
}

impl std::fmt::Debug for NewCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewCertificate")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// What the service reports, for logs and metrics.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The service started against this directory.
    Started {
        /// The directory URL.
        directory: String,
    },
    /// Storage was restored from the backup archive.
    Restored {
        /// How many files.
        files: usize,
    },
    /// A certification started.
    Certifying {
        /// Why (missing, expiring, domains changed, forced, …).
        reason: String,
    },
    /// A new certificate is stored and served.
    Obtained {
        /// Its facts.
        info: CertInfo,
    },
    /// A certification failed; the old certificate stays in service.
    Failed {
        /// The error, with the CA's detail.
        error: String,
        /// Failures in a row.
        attempt: u32,
        /// When the next attempt is due.
        retry_in: Duration,
    },
    /// The next check is scheduled.
    RenewalScheduled {
        /// When.
        at: OffsetDateTime,
    },
}

/// The result of one certification attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// When it ended.
    pub at: OffsetDateTime,
    /// The new certificate's expiry, or the error.
    pub result: Result<OffsetDateTime, String>,
}

/// The service's state, for dashboards.
#[derive(Debug, Clone)]
pub struct Status {
    /// The certificate served now.
    pub serving: CertInfo,
    /// When the next check runs.
    pub next_check: Option<OffsetDateTime>,
    /// Failures in a row.
    pub failures: u32,
    /// The latest results, newest last.
    pub history: Vec<Outcome>,
}

impl Status {
    /// The latest result.
    pub fn last_result(&self) -> Option<&Outcome> {
        self.history.last()
    }
}

enum Command {
    Force(oneshot::Sender<Result<CertInfo, Error>>),
    Dry(oneshot::Sender<Result<NewCertificate, Error>>),
    Set(String, String, oneshot::Sender<Result<CertInfo, Error>>),
    Refresh(Box<Config>, oneshot::Sender<Result<(), Error>>),
}

struct Shared {
    clock: Arc<dyn Clock>,
    resolver: Arc<CertResolver>,
    registry: Http01Registry,
    events: broadcast::Sender<Event>,
    status: Mutex<Status>,
}

struct Running {
    cmd: mpsc::Sender<Command>,
    task: tokio::task::JoinHandle<()>,
    ca: Option<LocalCa>,
    directory_url: String,
    ca_root_pem: Option<String>,
}

/// The certifier service. Start it next to your server; it serves through
/// [`Certifier::resolver`] and answers challenges through [`Certifier::registry`].
///
/// ```no_run
/// # async fn demo() -> Result<(), site_encrypt::Error> {
/// use site_encrypt::{Certifier, Config, DirectoryUrl};
/// let config = Config::builder()
///     .domain("example.com")
///     .email("ops@example.com")
///     .directory(DirectoryUrl::LetsEncrypt)
///     .storage("/var/lib/my-site/certs")
///     .backup("/var/backups/my-site-certs.tar.gz")
///     .build()?;
/// let certifier = Certifier::start(config).await?;
/// // serve HTTPS with certifier.resolver(), answer /.well-known/acme-challenge
/// // from certifier.registry() (see `site_encrypt::axum`)
/// # Ok(()) }
/// ```
pub struct Certifier {
    config: Config,
    storage: Arc<dyn Storage>,
    shared: Arc<Shared>,
    running: Option<Running>,
}

impl std::fmt::Debug for Certifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certifier")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Certifier {
    /// Starts with the system clock and filesystem storage in `config.storage`.
    pub async fn start(config: Config) -> Result<Self, Error> {
        Self::start_with(config, Arc::new(SystemClock), None).await
    }

    /// Starts with a custom clock and optionally a custom storage backend.
    pub async fn start_with(
        config: Config,
        clock: Arc<dyn Clock>,
        storage: Option<Arc<dyn Storage>>,
    ) -> Result<Self, Error> {
        let storage = storage.unwrap_or_else(|| Arc::new(FsStorage::new(config.storage.clone())));
        let placeholder = Served::self_signed(
            &config
                .domains
                .iter()
                .map(|d| d.value.clone())
                .collect::<Vec<_>>(),
        )?;
        let (events, _) = broadcast::channel(256);
        let shared = Arc::new(Shared {
            clock,
            resolver: Arc::new(CertResolver::new(placeholder.clone())),
            registry: Http01Registry::new(),
            events,
            status: Mutex::new(Status {
                serving: placeholder.info,
                next_check: None,
                failures: 0,
                history: Vec::new(),
            }),
        });
        let mut c = Certifier {
            config,
            storage,
            shared,
            running: None,
        };
        c.launch().await?;
        Ok(c)
    }

    async fn launch(&mut self) -> Result<(), Error> {
        let cfg = &self.config;
        let (ca, directory_url, ca_root_pem) = match &cfg.directory {
            DirectoryUrl::Internal { port } => {
                let clock = self.shared.clock.clone();
                let mut cc = CaConfig::new()
                    .listen(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), *port))
                    .http01_port(cfg.http_port)
                    .now_fn(move || clock.now());
                for d in &cfg.domains {
                    cc = cc.allow_name(d.value.clone());
                }
                if let Some(dir) = &cfg.local_ca_state {
                    cc = cc.state_dir(dir);
                }
                let ca = LocalCa::start(cc).await?;
                let url = ca.directory_url().to_owned();
                let root = ca.root_pem().to_owned();
                (Some(ca), url, Some(root))
            }
            DirectoryUrl::LetsEncrypt => (None, LETS_ENCRYPT.to_owned(), cfg.ca_root_pem.clone()),
            DirectoryUrl::LetsEncryptStaging => (
                None,
                LETS_ENCRYPT_STAGING.to_owned(),
                cfg.ca_root_pem.clone(),
            ),
            DirectoryUrl::Url(u) => (None, u.clone(), cfg.ca_root_pem.clone()),
        };
        let http: Arc<dyn HttpClient> = Arc::new(match &ca_root_pem {
            Some(pem) => DefaultHttpClient::with_root_pem(pem).map_err(Error::Acme)?,
            None => DefaultHttpClient::new().map_err(Error::Acme)?,
        });

        // Restore from the backup when the storage lost its certificate.
        if let Some(backup) = &cfg.backup {
            if backup.exists()
                && matches!(
                    self.storage.load(keys::CERT),
                    Err(StorageError::NotFound(_))
                )
            {
                let (b, s) = (backup.clone(), cfg.storage.clone());
                let files = tokio::task::spawn_blocking(move || restore_backup(&b, &s))
                    .await
                    .map_err(|e| Error::Backup {
                        path: backup.clone(),
                        detail: e.to_string(),
                    })??;
                info!(files, backup = %backup.display(), "Restored certificate storage from backup");
                let _ = self.shared.events.send(Event::Restored { files });
            }
        }
        match load_stored(&*self.storage) {
            Ok(Some(served)) => {
                self.shared.set_serving(served);
            }
            Ok(None) => {}
            Err(e) => {
                warn!(error = %e, "stored certificate is unusable; serving a temporary one until a new one is obtained")
            }
        }

        let (tx, rx) = mpsc::channel(16);
        let worker = Worker {
            config: self.config.clone(),
            storage: self.storage.clone(),
            shared: self.shared.clone(),
            http,
            directory_url: directory_url.clone(),
            client: None,
            failures: 0,
            retry_at: None,
            ari: None,
        };
        let _ = self.shared.events.send(Event::Started {
            directory: directory_url.clone(),
        });
        let task = tokio::spawn(worker.run(rx));
        self.running = Some(Running {
            cmd: tx,
            task,
            ca,
            directory_url,
            ca_root_pem,
        });
        Ok(())
    }

    /// The resolver to put in your rustls `ServerConfig`.
    pub fn resolver(&self) -> Arc<CertResolver> {
        self.shared.resolver.clone()
    }

    /// The http-01 registry your HTTP server answers from.
    pub fn registry(&self) -> Http01Registry {
        self.shared.registry.clone()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The ACME directory URL in use.
    pub fn directory_url(&self) -> Option<&str> {
        self.running.as_ref().map(|r| r.directory_url.as_str())
    }

    /// The in-process CA's root (PEM) when the directory is `Internal`.
    pub fn local_ca_root_pem(&self) -> Option<&str> {
        self.running
            .as_ref()
            .filter(|r| r.ca.is_some())
            .and_then(|r| r.ca_root_pem.as_deref())
    }

    /// The in-process CA's address when the directory is `Internal`.
    pub fn local_ca_addr(&self) -> Option<SocketAddr> {
        self.running
            .as_ref()
            .and_then(|r| r.ca.as_ref())
            .map(|c| c.addr())
    }

    /// Subscribes to service events.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.shared.events.subscribe()
    }

    /// A cheap closure returning the current status, for dashboards that
    /// should not hold the certifier itself.
    pub fn status_handle(&self) -> impl Fn() -> Status + Send + Sync + 'static {
        let shared = self.shared.clone();
        move || {
            shared
                .status
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        }
    }

    /// The current status.
    pub fn status(&self) -> Status {
        self.shared
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    async fn command<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, Error>>) -> Command,
    ) -> Result<T, Error> {
        let r = self.running.as_ref().ok_or(Error::Stopped)?;
        let (tx, rx) = oneshot::channel();
        r.cmd.send(make(tx)).await.map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)?
    }

    /// Certifies now, whatever the schedule; returns the new certificate's facts.
    pub async fn force_certify(&self) -> Result<CertInfo, Error> {
        self.command(Command::Force).await
    }

    /// Obtains a certificate without storing or serving it (to test the setup).
    pub async fn dry_certify(&self) -> Result<NewCertificate, Error> {
        self.command(Command::Dry).await
    }

    /// Installs a certificate obtained elsewhere (checked: parses, key matches,
    /// names every domain, not worse than the current one).
    pub async fn set_certificate(
        &self,
        chain_pem: String,
        key_pem: String,
    ) -> Result<CertInfo, Error> {
        self.command(|tx| Command::Set(chain_pem, key_pem, tx))
            .await
    }

    /// Applies a new configuration (domains, emails, thresholds, hooks, …)
    /// without a restart. Changing the directory or storage needs a restart.
    pub async fn refresh_config(&mut self, config: Config) -> Result<(), Error> {
        if config.directory != self.config.directory || config.storage != self.config.storage {
            return Err(Error::Config(crate::ConfigError::InvalidDirectory(
                "directory and storage changes need a restart".into(),
            )));
        }
        self.command(|tx| Command::Refresh(Box::new(config.clone()), tx))
            .await?;
        self.config = config;
        Ok(())
    }

    /// Stops the service (and the in-process CA) at once, abandoning a
    /// certification in flight: certificate and key are written without an
    /// await point between them, so storage never holds half of a pair. The
    /// resolver keeps serving the last certificate.
    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.task.abort();
            let _ = r.task.await;
            if let Some(ca) = r.ca {
                ca.stop().await;
            }
        }
    }

    /// Stops, optionally wipes storage and backup, and starts again with the
    /// same resolver, registry and event stream. Returns a receiver that sees
    /// every event of the new run and none of the old one.
    pub async fn restart(&mut self, wipe: bool) -> Result<broadcast::Receiver<Event>, Error> {
        self.stop().await;
        let events = self.shared.events.subscribe();
        if wipe {
            self.storage.wipe()?;
            if let Some(b) = &self.config.backup {
                match std::fs::remove_file(b) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(Error::Backup {
                            path: b.clone(),
                            detail: e.to_string(),
                        });
                    }
                }
            }
            let names: Vec<String> = self
                .config
                .domains
                .iter()
                .map(|d| d.value.clone())
                .collect();
            self.shared.set_serving(Served::self_signed(&names)?);
        }
        self.launch().await?;
        Ok(events)
    }
}

impl Drop for Certifier {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.task.abort();
        }
    }
}

impl Shared {
    fn set_serving(&self, served: Served) {
        let info = served.info.clone();
        self.resolver.set(served);
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .serving = info;
    }

    fn record(&self, at: OffsetDateTime, result: Result<OffsetDateTime, String>, failures: u32) {
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        s.failures = failures;
        s.history.push(Outcome { at, result });
        let len = s.history.len();
        if len > HISTORY_LEN {
            s.history.drain(..len - HISTORY_LEN);
        }
    }
}

fn load_stored(storage: &dyn Storage) -> Result<Option<Served>, Error> {
    let chain = match storage.load(keys::CERT) {
        Ok(c) => c,
        Err(StorageError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let key = storage.load(keys::KEY)?;
    let served = Served::from_pem(
        &String::from_utf8_lossy(&chain),
        &String::from_utf8_lossy(&key),
    )?;
    Ok(Some(served))
}

struct Worker {
    config: Config,
    storage: Arc<dyn Storage>,
    shared: Arc<Shared>,
    http: Arc<dyn HttpClient>,
    directory_url: String,
    client: Option<AcmeClient>,
    failures: u32,
    retry_at: Option<OffsetDateTime>,
    /// The renewal time picked in the CA's ARI window, per certificate ID.
    ari: Option<(String, OffsetDateTime)>,
}

fn random_fraction() -> f64 {
    let mut b = [0u8; 4];
    let _ = aws_lc_rs::rand::fill(&mut b);
    f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX)
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        loop {
            let now = self.shared.clock.now();
            let mut next = self.scheduled_check(now);
            if self.config.mode == Mode::Auto {
                if let Some(retry_at) = self.retry_at.filter(|t| *t > now) {
                    next = retry_at;
                } else if let Some(reason) = self.due(now).await {
                    match self.certify(&reason).await {
                        Ok(_) => next = self.scheduled_check(self.shared.clock.now()),
                        Err(_) => next = self.retry_at.unwrap_or(next),
                    }
                } else {
                    let serving = self.shared.resolver.current().info.clone();
                    info!(
                        "Certificate valid until {}, next renewal check at {next}",
                        serving.not_after
                    );
                }
            }
            self.shared
                .status
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .next_check = Some(next);
            let _ = self
                .shared
                .events
                .send(Event::RenewalScheduled { at: next });
            let sleep = self.shared.clock.sleep_until(next);
            tokio::select! {
                _ = sleep => {}
                cmd = rx.recv() => match cmd {
                    None => return,
                    Some(cmd) => self.handle(cmd).await,
                },
            }
        }
    }

    async fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Force(tx) => {
                let r = self.certify("forced").await;
                let _ = tx.send(r);
            }
            Command::Dry(tx) => {
                let r = self.obtain().await;
                let _ = tx.send(r);
            }
            Command::Set(chain, key, tx) => {
                let r = match Served::from_pem(&chain, &key) {
                    Ok(served) => self.install(served, chain, key).await.map(|n| n.info),
                    Err(e) => Err(e),
                };
                let _ = tx.send(r);
            }
            Command::Refresh(cfg, tx) => {
                self.config = *cfg;
                self.retry_at = None;
                let _ = tx.send(Ok(()));
            }
        }
    }

    /// The next regular check: `24h / checks_per_day`, jittered by ±25 %, and
    /// never later than the renewal threshold.
    fn scheduled_check(&self, now: OffsetDateTime) -> OffsetDateTime {
        let interval = 86_400.0 / f64::from(self.config.checks_per_day);
        let jittered = interval * (0.75 + 0.5 * random_fraction());
        let mut next = now + Duration::from_secs_f64(jittered);
        let serving = self.shared.resolver.current();
        if !serving.info.self_signed {
            let threshold = serving.info.not_after - self.config.renew_before;
            if threshold > now && threshold < next {
                next = threshold;
            }
            if let Some((_, at)) = &self.ari {
                if *at > now && *at < next {
                    next = *at;
                }
            }
        }
        next
    }

    fn names_match(&self, info: &CertInfo) -> bool {
        let mut want: Vec<String> = self
            .config
            .domains
            .iter()
            .map(|d| d.value.to_ascii_lowercase())
            .collect();
        let mut have: Vec<String> = info.names.iter().map(|n| n.to_ascii_lowercase()).collect();
        want.sort();
        have.sort();
        want == have
    }

    /// Why a certification is due now, if it is.
    async fn due(&mut self, now: OffsetDateTime) -> Option<String> {
        let serving = self.shared.resolver.current();
        let info = &serving.info;
        if info.self_signed {
            return Some("no certificate yet".into());
        }
        if !self.names_match(info) {
            return Some(format!(
                "domains changed (certificate names {:?})",
                info.names
            ));
        }
        if now >= info.not_after - self.config.renew_before {
            return Some(format!("certificate expires at {}", info.not_after));
        }
        if let Some(at) = self.ari_time(&serving).await {
            if now >= at {
                return Some("the CA's renewal window opened".into());
            }
        }
        None
    }

    /// The renewal time from the CA's ARI window, picked at random inside it
    /// once per certificate (RFC 9773 §4.2).
    async fn ari_time(&mut self, serving: &Served) -> Option<OffsetDateTime> {
        let der = serving.certified_key.cert.first()?;
        let id = site_encrypt_client::certificate_id(der)?;
        let key = id.to_string();
        if let Some((k, at)) = &self.ari {
            if *k == key {
                return Some(*at);
            }
        }
        let client = self.client().await.ok()?;
        match client.renewal_info(&id).await {
            Ok(Some((info, _))) if info.suggested_window.is_valid() => {
                let w = info.suggested_window;
                let at = w.start + (w.end - w.start) * random_fraction();
                self.ari = Some((key, at));
                Some(at)
            }
            Ok(_) => None,
            Err(e) => {
                tracing::debug!(error = %e, "renewal info unavailable; using the threshold");
                None
            }
        }
    }

    async fn client(&mut self) -> Result<AcmeClient, Error> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let c = AcmeClient::new(&self.directory_url, self.http.clone()).await?;
        self.client = Some(c.clone());
        Ok(c)
    }

    /// Account (load or create) and a certificate, not stored.
    async fn obtain(&mut self) -> Result<NewCertificate, Error> {
        let client = self.client().await?;
        let main = self.config.domains[0].value.clone();
        let stored: Option<AccountCredentials> = match self.storage.load(keys::ACCOUNT) {
            Ok(b) => serde_json::from_slice(&b).ok(),
            Err(StorageError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        };
        if stored.is_none() {
            info!("Creating new ACME account for domain {main}");
        }
        let opts = AccountOptions {
            emails: self.config.emails.clone(),
            terms_of_service_agreed: self.config.agree_tos,
            ..Default::default()
        };
        let (account, created) =
            site_encrypt_client::ensure_account(&client, stored, &opts).await?;
        if created {
            let json =
                serde_json::to_vec(&account).map_err(|e| Error::Certificate(e.to_string()))?;
            self.storage.store(keys::ACCOUNT, &json)?;
        }
        let solver = Http01Solver::new(self.shared.registry.clone());
        let opts = CertifyOptions {
            key_type: self.config.key_type,
            ..Default::default()
        };
        let issued =
            site_encrypt_client::certify(&client, &account, &self.config.domains, &solver, &opts)
                .await?;
        let key_pem = issued.key.pkcs8_pem();
        let info = CertInfo::from_chain_pem(&issued.chain_pem)?;
        Ok(NewCertificate {
            chain_pem: issued.chain_pem,
            key_pem,
            info,
        })
    }

    /// A full certification: lock, re-check, obtain, install. On failure the
    /// backoff is scheduled and the old certificate stays in service.
    async fn certify(&mut self, reason: &str) -> Result<CertInfo, Error> {
        info!(
            reason,
            "Certifying {}",
            self.config
                .domains
                .iter()
                .map(|d| d.value.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = self.shared.events.send(Event::Certifying {
            reason: reason.to_owned(),
        });
        let result = self.certify_locked(reason).await;
        let now = self.shared.clock.now();
        match &result {
            Ok(info) => {
                self.failures = 0;
                self.retry_at = None;
                self.shared.record(now, Ok(info.not_after), 0);
            }
            Err(e) => {
                self.failures += 1;
                let retry_after = match e {
                    Error::Acme(a) => a.retry_after(),
                    Error::Storage(StorageError::Locked { remaining, .. }) => Some(*remaining),
                    _ => None,
                };
                let delay = backoff(self.failures).max(retry_after.unwrap_or_default());
                self.retry_at = Some(now + delay);
                warn!(error = %e, attempt = self.failures, retry_in = ?delay, "Certification failed; keeping the current certificate");
                self.shared.record(now, Err(e.to_string()), self.failures);
                let _ = self.shared.events.send(Event::Failed {
                    error: e.to_string(),
                    attempt: self.failures,
                    retry_in: delay,
                });
            }
        }
        result
    }

    async fn certify_locked(&mut self, reason: &str) -> Result<CertInfo, Error> {
        let lock: Arc<dyn crate::storage::StorageLock> =
            Arc::from(self.storage.lock("certify", CERTIFY_LOCK_TTL)?);
        let refresher = {
            let lock = lock.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(CERTIFY_LOCK_TTL / 3).await;
                    if let Err(e) = lock.refresh() {
                        warn!(error = %e, "cannot refresh the certification lock");
                    }
                }
            })
        };
        let result = async {
            // Re-check after locking: another node may have renewed meanwhile.
            if reason != "forced" {
                if let Ok(Some(stored)) = load_stored(&*self.storage) {
                    let current = self.shared.resolver.current();
                    let fresher =
                        stored.info.not_after > current.info.not_after || current.info.self_signed;
                    let stored_ok = self.names_match(&stored.info)
                        && self.shared.clock.now()
                            < stored.info.not_after - self.config.renew_before;
                    if fresher && stored_ok {
                        info!("A newer certificate is already in storage; serving it");
                        let info = stored.info.clone();
                        self.shared.set_serving(stored);
                        return Ok(info);
                    }
                }
            }
            let new = self.obtain().await?;
            let served = Served::from_pem(&new.chain_pem, &new.key_pem)?;
            Ok(self.install(served, new.chain_pem, new.key_pem).await?.info)
        }
        .await;
        refresher.abort();
        drop(lock);
        result
    }

    /// Stores (archiving the previous one), serves, backs up, runs the hook.
    /// Refuses a certificate that is worse than the one in service.
    async fn install(
        &mut self,
        served: Served,
        chain_pem: String,
        key_pem: String,
    ) -> Result<NewCertificate, Error> {
        let now = self.shared.clock.now();
        let info = served.info.clone();
        if info.not_after <= now {
            return Err(Error::Certificate(format!("expired at {}", info.not_after)));
        }
        if !self.names_match(&info) {
            return Err(Error::Certificate(format!(
                "names {:?} are not the configured domains",
                info.names
            )));
        }
        let current = self.shared.resolver.current();
        if !current.info.self_signed
            && self.names_match(&current.info)
            && current.info.not_after > info.not_after
            && current.info.not_after > now
        {
            return Err(Error::Certificate(format!(
                "expires at {}, before the certificate in service ({})",
                info.not_after, current.info.not_after
            )));
        }
        // Archive the previous certificate, then write key before chain so a
        // chain on disk always has its key.
        if let (Ok(old_cert), Ok(old_key)) =
            (self.storage.load(keys::CERT), self.storage.load(keys::KEY))
        {
            let ts = now.unix_timestamp();
            self.storage
                .store(&keys::archived(ts, "cert.pem"), &old_cert)?;
            self.storage
                .store(&keys::archived(ts, "key.pem"), &old_key)?;
        }
        self.storage.store(keys::KEY, key_pem.as_bytes())?;
        self.storage.store(keys::CERT, chain_pem.as_bytes())?;
        self.shared.set_serving(served);
        self.ari = None;
        if let Some(backup) = self.config.backup.clone() {
            let storage = self.config.storage.clone();
            let b = backup.clone();
            tokio::task::spawn_blocking(move || write_backup(&storage, &b))
                .await
                .map_err(|e| Error::Backup {
                    path: backup,
                    detail: e.to_string(),
                })??;
        }
        let new = NewCertificate {
            chain_pem,
            key_pem,
            info: info.clone(),
        };
        if let Some(hook) = &self.config.hook {
            hook(new.clone()).await;
        }
        info!(
            "New certificate for domain {} obtained, valid until {}",
            self.config.domains[0].value, info.not_after
        );
        info!("Certificate successfully obtained!");
        let _ = self.shared.events.send(Event::Obtained { info });
        Ok(new)
    }
}
