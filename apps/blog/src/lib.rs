//! The site-encrypt demo: a public blog served over HTTPS with a certificate
//! it obtains itself, an internal dashboard, and reading statistics.

pub mod content;
pub mod dashboard;
pub mod metrics;
pub mod stats;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use site_encrypt::{Certifier, Clock, Config, DirectoryUrl, Status};
use tokio::net::TcpListener;

use crate::content::Article;
use crate::metrics::Metrics;
use crate::stats::Stats;

/// Which directory the site certifies against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// The in-process local CA (development, CI, tests).
    Local,
    /// Let's Encrypt staging.
    Staging,
    /// Let's Encrypt production.
    Production,
}

/// Settings of the site; every one has a default for local use.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "blog",
    about = "The site-encrypt demo blog: HTTPS that certifies itself"
)]
pub struct Settings {
    /// local: in-process CA; staging / production: Let's Encrypt.
    #[arg(long, env = "MODE", value_enum, default_value = "local")]
    pub mode: Mode,
    /// The apex name; the site is served on www.<domain> (apex redirects there).
    #[arg(long, env = "BLOG_DOMAIN", default_value = "blog.localhost")]
    pub domain: String,
    /// Contact email for the ACME account (staging / production).
    #[arg(long, env = "BLOG_EMAIL")]
    pub email: Option<String>,
    /// Address the public HTTP and HTTPS listeners bind (0.0.0.0 in production).
    #[arg(long, env = "BLOG_BIND", default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Public HTTP port (ACME challenges and redirects). 0 picks a free port.
    #[arg(long, env = "BLOG_HTTP_PORT", default_value_t = 20080)]
    pub http_port: u16,
    /// Public HTTPS port.
    #[arg(long, env = "BLOG_HTTPS_PORT", default_value_t = 20443)]
    pub https_port: u16,
    /// Port of the in-process CA (MODE=local), on 127.0.0.1.
    #[arg(long, env = "BLOG_CA_PORT", default_value_t = 20081)]
    pub ca_port: u16,
    /// Port of the internal dashboard, on 127.0.0.1 only.
    #[arg(long, env = "BLOG_DASHBOARD_PORT", default_value_t = 20082)]
    pub dashboard_port: u16,
    /// Data folder: certificates, statistics, backups, the local CA's root.
    #[arg(long, env = "BLOG_DATA_DIR", default_value = "blog-data")]
    pub data_dir: PathBuf,
    /// Days of reading statistics kept.
    #[arg(long, env = "BLOG_STATS_RETENTION_DAYS", default_value_t = stats::DEFAULT_RETENTION_DAYS)]
    pub stats_retention_days: u32,
    /// Seconds between statistics flushes (the most a crash can lose).
    #[arg(long, env = "BLOG_STATS_FLUSH_SECS", default_value_t = stats::DEFAULT_FLUSH_SECS)]
    pub stats_flush_secs: u64,
}

impl Settings {
    /// Local defaults with every port 0 and the given data folder (for tests).
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> Self {
        Settings {
            mode: Mode::Local,
            domain: "blog.localhost".into(),
            email: None,
            bind: IpAddr::from([127, 0, 0, 1]),
            http_port: 0,
            https_port: 0,
            ca_port: 0,
            dashboard_port: 0,
            data_dir: data_dir.into(),
            stats_retention_days: stats::DEFAULT_RETENTION_DAYS,
            stats_flush_secs: stats::DEFAULT_FLUSH_SECS,
        }
    }

    /// The www name the site is served on.
    pub fn www(&self) -> String {
        format!("www.{}", self.domain)
    }
}

