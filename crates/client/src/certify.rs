//! The mid level: certify a set of identifiers end to end.

use std::time::{Duration, Instant};

use futures_util::future::try_join_all;
use site_encrypt_proto::{
    AuthorizationStatus, ChallengeStatus, Identifier, KeyPair, KeyType, NewOrder, Order,
    OrderStatus, Problem, ProblemType,
};
use tracing::Instrument;

use crate::solver::Solver;
use crate::{AccountCredentials, AcmeClient, Error};

/// Options of one certification.
#[derive(Debug, Clone, Default)]
pub struct CertifyOptions {
    /// The certificate key type (default ECDSA P-256).
    pub key_type: KeyType,
    /// A profile from the directory's `meta.profiles`.
    pub profile: Option<String>,
    /// The ARI certificate ID (RFC 9773) of the certificate this one replaces.
    pub replaces: Option<String>,
}

/// A certificate obtained by [`certify`].
pub struct IssuedCertificate {
    /// The chain in PEM: leaf first.
    pub chain_pem: String,
    /// The certificate's private key.
    pub key: KeyPair,
    /// The order URL.
    pub order_url: String,
}

impl std::fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCertificate")
            .field("order_url", &self.order_url)
            .finish_non_exhaustive()
    }
}

/// Obtains a certificate for `identifiers`: new order, every pending
/// authorization solved in parallel with `solver` (already valid ones are
/// skipped), a fresh key and CSR, finalize, download. The chain is checked to
/// match the key and the names before it is returned.
pub async fn certify<S: Solver>(
    client: &AcmeClient,
    account: &AccountCredentials,
    identifiers: &[Identifier],
    solver: &S,
    opts: &CertifyOptions,
) -> Result<IssuedCertificate, Error> {
    let Some(first) = identifiers.first() else {
        return Err(Error::InvalidInput("no identifiers to certify".into()));
    };
    let span = tracing::info_span!("certify", domain = %first.value);
    certify_in_span(client, account, identifiers, solver, opts)
        .instrument(span)
        .await
}

async fn certify_in_span<S: Solver>(
    client: &AcmeClient,
    account: &AccountCredentials,
    identifiers: &[Identifier],
    solver: &S,
    opts: &CertifyOptions,
) -> Result<IssuedCertificate, Error> {
    let first = &identifiers[0].value;
    tracing::info!("Ordering a new certificate for domain {first}");
    let req = NewOrder {
        identifiers: identifiers.to_vec(),
        profile: opts.profile.clone(),
        replaces: opts.replaces.clone(),
        ..Default::default()
    };
    let (order_url, order) = client.new_order(account, &req).await?;
    tracing::debug!(order = %order_url, "order created");
    // An RSA key takes long enough to make that it goes to a blocking thread
    // while the authorizations are solved; an EC key takes microseconds,
    // less than handing work to another thread would cost.
    let key_type = opts.key_type;
    let key_task = match key_type {
        KeyType::EcP256 | KeyType::EcP384 => None,
        _ => Some(tokio::task::spawn_blocking(move || {
            KeyPair::generate(key_type)
        })),
    };

    match order.status {
        OrderStatus::Pending => {
            try_join_all(
                order
                    .authorizations
                    .iter()
                    .map(|url| solve(client, account, url, solver)),
            )
            .await?;
        }
        OrderStatus::Ready => {}
        _ => return Err(order_failed(&order_url, &order)),
    }

    let key = match key_task {
        Some(task) => task
            .await
            .map_err(|e| Error::Csr(format!("key generation task failed: {e}")))??,
        None => KeyPair::generate(key_type)?,
    };
    let csr = build_csr(&key, identifiers)?;
    // Every authorization is valid now, so the order is ready: finalize at
    // once instead of polling for it. A CA that has not caught up answers
    // orderNotReady; then the order is polled and finalized again.
    let (order, retry) = match client.finalize(account, &order.finalize, &csr).await {
        Err(e)
            if e.problem()
                .is_some_and(|p| p.kind == ProblemType::OrderNotReady) =>
        {
            tracing::debug!(order = %order_url, "order not ready yet; polling it");
            let ready = poll_order(client, account, &order_url, order, |s| {
                *s != OrderStatus::Pending
            })
            .await?;
            if ready.status != OrderStatus::Ready {
                return Err(order_failed(&order_url, &ready));
            }
            client.finalize(account, &ready.finalize, &csr).await?
        }
        other => other?,
    };
    let order = if order.status == OrderStatus::Processing {
        if let Some(d) = retry {
            tokio::time::sleep(d.min(client.policy().max_retry_after)).await;
        }
        poll_order(client, account, &order_url, order, |s| {
            *s != OrderStatus::Processing
        })
        .await?
    } else {
        order
    };
    if order.status != OrderStatus::Valid {
        return Err(order_failed(&order_url, &order));
    }
    let cert_url = order.certificate.ok_or_else(|| Error::MalformedResponse {
        op: "order",
        url: order_url.clone(),
        detail: "valid order without a certificate URL".into(),
    })?;
    let chain = client.certificate(account, &cert_url).await?;
    check_chain(&chain.pem, &key, identifiers).map_err(|detail| Error::MalformedResponse {
        op: "certificate",
        url: cert_url,
        detail,
    })?;
    tracing::debug!("New certificate for domain {first} obtained");
    Ok(IssuedCertificate {
        chain_pem: chain.pem,
        key,
        order_url,
    })
}

