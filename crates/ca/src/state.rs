//! In-memory records of the CA. Everything lives behind one mutex held only
//! for short, non-async sections.

use std::collections::{HashMap, HashSet, VecDeque};

use site_encrypt_proto::{
    AccountStatus, AuthorizationStatus, ChallengeStatus, ChallengeType, Identifier, Jwk,
    OrderStatus, Problem, ProblemType,
};
use time::OffsetDateTime;

pub(crate) struct AccountRec {
    pub(crate) jwk: Jwk,
    pub(crate) status: AccountStatus,
    pub(crate) contact: Vec<String>,
    pub(crate) orders: Vec<String>,
    pub(crate) eab: Option<serde_json::Value>,
}

pub(crate) struct OrderRec {
    pub(crate) account: String,
    pub(crate) status: OrderStatus,
    pub(crate) expires: OffsetDateTime,
    pub(crate) identifiers: Vec<Identifier>,
    pub(crate) authzs: Vec<String>,
    pub(crate) cert: Option<String>,
    pub(crate) error: Option<Problem>,
    pub(crate) profile: Option<String>,
    pub(crate) replaces: Option<String>,
}

pub(crate) struct AuthzRec {
    pub(crate) account: String,
    pub(crate) identifier: Identifier,
    pub(crate) status: AuthorizationStatus,
    pub(crate) expires: OffsetDateTime,
    pub(crate) challenges: Vec<String>,
}

pub(crate) struct ChallRec {
    pub(crate) authz: String,
    pub(crate) kind: ChallengeType,
    pub(crate) token: String,
    pub(crate) status: ChallengeStatus,
    pub(crate) validated: Option<OffsetDateTime>,
    pub(crate) error: Option<Problem>,
}

pub(crate) struct CertRec {
    pub(crate) account: String,
    pub(crate) leaf_pem: String,
    pub(crate) leaf_der: Vec<u8>,
    pub(crate) not_before: OffsetDateTime,
    pub(crate) not_after: OffsetDateTime,
    pub(crate) jwk: Option<Jwk>,
    pub(crate) names: Vec<Identifier>,
    pub(crate) revoked: bool,
    pub(crate) replaced: bool,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) accounts: HashMap<String, AccountRec>,
    pub(crate) by_thumbprint: HashMap<String, String>,
    pub(crate) orders: HashMap<String, OrderRec>,
    pub(crate) authzs: HashMap<String, AuthzRec>,
    pub(crate) challs: HashMap<String, ChallRec>,
    pub(crate) certs: HashMap<String, CertRec>,
    pub(crate) by_cert_id: HashMap<String, String>,
    /// The latest authorization validated per (account, identifier), so a
    /// new order finds one to reuse without scanning every authorization.
    /// Entries are hints: the record's status and expiry are checked on use.
    pub(crate) valid_authz: HashMap<(String, Identifier), String>,
}

impl State {
    /// Brings an authorization's status up to date with the clock.
    pub(crate) fn refresh_authz(&mut self, id: &str, now: OffsetDateTime) {
        if let Some(a) = self.authzs.get_mut(id) {
            if a.expires <= now && a.status.can_transition_to(&AuthorizationStatus::Expired) {
                a.status = AuthorizationStatus::Expired;
            }
        }
    }

    /// Derives an order's status from its authorizations and the clock (§7.1.6).
    pub(crate) fn refresh_order(&mut self, id: &str, now: OffsetDateTime) {
        let Some(order) = self.orders.get(id) else {
            return;
        };
        let authz_ids = order.authzs.clone();
        for a in &authz_ids {
            self.refresh_authz(a, now);
        }
        let Some(order) = self.orders.get(id) else {
            return;
        };
        if order.status.is_final() {
            return;
        }
        let mut next = None;
        let mut error = None;
        if order.expires <= now {
            next = Some(OrderStatus::Invalid);
            error = Some(Problem::new(ProblemType::Malformed, "order expired"));
        } else if order.status == OrderStatus::Pending {
            let mut all_valid = true;
            for aid in &authz_ids {
                let Some(a) = self.authzs.get(aid) else {
                    continue;
                };
                match a.status {
                    AuthorizationStatus::Valid => {}
                    AuthorizationStatus::Pending => all_valid = false,
                    _ => {
                        all_valid = false;
                        next = Some(OrderStatus::Invalid);
                        let cause = a
                            .challenges
                            .iter()
                            .filter_map(|c| self.challs.get(c))
                            .find_map(|c| c.error.clone());
                        let detail =
                            format!("authorization for {} is {}", a.identifier.value, a.status);
                        error = Some(match cause {
                            Some(p) => Problem::new(
                                p.kind.clone(),
                                format!("{detail}: {}", p.detail.unwrap_or_default()),
                            ),
                            None => Problem::new(ProblemType::Unauthorized, detail),
                        });
                        break;
                    }
                }
            }
            if next.is_none() && all_valid {
                next = Some(OrderStatus::Ready);
            }
        }
        if let (Some(next), Some(order)) = (next, self.orders.get_mut(id)) {
            if order.status.can_transition_to(&next) {
                order.status = next;
                if error.is_some() {
                    order.error = error;
                }
            }
        }
    }
}

/// Issued, unused nonces. Bounded: the oldest are forgotten first, and a
/// forgotten nonce is answered with `badNonce` like any unknown one.
pub(crate) struct Nonces {
    live: HashSet<String>,
    order: VecDeque<String>,
    capacity: usize,
}

impl Nonces {
    pub(crate) fn new(capacity: usize) -> Self {
        Nonces {
            live: HashSet::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    pub(crate) fn issue(&mut self) -> String {
        let n = crate::pki::random_id();
        while self.live.len() >= self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.live.remove(&old);
                }
                None => break,
            }
        }
        self.live.insert(n.clone());
        self.order.push_back(n.clone());
        n
    }

    /// Consumes a nonce; `true` when it was issued and not used before.
    pub(crate) fn take(&mut self, n: &str) -> bool {
        // The VecDeque keeps the stale entry; it is skipped when evicted.
        self.live.remove(n)
    }
}
