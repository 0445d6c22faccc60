//! The path every on-chain venue shares once its router has turned an intent into a transaction: the
//! executor's own checks before (kill switch, age, allow-list, notional and daily limits), then simulation, the
//! gas budget, signing, the journal entry before broadcast, confirmation (with replacement of a stuck
//! transaction), the fill read from the receipt's Transfer logs, and recovery from the journal after a restart.
//! What differs between venues is behind `Router`: a venue is a router file plus one line in `connect`.

use super::account::{now_ms, rpc, Account, Signing};
use super::checks::{pre_trade, DayBook};
use super::preflight::simulate_as_approved;
use super::units::{from_base_units, to_base_units};
use crate::chain::contracts::IERC20;
use crate::execution::journal::{Journal, State, TxRow, TxState};
use crate::execution::venue::{drift_guard, Refused, Venue, VenueError, Wallet};
use crate::model::{Fill, FillStatus, OrderIntent, Side};
use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use rust_decimal::Decimal;
#[cfg(feature = "test-hooks")]
use std::time::Duration;
use std::time::Instant;

/// What a venue's router does: check its contracts at start, turn a plan into a transaction (with its own
/// market checks), and price the native coin in the quote token for the gas budget and fees.
pub trait Router {
    fn name(&self) -> &'static str;
    /// Checks the router's pinned contracts against the chain before anything is traded.
    fn verify(&mut self, acct: &Account) -> Result<(), VenueError>;
    /// The transaction for a plan, or why the trade is refused; nothing is signed here.
    fn prepare(&mut self, acct: &Account, plan: &Plan) -> Result<Prepared, Refused>;
    /// One whole native coin in the quote token; None when it cannot be priced.
    fn native_price(&self, acct: &Account) -> Option<Decimal>;
}

/// A swap worked out for an intent.
#[derive(Clone, Debug)]
pub struct Plan {
    pub token_in: Address,
    pub token_out: Address,
    pub amount_in: U256,
    /// The trade's size in the quote token, for the limits and the gas budget.
    pub notional: Decimal,
    pub slippage_bps: Decimal,
}

/// A transaction ready to sign.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub tx: TransactionRequest,
    pub fee_tier: u32,
    pub quoted_out: U256,
    pub min_out: U256,
    pub deadline: u64,
}

/// An on-chain venue: an account and a router.
pub struct OnchainVenue<R: Router> {
    pub acct: Account,
    pub router: R,
    pub book: DayBook,
    /// When the last swap was handed to the node (benchmarks time intent-to-broadcast with it).
    pub last_broadcast: Option<Instant>,
    /// When the venue took the intent in hand (the start of the to-broadcast stage).
    pub(super) started: Option<Instant>,
}

impl<R: Router> OnchainVenue<R> {
    /// Checks the router against the chain; nothing is traded before this passes.
    pub fn new(acct: Account, mut router: R) -> Result<Self, VenueError> {
        router.verify(&acct)?;
        Ok(OnchainVenue {
            acct,
            router,
            book: DayBook::default(),
            last_broadcast: None,
            started: None,
        })
    }

    /// One on-chain stage's latency into `hypeflow_execution_latency_seconds`.
    pub(super) fn stage(&self, stage: &'static str, took: std::time::Duration) {
        metrics::histogram!(crate::telemetry::names::EXECUTION_LATENCY, "venue" => self.router.name(), "stage" => stage)
            .record(took.as_secs_f64());
    }

    /// Allowance for the router of exactly `amount` of `token` (see `Account::ensure_allowance`).
    pub fn ensure_allowance(&self, token: Address, amount: U256) -> Result<(), Refused> {
        self.acct.ensure_allowance(token, amount, None)
    }

    pub(super) fn reject(&self, intent: &OrderIntent, reason: String) -> Fill {
        Fill::refusal(
            &intent.id,
            self.router.name(),
            &intent.token,
            intent.side,
            reason,
            now_ms(),
        )
    }

