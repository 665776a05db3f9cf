//! The low level: one async function per ACME request.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http::Method;
use serde::de::DeserializeOwned;
use site_encrypt_proto::{
    Account, AccountStatus, AccountUpdate, Authorization, AuthorizationStatus, AuthorizationUpdate,
    CertificateId, Challenge, Directory, Finalize, Jwk, KeyPair, NewAccount, NewOrder, Order,
    Problem, ProblemType, RenewalInfo, Revocation, Signer,
};

use crate::Error;
use crate::account::AccountCredentials;
use crate::http::{HttpClient, HttpRequest, HttpResponse};
use crate::policy::RetryPolicy;

/// An ACME client bound to one directory.
///
/// Cheap to clone; clones share the nonce pool and the HTTP client.
#[derive(Clone)]
pub struct AcmeClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: Arc<dyn HttpClient>,
    directory: Directory,
    directory_url: String,
    nonces: Mutex<Vec<String>>,
    policy: RetryPolicy,
}

impl std::fmt::Debug for AcmeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcmeClient")
            .field("directory", &self.inner.directory_url)
            .finish_non_exhaustive()
    }
}

/// A downloaded certificate chain.
#[derive(Debug, Clone)]
pub struct CertificateChain {
    /// PEM: leaf first, then intermediates.
    pub pem: String,
    /// URLs of alternate chains (`Link rel="alternate"`).
    pub alternates: Vec<String>,
}

