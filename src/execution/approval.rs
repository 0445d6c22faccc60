//! The approval queue of `execute --signer browser`: the executor, which holds no key, offers each prepared
//! transaction here and blocks until the dashboard's page reports what the user's wallet did with it. The
//! queue is the one place where an offer can become a send, so the rules that keep a trade at most once live
//! here, under one lock: only the oldest open offer can be claimed, only by the configured account, only
//! before it expires, and only once; an expired or answered offer is gone and cannot be claimed late.

use alloy::primitives::Address;
use serde::Serialize;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// The longest reason kept from a page (a wallet's error text is untrusted input).
const MAX_REASON: usize = 300;
/// Offers held at once: the executor offers one transaction at a time, so more is a bug, not load.
const MAX_OPEN: usize = 16;

/// The transaction as EIP-1193's `eth_sendTransaction` takes it (quantities and data in hex).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletTx {
    pub from: String,
    pub to: String,
    pub data: String,
    pub value: String,
    pub gas: String,
    pub max_fee_per_gas: String,
    pub max_priority_fee_per_gas: String,
    pub chain_id: String,
}

/// One prepared transaction waiting for the wallet, with what the user reads before approving it.
#[derive(Clone, Debug, Serialize)]
pub struct Offer {
    /// The intent id, or the intent id and `:allowance` (`:allowance-reset`) for its token approvals.
    pub id: String,
    pub intent_id: String,
    /// `swap` or `allowance`.
    pub kind: &'static str,
    /// One line: what the transaction does.
    pub title: String,
    /// Label and value pairs: token, side, amounts, minimum out, deadline, router...
    pub details: Vec<(String, String)>,
    pub tx: WalletTx,
    pub offered_at: i64,
    pub expires_at: i64,
}

/// What became of an offer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The wallet sent it: its hash, as the page reported it (to be checked on chain).
    Sent(String),
    /// Refused in the wallet or on the page.
    Rejected(String),
    /// Not claimed before it expired: nothing was sent.
    Expired,
    /// Claimed, then no answer by the limit: the wallet may have sent it (look on chain).
    Unreported,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApprovalError {
    #[error("no open approval {0}: it expired, was answered, or never existed")]
    NotFound(String),
    #[error("approval {id} expired at {at}: it is withdrawn and will not be sent; its intent is rejected")]
    Expired { id: String, at: String },
    #[error("approval {id} waits behind {head}: approvals are taken in intent order")]
    NotHead { id: String, head: String },
    #[error("the connected wallet account {given} is not the configured account {want}: switch to {want} in the wallet")]
    WrongAccount { given: String, want: String },
    #[error("{0:?} is not an account address")]
    BadAccount(String),
    #[error("approval {0} is already claimed by a page: it is never sent twice")]
    AlreadyClaimed(String),
    #[error("approval {0} was not claimed: claim it before sending it")]
    NotClaimed(String),
    #[error("{0:?} is not a transaction hash (0x and 64 hex digits)")]
    BadHash(String),
    #[error("{MAX_OPEN} approvals are already open")]
    Full,
}

#[derive(Clone, Debug)]
enum Phase {
    Pending,
    Claimed,
    Done(Answer),
}

struct Entry {
    offer: Offer,
    phase: Phase,
}

/// An open offer as the page lists it.
#[derive(Clone, Debug, Serialize)]
pub struct OpenOffer {
    #[serde(flatten)]
    pub offer: Offer,
    pub claimed: bool,
    /// Whether this is the oldest open offer (the only one that can be claimed).
    pub head: bool,
}

pub struct ApprovalQueue {
    pub account: Address,
    pub chain_id: u64,
    open: Mutex<Vec<Entry>>,
    changed: Condvar,
}

fn fmt_time(ms: i64) -> String {
    crate::model::time::to_rfc3339(ms)
}