fn order_failed(url: &str, order: &Order) -> Error {
    let problem = order.error.clone().unwrap_or_else(|| {
        Problem::new(
            ProblemType::ServerInternal,
            format!("order is {}", order.status),
        )
    });
    Error::OrderFailed {
        url: url.to_owned(),
        problem: Box::new(problem),
    }
}

async fn solve<S: Solver>(
    client: &AcmeClient,
    account: &AccountCredentials,
    url: &str,
    solver: &S,
) -> Result<(), Error> {
    let (authz, _) = client.authorization(account, url).await?;
    match &authz.status {
        AuthorizationStatus::Valid => return Ok(()),
        AuthorizationStatus::Pending => {}
        _ => return Err(authz_failed(&authz)),
    }
    let wanted = solver.challenge_type();
    let ch = authz
        .challenges
        .iter()
        .find(|c| c.kind == wanted)
        .ok_or_else(|| Error::NoSuitableChallenge {
            identifier: authz.identifier.clone(),
            wanted: wanted.to_string(),
        })?;
    let token = ch
        .token
        .as_deref()
        .ok_or_else(|| Error::MalformedResponse {
            op: "authorization",
            url: url.to_owned(),
            detail: "challenge without token".into(),
        })?;
    site_encrypt_proto::check_token(token).map_err(|e| Error::MalformedResponse {
        op: "authorization",
        url: url.to_owned(),
        detail: e.to_string(),
    })?;
    let key_auth = site_encrypt_proto::key_authorization(token, &account.key.jwk());
    solver.present(&authz.identifier, token, &key_auth).await?;
    let result = async {
        let answer = client.challenge_ready(account, &ch.url).await?;
        // A CA that validated before answering says so; otherwise poll.
        if answer.status == ChallengeStatus::Valid {
            return Ok(());
        }
        poll_authz(client, account, url, solver.fetched(token)).await
    }
    .await;
    solver.cleanup(token).await;
    result
}

/// The error for an authorization that is neither pending nor valid: the
/// CA's reason from the failed challenge, or its status when it gave none.
fn authz_failed(authz: &site_encrypt_proto::Authorization) -> Error {
    let problem = authz
        .challenges
        .iter()
        .find_map(|c| c.error.clone())
        .unwrap_or_else(|| {
            Problem::new(
                ProblemType::Unauthorized,
                format!("authorization is {}", authz.status),
            )
        });
    Error::ChallengeFailed {
        identifier: authz.identifier.clone(),
        problem: Box::new(problem),
    }
}

async fn poll_authz(
    client: &AcmeClient,
    account: &AccountCredentials,
    url: &str,
    fetched: impl std::future::Future<Output = ()>,
) -> Result<(), Error> {
    let policy = client.policy().clone();
    let start = Instant::now();
    let mut delay = policy.poll_initial;
    let mut signalled = false;
    let mut retry_after: Option<Duration> = None;
    tokio::pin!(fetched);
    loop {
        // Until the token was fetched, the CA's Retry-After is honoured; once
        // it was, validation is about to finish, so the short backoff rules.
        let wait = if signalled {
            delay
        } else {
            delay.max(retry_after.unwrap_or_default())
        };
        tokio::select! {
            _ = &mut fetched, if !signalled => { signalled = true; }
            _ = tokio::time::sleep(wait) => {}
        }
        let (authz, ra) = client.authorization(account, url).await?;
        retry_after = ra;
        match &authz.status {
            AuthorizationStatus::Valid => return Ok(()),
            AuthorizationStatus::Pending => {}
            _ => return Err(authz_failed(&authz)),
        }
        if start.elapsed() >= policy.poll_timeout {
            return Err(Error::PollTimeout {
                what: "authorization",
                url: url.to_owned(),
                status: authz.status.to_string(),
                after: policy.poll_timeout,
            });
        }
        delay = policy.next_delay(delay);
    }
}