/// Errors starting the site.
#[derive(Debug, thiserror::Error)]
pub enum BlogError {
    /// Binding a port failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The certifier failed to start.
    #[error(transparent)]
    SiteEncrypt(#[from] site_encrypt::Error),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] site_encrypt::ConfigError),
    /// The statistics database failed.
    #[error("statistics: {0}")]
    Stats(std::io::Error),
}

/// Shared state of the handlers.
pub struct App {
    articles: Vec<Article>,
    /// Reading statistics.
    pub stats: Arc<Stats>,
    /// Counters of the public servers.
    pub metrics: Metrics,
    /// Counters of the dashboard.
    pub dashboard_metrics: Metrics,
    status: Box<dyn Fn() -> Status + Send + Sync>,
    apex: String,
    https_port: u16,
}

impl App {
    /// The certifier's status.
    pub fn certifier_status(&self) -> Status {
        (self.status)()
    }
}

/// A running site.
pub struct Blog {
    /// The certifier (certificate service).
    pub certifier: Certifier,
    /// Shared state.
    pub app: Arc<App>,
    /// Public HTTP address.
    pub http_addr: SocketAddr,
    /// Public HTTPS address.
    pub https_addr: SocketAddr,
    /// Dashboard address.
    pub dashboard_addr: SocketAddr,
    _servers: site_encrypt::axum::Servers,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Blog {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Blog {
    /// Flushes statistics and stops the certifier.
    pub async fn shutdown(mut self) {
        if let Err(e) = self.app.stats.flush() {
            tracing::warn!(error = %e, "final statistics flush failed");
        }
        self.certifier.stop().await;
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, BlogError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| BlogError::Bind { addr, source })
}

/// Starts the site: listeners, certifier (and the local CA in local mode),
/// statistics with their flush task, the public servers and the dashboard.
pub async fn start(settings: Settings, clock: Arc<dyn Clock>) -> Result<Blog, BlogError> {
    let data = &settings.data_dir;
    site_encrypt::proto::fs::create_private_dir(data).map_err(BlogError::Stats)?;
    let http = bind(SocketAddr::new(settings.bind, settings.http_port)).await?;
    let https = bind(SocketAddr::new(settings.bind, settings.https_port)).await?;
    let dashboard = bind(SocketAddr::from(([127, 0, 0, 1], settings.dashboard_port))).await?;
    let http_addr = http.local_addr().map_err(|source| BlogError::Bind {
        addr: SocketAddr::new(settings.bind, 0),
        source,
    })?;
    let https_addr = https.local_addr().map_err(|source| BlogError::Bind {
        addr: SocketAddr::new(settings.bind, 0),
        source,
    })?;
    let dashboard_addr = dashboard.local_addr().map_err(|source| BlogError::Bind {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        source,
    })?;

    let directory = match settings.mode {
        Mode::Local => DirectoryUrl::Internal {
            port: settings.ca_port,
        },
        Mode::Staging => DirectoryUrl::LetsEncryptStaging,
        Mode::Production => DirectoryUrl::LetsEncrypt,
    };
    let mut cfg = Config::builder()
        .domain(settings.domain.clone())
        .domain(settings.www())
        .directory(directory)
        .storage(data.join("certs"))
        .backup(data.join("backup").join("certs.tar.gz"))
        .local_ca_state(data.join("local-ca"))
        .http_port(http_addr.port());
    if let Some(e) = &settings.email {
        cfg = cfg.email(e.clone());
    }
    let certifier = Certifier::start_with(cfg.build()?, clock.clone(), None).await?;
    if let Some(root) = certifier.local_ca_root_pem() {
        site_encrypt::proto::fs::write_atomic(&data.join("ca-root.pem"), root.as_bytes(), 0o644)
            .map_err(BlogError::Stats)?;
        if let Some(addr) = certifier.local_ca_addr() {
            tracing::info!(
                "Local CA root: https://{addr}/roots/0 (also {})",
                data.join("ca-root.pem").display()
            );
        }
    }

    let stats = Arc::new(
        Stats::open(
            &data.join("stats"),
            Some(&data.join("backup").join("stats.tar.gz")),
            settings.stats_retention_days,
            clock.clone(),
        )
        .map_err(BlogError::Stats)?,
    );
    let status = {
        // The dashboard reads status through a closure so App does not own the certifier.
        let resolver_status = certifier_status_source(&certifier);
        Box::new(resolver_status) as Box<dyn Fn() -> Status + Send + Sync>
    };
    let app = Arc::new(App {
        articles: content::articles(),
        stats: stats.clone(),
        metrics: Metrics::default(),
        dashboard_metrics: Metrics::default(),
        status,
        apex: settings.domain.to_ascii_lowercase(),
        https_port: https_addr.port(),
    });

    let public = public_router(app.clone());
    let servers = site_encrypt::axum::serve(public, &certifier, http, https).map_err(|source| {
        BlogError::Bind {
            addr: https_addr,
            source,
        }
    })?;
    let dash = dashboard_router(app.clone());
    let dash_task = tokio::spawn(async move {
        let _ = axum::serve(dashboard, dash).await;
    });
    let flush_every = Duration::from_secs(settings.stats_flush_secs.max(1));
    let flush_task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(flush_every);
        tick.tick().await;
        loop {
            tick.tick().await;
            let s = stats.clone();
            match tokio::task::spawn_blocking(move || s.flush()).await {
                Ok(Err(e)) => tracing::warn!(error = %e, "statistics flush failed"),
                Err(e) => tracing::warn!(error = %e, "statistics flush task failed"),
                Ok(Ok(_)) => {}
            }
        }
    });
    tracing::info!(
        "Blog at https://{}:{}/ (HTTP {http_addr}), dashboard at http://{dashboard_addr}/",
        settings.www(),
        https_addr.port()
    );
    Ok(Blog {
        certifier,
        app,
        http_addr,
        https_addr,
        dashboard_addr,
        _servers: servers,
        tasks: vec![dash_task, flush_task],
    })
}

fn certifier_status_source(c: &Certifier) -> impl Fn() -> Status + Send + Sync + 'static {
    let status = c.status_handle();
    move || status()
}