impl ApprovalQueue {
    pub fn new(account: Address, chain_id: u64) -> Self {
        ApprovalQueue {
            account,
            chain_id,
            open: Mutex::new(Vec::new()),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        // a panicking holder cannot leave the list half-changed (every change is one push, set or remove)
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn offer(&self, offer: Offer) -> Result<(), ApprovalError> {
        let mut open = self.lock();
        if open.len() >= MAX_OPEN {
            return Err(ApprovalError::Full);
        }
        open.retain(|e| e.offer.id != offer.id);
        open.push(Entry {
            offer,
            phase: Phase::Pending,
        });
        self.changed.notify_all();
        Ok(())
    }

    /// The open offers, oldest first.
    pub fn list(&self) -> Vec<OpenOffer> {
        let open = self.lock();
        let head = open
            .iter()
            .find(|e| !matches!(e.phase, Phase::Done(_)))
            .map(|e| e.offer.id.clone());
        open.iter()
            .filter(|e| !matches!(e.phase, Phase::Done(_)))
            .map(|e| OpenOffer {
                offer: e.offer.clone(),
                claimed: matches!(e.phase, Phase::Claimed),
                head: head.as_deref() == Some(e.offer.id.as_str()),
            })
            .collect()
    }

    /// The page takes the oldest open offer for `account` to send; the transaction to hand the wallet.
    pub fn claim(&self, id: &str, account: &str, now: i64) -> Result<WalletTx, ApprovalError> {
        let given: Address = account
            .trim()
            .parse()
            .map_err(|_| ApprovalError::BadAccount(account.chars().take(64).collect()))?;
        let mut open = self.lock();
        let head = open
            .iter()
            .position(|e| !matches!(e.phase, Phase::Done(_)))
            .ok_or_else(|| ApprovalError::NotFound(id.into()))?;
        let at = open
            .iter()
            .position(|e| e.offer.id == id && !matches!(e.phase, Phase::Done(_)))
            .ok_or_else(|| ApprovalError::NotFound(id.into()))?;
        let e = &mut open[at];
        if now >= e.offer.expires_at {
            e.phase = Phase::Done(Answer::Expired);
            self.changed.notify_all();
            return Err(ApprovalError::Expired {
                id: id.into(),
                at: fmt_time(e.offer.expires_at),
            });
        }
        if given != self.account {
            return Err(ApprovalError::WrongAccount {
                given: format!("{given:#x}"),
                want: format!("{:#x}", self.account),
            });
        }
        if matches!(e.phase, Phase::Claimed) {
            return Err(ApprovalError::AlreadyClaimed(id.into()));
        }
        if at != head {
            return Err(ApprovalError::NotHead {
                id: id.into(),
                head: open[head].offer.id.clone(),
            });
        }
        let e = &mut open[at];
        e.phase = Phase::Claimed;
        self.changed.notify_all();
        Ok(e.offer.tx.clone())
    }

    /// The page reports the hash the wallet returned for a claimed offer.
    pub fn sent(&self, id: &str, hash: &str) -> Result<(), ApprovalError> {
        let hash = hash.trim();
        let hex = hash.strip_prefix("0x").unwrap_or("");
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApprovalError::BadHash(hash.chars().take(80).collect()));
        }
        self.answer(id, Answer::Sent(hash.to_ascii_lowercase()), true)
    }

