//! `execute --signer browser`: the executor runs every check it runs with a key, then, instead of signing,
//! offers the prepared transaction on the dashboard's approval queue and waits for the user's wallet. What the
//! page reports is never trusted as such: the hash must name a transaction on chain from the configured
//! account with exactly the offered call, or the trade is not counted. The wallet picks the nonce and may
//! re-price the transaction (a speed-up changes its hash, never its call), so the journal keeps the offered
//! call and the block it was offered at, and the chain is searched for that call whenever the page's report
//! is missing: after a claim left unanswered, after a speed-up, and after a restart.

use super::account::{now_ms, rpc, Account};
use super::swap::{OnchainVenue, PlanView, Prepared, Router};
use super::units::from_base_units;
use crate::execution::approval::{Answer, ApprovalQueue, Offer, WalletTx};
use crate::execution::journal::{Journal, OfferRow, State, TxRow, TxState};
use crate::execution::venue::{Refused, VenueError};
use crate::model::{Fill, OrderIntent, Side};
use alloy::consensus::Transaction as _;
use alloy::eips::eip1559::Eip1559Estimation;
use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use std::sync::Arc;
use std::time::Duration;

/// How often the chain is asked while the executor waits for a wallet's transaction to show.
const POLL: Duration = Duration::from_millis(500);

/// What the user is shown, and how long a claimed offer may stay unanswered (wall ms).
pub struct Proposal {
    pub id: String,
    pub intent_id: String,
    pub kind: &'static str,
    pub title: String,
    pub details: Vec<(String, String)>,
    pub claimed_limit: i64,
}

/// A transaction the wallet sent, found on chain with the offered call.
#[derive(Clone, Copy, Debug)]
pub struct Sent {
    pub hash: B256,
    pub nonce: u64,
}