async fn poll_order(
    client: &AcmeClient,
    account: &AccountCredentials,
    url: &str,
    mut order: Order,
    done: impl Fn(&OrderStatus) -> bool,
) -> Result<Order, Error> {
    let policy = client.policy().clone();
    let start = Instant::now();
    let mut delay = policy.poll_initial;
    loop {
        if done(&order.status) || order.status == OrderStatus::Invalid {
            return Ok(order);
        }
        if start.elapsed() >= policy.poll_timeout {
            return Err(Error::PollTimeout {
                what: "order",
                url: url.to_owned(),
                status: order.status.to_string(),
                after: policy.poll_timeout,
            });
        }
        let (next, retry) = client.order(account, url).await?;
        order = next;
        if done(&order.status) || order.status == OrderStatus::Invalid {
            return Ok(order);
        }
        tokio::time::sleep(delay.max(retry.unwrap_or_default())).await;
        delay = policy.next_delay(delay);
    }
}

/// A DER CSR for `identifiers` signed by `key`, with the names as SANs and an
/// empty subject.
pub fn build_csr(key: &KeyPair, identifiers: &[Identifier]) -> Result<Vec<u8>, Error> {
    let rc_key =
        rcgen::KeyPair::try_from(key.pkcs8_der()).map_err(|e| Error::Csr(e.to_string()))?;
    let names: Vec<String> = identifiers.iter().map(|i| i.value.clone()).collect();
    let mut params = rcgen::CertificateParams::new(names).map_err(|e| Error::Csr(e.to_string()))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params
        .serialize_request(&rc_key)
        .map_err(|e| Error::Csr(e.to_string()))?;
    Ok(csr.der().to_vec())
}

/// Checks that the chain's leaf carries `key` and names every identifier.
fn check_chain(pem: &str, key: &KeyPair, identifiers: &[Identifier]) -> Result<(), String> {
    let ders = site_encrypt_proto::pem::decode_all(pem, "CERTIFICATE");
    let leaf = ders.first().ok_or("empty chain")?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| format!("leaf does not parse: {e}"))?;
    if cert.public_key().subject_public_key.data.as_ref() != key.public_key_bytes() {
        return Err("the leaf certificate does not carry our key".into());
    }
    let names = crate::cert::san_names(&cert);
    for id in identifiers {
        if !names.iter().any(|n| n.eq_ignore_ascii_case(&id.value)) {
            return Err(format!("the certificate does not name {}", id.value));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for `names` carrying `key`.
    fn leaf_pem(key: &KeyPair, names: &[&str]) -> String {
        let rc = rcgen::KeyPair::try_from(key.pkcs8_der()).expect("key");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let params = rcgen::CertificateParams::new(names).expect("params");
        params.self_signed(&rc).expect("cert").pem()
    }

    #[test]
    fn the_chain_must_carry_our_key_and_every_name() {
        let ids = [Identifier::dns("a.test"), Identifier::dns("b.test")];
        for kind in [KeyType::EcP256, KeyType::EcP384, KeyType::Rsa2048] {
            let key = KeyPair::generate(kind).expect("key");
            let other = KeyPair::generate(kind).expect("key");
            assert_eq!(
                check_chain(&leaf_pem(&key, &["a.test", "b.test"]), &key, &ids),
                Ok(())
            );
            let err = check_chain(&leaf_pem(&other, &["a.test", "b.test"]), &key, &ids)
                .expect_err("another key");
            assert!(err.contains("does not carry our key"), "{err}");
            let err =
                check_chain(&leaf_pem(&key, &["a.test"]), &key, &ids).expect_err("missing name");
            assert!(err.contains("b.test"), "{err}");
        }
        let key = KeyPair::generate(KeyType::EcP256).expect("key");
        assert!(check_chain("", &key, &ids).is_err());
    }
}
