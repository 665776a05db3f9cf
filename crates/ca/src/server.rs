//! The ACME HTTP API (RFC 8555 §7) as an axum router.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use site_encrypt_proto::{
    Account, AccountStatus, AccountUpdate, Authorization, AuthorizationStatus, AuthorizationUpdate,
    CertificateId, Challenge, ChallengeStatus, ChallengeType, Directory, DirectoryMeta, Finalize,
    Identifier, IdentifierType, Jwk, NewAccount, NewOrder, Order, OrderStatus, ParsedJws, Problem,
    ProblemType, RenewalInfo, Revocation, Subproblem, SuggestedWindow,
};

use crate::config::{CaConfig, DEFAULT_ORDER_LIFETIME};
use crate::pki::{self, Pki, random_id, random_token};
use crate::state::{AccountRec, AuthzRec, CertRec, ChallRec, Nonces, OrderRec, State as Db};
use crate::validate::Validator;

pub(crate) struct App {
    pub(crate) cfg: CaConfig,
    pub(crate) pki: Pki,
    pub(crate) default_base: String,
    db: Mutex<Db>,
    nonces: Mutex<Nonces>,
    validator: Validator,
}

type Shared = Arc<App>;

impl App {
    pub(crate) fn new(cfg: CaConfig, pki: Pki, default_base: String, validator: Validator) -> Self {
        App {
            cfg,
            pki,
            default_base,
            db: Mutex::new(Db::default()),
            nonces: Mutex::new(Nonces::new(crate::config::NONCE_CAPACITY)),
            validator,
        }
    }

    fn db(&self) -> MutexGuard<'_, Db> {
        // A panic while holding the lock cannot leave records half-written in a
        // way later requests rely on, so a poisoned lock is still usable.
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn new_nonce(&self) -> String {
        self.nonces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .issue()
    }

    fn take_nonce(&self, n: &str) -> bool {
        let known = self
            .nonces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(n);
        known
            && (self.cfg.nonce_reject_percent == 0
                || pki::random_percent() >= self.cfg.nonce_reject_percent)
    }
}

/// An ACME error response: a problem document with its status.
#[derive(Debug)]
pub(crate) struct AcmeError {
    problem: Box<Problem>,
    status: StatusCode,
    location: Option<String>,
}

impl AcmeError {
    fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        Problem::new(kind, detail).into()
    }

    fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self.problem.status = Some(status.as_u16());
        self
    }
}

impl From<site_encrypt_proto::Error> for AcmeError {
    fn from(e: site_encrypt_proto::Error) -> Self {
        Problem::from(&e).into()
    }
}

impl From<Problem> for AcmeError {
    fn from(problem: Problem) -> Self {
        let status =
            StatusCode::from_u16(problem.status.unwrap_or(400)).unwrap_or(StatusCode::BAD_REQUEST);
        AcmeError {
            problem: Box::new(problem),
            status,
            location: None,
        }
    }
}

impl IntoResponse for AcmeError {
    fn into_response(self) -> Response {
        tracing::debug!(problem = %self.problem, "ACME request refused");
        let body = serde_json::to_vec(&self.problem).unwrap_or_default();
        let mut resp = (
            self.status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response();
        if let Some(loc) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            resp.headers_mut().insert(header::LOCATION, loc);
        }
        resp
    }
}

type AcmeResult = Result<Response, AcmeError>;

fn unauthorized(detail: impl Into<String>) -> AcmeError {
    AcmeError::new(ProblemType::Unauthorized, detail)
}

fn malformed(detail: impl Into<String>) -> AcmeError {
    AcmeError::new(ProblemType::Malformed, detail)
}

fn not_found(what: &str) -> AcmeError {
    malformed(format!("no such {what}")).with_status(StatusCode::NOT_FOUND)
}

/// The base URL as the client addressed us, from a syntactically safe Host header.
fn base_url(app: &App, headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() < 256
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .map(|h| format!("https://{h}"))
        .unwrap_or_else(|| app.default_base.clone())
}

struct Resp {
    status: StatusCode,
    body: Vec<u8>,
    content_type: &'static str,
    location: Option<String>,
    links: Vec<String>,
    retry_after: Option<u64>,
}

impl Resp {
    fn json(status: StatusCode, value: &impl Serialize) -> Self {
        Resp {
            status,
            body: serde_json::to_vec(value).unwrap_or_default(),
            content_type: "application/json",
            location: None,
            links: Vec::new(),
            retry_after: None,
        }
    }
    fn location(mut self, l: String) -> Self {
        self.location = Some(l);
        self
    }
    fn link(mut self, url: String, rel: &str) -> Self {
        self.links.push(format!("<{url}>;rel=\"{rel}\""));
        self
    }
    fn retry_after(mut self, secs: Option<u64>) -> Self {
        self.retry_after = secs;
        self
    }
}