/// How an offer ended without a transaction: the journal's word for it and the reject reason.
pub type Unsent = (&'static str, Refused);

fn hex(b: &[u8]) -> String {
    format!("0x{}", alloy::hex::encode(b))
}

impl Account {
    fn wallet_tx(&self, tx: &TransactionRequest, gas: u64, fees: &Eip1559Estimation) -> WalletTx {
        let (to, data) = call_of(tx);
        WalletTx {
            from: format!("{:#x}", self.address),
            to: format!("{to:#x}"),
            data: hex(&data),
            value: format!("{:#x}", tx.value.unwrap_or_default()),
            gas: format!("{gas:#x}"),
            max_fee_per_gas: format!("{:#x}", fees.max_fee_per_gas),
            max_priority_fee_per_gas: format!("{:#x}", fees.max_priority_fee_per_gas),
            chain_id: format!("{:#x}", self.cfg.chain_id),
        }
    }

    /// Offers `tx` on the queue and waits for the wallet: the transaction it sent (checked on chain), or how
    /// the offer ended without one. `from_block` is the head when offered.
    pub fn through_wallet(
        &self,
        q: &ApprovalQueue,
        p: Proposal,
        tx: &TransactionRequest,
        gas: u64,
        fees: &Eip1559Estimation,
        from_block: u64,
    ) -> Result<Sent, Unsent> {
        let now = now_ms();
        let timeout = self.cfg.approval_timeout_s;
        let offer = Offer {
            id: p.id.clone(),
            intent_id: p.intent_id,
            kind: p.kind,
            title: p.title.clone(),
            details: p.details,
            tx: self.wallet_tx(tx, gas, fees),
            offered_at: now,
            expires_at: now.saturating_add(timeout as i64 * 1000),
        };
        q.offer(offer)
            .map_err(|e| ("rejected", Refused(e.to_string())))?;
        tracing::info!("approval {} waits on the dashboard: {}", p.id, p.title);
        let (to, input) = call_of(tx);
        match q.wait(&p.id, p.claimed_limit, now_ms) {
            Answer::Sent(h) => {
                let hash: B256 = h
                    .parse()
                    .map_err(|_| ("rejected", Refused(format!("the page reported {h:?}"))))?;
                self.await_sent(hash, to, &input, p.claimed_limit)
                    .map_err(|e| ("rejected", Refused(e.to_string())))?
                    .ok_or_else(|| {
                        (
                            "unseen",
                            Refused(format!(
                                "the wallet reported {hash:#x}, but no transaction of the approved call from {:#x} \
                                 reached the chain in time",
                                self.address
                            )),
                        )
                    })
            }
            Answer::Rejected(why) => Err((
                "rejected",
                Refused(format!("{} refused in the wallet: {why}", p.title)),
            )),
            Answer::Expired => Err((
                "expired",
                Refused(format!(
                    "approval expired: no wallet answered within {timeout} s (approval_timeout_s); nothing was sent"
                )),
            )),
            Answer::Unreported => match self.find_sent(from_block, to, &input, None) {
                Ok(Some(s)) => Ok(s),
                Ok(None) => Err((
                    "unseen",
                    Refused(
                        "approved on the dashboard, but no hash came back and no transaction of the approved call \
                         is on chain by the deadline: nothing landed"
                            .into(),
                    ),
                )),
                Err(e) => Err(("unseen", Refused(e.to_string()))),
            },
        }
    }

    /// Waits (until `limit_ms`) for the reported hash to show on the node; it must be the offered call from
    /// this account on this chain. The wallet may broadcast through another node, or privately, so a hash not
    /// seen yet is waited for; one never seen leads to a search of the blocks for the call itself.
    fn await_sent(
        &self,
        hash: B256,
        to: Address,
        input: &[u8],
        limit_ms: i64,
    ) -> Result<Option<Sent>, Refused> {
        let from_block = self
            .rt
            .block_on(self.provider.get_block_number())
            .map_err(|e| Refused(e.to_string()))?
            .saturating_sub(1);
        loop {
            let found = self
                .rt
                .block_on(self.provider.get_transaction_by_hash(hash))
                .unwrap_or_else(|e| {
                    tracing::warn!("looking up {hash:#x} failed, retrying: {e}");
                    None
                });
            if let Some(t) = found {
                let what = [
                    (t.inner.signer() != self.address, "sender"),
                    (t.to() != Some(to), "recipient"),
                    (t.input().as_ref() != input, "call data"),
                    (
                        t.chain_id().is_some_and(|c| c != self.cfg.chain_id),
                        "chain",
                    ),
                ];
                let wrong: Vec<&str> = what.iter().filter(|w| w.0).map(|w| w.1).collect();
                if !wrong.is_empty() {
                    tracing::error!(
                        "the wallet's transaction {hash:#x} is not the approved one (its {} differ)",
                        wrong.join(", ")
                    );
                    return Err(Refused(format!(
                        "the wallet sent {hash:#x}, which is not the approved transaction (its {} differ): it is not \
                         counted as this trade",
                        wrong.join(", ")
                    )));
                }
                return Ok(Some(Sent {
                    hash,
                    nonce: t.nonce(),
                }));
            }
            if now_ms() > limit_ms {
                // relayed under another hash (a private relay, a speed-up): the call itself decides
                return self
                    .find_sent(from_block, to, input, None)
                    .map_err(|e| Refused(e.to_string()));
            }
            std::thread::sleep(POLL);
        }
    }

    /// The first mined transaction from this account to `to` with exactly `input`, in the blocks after
    /// `from_block`. With `until` (a deadline, unix s) it waits for blocks until one is past the deadline (no
    /// later block can execute the call); without, it reads up to the head once.
    pub fn find_sent(
        &self,
        from_block: u64,
        to: Address,
        input: &[u8],
        until: Option<u64>,
    ) -> Result<Option<Sent>, VenueError> {
        let mut next = from_block.saturating_add(1);
        loop {
            let head = self
                .rt
                .block_on(self.provider.get_block_number())
                .map_err(rpc)?;
            while next <= head {
                let b = self
                    .rt
                    .block_on(async {
                        self.provider
                            .get_block_by_number(BlockNumberOrTag::Number(next))
                            .full()
                            .await
                    })
                    .map_err(rpc)?
                    .ok_or_else(|| VenueError::Rpc(format!("the node has no block {next}")))?;
                for t in b.transactions.txns() {
                    if t.inner.signer() == self.address
                        && t.to() == Some(to)
                        && t.input().as_ref() == input
                    {
                        return Ok(Some(Sent {
                            hash: *t.inner.tx_hash(),
                            nonce: t.nonce(),
                        }));
                    }
                }
                if until.is_some_and(|d| b.header.timestamp > d) {
                    return Ok(None);
                }
                next += 1;
            }
            match until {
                None => return Ok(None),
                // a chain that makes blocks only for transactions (a devnet) shows no block past the
                // deadline: once the wall clock is a receipt timeout past it, a transaction would have shown
                Some(d)
                    if now_ms() / 1000 > d.saturating_add(self.cfg.receipt_timeout_s) as i64 =>
                {
                    return Ok(None)
                }
                Some(_) => std::thread::sleep(POLL),
            }
        }
    }

    /// An approval (`approve(router, amount)`) through the wallet; its hash once sent.
    pub(super) fn allowance_through_wallet(
        &self,
        q: &ApprovalQueue,
        what: &str,
        tx: &TransactionRequest,
        gas: u64,
        intent: Option<&str>,
    ) -> Result<B256, Refused> {
        let fees = self
            .rt
            .block_on(self.fees())
            .map_err(|e| Refused(e.to_string()))?;
        let (from_block, _) = self
            .rt
            .block_on(self.head())
            .map_err(|e| Refused(e.to_string()))?;
        let (token, _) = call_of(tx);
        let symbol = self
            .tokens
            .iter()
            .find(|(_, a)| **a == token)
            .map(|(s, _)| s.clone())
            .unwrap_or_else(|| {
                if token == self.quote {
                    self.cfg.quote.symbol.clone()
                } else {
                    format!("{token:#x}")
                }
            });
        let intent_id = intent.unwrap_or("manual").to_string();
        let reset = what.contains("reset");
        let p = Proposal {
            id: format!(
                "{intent_id}:{}",
                if reset {
                    "allowance-reset"
                } else {
                    "allowance"
                }
            ),
            intent_id: intent_id.clone(),
            kind: "allowance",
            title: format!(
                "{} the router's {symbol} allowance{} for trade {intent_id}",
                if reset { "Reset" } else { "Set" },
                if reset { " to zero" } else { "" }
            ),
            details: vec![
                ("token".into(), format!("{symbol} ({token:#x})")),
                ("spender (router)".into(), format!("{:#x}", self.router)),
                ("gas limit".into(), gas.to_string()),
            ],
            claimed_limit: now_ms().saturating_add(
                (self.cfg.approval_timeout_s + self.cfg.receipt_timeout_s) as i64 * 1000,
            ),
        };
        self.through_wallet(q, p, tx, gas, &fees, from_block)
            .map(|s| s.hash)
            .map_err(|(_, e)| e)
    }
}

/// The recipient and call data of a prepared transaction.
fn call_of(tx: &TransactionRequest) -> (Address, Vec<u8>) {
    let to = tx.to.and_then(|k| k.to().copied()).unwrap_or_default();
    let input = tx.input.input().map(|b| b.to_vec()).unwrap_or_default();
    (to, input)
}

/// What the wallet is asked to sign for a swap, in words and figures.
fn swap_details(
    acct: &Account,
    intent: &OrderIntent,
    view: &PlanView,
    prepared: &Prepared,
    gas: u64,
) -> (String, Vec<(String, String)>) {
    let quote = acct.cfg.quote.symbol.clone();
    let (in_sym, out_sym) = match intent.side {
        Side::Buy => (quote.clone(), intent.token.clone()),
        Side::Sell => (intent.token.clone(), quote.clone()),
    };
    let amount = |v: U256, a: Address| {
        from_base_units(v, acct.dec(a))
            .map(|d| d.normalize().to_string())
            .unwrap_or_else(|| v.to_string())
    };
    let (pay, token_out) = match &view.plan {
        Some(p) => (amount(p.amount_in, p.token_in), p.token_out),
        None => ("?".into(), Address::ZERO),
    };
    let title = match intent.side {
        Side::Buy => format!("Buy {} with {pay} {quote}", intent.token),
        Side::Sell => format!("Sell {pay} {} for {quote}", intent.token),
    };
    let mut d = vec![
        ("intent".into(), intent.id.clone()),
        ("token".into(), intent.token.clone()),
        ("side".into(), intent.side.as_str().into()),
        ("pay".into(), format!("{pay} {in_sym}")),
        (
            "receive (quoted)".into(),
            format!("{} {out_sym}", amount(prepared.quoted_out, token_out)),
        ),
        (
            "minimum receive".into(),
            format!("{} {out_sym}", amount(prepared.min_out, token_out)),
        ),
        (
            "notional".into(),
            format!("{} {quote}", view.notional.round_dp(6)),
        ),
    ];
    if let Some(px) = view.quoted_price {
        d.push(("quoted price".into(), format!("{} {quote}", px.round_dp(8))));
    }
    d.push((
        "deadline".into(),
        crate::model::time::to_rfc3339(prepared.deadline as i64 * 1000),
    ));
    d.push(("router".into(), format!("{:#x}", acct.router)));
    d.push(("gas limit".into(), gas.to_string()));
    (title, d)
}

impl<R: Router> OnchainVenue<R> {
    /// The browser-signer half of `send_prepared`: the gas budget at the offered fees, the offer journaled
    /// (the intent becomes `offered`: never prepared again), the wallet's answer, then confirmation from the
    /// chain as for a transaction signed here (never replaced: the wallet owns its fees).
    pub(super) fn send_through_wallet(
        &mut self,
        q: Arc<ApprovalQueue>,
        intent: &OrderIntent,
        view: &PlanView,
        prepared: Prepared,
        gas: u64,
        journal: &Journal,
    ) -> Result<Result<Fill, Refused>, VenueError> {
        let fees = self.acct.rt.block_on(self.acct.fees())?;
        if let Err(e) = self.gas_budget(gas, fees.max_fee_per_gas, view.notional) {
            return Ok(Err(e));
        }
        let (from_block, _) = self.acct.rt.block_on(self.acct.head())?;
        let (to, input) = call_of(&prepared.tx);
        let row = OfferRow {
            intent_id: intent.id.clone(),
            account: format!("{:#x}", self.acct.address),
            to: format!("{to:#x}"),
            input: hex(&input),
            from_block,
            deadline: prepared.deadline,
        };
        journal.record_offer(&row, now_ms())?;
        let (title, details) = swap_details(&self.acct, intent, view, &prepared, gas);
        let p = Proposal {
            id: intent.id.clone(),
            intent_id: intent.id.clone(),
            kind: "swap",
            title,
            details,
            // past the deadline the router refuses the call: nothing the wallet sends later can swap
            claimed_limit: (prepared.deadline as i64)
                .saturating_add(self.acct.cfg.receipt_timeout_s as i64)
                .saturating_mul(1000),
        };
        match self
            .acct
            .through_wallet(&q, p, &prepared.tx, gas, &fees, from_block)
        {
            Ok(sent) => {
                let h = format!("{:#x}", sent.hash);
                journal.answer_offer(&intent.id, "sent", Some(&h), None, now_ms())?;
                self.adopt(intent, sent, journal)?;
                self.confirm(intent, journal, view.quoted_price).map(Ok)
            }
            Err((state, why)) => {
                journal.answer_offer(&intent.id, state, None, Some(&why.0), now_ms())?;
                Ok(Err(why))
            }
        }
    }

    /// Journals a wallet's transaction as the intent's (no raw bytes: the wallet has them) and marks it
    /// broadcast, so confirmation and recovery treat it as one signed here.
    fn adopt(
        &mut self,
        intent: &OrderIntent,
        sent: Sent,
        journal: &Journal,
    ) -> Result<(), VenueError> {
        let row = TxRow {
            tx_hash: format!("{:#x}", sent.hash),
            intent_id: intent.id.clone(),
            chain_id: self.acct.cfg.chain_id,
            account: format!("{:#x}", self.acct.address),
            nonce: sent.nonce,
            raw_tx: String::new(),
            state: TxState::Broadcast,
        };
        journal.record_tx(&row, now_ms())?;
        journal.set_state(&intent.id, State::Broadcast, now_ms())?;
        if let Some(t0) = self.started {
            self.stage("to_broadcast", t0.elapsed());
        }
        self.last_broadcast = Some(std::time::Instant::now());
        Ok(())
    }

    /// While a wallet's transaction stays unmined: a speed-up or cancel in the wallet sends another one with
    /// the same nonce, so the chain is searched for the offered call under another hash. True when one was
    /// found and journaled.
    pub(super) fn adopt_resent(
        &mut self,
        intent: &OrderIntent,
        journal: &Journal,
    ) -> Result<bool, VenueError> {
        let Some(o) = journal.offer_of(&intent.id)? else {
            return Ok(false);
        };
        let (to, input) = offered_call(&o)?;
        match self.acct.find_sent(o.from_block, to, &input, None)? {
            Some(s)
                if !journal
                    .txs_of(&intent.id)?
                    .iter()
                    .any(|t| t.tx_hash == format!("{:#x}", s.hash)) =>
            {
                tracing::warn!(
                    "intent {}: the wallet re-sent the swap as {:#x}",
                    intent.id,
                    s.hash
                );
                self.adopt(intent, s, journal)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// After a restart: an intent still `offered` may have been sent by a wallet the whole time. The chain
    /// decides: the offered call found from the account (until a block past the swap's deadline) is confirmed
    /// as the intent's; otherwise the intent is rejected. It is never offered again.
    pub(super) fn recover_offers(&mut self, journal: &Journal) -> Result<Vec<Fill>, VenueError> {
        let mut out = Vec::new();
        for (o, intent) in journal.open_offers()? {
            if !o
                .account
                .eq_ignore_ascii_case(&format!("{:#x}", self.acct.address))
            {
                continue;
            }
            let (to, input) = offered_call(&o)?;
            tracing::warn!(
                "intent {} was offered to the wallet before a stop: looking for it on chain until its deadline",
                intent.id
            );
            match self
                .acct
                .find_sent(o.from_block, to, &input, Some(o.deadline))?
            {
                Some(s) => {
                    let h = format!("{:#x}", s.hash);
                    journal.answer_offer(&intent.id, "sent", Some(&h), None, now_ms())?;
                    self.adopt(&intent, s, journal)?;
                    out.push(self.confirm(&intent, journal, None)?);
                }
                None => {
                    let why = "offered to the wallet before a restart and not sent by its deadline: nothing landed";
                    journal.answer_offer(&intent.id, "unseen", None, Some(why), now_ms())?;
                    let f = self.reject(&intent, why.into());
                    journal.record_outcome_as(&f, State::Rejected, now_ms())?;
                    out.push(f);
                }
            }
        }
        Ok(out)
    }
}

fn offered_call(o: &OfferRow) -> Result<(Address, Vec<u8>), VenueError> {
    let bad =
        |what: &str| VenueError::Setup(format!("journal: offer of {}: bad {what}", o.intent_id));
    let to: Address = o.to.parse().map_err(|_| bad("recipient"))?;
    let input = alloy::hex::decode(&o.input).map_err(|_| bad("call data"))?;
    Ok((to, input))
}