    fn plan(&self, intent: &OrderIntent) -> Result<Plan, Refused> {
        let a = &self.acct;
        let token = *a.tokens.get(&intent.token).ok_or_else(|| {
            Refused(format!(
                "{} is not on the venue's token allow-list",
                intent.token
            ))
        })?;
        // the intent's bound as written: 0 means no slippage at all, never "use a default"
        let slippage_bps = intent.max_slippage_bps;
        match intent.side {
            Side::Buy => {
                let notional = intent
                    .notional
                    .filter(|n| *n > Decimal::ZERO)
                    .ok_or("a buy intent needs a positive notional")?;
                let amount_in = to_base_units(notional, a.dec(a.quote))
                    .filter(|a| !a.is_zero())
                    .ok_or("the notional is below one unit of the quote token")?;
                Ok(Plan {
                    token_in: a.quote,
                    token_out: token,
                    amount_in,
                    notional,
                    slippage_bps,
                })
            }
            Side::Sell => {
                let qty = intent
                    .quantity
                    .filter(|q| *q > Decimal::ZERO)
                    .ok_or("a sell intent needs a positive quantity")?;
                let amount_in = to_base_units(qty, a.dec(token))
                    .filter(|a| !a.is_zero())
                    .ok_or("the quantity is below one unit of the token")?;
                Ok(Plan {
                    token_in: token,
                    token_out: a.quote,
                    amount_in,
                    notional: qty * intent.reference_price,
                    slippage_bps,
                })
            }
        }
    }

    /// Executes one claimed intent to its outcome, journaling each step. The returned fill is journaled.
    fn execute_claimed(
        &mut self,
        intent: &OrderIntent,
        journal: &Journal,
    ) -> Result<Fill, VenueError> {
        self.started = Some(Instant::now());
        let fill = match self.try_execute(intent, journal)? {
            Ok(f) => f,
            Err(reason) => {
                let f = self.reject(intent, reason.0);
                journal.record_outcome_as(&f, State::Rejected, now_ms())?;
                f
            }
        };
        Ok(fill)
    }