impl IntoResponse for Resp {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status,
            [(header::CONTENT_TYPE, self.content_type)],
            self.body,
        )
            .into_response();
        let h = resp.headers_mut();
        if let Some(l) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            h.insert(header::LOCATION, l);
        }
        for l in self.links {
            if let Ok(v) = HeaderValue::from_str(&l) {
                h.append(header::LINK, v);
            }
        }
        if let Some(s) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

pub(crate) fn router(app: Shared) -> Router {
    Router::new()
        .route("/dir", get(directory))
        .route("/nonce", get(nonce_get).head(nonce_head))
        .route("/new-account", post(new_account))
        .route("/acct/{id}", post(account))
        .route("/acct/{id}/orders", post(account_orders))
        .route("/new-order", post(new_order))
        .route("/order/{id}", post(order))
        .route("/order/{id}/finalize", post(finalize))
        .route("/authz/{id}", post(authz))
        .route("/chall/{id}", post(challenge))
        .route("/cert/{id}", post(certificate))
        .route("/cert/{id}/{alt}", post(certificate_alt))
        .route("/revoke-cert", post(revoke))
        .route("/key-change", post(key_change))
        .route("/renewal-info/{certid}", get(renewal_info))
        .route("/roots/0", get(root))
        .route("/intermediates/0", get(intermediate))
        .fallback(|| async { not_found("resource") })
        .method_not_allowed_fallback(|| async {
            malformed("method not allowed on this resource")
                .with_status(StatusCode::METHOD_NOT_ALLOWED)
        })
        .layer(middleware::from_fn_with_state(app.clone(), common_headers))
        .with_state(app)
}