/// Who signs a revocation request.
#[derive(Debug, Clone, Copy)]
pub enum RevokeBy<'a> {
    /// The account (kid) that ordered the certificate or controls its names.
    Account(&'a AccountCredentials),
    /// The certificate's own private key (jwk).
    CertificateKey(&'a KeyPair),
}

/// The largest `Retry-After` an error reports (a day): a CA asking for longer
/// is treated as asking for a day, so a misbehaving header cannot park a
/// renewal for weeks.
pub const MAX_ERROR_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// Parses `Retry-After`: delta-seconds or an HTTP-date, bounded to `max`.
pub fn parse_retry_after(value: &str, now: SystemTime, max: Duration) -> Option<Duration> {
    let v = value.trim();
    let d = if let Ok(secs) = v.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let when = httpdate::parse_http_date(v).ok()?;
        when.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(d.min(max))
}

impl AcmeClient {
    /// Fetches the directory at `directory_url` (operation `directory`).
    pub async fn new(directory_url: &str, http: Arc<dyn HttpClient>) -> Result<Self, Error> {
        Self::with_policy(directory_url, http, RetryPolicy::default()).await
    }

    /// Like [`AcmeClient::new`] with a custom retry policy.
    pub async fn with_policy(
        directory_url: &str,
        http: Arc<dyn HttpClient>,
        policy: RetryPolicy,
    ) -> Result<Self, Error> {
        let partial = Inner {
            http,
            directory: Directory {
                new_nonce: String::new(),
                new_account: String::new(),
                new_order: String::new(),
                new_authz: None,
                revoke_cert: String::new(),
                key_change: String::new(),
                renewal_info: None,
                meta: None,
            },
            directory_url: directory_url.to_owned(),
            nonces: Mutex::new(Vec::new()),
            policy,
        };
        let mut client = AcmeClient {
            inner: Arc::new(partial),
        };
        let resp = client
            .send("directory", Method::GET, directory_url, None)
            .await?;
        let directory: Directory = client.check_json("directory", directory_url, &resp)?;
        let inner = Arc::get_mut(&mut client.inner)
            .ok_or_else(|| Error::InvalidInput("client shared during construction".into()))?;
        inner.directory = directory;
        Ok(client)
    }

    /// The directory.
    pub fn directory(&self) -> &Directory {
        &self.inner.directory
    }

    /// The directory URL.
    pub fn directory_url(&self) -> &str {
        &self.inner.directory_url
    }

    /// The retry policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.inner.policy
    }

    async fn send(
        &self,
        op: &'static str,
        method: Method,
        url: &str,
        body: Option<Vec<u8>>,
    ) -> Result<HttpResponse, Error> {
        let req = HttpRequest {
            method,
            url: url.to_owned(),
            body,
        };
        let limit = self.inner.policy.request_timeout;
        let resp = match tokio::time::timeout(limit, self.inner.http.request(req)).await {
            Err(_) => {
                return Err(Error::Timeout {
                    op,
                    url: url.to_owned(),
                    after: limit,
                });
            }
            Ok(Err(detail)) => {
                return Err(Error::Transport {
                    op,
                    url: url.to_owned(),
                    detail,
                });
            }
            Ok(Ok(r)) => r,
        };
        if let Some(n) = resp.header("replay-nonce") {
            if !n.is_empty() {
                let mut pool = self.inner.nonces.lock().unwrap_or_else(|e| e.into_inner());
                pool.push(n.to_owned());
                let len = pool.len();
                if len > 16 {
                    pool.drain(..len - 16);
                }
            }
        }
        Ok(resp)
    }

    /// `Retry-After` as the CA sent it, bounded by [`MAX_ERROR_RETRY_AFTER`]:
    /// what an error reports, so a scheduler can honour a long rate limit.
    fn retry_after(&self, resp: &HttpResponse) -> Option<Duration> {
        resp.header("retry-after")
            .and_then(|v| parse_retry_after(v, SystemTime::now(), MAX_ERROR_RETRY_AFTER))
    }

    /// `Retry-After` for polling within one certification, bounded by the
    /// policy's `max_retry_after`.
    fn poll_after(&self, resp: &HttpResponse) -> Option<Duration> {
        self.retry_after(resp)
            .map(|d| d.min(self.inner.policy.max_retry_after))
    }

    /// Turns an error status into a typed error, keeping the problem document.
    fn check(&self, op: &'static str, url: &str, resp: &HttpResponse) -> Result<(), Error> {
        if (200..300).contains(&resp.status) {
            return Ok(());
        }
        let retry_after = self.retry_after(resp);
        let is_problem = resp
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/problem+json"));
        let problem = serde_json::from_slice::<Problem>(&resp.body)
            .ok()
            .filter(|_| is_problem || resp.status >= 400);
        match problem {
            Some(p) if p.kind == ProblemType::RateLimited || resp.status == 429 => {
                Err(Error::RateLimited {
                    op,
                    url: url.to_owned(),
                    problem: Box::new(p),
                    retry_after,
                })
            }
            Some(p) => Err(Error::Acme {
                op,
                url: url.to_owned(),
                problem: Box::new(p),
                retry_after,
            }),
            None if resp.status == 429 => Err(Error::RateLimited {
                op,
                url: url.to_owned(),
                problem: Box::new(Problem::new(ProblemType::RateLimited, snippet(&resp.body))),
                retry_after,
            }),
            None => Err(Error::Http {
                op,
                url: url.to_owned(),
                status: resp.status,
                body: snippet(&resp.body),
                retry_after,
            }),
        }
    }

    fn check_json<T: DeserializeOwned>(
        &self,
        op: &'static str,
        url: &str,
        resp: &HttpResponse,
    ) -> Result<T, Error> {
        self.check(op, url, resp)?;
        serde_json::from_slice(&resp.body).map_err(|e| Error::MalformedResponse {
            op,
            url: url.to_owned(),
            detail: format!("{e}; body starts {:?}", snippet(&resp.body)),
        })
    }

    /// Gets a fresh nonce from newNonce (HEAD).
    pub async fn new_nonce(&self) -> Result<String, Error> {
        let url = self.inner.directory.new_nonce.clone();
        let resp = self.send("newNonce", Method::HEAD, &url, None).await?;
        self.check("newNonce", &url, &resp)?;
        let pooled = self
            .inner
            .nonces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop();
        pooled.ok_or_else(|| Error::MalformedResponse {
            op: "newNonce",
            url,
            detail: "no Replay-Nonce header".into(),
        })
    }

    async fn nonce(&self) -> Result<String, Error> {
        let pooled = self
            .inner
            .nonces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop();
        match pooled {
            Some(n) => Ok(n),
            None => self.new_nonce().await,
        }
    }

    /// Signs and POSTs, retrying `badNonce` with the fresh nonce it carries
    /// (up to the policy's limit). Returns the successful response.
    pub async fn post(
        &self,
        op: &'static str,
        key: &KeyPair,
        signer: Signer<'_>,
        url: &str,
        payload: Option<&[u8]>,
    ) -> Result<HttpResponse, Error> {
        let mut tries = 0;
        loop {
            let nonce = self.nonce().await?;
            let jws = site_encrypt_proto::sign(key, signer, &nonce, url, payload)?;
            let resp = self
                .send(op, Method::POST, url, Some(jws.to_json().into_bytes()))
                .await?;
            match self.check(op, url, &resp) {
                Err(Error::Acme { problem, .. })
                    if problem.kind == ProblemType::BadNonce
                        && tries < self.inner.policy.bad_nonce_retries =>
                {
                    tries += 1;
                    tracing::debug!(op, tries, "badNonce; retrying with the fresh nonce");
                }
                Err(e) => return Err(e),
                Ok(()) => return Ok(resp),
            }
        }
    }

    async fn post_json<T: DeserializeOwned>(
        &self,
        op: &'static str,
        creds: &AccountCredentials,
        url: &str,
        payload: Option<&[u8]>,
    ) -> Result<(T, HttpResponse), Error> {
        let resp = self
            .post(op, &creds.key, Signer::Kid(&creds.url), url, payload)
            .await?;
        let v = self.check_json(op, url, &resp)?;
        Ok((v, resp))
    }

    fn location(op: &'static str, url: &str, resp: &HttpResponse) -> Result<String, Error> {
        resp.header("location")
            .map(str::to_owned)
            .ok_or_else(|| Error::MalformedResponse {
                op,
                url: url.to_owned(),
                detail: "no Location header".into(),
            })
    }

    /// newAccount: creates an account for `key`, or finds the existing one.
    /// Returns the credentials, the account and whether it was created.
    pub async fn new_account(
        &self,
        key: KeyPair,
        req: &NewAccount,
    ) -> Result<(AccountCredentials, Account, bool), Error> {
        let url = self.inner.directory.new_account.clone();
        let body = serde_json::to_vec(req).map_err(|e| Error::InvalidInput(e.to_string()))?;
        let resp = self
            .post("newAccount", &key, Signer::Jwk, &url, Some(&body))
            .await?;
        let account: Account = self.check_json("newAccount", &url, &resp)?;
        let location = Self::location("newAccount", &url, &resp)?;
        let created = resp.status == 201;
        Ok((
            AccountCredentials {
                key,
                url: location,
                directory: self.inner.directory_url.clone(),
            },
            account,
            created,
        ))
    }

    /// newAccount with `onlyReturnExisting`: the account for `key`, or `None`.
    pub async fn find_account(
        &self,
        key: KeyPair,
    ) -> Result<Option<(AccountCredentials, Account)>, Error> {
        let req = NewAccount {
            only_return_existing: true,
            ..Default::default()
        };
        match self.new_account(key, &req).await {
            Ok((c, a, _)) => Ok(Some((c, a))),
            Err(Error::Acme { problem, .. })
                if problem.kind == ProblemType::AccountDoesNotExist =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Reads the account (POST-as-GET).
    pub async fn account(&self, creds: &AccountCredentials) -> Result<Account, Error> {
        Ok(self.post_json("account", creds, &creds.url, None).await?.0)
    }

    /// Updates the account's contacts.
    pub async fn update_account(
        &self,
        creds: &AccountCredentials,
        contact: Vec<String>,
    ) -> Result<Account, Error> {
        let body = serde_json::to_vec(&AccountUpdate {
            contact: Some(contact),
            status: None,
        })
        .map_err(|e| Error::InvalidInput(e.to_string()))?;
        Ok(self
            .post_json("accountUpdate", creds, &creds.url, Some(&body))
            .await?
            .0)
    }

    /// Deactivates the account (§7.3.6). It cannot be used afterwards.
    pub async fn deactivate_account(&self, creds: &AccountCredentials) -> Result<Account, Error> {
        let body = serde_json::to_vec(&AccountUpdate {
            contact: None,
            status: Some(AccountStatus::Deactivated),
        })
        .map_err(|e| Error::InvalidInput(e.to_string()))?;
        Ok(self
            .post_json("deactivateAccount", creds, &creds.url, Some(&body))
            .await?
            .0)
    }

    /// newOrder. Returns the order URL and the order.
    pub async fn new_order(
        &self,
        creds: &AccountCredentials,
        req: &NewOrder,
    ) -> Result<(String, Order), Error> {
        let url = self.inner.directory.new_order.clone();
        let body = serde_json::to_vec(req).map_err(|e| Error::InvalidInput(e.to_string()))?;
        let (order, resp) = self.post_json("newOrder", creds, &url, Some(&body)).await?;
        Ok((Self::location("newOrder", &url, &resp)?, order))
    }

    /// Reads an order (POST-as-GET) with the CA's `Retry-After`, if any.
    pub async fn order(
        &self,
        creds: &AccountCredentials,
        url: &str,
    ) -> Result<(Order, Option<Duration>), Error> {
        let (order, resp) = self.post_json("order", creds, url, None).await?;
        Ok((order, self.poll_after(&resp)))
    }

    /// Reads an authorization (POST-as-GET) with the CA's `Retry-After`, if any.
    pub async fn authorization(
        &self,
        creds: &AccountCredentials,
        url: &str,
    ) -> Result<(Authorization, Option<Duration>), Error> {
        let (authz, resp) = self.post_json("authorization", creds, url, None).await?;
        Ok((authz, self.poll_after(&resp)))
    }

    /// Deactivates an authorization (§7.5.2).
    pub async fn deactivate_authorization(
        &self,
        creds: &AccountCredentials,
        url: &str,
    ) -> Result<Authorization, Error> {
        let body = serde_json::to_vec(&AuthorizationUpdate {
            status: Some(AuthorizationStatus::Deactivated),
        })
        .map_err(|e| Error::InvalidInput(e.to_string()))?;
        Ok(self
            .post_json("deactivateAuthorization", creds, url, Some(&body))
            .await?
            .0)
    }

    /// Tells the CA a challenge is ready to be validated (POST `{}`).
    pub async fn challenge_ready(
        &self,
        creds: &AccountCredentials,
        url: &str,
    ) -> Result<Challenge, Error> {
        Ok(self
            .post_json("challenge", creds, url, Some(b"{}"))
            .await?
            .0)
    }

    /// Finalizes an order with a DER CSR.
    pub async fn finalize(
        &self,
        creds: &AccountCredentials,
        finalize_url: &str,
        csr_der: &[u8],
    ) -> Result<(Order, Option<Duration>), Error> {
        let body = serde_json::to_vec(&Finalize {
            csr: site_encrypt_proto::b64_encode(csr_der),
        })
        .map_err(|e| Error::InvalidInput(e.to_string()))?;
        let (order, resp) = self
            .post_json("finalize", creds, finalize_url, Some(&body))
            .await?;
        Ok((order, self.poll_after(&resp)))
    }

    /// Downloads a certificate chain (POST-as-GET), with alternate chain URLs.
    pub async fn certificate(
        &self,
        creds: &AccountCredentials,
        url: &str,
    ) -> Result<CertificateChain, Error> {
        let resp = self
            .post(
                "certificate",
                &creds.key,
                Signer::Kid(&creds.url),
                url,
                None,
            )
            .await?;
        let pem = String::from_utf8(resp.body.to_vec()).map_err(|_| Error::MalformedResponse {
            op: "certificate",
            url: url.to_owned(),
            detail: "chain is not UTF-8 PEM".into(),
        })?;
        if site_encrypt_proto::pem::decode_all(&pem, "CERTIFICATE").is_empty() {
            return Err(Error::MalformedResponse {
                op: "certificate",
                url: url.to_owned(),
                detail: "no PEM certificate in the response".into(),
            });
        }
        Ok(CertificateChain {
            pem,
            alternates: resp.links("alternate"),
        })
    }

    /// Revokes a certificate (DER), signed by its account or its own key.
    pub async fn revoke(
        &self,
        by: RevokeBy<'_>,
        certificate_der: &[u8],
        reason: Option<u8>,
    ) -> Result<(), Error> {
        let url = self.inner.directory.revoke_cert.clone();
        let body = serde_json::to_vec(&Revocation {
            certificate: site_encrypt_proto::b64_encode(certificate_der),
            reason,
        })
        .map_err(|e| Error::InvalidInput(e.to_string()))?;
        let (key, signer) = match by {
            RevokeBy::Account(c) => (&c.key, Signer::Kid(&c.url)),
            RevokeBy::CertificateKey(k) => (k, Signer::Jwk),
        };
        self.post("revokeCert", key, signer, &url, Some(&body))
            .await?;
        Ok(())
    }

    /// Rolls the account over to `new_key` (§7.3.5). Returns the new credentials.
    pub async fn key_change(
        &self,
        creds: &AccountCredentials,
        new_key: KeyPair,
    ) -> Result<AccountCredentials, Error> {
        let url = self.inner.directory.key_change.clone();
        let old: Jwk = creds.key.jwk();
        let inner = site_encrypt_proto::sign_key_change(&new_key, &creds.url, &old, &url)?;
        self.post(
            "keyChange",
            &creds.key,
            Signer::Kid(&creds.url),
            &url,
            Some(inner.to_json().as_bytes()),
        )
        .await?;
        Ok(AccountCredentials {
            key: new_key,
            url: creds.url.clone(),
            directory: creds.directory.clone(),
        })
    }

    /// Renewal information (RFC 9773) for a certificate, with the CA's
    /// `Retry-After` (when to ask again). `None` when the CA does not offer ARI.
    pub async fn renewal_info(
        &self,
        cert_id: &CertificateId,
    ) -> Result<Option<(RenewalInfo, Option<Duration>)>, Error> {
        let Some(base) = &self.inner.directory.renewal_info else {
            return Ok(None);
        };
        let url = format!("{}/{cert_id}", base.trim_end_matches('/'));
        let resp = self.send("renewalInfo", Method::GET, &url, None).await?;
        let info: RenewalInfo = self.check_json("renewalInfo", &url, &resp)?;
        Ok(Some((info, self.retry_after(&resp))))
    }
}

fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(&body[..body.len().min(200)]);
    s.chars().filter(|c| !c.is_control()).collect()
}