    fn try_execute(
        &mut self,
        intent: &OrderIntent,
        journal: &Journal,
    ) -> Result<Result<Fill, Refused>, VenueError> {
        let plan = match self.plan(intent) {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        // the node answers before anything else is asked of it: an unreachable node is the venue failing
        // (counted by the executor's error-rate breaker), not a trade refused on its merits
        self.acct.rt.block_on(self.acct.head())?;
        if let Err(e) = pre_trade(
            intent,
            plan.notional,
            &self.acct.cfg.limits,
            self.acct.tokens.contains_key(&intent.token),
            &mut self.book,
            now_ms(),
        ) {
            return Ok(Err(e));
        }
        let prepared = match self.router.prepare(&self.acct, &plan) {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        let quoted = self.quoted_price(intent.side, &plan, &prepared);
        if intent.side == Side::Buy {
            if let Err(e) = drift_guard(intent, quoted) {
                return Ok(Err(e));
            }
        }
        // the approval only once the trade is known to be worth making and the swap, run as if approved,
        // passes (none for the native coin)
        if !self.acct.native_in(plan.token_in)
            && !self.acct.allowance_covers(plan.token_in, plan.amount_in)?
        {
            if let Err(e) =
                simulate_as_approved(&self.acct, &prepared.tx, plan.token_in, plan.amount_in)
            {
                return Ok(Err(e));
            }
            if let Err(e) =
                self.acct
                    .ensure_allowance(plan.token_in, plan.amount_in, Some(&intent.id))
            {
                return Ok(Err(e));
            }
        }
        let view = PlanView {
            notional: plan.notional,
            quoted_price: quoted,
            plan: Some(plan),
        };
        self.send_prepared(intent, &view, prepared, journal)
    }

    /// The router's price for the plan, in the quote token per token: what the fill is judged against.
    fn quoted_price(&self, side: Side, plan: &Plan, prepared: &Prepared) -> Option<Decimal> {
        let a = &self.acct;
        let sent = from_base_units(plan.amount_in, a.dec(plan.token_in))?;
        let got = from_base_units(prepared.quoted_out, a.dec(plan.token_out))?;
        if sent <= Decimal::ZERO || got <= Decimal::ZERO {
            return None;
        }
        Some(match side {
            Side::Buy => sent / got,
            Side::Sell => got / sent,
        })
    }

    /// Simulates, checks the gas budget, signs, journals, broadcasts and confirms a prepared swap.
    pub fn send_prepared(
        &mut self,
        intent: &OrderIntent,
        plan: &PlanView,
        prepared: Prepared,
        journal: &Journal,
    ) -> Result<Result<Fill, Refused>, VenueError> {
        let gas = match self.acct.simulate(&prepared.tx) {
            Ok(g) => g,
            Err(e) => return Ok(Err(e)),
        };
        journal.set_state(&intent.id, State::Simulated, now_ms())?;
        if let Signing::Browser(q) = &self.acct.signing {
            let q = q.clone();
            return self.send_through_wallet(q, intent, plan, prepared, gas, journal);
        }
        let (raw, hash, nonce, max_fee) = self.acct.sign(prepared.tx.clone(), gas)?;
        if let Err(e) = self.gas_budget(gas, max_fee, plan.notional) {
            return Ok(Err(e));
        }
        let row = TxRow {
            tx_hash: format!("{hash:#x}"),
            intent_id: intent.id.clone(),
            chain_id: self.acct.cfg.chain_id,
            account: format!("{:#x}", self.acct.address),
            nonce,
            raw_tx: alloy::hex::encode(&raw),
            state: TxState::Signed,
        };
        journal.record_tx(&row, now_ms())?;
        #[cfg(feature = "test-hooks")]
        if std::env::var("HYPEFLOW_FAULT").as_deref() == Ok("after-journal") {
            // a test hook, built only with the `test-hooks` feature: die the hardest way between journaling
            // and broadcast
            let _ = std::process::Command::new("kill")
                .args(["-9", &std::process::id().to_string()])
                .status();
            std::thread::sleep(Duration::from_secs(5));
        }
        if let Err(e) = self.acct.send_raw(&raw) {
            // nothing went out: the nonce is still free, the intent is refused
            journal.set_tx_state(&row.tx_hash, TxState::NotSent, now_ms())?;
            return Ok(Err(Refused(format!("broadcast refused: {e}"))));
        }
        let sent = Instant::now();
        self.last_broadcast = Some(sent);
        if let Some(t0) = self.started {
            self.stage("to_broadcast", sent.duration_since(t0));
        }
        journal.set_tx_state(&row.tx_hash, TxState::Broadcast, now_ms())?;
        journal.set_state(&intent.id, State::Broadcast, now_ms())?;
        self.confirm(intent, journal, plan.quoted_price).map(Ok)
    }

    /// Gas limit x max fee, priced in the quote token, within `gas_budget_bps` of the notional.
    pub(super) fn gas_budget(
        &self,
        gas: u64,
        max_fee: u128,
        notional: Decimal,
    ) -> Result<(), Refused> {
        let worst_gas =
            from_base_units(U256::from(gas) * U256::from(max_fee), 18).unwrap_or_default();
        let px = self
            .router
            .native_price(&self.acct)
            .ok_or("cannot price gas in the quote token: no WETH pool quotes it")?;
        let budget = notional * self.acct.cfg.gas_budget_bps / Decimal::from(10_000);
        if worst_gas * px > budget {
            return Err(Refused(format!(
                "gas budget: up to {} in gas (gas {gas} x max fee {max_fee} wei) is over {} bps of the notional",
                (worst_gas * px).round_dp(6),
                self.acct.cfg.gas_budget_bps
            )));
        }
        Ok(())
    }

    /// Waits for a broadcast swap (or one of its replacements) and records its outcome. A transaction that
    /// stays pending is replaced with higher fees up to `max_replacements` times, then waited for: its nonce
    /// holds the account's next trade anyway, and giving up would leave a swap that may still land.
    pub(super) fn confirm(
        &mut self,
        intent: &OrderIntent,
        journal: &Journal,
        quoted: Option<Decimal>,
    ) -> Result<Fill, VenueError> {
        let mut replaced = 0;
        let (hash, rc) = loop {
            let rows: Vec<TxRow> = journal
                .txs_of(&intent.id)?
                .into_iter()
                .filter(|t| t.state == TxState::Broadcast || t.state == TxState::Signed)
                .collect();
            let hashes: Vec<B256> = rows.iter().filter_map(|t| t.tx_hash.parse().ok()).collect();
            if let Some(found) = self.acct.wait_any(&hashes)? {
                break found;
            }
            match rows.last() {
                // a wallet's transaction (no raw bytes here) is never re-signed: the wallet owns its fees,
                // and a speed-up in the wallet is found by its call
                Some(last) if last.raw_tx.is_empty() => {
                    if !self.adopt_resent(intent, journal)? {
                        tracing::warn!(
                            "intent {}: the wallet's transaction is not mined yet; still waiting",
                            intent.id
                        );
                    }
                }
                Some(last) if replaced < self.acct.cfg.max_replacements => {
                    self.acct.replace(last, journal)?;
                    replaced += 1;
                }
                _ => tracing::error!(
                    "intent {}: none of {} transactions mined after {replaced} replacements; still waiting",
                    intent.id,
                    hashes.len()
                ),
            }
        };
        let key = format!("{hash:#x}");
        for t in journal.txs_of(&intent.id)? {
            if t.tx_hash != key && t.state != TxState::NotSent {
                journal.set_tx_state(&t.tx_hash, TxState::Replaced, now_ms())?;
            }
        }
        if !rc.status() {
            journal.set_tx_state(&key, TxState::Failed, now_ms())?;
            let mut f = self.reject(intent, format!("transaction {key} reverted on chain"));
            f.tx_hash = Some(key);
            journal.record_outcome_as(&f, State::Failed, now_ms())?;
            return Ok(f);
        }
        if let Some(sent) = self.last_broadcast {
            self.stage("broadcast_to_confirmed", sent.elapsed());
        }
        let mut f = self.fill_from_receipt(intent, &rc)?;
        f.quoted_price = quoted;
        journal.set_tx_state(&key, TxState::Confirmed, now_ms())?;
        journal.record_outcome_as(&f, State::Filled, now_ms())?;
        self.book.add(&f);
        Ok(f)
    }

    fn fill_from_receipt(
        &self,
        intent: &OrderIntent,
        rc: &TransactionReceipt,
    ) -> Result<Fill, VenueError> {
        let token = self
            .acct
            .tokens
            .get(&intent.token)
            .copied()
            .unwrap_or_default();
        let (token_in, token_out) = match intent.side {
            Side::Buy => (self.acct.quote, token),
            Side::Sell => (token, self.acct.quote),
        };
        // with the native coin, the router wraps what we sent and pays the pool, or takes the pool's WETH and
        // unwraps it to us: its WETH transfers are ours
        let native = self.acct.cfg.quote.native;
        let payer = if native && token_in == self.acct.weth {
            self.acct.router
        } else {
            self.acct.address
        };
        let receiver = if native && token_out == self.acct.weth {
            self.acct.router
        } else {
            self.acct.address
        };
        let (mut paid, mut got) = (U256::ZERO, U256::ZERO);
        for log in rc.inner.logs() {
            if let Ok(t) = log.log_decode::<IERC20::Transfer>() {
                let (addr, ev) = (t.inner.address, &t.inner.data);
                if addr == token_in && ev.from == payer {
                    paid += ev.value;
                }
                if addr == token_out && ev.to == receiver {
                    got += ev.value;
                }
            }
        }
        let paid_d = from_base_units(paid, self.acct.dec(token_in)).unwrap_or_default();
        let got_d = from_base_units(got, self.acct.dec(token_out)).unwrap_or_default();
        let (quantity, quote_amount) = match intent.side {
            Side::Buy => (got_d, paid_d),
            Side::Sell => (paid_d, got_d),
        };
        let price = if quantity > Decimal::ZERO {
            (quote_amount / quantity).round_dp(12)
        } else {
            Decimal::ZERO
        };
        let gas_native = from_base_units(
            U256::from(rc.gas_used) * U256::from(rc.effective_gas_price),
            18,
        )
        .unwrap_or_default();
        // Fill convention (as the fill model's): `fee` and `gas` are both in the quote token and counted once
        // each. The pool's fee is inside the execution price, so `fee` is zero; `gas` is the gas paid, priced
        // in the quote token (the native amount is in the reason).
        let gas_quote = self.router.native_price(&self.acct).map(|p| gas_native * p);
        let block_ts = self.acct.rt.block_on(async {
            let b = match rc.block_number {
                Some(n) => self
                    .acct
                    .provider
                    .get_block_by_number(BlockNumberOrTag::Number(n))
                    .await
                    .ok()
                    .flatten(),
                None => None,
            };
            b.map(|b| b.header.timestamp as i64 * 1000)
        });
        Ok(Fill {
            intent_id: intent.id.clone(),
            venue: self.router.name().into(),
            token: intent.token.clone(),
            side: intent.side,
            quantity,
            price,
            fee: Decimal::ZERO,
            gas: gas_quote.unwrap_or_default(),
            tx_hash: Some(format!("{:#x}", rc.transaction_hash)),
            status: FillStatus::Filled,
            reason: format!(
                "block {} gas {} ({} native{}); paid {paid_d} received {got_d}",
                rc.block_number.unwrap_or_default(),
                rc.gas_used,
                gas_native,
                if gas_quote.is_some() {
                    ""
                } else {
                    ", not priced in the quote token: no pool quotes it"
                }
            ),
            fill_time: block_ts.unwrap_or_else(now_ms),
            quoted_price: None,
        })
    }

    /// After a restart: every journaled transaction not yet resolved is settled against the chain: a receipt
    /// by its hash decides it; a nonce the chain has used by another transaction makes it failed; otherwise the
    /// same signed bytes are broadcast again. No new swap is ever signed for such an intent.
    fn recover_txs(&mut self, journal: &Journal) -> Result<Vec<Fill>, VenueError> {
        let mut out = Vec::new();
        for (row, intent) in journal.unresolved_txs()? {
            if row.chain_id != self.acct.cfg.chain_id {
                continue;
            }
            let hash: B256 = row
                .tx_hash
                .parse()
                .map_err(|_| VenueError::Setup(format!("journal: bad hash {}", row.tx_hash)))?;
            let (receipt, used) = self.acct.rt.block_on(async {
                let rc = self
                    .acct
                    .provider
                    .get_transaction_receipt(hash)
                    .await
                    .map_err(rpc)?;
                let used = self
                    .acct
                    .provider
                    .get_transaction_count(self.acct.address)
                    .await
                    .map_err(rpc)?;
                Ok::<_, VenueError>((rc, used))
            })?;
            if receipt.is_none() && used > row.nonce {
                // the nonce went to another transaction (a replacement, or one sent from elsewhere)
                journal.set_tx_state(&row.tx_hash, TxState::Replaced, now_ms())?;
                // a wallet's speed-up carries the same call under another hash
                if row.raw_tx.is_empty() && self.adopt_resent(&intent, journal)? {
                    out.push(self.confirm(&intent, journal, None)?);
                    continue;
                }
                if journal
                    .txs_of(&intent.id)?
                    .iter()
                    .all(|t| t.state == TxState::Replaced || t.state == TxState::NotSent)
                {
                    let f = self.reject(
                        &intent,
                        format!(
                            "nonce {} was used by another transaction; this swap never landed",
                            row.nonce
                        ),
                    );
                    journal.record_outcome_as(&f, State::Failed, now_ms())?;
                    out.push(f);
                }
                continue;
            }
            if receipt.is_none() && row.raw_tx.is_empty() {
                // a wallet's transaction: only the wallet can send it again; wait for it
                journal.set_state(&intent.id, State::Broadcast, now_ms())?;
            } else if receipt.is_none() {
                let raw = alloy::hex::decode(&row.raw_tx).map_err(|e| {
                    VenueError::Setup(format!("journal: raw tx of {}: {e}", row.tx_hash))
                })?;
                if let Err(e) = self.acct.send_raw(&raw) {
                    tracing::warn!("rebroadcast of {} failed: {e}", row.tx_hash);
                }
                journal.set_tx_state(&row.tx_hash, TxState::Broadcast, now_ms())?;
                journal.set_state(&intent.id, State::Broadcast, now_ms())?;
            }
            // the quote of a swap signed before the stop was not journaled: its fill has none
            out.push(self.confirm(&intent, journal, None)?);
        }
        Ok(out)
    }
}

impl<R: Router> Venue for OnchainVenue<R> {
    fn name(&self) -> &str {
        self.router.name()
    }

    /// The day's limits are rebuilt from every fill in the journal (a sell's loss needs the cost of a buy made
    /// days before), then every transaction signed before a stop is settled on chain (never signed again).
    fn recover(&mut self, journal: &Journal) -> Result<Vec<Fill>, VenueError> {
        self.book = DayBook::rebuild(journal.outcomes_since(i64::MIN)?, now_ms());
        let mut out = self.recover_txs(journal)?;
        out.extend(self.recover_offers(journal)?);
        Ok(out)
    }

    fn refresh(&mut self) -> Result<(), VenueError> {
        Ok(())
    }

    /// `balanceOf` of every allow-listed token and the native balance, at the chain's head.
    fn holdings(&mut self) -> Result<Option<Wallet>, VenueError> {
        let a = &self.acct;
        let native =
            a.rt.block_on(async { a.provider.get_balance(a.address).await })
                .map_err(rpc)?;
        let mut out = std::collections::BTreeMap::new();
        for (symbol, token) in &a.tokens {
            let erc = IERC20::new(*token, &a.provider);
            let raw =
                a.rt.block_on(async { erc.balanceOf(a.address).call().await })
                    .map_err(rpc)?;
            out.insert(
                symbol.clone(),
                from_base_units(raw, a.dec(*token)).unwrap_or_default(),
            );
        }
        Ok(Some(Wallet {
            tokens: out,
            native: from_base_units(native, 18).unwrap_or_default(),
            native_floor: a.cfg.limits.min_native_balance,
        }))
    }

    fn execute(&mut self, intent: &OrderIntent, journal: &Journal) -> Result<Fill, VenueError> {
        self.execute_claimed(intent, journal)
    }
}

/// What `send_prepared` needs to know of the plan.
#[derive(Clone, Debug)]
pub struct PlanView {
    pub notional: Decimal,
    /// The router's quote, kept on the fill.
    pub quoted_price: Option<Decimal>,
    /// The plan itself, for what a browser wallet is shown (amounts and tokens).
    pub plan: Option<Plan>,
}