/// Every response carries a fresh `Replay-Nonce`, `Link rel="index"` and
/// `Cache-Control: no-store` (§6.5, §7.1).
async fn common_headers(State(app): State<Shared>, req: Request, next: Next) -> Response {
    let base = base_url(&app, req.headers());
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&app.new_nonce()) {
        h.insert("replay-nonce", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("<{base}/dir>;rel=\"index\"")) {
        h.append(header::LINK, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

async fn directory(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let b = base_url(&app, &headers);
    let dir = Directory {
        new_nonce: format!("{b}/nonce"),
        new_account: format!("{b}/new-account"),
        new_order: format!("{b}/new-order"),
        new_authz: None,
        revoke_cert: format!("{b}/revoke-cert"),
        key_change: format!("{b}/key-change"),
        renewal_info: Some(format!("{b}/renewal-info")),
        meta: Some(DirectoryMeta {
            external_account_required: app.cfg.eab_required,
            profiles: app
                .cfg
                .profiles
                .iter()
                .map(|(k, v)| (k.clone(), v.description.clone()))
                .collect(),
            ..Default::default()
        }),
    };
    Resp::json(StatusCode::OK, &dir).into_response()
}

async fn nonce_head() -> StatusCode {
    StatusCode::OK
}

async fn nonce_get() -> StatusCode {
    StatusCode::NO_CONTENT
}

#[derive(PartialEq, Clone, Copy)]
enum KeyMode {
    Jwk,
    Kid,
    Either,
}

struct Authed {
    jws: ParsedJws,
    base: String,
    url: String,
    account: Option<String>,
    jwk: Jwk,
}

impl Authed {
    fn account_id(&self) -> &str {
        self.account.as_deref().unwrap_or_default()
    }

    fn json<T: serde::de::DeserializeOwned>(&self, what: &'static str) -> Result<T, AcmeError> {
        Ok(self.jws.json(what)?)
    }
}

/// RFC 8555 §6.2–6.5: content type, JWS structure, URL, nonce, key, signature.
fn authenticate(
    app: &App,
    headers: &HeaderMap,
    uri: &Uri,
    body: &[u8],
    mode: KeyMode,
) -> Result<Authed, AcmeError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !ct.trim().eq_ignore_ascii_case("application/jose+json") {
        return Err(malformed(format!(
            "Content-Type must be application/jose+json, not {ct:?}"
        ))
        .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
    }
    let jws = ParsedJws::parse_request(body)?;
    let base = base_url(app, headers);
    let url = format!("{base}{}", uri.path());
    jws.check_url(&url)?;
    if !app.take_nonce(jws.nonce()) {
        return Err(AcmeError::new(
            ProblemType::BadNonce,
            "unknown, used or expired nonce; retry with the nonce in this response",
        ));
    }
    let h = jws.header();
    let (account, jwk) = match (&h.jwk, &h.kid) {
        (Some(jwk), _) => {
            if mode == KeyMode::Kid {
                return Err(malformed(
                    "this request must be signed with kid (an account URL), not jwk",
                ));
            }
            (None, jwk.clone())
        }
        (None, Some(kid)) => {
            if mode == KeyMode::Jwk {
                return Err(malformed("this request must carry jwk, not kid"));
            }
            let id = kid
                .strip_prefix(&format!("{base}/acct/"))
                .filter(|id| !id.contains('/'))
                .ok_or_else(|| {
                    AcmeError::new(
                        ProblemType::AccountDoesNotExist,
                        format!("kid {kid:?} is not an account URL of this CA"),
                    )
                })?;
            let db = app.db();
            let acct = db.accounts.get(id).ok_or_else(|| {
                AcmeError::new(
                    ProblemType::AccountDoesNotExist,
                    format!("no account {kid}"),
                )
            })?;
            if acct.status != AccountStatus::Valid {
                return Err(unauthorized(format!("account is {}", acct.status)));
            }
            (Some(id.to_owned()), acct.jwk.clone())
        }
        (None, None) => return Err(malformed("neither jwk nor kid")),
    };
    jws.verify(&jwk)?;
    Ok(Authed {
        jws,
        base,
        url,
        account,
        jwk,
    })
}

/// An account resource may only be used by the account itself.
fn own_account(a: &Authed, id: &str) -> Result<(), AcmeError> {
    if a.account_id() == id {
        Ok(())
    } else {
        Err(unauthorized(
            "an account can only be read or changed by itself",
        ))
    }
}

/// An account object with its URL in `Location`.
fn account_response(base: &str, id: &str, a: &AccountRec, status: StatusCode) -> Response {
    Resp::json(status, &account_json(base, id, a))
        .location(format!("{base}/acct/{id}"))
        .into_response()
}

fn account_json(base: &str, id: &str, a: &AccountRec) -> Account {
    Account {
        status: a.status.clone(),
        contact: a.contact.clone(),
        terms_of_service_agreed: Some(true),
        external_account_binding: a.eab.clone(),
        orders: Some(format!("{base}/acct/{id}/orders")),
    }
}

fn check_contacts(contacts: &[String]) -> Result<(), AcmeError> {
    for c in contacts {
        let Some(addr) = c.strip_prefix("mailto:") else {
            return Err(AcmeError::new(
                ProblemType::UnsupportedContact,
                format!("only mailto: contacts are supported, not {c:?}"),
            ));
        };
        let valid = addr.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.')
        }) && !addr.contains(['?', ',', ' ', '<', '>', '\n', '\r']);
        if !valid {
            return Err(AcmeError::new(
                ProblemType::InvalidContact,
                format!("{c:?} is not a single valid email address"),
            ));
        }
    }
    Ok(())
}

async fn new_account(
    State(app): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> AcmeResult {
    let a = authenticate(&app, &headers, &uri, &body, KeyMode::Jwk)?;
    let req: NewAccount = a.json("newAccount")?;
    let thumb = a.jwk.thumbprint();
    let mut db = app.db();
    if let Some(id) = db.by_thumbprint.get(&thumb).cloned() {
        let acct = &db.accounts[&id];
        return Ok(account_response(&a.base, &id, acct, StatusCode::OK));
    }
    if req.only_return_existing {
        return Err(AcmeError::new(
            ProblemType::AccountDoesNotExist,
            "no account exists for this key",
        ));
    }
    check_contacts(&req.contact)?;
    let eab = match &req.external_account_binding {
        Some(eab) => {
            let v = serde_json::to_value(eab).map_err(|e| malformed(e.to_string()))?;
            site_encrypt_proto::verify_eab(&v, &a.url, &a.jwk, |kid| {
                app.cfg.eab_keys.get(kid).cloned()
            })?;
            Some(v)
        }
        None if app.cfg.eab_required => {
            return Err(AcmeError::new(
                ProblemType::ExternalAccountRequired,
                "this CA requires an external account binding",
            ));
        }
        None => None,
    };
    let id = random_id();
    let rec = AccountRec {
        jwk: a.jwk.clone(),
        status: AccountStatus::Valid,
        contact: req.contact,
        orders: Vec::new(),
        eab,
    };
    let resp = account_response(&a.base, &id, &rec, StatusCode::CREATED);
    db.accounts.insert(id.clone(), rec);
    db.by_thumbprint.insert(thumb, id.clone());
    tracing::info!(account = %id, "created ACME account");
    Ok(resp)
}

async fn account(
    State(app): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> AcmeResult {
    let a = authenticate(&app, &headers, &uri, &body, KeyMode::Kid)?;
    own_account(&a, &id)?;
    let update: AccountUpdate = if a.jws.is_post_as_get() {
        AccountUpdate::default()
    } else {
        a.json("account update")?
    };
    if let Some(c) = &update.contact {
        check_contacts(c)?;
    }
    let mut db = app.db();
    let acct = db
        .accounts
        .get_mut(&id)
        .ok_or_else(|| not_found("account"))?;
    if let Some(c) = update.contact {
        acct.contact = c;
    }
    match update.status {
        None => {}
        Some(AccountStatus::Deactivated) => {
            acct.status = AccountStatus::Deactivated;
            tracing::info!(account = %id, "account deactivated");
        }
        Some(other) => {
            return Err(malformed(format!(
                "a client may only set status to deactivated, not {other}"
            )));
        }
    }
    Ok(account_response(&a.base, &id, acct, StatusCode::OK))
}

async fn account_orders(
    State(app): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> AcmeResult {
    let a = authenticate(&app, &headers, &uri, &body, KeyMode::Kid)?;
    own_account(&a, &id)?;
    let db = app.db();
    let orders: Vec<String> = db.accounts[&id]
        .orders
        .iter()
        .map(|o| format!("{}/order/{o}", a.base))
        .collect();
    Ok(Resp::json(StatusCode::OK, &serde_json::json!({ "orders": orders })).into_response())
}

fn order_json(db: &Db, base: &str, id: &str, o: &OrderRec) -> Order {
    let _ = db;
    Order {
        status: o.status.clone(),
        expires: Some(o.expires),
        identifiers: o.identifiers.clone(),
        not_before: None,
        not_after: None,
        error: o.error.clone(),
        authorizations: o
            .authzs
            .iter()
            .map(|a| format!("{base}/authz/{a}"))
            .collect(),
        finalize: format!("{base}/order/{id}/finalize"),
        certificate: o.cert.as_ref().map(|c| format!("{base}/cert/{c}")),
        profile: o.profile.clone(),
        replaces: o.replaces.clone(),
    }
}

fn order_response(db: &Db, base: &str, id: &str, status: StatusCode) -> Response {
    let o = &db.orders[id];
    let retry = (o.status == OrderStatus::Processing).then_some(1);
    Resp::json(status, &order_json(db, base, id, o))
        .location(format!("{base}/order/{id}"))
        .retry_after(retry)
        .into_response()
}

async fn new_order(
    State(app): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> AcmeResult {
    let a = authenticate(&app, &headers, &uri, &body, KeyMode::Kid)?;
    let req: NewOrder = a.json("newOrder")?;
    if req.identifiers.is_empty() {
        return Err(malformed("an order needs at least one identifier"));
    }
    if req.identifiers.len() > 100 {
        return Err(malformed("at most 100 identifiers per order"));
    }
    if req.not_before.is_some() || req.not_after.is_some() {
        return Err(malformed(
            "notBefore and notAfter are not supported; choose a profile instead",
        ));
    }
    let mut identifiers = Vec::new();
    let mut rejected = Vec::new();
    let mut unsupported = false;
    for id in &req.identifiers {
        let norm = match id.kind {
            IdentifierType::Dns => Identifier::dns(id.value.to_ascii_lowercase()),
            IdentifierType::Ip => match id.value.parse() {
                Ok(ip) => Identifier::ip(ip),
                Err(_) => Identifier {
                    kind: IdentifierType::Ip,
                    value: id.value.clone(),
                },
            },
            _ => {
                unsupported = true;
                id.clone()
            }
        };
        if let Err(detail) = app.cfg.is_allowed(&norm.kind, &norm.value) {
            rejected.push(Subproblem {
                kind: ProblemType::RejectedIdentifier,
                detail: Some(detail),
                identifier: Some(id.clone()),
            });
        }
        identifiers.push(norm);
    }
    if !rejected.is_empty() {
        let kind = if unsupported {
            ProblemType::UnsupportedIdentifier
        } else {
            ProblemType::RejectedIdentifier
        };
        let detail = if rejected.len() == 1 {
            rejected[0].detail.clone().unwrap_or_default()
        } else {
            format!("{} identifiers were rejected", rejected.len())
        };
        return Err(Problem::new(kind, detail).with_subproblems(rejected).into());
    }
    identifiers.sort();
    identifiers.dedup();
    if let Some(p) = &req.profile {
        if !app.cfg.profiles.contains_key(p) {
            return Err(AcmeError::new(
                ProblemType::InvalidProfile,
                format!(
                    "unknown profile {p:?}; offered: {:?}",
                    app.cfg.profiles.keys().collect::<Vec<_>>()
                ),
            ));
        }
    }
    let now = app.cfg.now();
    let mut db = app.db();
    if let Some(r) = &req.replaces {
        r.parse::<CertificateId>()
            .map_err(|e| malformed(format!("replaces: {e}")))?;
        let cid = db
            .by_cert_id
            .get(r)
            .cloned()
            .ok_or_else(|| malformed(format!("replaces names an unknown certificate {r}")))?;
        let c = &db.certs[&cid];
        if c.account != a.account_id() {
            return Err(unauthorized(
                "replaces names a certificate of another account",
            ));
        }
        if c.replaced {
            return Err(AcmeError::new(
                ProblemType::AlreadyReplaced,
                format!("certificate {r} was already replaced"),
            )
            .with_status(StatusCode::CONFLICT));
        }
        if !c.names.iter().any(|n| identifiers.contains(n)) {
            return Err(malformed(
                "replaces names a certificate that shares no identifier with this order",
            ));
        }
    }
    let order_id = random_id();
    let expires = now + DEFAULT_ORDER_LIFETIME;
    let mut authz_ids = Vec::new();
    for ident in &identifiers {
        // Reuse a valid authorization of this account for the same identifier.
        let key = (a.account_id().to_owned(), ident.clone());
        let reuse = db.valid_authz.get(&key).filter(|id| {
            db.authzs
                .get(*id)
                .is_some_and(|z| z.status == AuthorizationStatus::Valid && z.expires > now)
        });
        if let Some(id) = reuse {
            authz_ids.push(id.clone());
            continue;
        }
        let zid = random_id();
        let mut chall_ids = Vec::new();
        for kind in [ChallengeType::Http01, ChallengeType::TlsAlpn01] {
            let cid = random_id();
            db.challs.insert(
                cid.clone(),
                ChallRec {
                    authz: zid.clone(),
                    kind,
                    token: random_token(),
                    status: ChallengeStatus::Pending,
                    validated: None,
                    error: None,
                },
            );
            chall_ids.push(cid);
        }
        db.authzs.insert(
            zid.clone(),
            AuthzRec {
                account: a.account_id().to_owned(),
                identifier: ident.clone(),
                status: AuthorizationStatus::Pending,
                expires,
                challenges: chall_ids,
            },
        );
        authz_ids.push(zid);
    }
    db.orders.insert(
        order_id.clone(),
        OrderRec {
            account: a.account_id().to_owned(),
            status: OrderStatus::Pending,
            expires,
            identifiers,
            authzs: authz_ids,
            cert: None,
            error: None,
            profile: req.profile,
            replaces: req.replaces,
        },
    );
    if let Some(acct) = db.accounts.get_mut(a.account_id()) {
        acct.orders.push(order_id.clone());
    }
    db.refresh_order(&order_id, now);
    tracing::info!(order = %order_id, "new order");
    Ok(order_response(&db, &a.base, &order_id, StatusCode::CREATED))
}

fn owned_order<'a>(db: &'a Db, id: &str, account: &str) -> Result<&'a OrderRec, AcmeError> {
    let o = db.orders.get(id).ok_or_else(|| not_found("order"))?;
    if o.account != account {
        return Err(unauthorized("this order belongs to another account"));
    }
    Ok(o)
}

async fn order(
    State(app): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> AcmeResult {
    let a = authenticate(&app, &headers, &uri, &body, KeyMode::Kid)?;
    let mut db = app.db();
    owned_order(&db, &id, a.account_id())?;
    db.refresh_order(&id, app.cfg.now());
    Ok(order_response(&db, &a.base, &id, StatusCode::OK))
}

async fn finalize(
    State(app): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> AcmeResult {
    let a = authenticate(&app, &headers, &uri, &body, KeyMode::Kid)?;
    let req: Finalize = a.json("finalize")?;
    let (csr, identifiers, lifetime) = {
        let mut db = app.db();
        owned_order(&db, &id, a.account_id())?;
        db.refresh_order(&id, app.cfg.now());
        let o = &db.orders[&id];
        if o.status != OrderStatus::Ready {
            return Err(AcmeError::new(
                ProblemType::OrderNotReady,
                format!("order is {}, not ready", o.status),
            ));
        }
        let csr_der = site_encrypt_proto::b64_decode(&req.csr, "csr")
            .map_err(|_| AcmeError::new(ProblemType::BadCsr, "csr is not base64url"))?;
        let csr = pki::check_csr(&csr_der).map_err(|d| AcmeError::new(ProblemType::BadCsr, d))?;
        if csr.jwk.as_ref() == Some(&a.jwk) {
            return Err(AcmeError::new(
                ProblemType::BadCsr,
                "the certificate key must not be the account key",
            ));
        }
        if csr.names != o.identifiers {
            let extra: Vec<_> = csr
                .names
                .iter()
                .filter(|n| !o.identifiers.contains(n))
                .map(|n| n.value.as_str())
                .collect();
            let missing: Vec<_> = o
                .identifiers
                .iter()
                .filter(|n| !csr.names.contains(n))
                .map(|n| n.value.as_str())
                .collect();
            return Err(AcmeError::new(
                ProblemType::BadCsr,
                format!("CSR names differ from the order: extra {extra:?}, missing {missing:?}"),
            ));
        }
        let lifetime = o
            .profile
            .as_ref()
            .and_then(|p| app.cfg.profiles.get(p))
            .map(|p| p.lifetime)
            .unwrap_or(app.cfg.cert_lifetime);
        let identifiers = o.identifiers.clone();
        if let Some(o) = db.orders.get_mut(&id) {
            o.status = OrderStatus::Processing;
        }
        (csr, identifiers, lifetime)
    };
    let job = Issuance {
        order: id.clone(),
        account: a.account_id().to_owned(),
        csr,
        identifiers,
        lifetime,
    };
    let delay = app.cfg.issuance_delay;
    if delay.is_zero() {
        issue(&app, job)?;
    } else {
        // Testing aid: answer `processing` now and issue later, as CAs that
        // issue asynchronously do. A failure is recorded on the order, where
        // the client will read it.
        let app = app.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = issue(&app, job);
        });
    }
    Ok(order_response(&app.db(), &a.base, &id, StatusCode::OK))
}

/// A finalized order waiting for its certificate.
struct Issuance {
    order: String,
    account: String,
    csr: pki::CheckedCsr,
    identifiers: Vec<Identifier>,
    lifetime: Duration,
}

/// Issues the certificate of a processing order and stores it; the order
/// becomes valid, or invalid with the reason when issuance fails.
fn issue(app: &App, job: Issuance) -> Result<(), AcmeError> {
    let Issuance {
        order: id,
        account,
        csr,
        identifiers,
        lifetime,
    } = job;
    let issued = app
        .pki
        .issue(&csr, &identifiers, lifetime, app.cfg.now())
        .map_err(|e| format!("issuance failed: {e}"))
        .and_then(|leaf| {
            let facts =
                pki::cert_facts(&leaf).ok_or("issued certificate does not parse".to_owned())?;
            Ok((leaf, facts))
        });
    let mut db = app.db();
    let (leaf, facts) = match issued {
        Ok(x) => x,
        Err(detail) => {
            if let Some(o) = db.orders.get_mut(&id) {
                o.status = OrderStatus::Invalid;
                o.error = Some(Problem::new(ProblemType::ServerInternal, detail.clone()));
            }
            return Err(AcmeError::new(ProblemType::ServerInternal, detail));
        }
    };
    let cert_id = random_id();
    let replaces = db.orders.get(&id).and_then(|o| o.replaces.clone());
    if let Some(old) = replaces.and_then(|r| db.by_cert_id.get(&r).cloned()) {
        if let Some(c) = db.certs.get_mut(&old) {
            c.replaced = true;
        }
    }
    db.by_cert_id.insert(facts.cert_id, cert_id.clone());
    db.certs.insert(
        cert_id.clone(),
        CertRec {
            account,
            leaf_pem: site_encrypt_proto::pem::encode("CERTIFICATE", &leaf),
            leaf_der: leaf,
            not_before: facts.not_before,
            not_after: facts.not_after,
            jwk: facts.jwk,
            names: identifiers,
            revoked: false,
            replaced: false,
        },
    );
    if let Some(o) = db.orders.get_mut(&id) {
        o.status = OrderStatus::Valid;
        o.cert = Some(cert_id.clone());
    }
    tracing::info!(order = %id, cert = %cert_id, "certificate issued");
    Ok(())
}

fn challenge_json(base: &str, id: &str, c: &ChallRec) -> Challenge {
    Challenge {
        kind: c.kind.clone(),
        url: format!("{base}/chall/{id}"),
        status: c.status.clone(),
        token: Some(c.token.clone()),
        validated: c.validated,
        error: c.error.clone(),
    }
}

async fn authz(
    State(app): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> AcmeResult {
    let a = authenticate(&app, &headers, &uri, &body, KeyMode::Kid)?;
    let update: AuthorizationUpdate = if a.jws.is_post_as_get() {
        AuthorizationUpdate::default()
    } else {
        a.json("authorization update")?
    };
    let mut db = app.db();
    let z = db
        .authzs
        .get(&id)
        .ok_or_else(|| not_found("authorization"))?;
    if z.account != a.account_id() {
        return Err(unauthorized(
            "this authorization belongs to another account",
        ));
    }
    db.refresh_authz(&id, app.cfg.now());
    match update.status {
        None => {}
        Some(AuthorizationStatus::Deactivated) => {
            let z = db
                .authzs
                .get_mut(&id)
                .ok_or_else(|| not_found("authorization"))?;
            if !z
                .status
                .can_transition_to(&AuthorizationStatus::Deactivated)
            {
                return Err(malformed(format!(
                    "a {} authorization cannot be deactivated",
                    z.status
                )));
            }
            z.status = AuthorizationStatus::Deactivated;
        }
        Some(other) => {
            return Err(malformed(format!(
                "a client may only set status to deactivated, not {other}"
            )));
        }
    }
    let z = &db.authzs[&id];
    let challenges: Vec<Challenge> = z
        .challenges
        .iter()
        .filter_map(|c| db.challs.get(c).map(|r| challenge_json(&a.base, c, r)))
        .collect();
    let processing = challenges
        .iter()
        .any(|c| c.status == ChallengeStatus::Processing);
    let json = Authorization {
        identifier: z.identifier.clone(),
        status: z.status.clone(),
        expires: Some(z.expires),
        challenges,
        wildcard: None,
    };
    Ok(Resp::json(StatusCode::OK, &json)
        .retry_after(processing.then_some(1))
        .into_response())
}

async fn challenge(
    State(app): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> AcmeResult {
    let a = authenticate(&app, &headers, &uri, &body, KeyMode::Kid)?;
    if !a.jws.is_post_as_get() {
        // §7.5.1: the body is an empty JSON object; extra members are ignored.
        let _: serde_json::Map<String, serde_json::Value> = a.json("challenge response")?;
    }
    let (zid, finished) = {
        let mut db = app.db();
        let c = db.challs.get(&id).ok_or_else(|| not_found("challenge"))?;
        let zid = c.authz.clone();
        let z = &db.authzs[&zid];
        if z.account != a.account_id() {
            return Err(unauthorized("this challenge belongs to another account"));
        }
        let start = !a.jws.is_post_as_get()
            && c.status == ChallengeStatus::Pending
            && z.status == AuthorizationStatus::Pending;
        let mut finished = None;
        if start {
            let ident = z.identifier.clone();
            let key_auth = site_encrypt_proto::key_authorization(&c.token, &a.jwk);
            let (kind, token) = (c.kind.clone(), c.token.clone());
            if let Some(c) = db.challs.get_mut(&id) {
                c.status = ChallengeStatus::Processing;
            }
            let app2 = app.clone();
            let cid = id.clone();
            let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
            // Validation runs in its own task so it completes even when the
            // client hangs up before the response.
            tokio::spawn(async move {
                if !app2.cfg.validation_delay.is_zero() {
                    tokio::time::sleep(app2.cfg.validation_delay).await;
                }
                let result = app2
                    .validator
                    .validate(&app2.cfg, &kind, &ident, &token, &key_auth)
                    .await;
                record_validation(&app2, &cid, result);
                let _ = done_tx.send(());
            });
            // A validation delay is there to exercise the client's polling;
            // without one, a loopback validation takes well under a
            // millisecond, so the response waits briefly for its outcome.
            finished = app.cfg.validation_delay.is_zero().then_some(done_rx);
        }
        (zid, finished)
    };
    if let Some(done) = finished {
        // Past the bound the response says `processing` and the client polls,
        // as with any CA (RFC 8555 §7.5.1).
        let _ = tokio::time::timeout(INLINE_VALIDATION_WAIT, done).await;
    }
    let db = app.db();
    let c = db.challs.get(&id).ok_or_else(|| not_found("challenge"))?;
    let json = challenge_json(&a.base, &id, c);
    let retry = (c.status == ChallengeStatus::Processing).then_some(1);
    Ok(Resp::json(StatusCode::OK, &json)
        .link(format!("{}/authz/{zid}", a.base), "up")
        .retry_after(retry)
        .into_response())
}

fn record_validation(app: &App, chall: &str, result: Result<(), Problem>) {
    let mut db = app.db();
    let Some(c) = db.challs.get_mut(chall) else {
        return;
    };
    let zid = c.authz.clone();
    let ok = result.is_ok();
    match result {
        Ok(()) => {
            c.status = ChallengeStatus::Valid;
            c.validated = Some(app.cfg.now());
        }
        Err(p) => {
            tracing::info!(challenge = %chall, problem = %p, "validation failed");
            c.status = ChallengeStatus::Invalid;
            c.error = Some(p);
        }
    }
    if let Some(z) = db.authzs.get_mut(&zid) {
        let next = if ok {
            AuthorizationStatus::Valid
        } else {
            AuthorizationStatus::Invalid
        };
        if z.status.can_transition_to(&next) {
            z.status = next;
            if ok {
                let key = (z.account.clone(), z.identifier.clone());
                db.valid_authz.insert(key, zid.clone());
            }
        }
    }
}

fn chain_pem(app: &App, c: &CertRec, alternate: bool) -> String {
    let mut s = c.leaf_pem.clone();
    s.push_str(&app.pki.intermediate_pem);
    if alternate {
        s.push_str(&app.pki.root_pem);
    }
    s
}

fn cert_response(app: &App, a: &Authed, id: &str, alternate: bool) -> AcmeResult {
    let db = app.db();
    let c = db.certs.get(id).ok_or_else(|| not_found("certificate"))?;
    if c.account != a.account_id() {
        return Err(unauthorized("this certificate belongs to another account"));
    }
    let other = if alternate {
        format!("{}/cert/{id}", a.base)
    } else {
        format!("{}/cert/{id}/1", a.base)
    };
    let resp = Resp {
        status: StatusCode::OK,
        body: chain_pem(app, c, alternate).into_bytes(),
        content_type: "application/pem-certificate-chain",
        location: None,
        links: Vec::new(),
        retry_after: None,
    };
    Ok(resp.link(other, "alternate").into_response())
}

async fn certificate(
    State(app): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> AcmeResult {
    let a = authenticate(&app, &headers, &uri, &body, KeyMode::Kid)?;
    cert_response(&app, &a, &id, false)
}

async fn certificate_alt(
    State(app): State<Shared>,
    Path((id, alt)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> AcmeResult {
    let a = authenticate(&app, &headers, &uri, &body, KeyMode::Kid)?;
    if alt != "1" {
        return Err(not_found("alternate chain"));
    }
    cert_response(&app, &a, &id, true)
}

async fn revoke(
    State(app): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> AcmeResult {
    let a = authenticate(&app, &headers, &uri, &body, KeyMode::Either)?;
    let req: Revocation = a.json("revocation")?;
    if let Some(r) = req.reason {
        if !site_encrypt_proto::is_valid_revocation_reason(r) {
            return Err(AcmeError::new(
                ProblemType::BadRevocationReason,
                format!("reason code {r} is not allowed"),
            ));
        }
    }
    let der = site_encrypt_proto::b64_decode(&req.certificate, "certificate")
        .map_err(|_| malformed("certificate is not base64url"))?;
    let facts = pki::cert_facts(&der).ok_or_else(|| malformed("certificate does not parse"))?;
    let mut db = app.db();
    let cid = db
        .by_cert_id
        .get(&facts.cert_id)
        .cloned()
        .ok_or_else(|| not_found("certificate issued by this CA"))?;
    let now = app.cfg.now();
    let c = &db.certs[&cid];
    if c.leaf_der != der {
        return Err(not_found("certificate issued by this CA"));
    }
    let allowed = match &a.account {
        Some(acct) => {
            c.account == *acct
                || c.names.iter().all(|n| {
                    db.authzs.values().any(|z| {
                        z.account == *acct
                            && &z.identifier == n
                            && z.status == AuthorizationStatus::Valid
                            && z.expires > now
                    })
                })
        }
        None => c.jwk.as_ref() == Some(&a.jwk),
    };
    if !allowed {
        return Err(unauthorized(
            "only the issuing account, an account authorized for all its names, or the certificate's key may revoke it",
        ));
    }
    if c.revoked {
        return Err(AcmeError::new(
            ProblemType::AlreadyRevoked,
            "certificate is already revoked",
        ));
    }
    if let Some(c) = db.certs.get_mut(&cid) {
        c.revoked = true;
    }
    tracing::info!(cert = %cid, "certificate revoked");
    Ok(StatusCode::OK.into_response())
}

async fn key_change(
    State(app): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> AcmeResult {
    let a = authenticate(&app, &headers, &uri, &body, KeyMode::Kid)?;
    let account_url = format!("{}/acct/{}", a.base, a.account_id());
    let new_key =
        site_encrypt_proto::verify_key_change(a.jws.payload(), &a.url, &account_url, &a.jwk)?;
    let thumb = new_key.thumbprint();
    let mut db = app.db();
    if let Some(other) = db.by_thumbprint.get(&thumb) {
        let mut e = malformed("the new key is already in use by an account")
            .with_status(StatusCode::CONFLICT);
        e.location = Some(format!("{}/acct/{other}", a.base));
        return Err(e);
    }
    let id = a.account_id().to_owned();
    db.by_thumbprint.remove(&a.jwk.thumbprint());
    db.by_thumbprint.insert(thumb, id.clone());
    let acct = db
        .accounts
        .get_mut(&id)
        .ok_or_else(|| not_found("account"))?;
    acct.jwk = new_key;
    tracing::info!(account = %id, "account key changed");
    Ok(account_response(&a.base, &id, acct, StatusCode::OK))
}

/// How long a challenge response waits for its validation to finish before
/// answering `processing`. Loopback validations finish far sooner; a client
/// whose token server is slow or down gets the usual polling instead.
pub const INLINE_VALIDATION_WAIT: Duration = Duration::from_secs(1);

/// How often clients should ask for renewal info again (RFC 9773 suggests hours).
pub const RENEWAL_INFO_RETRY_AFTER: Duration = Duration::from_secs(6 * 3600);

async fn renewal_info(State(app): State<Shared>, Path(certid): Path<String>) -> AcmeResult {
    certid
        .parse::<CertificateId>()
        .map_err(|e| malformed(e.to_string()))?;
    let db = app.db();
    let cid = db
        .by_cert_id
        .get(&certid)
        .ok_or_else(|| not_found("certificate"))?;
    let c = &db.certs[cid];
    let now = app.cfg.now();
    let window = if c.revoked {
        // A window in the past: renew now (RFC 9773 §4.2).
        SuggestedWindow {
            start: now - Duration::from_secs(7200),
            end: now - Duration::from_secs(3600),
        }
    } else {
        let life = c.not_after - c.not_before;
        SuggestedWindow {
            start: c.not_before + life * 2 / 3,
            end: c.not_before + life * 5 / 6,
        }
    };
    let info = RenewalInfo {
        suggested_window: window,
        explanation_url: None,
    };
    Ok(Resp::json(StatusCode::OK, &info)
        .retry_after(Some(RENEWAL_INFO_RETRY_AFTER.as_secs()))
        .into_response())
}

fn pem_response(pem: &str) -> Response {
    (
        [(header::CONTENT_TYPE, "application/pem-certificate-chain")],
        pem.to_owned(),
    )
        .into_response()
}

async fn root(State(app): State<Shared>) -> Response {
    pem_response(&app.pki.root_pem)
}

async fn intermediate(State(app): State<Shared>) -> Response {
    pem_response(&app.pki.intermediate_pem)
}