    /// The page (or the wallet, through the page) refuses an open offer.
    pub fn reject(&self, id: &str, reason: &str) -> Result<(), ApprovalError> {
        let mut reason: String = reason
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_REASON)
            .collect();
        if reason.trim().is_empty() {
            reason = "no reason given".into();
        }
        self.answer(id, Answer::Rejected(reason), false)
    }

    fn answer(&self, id: &str, answer: Answer, needs_claim: bool) -> Result<(), ApprovalError> {
        let mut open = self.lock();
        let e = open
            .iter_mut()
            .find(|e| e.offer.id == id && !matches!(e.phase, Phase::Done(_)))
            .ok_or_else(|| ApprovalError::NotFound(id.into()))?;
        if needs_claim && !matches!(e.phase, Phase::Claimed) {
            return Err(ApprovalError::NotClaimed(id.into()));
        }
        e.phase = Phase::Done(answer);
        self.changed.notify_all();
        Ok(())
    }

    /// Blocks until the offer is answered, expires unclaimed (at its `expires_at`), or, once claimed, stays
    /// unanswered past `claimed_limit` (ms); the offer is then removed. `now` reads the wall clock.
    pub fn wait(&self, id: &str, claimed_limit: i64, now: impl Fn() -> i64) -> Answer {
        let mut open = self.lock();
        loop {
            let Some(at) = open.iter().position(|e| e.offer.id == id) else {
                return Answer::Expired;
            };
            let t = now();
            let e = &open[at];
            let (done, until) = match &e.phase {
                Phase::Done(a) => (Some(a.clone()), 0),
                Phase::Pending if t >= e.offer.expires_at => (Some(Answer::Expired), 0),
                Phase::Pending => (None, e.offer.expires_at),
                Phase::Claimed if t >= claimed_limit => (Some(Answer::Unreported), 0),
                Phase::Claimed => (None, claimed_limit),
            };
            if let Some(a) = done {
                open.remove(at);
                self.changed.notify_all();
                return a;
            }
            let pause = Duration::from_millis(until.saturating_sub(t).clamp(1, 1_000) as u64);
            open = self
                .changed
                .wait_timeout(open, pause)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8";
    const OTHER: &str = "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc";

    fn offer(id: &str, expires_at: i64) -> Offer {
        Offer {
            id: id.into(),
            intent_id: id.into(),
            kind: "swap",
            title: "Buy TKA".into(),
            details: vec![("token".into(), "TKA".into())],
            tx: WalletTx {
                from: ACCOUNT.into(),
                to: OTHER.into(),
                data: "0x".into(),
                value: "0x0".into(),
                gas: "0x5208".into(),
                max_fee_per_gas: "0x1".into(),
                max_priority_fee_per_gas: "0x1".into(),
                chain_id: "0x7a69".into(),
            },
            offered_at: 0,
            expires_at,
        }
    }

    fn queue() -> ApprovalQueue {
        ApprovalQueue::new(ACCOUNT.parse().unwrap(), 31337)
    }

    #[test]
    fn an_offer_is_claimed_once_by_the_configured_account_and_its_hash_reaches_the_waiter() {
        let q = queue();
        q.offer(offer("a", 1_000)).unwrap();
        let wrong = q.claim("a", OTHER, 10).unwrap_err();
        assert!(
            wrong.to_string().contains("is not the configured account"),
            "{wrong}"
        );
        assert!(matches!(
            q.sent("a", &format!("0x{}", "1".repeat(64))),
            Err(ApprovalError::NotClaimed(_))
        ));
        // checksummed or not, the same account
        q.claim("a", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", 10)
            .unwrap();
        assert_eq!(
            q.claim("a", ACCOUNT, 11),
            Err(ApprovalError::AlreadyClaimed("a".into()))
        );
        assert!(matches!(
            q.sent("a", "0x12"),
            Err(ApprovalError::BadHash(_))
        ));
        let hash = format!("0x{}", "AB".repeat(32));
        q.sent("a", &hash).unwrap();
        assert_eq!(
            q.wait("a", 2_000, || 20),
            Answer::Sent(hash.to_ascii_lowercase())
        );
        assert!(q.list().is_empty());
        assert!(matches!(
            q.claim("a", ACCOUNT, 30),
            Err(ApprovalError::NotFound(_))
        ));
    }

    #[test]
    fn an_expired_offer_cannot_be_claimed_and_ends_as_expired() {
        let q = queue();
        q.offer(offer("a", 100)).unwrap();
        assert!(matches!(
            q.claim("a", ACCOUNT, 100),
            Err(ApprovalError::Expired { .. })
        ));
        assert_eq!(q.wait("a", 10_000, || 50), Answer::Expired);
        // unclaimed and past its time: expired even if nobody asked
        q.offer(offer("b", 100)).unwrap();
        assert_eq!(q.wait("b", 10_000, || 100), Answer::Expired);
        assert!(matches!(
            q.claim("b", ACCOUNT, 50),
            Err(ApprovalError::NotFound(_))
        ));
    }

    #[test]
    fn offers_are_claimed_in_order_and_a_claimed_one_left_unanswered_is_unreported() {
        let q = queue();
        q.offer(offer("first", 1_000)).unwrap();
        q.offer(offer("second", 1_000)).unwrap();
        assert!(matches!(
            q.claim("second", ACCOUNT, 1),
            Err(ApprovalError::NotHead { .. })
        ));
        let l = q.list();
        assert_eq!((l[0].head, l[1].head), (true, false));
        q.claim("first", ACCOUNT, 1).unwrap();
        // a claimed offer does not expire at its offer time: the wallet may be sending it
        assert_eq!(q.wait("first", 5_000, || 5_000), Answer::Unreported);
        q.reject("second", "user said no\u{7}").unwrap();
        assert_eq!(
            q.wait("second", 5_000, || 2),
            Answer::Rejected("user said no".into())
        );
    }

    #[test]
    fn a_waiter_wakes_when_the_page_answers_from_another_thread() {
        let q = std::sync::Arc::new(queue());
        q.offer(offer("a", i64::MAX)).unwrap();
        let page = {
            let q = q.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                q.reject("a", "").unwrap();
            })
        };
        assert_eq!(
            q.wait("a", i64::MAX, || 0),
            Answer::Rejected("no reason given".into())
        );
        page.join().unwrap();
    }
}