fn host_name(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let name = if host.starts_with('[') {
        host
    } else {
        host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
    };
    Some(name.to_ascii_lowercase())
}

/// apex → www: a 301 that keeps path and query.
async fn apex_to_www(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if host_name(req.headers()).as_deref() == Some(app.apex.as_str()) {
        let port = if app.https_port == 443 {
            String::new()
        } else {
            format!(":{}", app.https_port)
        };
        let pq = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let loc = format!("https://www.{}{port}{pq}", app.apex);
        return (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, loc)]).into_response();
    }
    next.run(req).await
}

async fn count(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let resp = next.run(req).await;
    app.metrics.record(resp.status().as_u16(), start.elapsed());
    resp
}

async fn count_dashboard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let resp = next.run(req).await;
    app.dashboard_metrics
        .record(resp.status().as_u16(), start.elapsed());
    resp
}

async fn index(State(app): State<Arc<App>>) -> Html<String> {
    Html(content::index_page(&app.articles))
}

async fn article(State(app): State<Arc<App>>, Path(slug): Path<String>) -> Response {
    match app.articles.iter().find(|a| a.slug == slug) {
        Some(a) => {
            app.stats.record(&a.slug);
            Html(content::article_page(a)).into_response()
        }
        None => not_found().await,
    }
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        content::STYLE_CSS,
    )
        .into_response()
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Html(content::not_found_page())).into_response()
}

/// The public HTTPS router.
pub fn public_router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/articles/{slug}", get(article))
        .route("/static/style.css", get(style))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), apex_to_www))
        .layer(middleware::from_fn_with_state(app.clone(), count))
        .with_state(app)
}

/// The dashboard router.
pub fn dashboard_router(app: Arc<App>) -> Router {
    Router::new()
        .route(
            "/",
            get(|State(app): State<Arc<App>>| async move { Html(dashboard::render(&app)) }),
        )
        .route("/static/style.css", get(style))
        .route(
            "/metrics",
            get(|State(app): State<Arc<App>>| async move {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    dashboard::metrics(&app),
                )
            }),
        )
        .layer(middleware::from_fn_with_state(app.clone(), count_dashboard))
        .with_state(app)
}
