//! The Uniswap V3 venue (PancakeSwap V3 is the same with its own address table and fee tiers): an intent
//! becomes one `exactInputSingle` on SwapRouter02 inside `multicall(deadline, ...)`, and only after
//! - the executor's own checks pass (kill switch, age, allow-list, notional and daily limits);
//! - every fee tier is quoted on QuoterV2 (an `eth_call`) and the best output chosen;
//! - `amountOutMinimum` is set from that quote and the intent's slippage, and the deadline from the chain
//!   head's timestamp, both inside the transaction;
//! - the exact transaction is simulated (`eth_call` and `eth_estimateGas`; a revert is refused with its reason,
//!   nothing is sent) and its gas fits the budget;
//! - it is signed locally and journaled (raw bytes, hash, nonce) before it is broadcast.
//!
//! The fill comes from the receipt's Transfer logs: what left the account and what arrived, not the quote.
//! Approvals are bounded to the trade's amount (reset to zero first when an allowance is left).

use super::checks::{pre_trade, DayBook};
use super::config::VenueConfig;
use super::units::{from_base_units, to_base_units};
use crate::chain::contracts::{IQuoterV2, ISwapRouter02, IUniswapV3Factory, IERC20};
use crate::execution::journal::{Journal, JournalError, TxRow};
use crate::model::{Fill, FillStatus, OrderIntent, Side};
use alloy::eips::eip2718::Encodable2718;
use alloy::eips::BlockNumberOrTag;
use alloy::network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{aliases::U24, Address, Bytes, B256, U160, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum VenueError {
    #[error("venue set-up: {0}")]
    Setup(String),
    #[error("RPC: {0}")]
    Rpc(String),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

fn rpc(e: impl std::fmt::Display) -> VenueError {
    VenueError::Rpc(e.to_string())
}

/// The reason inside a revert, when the node returned one.
fn revert_reason(e: &alloy::transports::TransportError) -> String {
    if let Some(payload) = e.as_error_resp() {
        if let Some(reason) = payload
            .as_revert_data()
            .and_then(|d| alloy::sol_types::decode_revert_reason(&d))
        {
            return reason;
        }
        return payload.message.to_string();
    }
    e.to_string()
}

/// The same for a contract call's error.
fn contract_reason(e: &alloy::contract::Error) -> String {
    match e {
        alloy::contract::Error::TransportError(t) => revert_reason(t),
        other => other.to_string(),
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A swap worked out for an intent.
#[derive(Clone, Debug)]
struct Plan {
    token_in: Address,
    token_out: Address,
    amount_in: U256,
    /// The trade's size in the quote token, for the limits and the gas budget.
    notional: Decimal,
    slippage_bps: Decimal,
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

pub struct UniswapV3Venue {
    cfg: VenueConfig,
    provider: DynProvider,
    broadcast: DynProvider,
    rt: tokio::runtime::Runtime,
    wallet: EthereumWallet,
    pub account: Address,
    factory: Address,
    router: Address,
    quoter: Address,
    weth: Address,
    quote: Address,
    tokens: HashMap<String, Address>,
    decimals: HashMap<Address, u8>,
    pub book: DayBook,
    /// When the last swap was handed to the node (benchmarks time intent-to-broadcast with it).
    pub last_broadcast: Option<Instant>,
    /// For the 1inch venue: its API (swaps are routed there, the rest is the same path).
    aggregator: Option<super::oneinch::OneInch>,
    /// Tokens whose round trip passed in this process (checked again after a restart).
    safe_tokens: std::collections::HashSet<Address>,
}

fn parse_addr(s: &str, what: &str) -> Result<Address, VenueError> {
    s.parse()
        .map_err(|_| VenueError::Setup(format!("{what} {s:?} is not an address")))
}

impl UniswapV3Venue {
    /// Connects and verifies the set-up before anything is traded: the chain id, code at every pinned
    /// contract, and the router's `factory()` and `WETH9()` as configured.
    pub fn connect(
        cfg: VenueConfig,
        rpc_url: &str,
        signer: PrivateKeySigner,
    ) -> Result<Self, VenueError> {
        crate::ingest::http::install_tls();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| VenueError::Setup(e.to_string()))?;
        let url = |u: &str| {
            u.parse()
                .map_err(|_| VenueError::Setup(format!("RPC URL {u:?} is not a URL")))
        };
        let provider = ProviderBuilder::new().connect_http(url(rpc_url)?).erased();
        let broadcast = match &cfg.private_rpc_url {
            Some(p) if !p.is_empty() => ProviderBuilder::new().connect_http(url(p)?).erased(),
            _ => provider.clone(),
        };
        let account = signer.address();
        let c = &cfg.contracts;
        let factory = parse_addr(&c.factory, "factory")?;
        let router = parse_addr(&c.router, "router")?;
        let quoter = parse_addr(&c.quoter, "quoter")?;
        let weth = parse_addr(&c.weth, "weth")?;
        let quote = parse_addr(&cfg.quote.address, "quote token")?;
        let mut tokens = HashMap::new();
        for (sym, a) in &cfg.tokens {
            tokens.insert(sym.clone(), parse_addr(a, sym)?);
        }
        let mut venue = UniswapV3Venue {
            cfg,
            provider,
            broadcast,
            rt,
            wallet: EthereumWallet::from(signer),
            account,
            factory,
            router,
            quoter,
            weth,
            quote,
            tokens,
            decimals: HashMap::new(),
            book: DayBook::default(),
            last_broadcast: None,
            aggregator: None,
            safe_tokens: Default::default(),
        };
        if venue.cfg.venue == super::config::Dex::Oneinch {
            let base = std::env::var("ONEINCH_BASE_URL")
                .ok()
                .or(venue.cfg.oneinch_base_url.clone())
                .unwrap_or_else(|| super::oneinch::DEFAULT_BASE_URL.to_string());
            venue.aggregator = Some(
                super::oneinch::OneInch::from_env(&base, venue.cfg.chain_id)
                    .map_err(VenueError::Setup)?,
            );
        }
        venue.verify()?;
        Ok(venue)
    }

    fn verify(&mut self) -> Result<(), VenueError> {
        let p = &self.provider;
        let (chain, router_factory, router_weth) = self.rt.block_on(async {
            let chain = p.get_chain_id().await.map_err(rpc)?;
            for (name, a) in [
                ("factory", self.factory),
                ("router", self.router),
                ("quoter", self.quoter),
                ("weth", self.weth),
            ] {
                if p.get_code_at(a).await.map_err(rpc)?.is_empty() {
                    return Err(VenueError::Setup(format!(
                        "no contract at the {name} address {a}"
                    )));
                }
            }
            if self.aggregator.is_some() {
                // 1inch's router has no factory(): its spender is checked against the pin below
                return Ok((chain, self.factory, self.weth));
            }
            let r = ISwapRouter02::new(self.router, p);
            Ok((
                chain,
                r.factory().call().await.map_err(rpc)?,
                r.WETH9().call().await.map_err(rpc)?,
            ))
        })?;
        if let Some(agg) = &self.aggregator {
            let spender = agg
                .spender()
                .map_err(|e| VenueError::Setup(e.to_string()))?;
            if spender != self.router {
                return Err(VenueError::Setup(format!(
                    "1inch names {spender} as its spender, not the pinned router {}",
                    self.router
                )));
            }
        }
        if chain != self.cfg.chain_id {
            return Err(VenueError::Setup(format!(
                "the node is on chain {chain}, the venue is configured for {}",
                self.cfg.chain_id
            )));
        }
        if router_factory != self.factory || router_weth != self.weth {
            return Err(VenueError::Setup(format!(
                "the router answers factory {router_factory} and WETH9 {router_weth}, configured {} and {}",
                self.factory, self.weth
            )));
        }
        let all: Vec<Address> = self
            .tokens
            .values()
            .copied()
            .chain([self.quote, self.weth])
            .collect();
        for a in all {
            let d = self.rt.block_on(async {
                IERC20::new(a, &self.provider)
                    .decimals()
                    .call()
                    .await
                    .map_err(rpc)
            })?;
            self.decimals.insert(a, d);
        }
        Ok(())
    }

    pub fn name(&self) -> &'static str {
        self.cfg.venue.name()
    }

    fn dec(&self, a: Address) -> u8 {
        self.decimals.get(&a).copied().unwrap_or(18)
    }

    fn reject(&self, intent: &OrderIntent, reason: String) -> Fill {
        Fill::refusal(
            &intent.id,
            self.name(),
            &intent.token,
            intent.side,
            reason,
            now_ms(),
        )
    }

    fn plan(&self, intent: &OrderIntent) -> Result<Plan, String> {
        let token = *self
            .tokens
            .get(&intent.token)
            .ok_or_else(|| format!("{} is not on the venue's token allow-list", intent.token))?;
        let slippage_bps = if intent.max_slippage_bps > Decimal::ZERO {
            intent.max_slippage_bps
        } else {
            self.cfg.default_slippage_bps
        };
        match intent.side {
            Side::Buy => {
                let notional = intent
                    .notional
                    .filter(|n| *n > Decimal::ZERO)
                    .ok_or("a buy intent needs a positive notional")?;
                let amount_in = to_base_units(notional, self.dec(self.quote))
                    .filter(|a| !a.is_zero())
                    .ok_or("the notional is below one unit of the quote token")?;
                Ok(Plan {
                    token_in: self.quote,
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
                let amount_in = to_base_units(qty, self.dec(token))
                    .filter(|a| !a.is_zero())
                    .ok_or("the quantity is below one unit of the token")?;
                Ok(Plan {
                    token_in: token,
                    token_out: self.quote,
                    amount_in,
                    notional: qty * intent.reference_price,
                    slippage_bps,
                })
            }
        }
    }

    /// Quotes every configured fee tier whose pool exists; the best output and its tier.
    pub fn best_quote(
        &self,
        token_in: Address,
        token_out: Address,
        amount_in: U256,
    ) -> Result<(u32, U256), String> {
        self.rt.block_on(async {
            let f = IUniswapV3Factory::new(self.factory, &self.provider);
            let q = IQuoterV2::new(self.quoter, &self.provider);
            let mut best: Option<(u32, U256)> = None;
            let mut tried = Vec::new();
            for fee in self.cfg.fee_tiers() {
                let pool = f
                    .getPool(token_in, token_out, U24::from(fee))
                    .call()
                    .await
                    .map_err(|e| format!("factory.getPool: {e}"))?;
                if pool.is_zero() {
                    continue;
                }
                let params = IQuoterV2::QuoteExactInputSingleParams {
                    tokenIn: token_in,
                    tokenOut: token_out,
                    amountIn: amount_in,
                    fee: U24::from(fee),
                    sqrtPriceLimitX96: U160::ZERO,
                };
                match q.quoteExactInputSingle(params).call().await {
                    Ok(r) => {
                        tried.push(format!("{fee}: {}", r.amountOut));
                        if best.is_none_or(|(_, b)| r.amountOut > b) {
                            best = Some((fee, r.amountOut));
                        }
                    }
                    Err(e) => tried.push(format!("{fee}: {}", contract_reason(&e))),
                }
            }
            tracing::debug!("quotes by fee tier: {}", tried.join(", "));
            best.filter(|(_, out)| !out.is_zero()).ok_or_else(|| {
                format!(
                    "no pool quotes {token_in} -> {token_out} (tiers tried: {})",
                    if tried.is_empty() {
                        "none exists".to_string()
                    } else {
                        tried.join(", ")
                    }
                )
            })
        })
    }

    async fn head(&self) -> Result<(u64, u64), VenueError> {
        let b = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .map_err(rpc)?
            .ok_or_else(|| VenueError::Rpc("the node has no latest block".into()))?;
        Ok((b.header.number, b.header.timestamp))
    }

    /// The swap transaction for a plan: `multicall(deadline, [exactInputSingle])` with the minimum inside.
    pub fn prepare(
        &self,
        token_in: Address,
        token_out: Address,
        amount_in: U256,
        slippage_bps: Decimal,
        deadline_override: Option<u64>,
        min_out_override: Option<U256>,
    ) -> Result<Prepared, String> {
        let (fee, quoted) = self.best_quote(token_in, token_out, amount_in)?;
        let bps = to_base_units(
            slippage_bps.max(Decimal::ZERO).min(Decimal::from(10_000)),
            0,
        )
        .unwrap_or_default();
        let min_out = min_out_override
            .unwrap_or(quoted * (U256::from(10_000u64) - bps) / U256::from(10_000u64));
        let (_, head_ts) = self.rt.block_on(self.head()).map_err(|e| e.to_string())?;
        let deadline = deadline_override.unwrap_or(head_ts + self.cfg.deadline_s);
        let native_in = self.cfg.quote.native && token_in == self.weth;
        let native_out = self.cfg.quote.native && token_out == self.weth;
        // native out: the router keeps the WETH (address(2) means "the router") and unwraps it to us
        let recipient = if native_out {
            Address::with_last_byte(2)
        } else {
            self.account
        };
        let inner = ISwapRouter02::exactInputSingleCall {
            params: ISwapRouter02::ExactInputSingleParams {
                tokenIn: token_in,
                tokenOut: token_out,
                fee: U24::from(fee),
                recipient,
                amountIn: amount_in,
                amountOutMinimum: min_out,
                sqrtPriceLimitX96: U160::ZERO,
            },
        }
        .abi_encode();
        let mut calls = vec![Bytes::from(inner)];
        if native_out {
            calls.push(Bytes::from(
                ISwapRouter02::unwrapWETH9Call {
                    amountMinimum: min_out,
                    recipient: self.account,
                }
                .abi_encode(),
            ));
        }
        let data = ISwapRouter02::multicallCall {
            deadline: U256::from(deadline),
            data: calls,
        }
        .abi_encode();
        // native in: the router wraps exactly the value it is sent, never more than the trade's input
        let value = if native_in { amount_in } else { U256::ZERO };
        let tx = TransactionRequest::default()
            .with_from(self.account)
            .with_to(self.router)
            .with_input(Bytes::from(data))
            .with_value(value);
        Ok(Prepared {
            tx,
            fee_tier: fee,
            quoted_out: quoted,
            min_out,
            deadline,
        })
    }

    /// The 1inch route for a plan, accepted only if it goes to the pinned router and sends no native value (the
    /// input is always a token here).
    fn prepare_oneinch(&self, plan: &Plan) -> Result<Prepared, String> {
        let Some(agg) = &self.aggregator else {
            return Err("no 1inch client".into());
        };
        let pct = (plan.slippage_bps / Decimal::from(100))
            .normalize()
            .to_string();
        let s = agg
            .swap(
                plan.token_in,
                plan.token_out,
                plan.amount_in,
                self.account,
                &pct,
            )
            .map_err(|e| e.to_string())?;
        if s.to != self.router {
            return Err(format!(
                "1inch returned a transaction to {}, not the allow-listed router {}; refused",
                s.to, self.router
            ));
        }
        if !s.value.is_zero() {
            return Err(format!(
                "1inch asked to send {} wei of native value with a token swap; refused",
                s.value
            ));
        }
        let tx = TransactionRequest::default()
            .with_from(self.account)
            .with_to(self.router)
            .with_input(s.data)
            .with_value(U256::ZERO);
        Ok(Prepared {
            tx,
            fee_tier: 0,
            quoted_out: s.dst_amount,
            min_out: U256::ZERO,
            deadline: 0,
        })
    }

    /// `eth_call` then `eth_estimateGas` of the exact transaction; the gas limit with 20% headroom.
    pub fn simulate(&self, tx: &TransactionRequest) -> Result<u64, String> {
        self.rt.block_on(async {
            self.provider
                .call(tx.clone())
                .await
                .map_err(|e| format!("simulation reverted: {}", revert_reason(&e)))?;
            let gas = self
                .provider
                .estimate_gas(tx.clone())
                .await
                .map_err(|e| format!("gas estimate failed: {}", revert_reason(&e)))?;
            Ok(gas.saturating_mul(12) / 10)
        })
    }

    /// EIP-1559 fees from the last 10 blocks: priority = the median of their `priority_fee_percentile`th
    /// priority fees (at least 1 wei), max fee = twice the next block's base fee plus the priority (room for
    /// six full blocks of base-fee growth).
    async fn fees(&self) -> Result<alloy::eips::eip1559::Eip1559Estimation, VenueError> {
        let pct = self.cfg.priority_fee_percentile.clamp(0.0, 100.0);
        let h = self
            .provider
            .get_fee_history(10, BlockNumberOrTag::Latest, &[pct])
            .await
            .map_err(rpc)?;
        let mut rewards: Vec<u128> = h
            .reward
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter_map(|r| r.first().copied())
            .collect();
        rewards.sort_unstable();
        let prio = rewards.get(rewards.len() / 2).copied().unwrap_or(1).max(1);
        let base = h
            .next_block_base_fee()
            .or_else(|| h.latest_block_base_fee())
            .unwrap_or(0);
        Ok(alloy::eips::eip1559::Eip1559Estimation {
            max_fee_per_gas: 2 * base + prio,
            max_priority_fee_per_gas: prio,
        })
    }

    /// Signs with the next nonce and EIP-1559 fees from the node's fee history; returns the envelope's bytes,
    /// hash and nonce.
    fn sign(
        &self,
        tx: TransactionRequest,
        gas: u64,
    ) -> Result<(Vec<u8>, B256, u64, u128), VenueError> {
        self.rt.block_on(async {
            let nonce = self
                .provider
                .get_transaction_count(self.account)
                .pending()
                .await
                .map_err(rpc)?;
            let fees = self.fees().await?;
            let env = tx
                .with_nonce(nonce)
                .with_chain_id(self.cfg.chain_id)
                .with_gas_limit(gas)
                .with_max_fee_per_gas(fees.max_fee_per_gas)
                .with_max_priority_fee_per_gas(fees.max_priority_fee_per_gas)
                .build(&self.wallet)
                .await
                .map_err(|e| VenueError::Rpc(format!("signing failed: {e}")))?;
            Ok((
                env.encoded_2718(),
                *env.tx_hash(),
                nonce,
                fees.max_fee_per_gas,
            ))
        })
    }

    fn send_raw(&self, raw: &[u8]) -> Result<(), String> {
        self.rt.block_on(async {
            match self.broadcast.send_raw_transaction(raw).await {
                Ok(_) => Ok(()),
                // a rebroadcast of what the node already has is fine
                Err(e) if e.to_string().contains("already known") => Ok(()),
                Err(e) => Err(revert_reason(&e)),
            }
        })
    }

    /// Waits for the receipt with the configured confirmations; None on timeout.
    fn wait(&self, hash: B256) -> Result<Option<TransactionReceipt>, VenueError> {
        Ok(self.wait_any(&[hash])?.map(|(_, rc)| rc))
    }

    /// Waits for a receipt of any of `hashes` (a transaction and its replacements) with the configured
    /// confirmations; None on timeout.
    fn wait_any(&self, hashes: &[B256]) -> Result<Option<(B256, TransactionReceipt)>, VenueError> {
        let deadline = Instant::now() + Duration::from_secs(self.cfg.receipt_timeout_s);
        // first look at once (a local or fast chain has it already), then back off to a quarter second
        let mut pause = Duration::from_millis(5);
        loop {
            let found = self.rt.block_on(async {
                let head = self.provider.get_block_number().await.map_err(rpc)?;
                for h in hashes {
                    if let Some(rc) = self
                        .provider
                        .get_transaction_receipt(*h)
                        .await
                        .map_err(rpc)?
                    {
                        let block = rc.block_number.unwrap_or(head);
                        if head + 1 >= block + self.cfg.confirmations {
                            return Ok::<_, VenueError>(Some((*h, rc)));
                        }
                    }
                }
                Ok(None)
            });
            // a node that errors or times out is asked again; a receipt that disappears (a reorg) is simply not
            // found yet: the transaction re-mines, or stays pending and is replaced
            let found = found.unwrap_or_else(|e| {
                tracing::warn!("receipt lookup failed, retrying: {e}");
                None
            });
            if found.is_some() {
                return Ok(found);
            }
            if Instant::now() > deadline {
                return Ok(None);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }

    /// Sends a plain transaction (an approval) and waits for it.
    fn send_and_wait(&self, what: &str, tx: TransactionRequest) -> Result<(), String> {
        let gas = self.simulate(&tx)?;
        let (raw, hash, _, _) = self.sign(tx, gas).map_err(|e| e.to_string())?;
        self.send_raw(&raw)?;
        match self.wait(hash).map_err(|e| e.to_string())? {
            Some(rc) if rc.status() => Ok(()),
            Some(_) => Err(format!("{what} {hash} reverted")),
            None => Err(format!("{what} {hash} not mined within the timeout")),
        }
    }

    /// Allowance for the router of exactly what this trade needs (reset to zero first if some is left, as
    /// USDT-like tokens require).
    pub fn ensure_allowance(&self, token: Address, amount: U256) -> Result<(), String> {
        let erc = IERC20::new(token, &self.provider);
        let current = self
            .rt
            .block_on(async { erc.allowance(self.account, self.router).call().await })
            .map_err(|e| e.to_string())?;
        if current >= amount {
            return Ok(());
        }
        let approve = |v: U256| {
            TransactionRequest::default()
                .with_from(self.account)
                .with_to(token)
                .with_input(Bytes::from(
                    IERC20::approveCall {
                        spender: self.router,
                        amount: v,
                    }
                    .abi_encode(),
                ))
        };
        if !current.is_zero() {
            self.send_and_wait("approval reset", approve(U256::ZERO))?;
        }
        self.send_and_wait("approval", approve(amount))
    }

    /// The price of one whole native coin in the quote token (1 when the quote is WETH itself).
    fn native_price(&self) -> Option<Decimal> {
        if self.quote == self.weth {
            return Some(Decimal::ONE);
        }
        let one = to_base_units(Decimal::ONE, self.dec(self.weth))?;
        let (_, out) = self.best_quote(self.weth, self.quote, one).ok()?;
        from_base_units(out, self.dec(self.quote))
    }

    /// Executes one claimed intent to its outcome, journaling each step. The returned fill is journaled.
    pub fn execute(&mut self, intent: &OrderIntent, journal: &Journal) -> Result<Fill, VenueError> {
        let fill = match self.try_execute(intent, journal)? {
            Ok(f) => f,
            Err(reason) => {
                let f = self.reject(intent, reason);
                journal.record_outcome_as(&f, "rejected", now_ms())?;
                f
            }
        };
        Ok(fill)
    }

    fn try_execute(
        &mut self,
        intent: &OrderIntent,
        journal: &Journal,
    ) -> Result<Result<Fill, String>, VenueError> {
        let plan = match self.plan(intent) {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        if let Err(e) = pre_trade(
            intent,
            plan.notional,
            &self.cfg.limits,
            self.tokens.contains_key(&intent.token),
            &mut self.book,
            now_ms(),
        ) {
            return Ok(Err(e));
        }
        let prepared = if self.aggregator.is_some() {
            match self.prepare_oneinch(&plan) {
                Ok(p) => p,
                Err(e) => return Ok(Err(e)),
            }
        } else {
            let p = match self.prepare(
                plan.token_in,
                plan.token_out,
                plan.amount_in,
                plan.slippage_bps,
                None,
                None,
            ) {
                Ok(p) => p,
                Err(e) => return Ok(Err(e)),
            };
            if let Err(e) = self.market_check(&plan, &p) {
                return Ok(Err(e));
            }
            if intent.side == Side::Buy && !self.safe_tokens.contains(&plan.token_out) {
                if let Err(e) = self.token_safety(&plan, &p) {
                    return Ok(Err(format!("token safety: {e}")));
                }
                self.safe_tokens.insert(plan.token_out);
            }
            p
        };
        // the approval only once the trade is known to be worth making (none for the native coin)
        let native_in = self.cfg.quote.native && plan.token_in == self.weth;
        if !native_in {
            if let Err(e) = self.ensure_allowance(plan.token_in, plan.amount_in) {
                return Ok(Err(e));
            }
        }
        self.send_prepared(intent, &plan_view(&plan), prepared, journal)
    }

    /// The simulated round trip before a token's first buy (see `token_safety`).
    fn token_safety(&self, plan: &Plan, prepared: &Prepared) -> Result<(), String> {
        use super::token_safety::{judge, round_trip};
        let half = prepared.quoted_out / U256::from(2u8);
        let (_, quoted_sell) = self.best_quote(plan.token_out, plan.token_in, half)?;
        let rt = round_trip(
            self.account,
            self.router,
            plan.token_in,
            plan.token_out,
            prepared.fee_tier,
            plan.amount_in,
            prepared.quoted_out,
            quoted_sell,
            prepared.deadline,
            self.cfg.quote.native && plan.token_in == self.weth,
        );
        let calls: Vec<serde_json::Value> = rt
            .calls
            .iter()
            .enumerate()
            .map(|(i, (to, data))| {
                let mut c = serde_json::json!({"from": format!("{:#x}", self.account), "to": format!("{to:#x}"), "data": data.to_string()});
                if i == 2 && !rt.buy_value.is_zero() {
                    c["value"] = format!("{:#x}", rt.buy_value).into();
                }
                c
            })
            .collect();
        let payload =
            serde_json::json!({"blockStateCalls": [{"calls": calls}], "validation": false});
        let result: serde_json::Value = self
            .rt
            .block_on(
                self.provider
                    .raw_request("eth_simulateV1".into(), (payload, "latest")),
            )
            .map_err(|e| {
                format!("the node cannot simulate the round trip (eth_simulateV1): {e}")
            })?;
        let r = judge(&rt, &result)?;
        let limit = self.cfg.limits.max_token_tax_bps;
        for (what, tax) in [
            ("buy", r.buy_tax_bps),
            ("transfer", r.transfer_tax_bps),
            ("sell", r.sell_tax_bps),
        ] {
            if tax > limit {
                return Err(format!(
                    "{what} tax {tax} bps is over the limit of {limit} bps"
                ));
            }
        }
        tracing::info!(
            "token {}: round trip passed (buy tax {} bps, transfer {} bps, sell {} bps)",
            plan.token_out,
            r.buy_tax_bps,
            r.transfer_tax_bps,
            r.sell_tax_bps
        );
        Ok(())
    }

    /// The pool must hold at least the liquidity floor of the quote token, and the trade's price impact (its
    /// output per unit against a tiny trade's, the pool fee cancelling out) must stay within the slippage bound.
    fn market_check(&self, plan: &Plan, prepared: &Prepared) -> Result<(), String> {
        let floor = self.cfg.limits.min_pool_liquidity;
        if floor > Decimal::ZERO {
            let held = self.rt.block_on(async {
                let pool = IUniswapV3Factory::new(self.factory, &self.provider)
                    .getPool(plan.token_in, plan.token_out, U24::from(prepared.fee_tier))
                    .call()
                    .await
                    .map_err(|e| e.to_string())?;
                IERC20::new(self.quote, &self.provider)
                    .balanceOf(pool)
                    .call()
                    .await
                    .map_err(|e| e.to_string())
            })?;
            let held = from_base_units(held, self.dec(self.quote)).unwrap_or_default();
            if held < floor {
                return Err(format!(
                    "the pool holds {held} {} of liquidity, under the floor of {floor}",
                    self.cfg.quote.symbol
                ));
            }
        }
        let tiny_in = (plan.amount_in / U256::from(10_000u64)).max(U256::from(1u8));
        let (_, tiny_out) = self.best_quote(plan.token_in, plan.token_out, tiny_in)?;
        // impact = 1 - (out / in) / (tiny_out / tiny_in), in basis points, in integers
        let lhs = prepared.quoted_out * tiny_in * U256::from(10_000u64);
        let rhs = tiny_out * plan.amount_in;
        let impact_bps = if rhs.is_zero() || lhs >= rhs * U256::from(10_000u64) {
            Decimal::ZERO
        } else {
            Decimal::from(10_000) - from_base_units(lhs / rhs, 0).unwrap_or_default()
        };
        if impact_bps > plan.slippage_bps {
            return Err(format!(
                "price impact {impact_bps} bps at this size is over the slippage bound of {} bps",
                plan.slippage_bps
            ));
        }
        Ok(())
    }

    /// Simulates, checks the gas budget, signs, journals, broadcasts and confirms a prepared swap.
    pub fn send_prepared(
        &mut self,
        intent: &OrderIntent,
        plan: &PlanView,
        prepared: Prepared,
        journal: &Journal,
    ) -> Result<Result<Fill, String>, VenueError> {
        let gas = match self.simulate(&prepared.tx) {
            Ok(g) => g,
            Err(e) => return Ok(Err(e)),
        };
        journal.set_state(&intent.id, "simulated", now_ms())?;
        let (raw, hash, nonce, max_fee) = self.sign(prepared.tx.clone(), gas)?;
        let native = self.native_price();
        let worst_gas =
            from_base_units(U256::from(gas) * U256::from(max_fee), 18).unwrap_or_default();
        match native {
            Some(px) => {
                let budget = plan.notional * self.cfg.gas_budget_bps / Decimal::from(10_000);
                if worst_gas * px > budget {
                    return Ok(Err(format!(
                        "gas budget: up to {} in gas (gas {gas} x max fee {max_fee} wei) is over {} bps of the notional",
                        (worst_gas * px).round_dp(6),
                        self.cfg.gas_budget_bps
                    )));
                }
            }
            None => {
                return Ok(Err(
                    "cannot price gas in the quote token: no WETH pool quotes it".into(),
                ))
            }
        }
        let row = TxRow {
            tx_hash: format!("{hash:#x}"),
            intent_id: intent.id.clone(),
            chain_id: self.cfg.chain_id,
            account: format!("{:#x}", self.account),
            nonce,
            raw_tx: alloy::hex::encode(&raw),
            state: "signed".into(),
        };
        journal.record_tx(&row, now_ms())?;
        if std::env::var("HYPEFLOW_FAULT").as_deref() == Ok("after-journal") {
            // a test hook: die the hardest way between journaling and broadcast
            let _ = std::process::Command::new("kill")
                .args(["-9", &std::process::id().to_string()])
                .status();
            std::thread::sleep(Duration::from_secs(5));
        }
        if let Err(e) = self.send_raw(&raw) {
            // nothing went out: the nonce is still free, the intent is refused
            journal.set_tx_state(&row.tx_hash, "not-sent", now_ms())?;
            return Ok(Err(format!("broadcast refused: {e}")));
        }
        self.last_broadcast = Some(Instant::now());
        journal.set_tx_state(&row.tx_hash, "broadcast", now_ms())?;
        journal.set_state(&intent.id, "broadcast", now_ms())?;
        self.confirm(intent, journal).map(Ok)
    }

    /// Re-signs a journaled transaction with the same nonce and call and fees up 12.5% (at least what the node
    /// now estimates), journals it, then broadcasts it: the node keeps whichever of the two pays more.
    fn replace(&self, row: &TxRow, journal: &Journal) -> Result<(), VenueError> {
        use alloy::consensus::Transaction;
        use alloy::eips::eip2718::Decodable2718;
        let raw = alloy::hex::decode(&row.raw_tx)
            .map_err(|e| VenueError::Setup(format!("journal: raw tx of {}: {e}", row.tx_hash)))?;
        let old = alloy::consensus::TxEnvelope::decode_2718(&mut raw.as_slice()).map_err(|e| {
            VenueError::Setup(format!("journal: tx {} does not decode: {e}", row.tx_hash))
        })?;
        let bump = |v: u128| v + v.div_ceil(8);
        let (est_max, est_prio) = self
            .rt
            .block_on(self.fees())
            .map(|f| (f.max_fee_per_gas, f.max_priority_fee_per_gas))?;
        let prio = bump(old.max_priority_fee_per_gas().unwrap_or(0)).max(est_prio);
        let max = bump(old.max_fee_per_gas()).max(est_max).max(prio);
        let mut tx = TransactionRequest::default()
            .with_from(self.account)
            .with_input(old.input().clone())
            .with_value(old.value())
            .with_nonce(old.nonce())
            .with_chain_id(self.cfg.chain_id)
            .with_gas_limit(old.gas_limit())
            .with_max_fee_per_gas(max)
            .with_max_priority_fee_per_gas(prio);
        if let Some(to) = old.to() {
            tx = tx.with_to(to);
        }
        let env = self
            .rt
            .block_on(tx.build(&self.wallet))
            .map_err(|e| VenueError::Rpc(format!("signing the replacement failed: {e}")))?;
        let new = TxRow {
            tx_hash: format!("{:#x}", env.tx_hash()),
            raw_tx: alloy::hex::encode(env.encoded_2718()),
            state: "signed".into(),
            ..row.clone()
        };
        journal.record_tx(&new, now_ms())?;
        tracing::warn!(
            "{} not mined within {} s: replaced by {} (nonce {}, max fee {max}, priority {prio})",
            row.tx_hash,
            self.cfg.receipt_timeout_s,
            new.tx_hash,
            new.nonce
        );
        match self.send_raw(&env.encoded_2718()) {
            Ok(()) => journal.set_tx_state(&new.tx_hash, "broadcast", now_ms())?,
            // e.g. the original was mined meanwhile ("nonce too low"): the next wait finds its receipt
            Err(e) => {
                tracing::warn!("replacement {} not accepted: {e}", new.tx_hash);
                journal.set_tx_state(&new.tx_hash, "not-sent", now_ms())?
            }
        }
        journal.set_state(&row.intent_id, "broadcast", now_ms())?;
        Ok(())
    }

    /// Waits for a broadcast swap (or one of its replacements) and records its outcome. A transaction that
    /// stays pending is replaced with higher fees up to `max_replacements` times, then waited for: its nonce
    /// holds the account's next trade anyway, and giving up would leave a swap that may still land.
    fn confirm(&mut self, intent: &OrderIntent, journal: &Journal) -> Result<Fill, VenueError> {
        let mut replaced = 0;
        let (hash, rc) = loop {
            let rows: Vec<TxRow> = journal
                .txs_of(&intent.id)?
                .into_iter()
                .filter(|t| t.state == "broadcast" || t.state == "signed")
                .collect();
            let hashes: Vec<B256> = rows.iter().filter_map(|t| t.tx_hash.parse().ok()).collect();
            if let Some(found) = self.wait_any(&hashes)? {
                break found;
            }
            match rows.last() {
                Some(last) if replaced < self.cfg.max_replacements => {
                    self.replace(last, journal)?;
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
            if t.tx_hash != key && t.state != "not-sent" {
                journal.set_tx_state(&t.tx_hash, "replaced", now_ms())?;
            }
        }
        if !rc.status() {
            journal.set_tx_state(&key, "failed", now_ms())?;
            let mut f = self.reject(intent, format!("transaction {key} reverted on chain"));
            f.tx_hash = Some(key);
            journal.record_outcome_as(&f, "failed", now_ms())?;
            return Ok(f);
        }
        let f = self.fill_from_receipt(intent, &rc)?;
        journal.set_tx_state(&key, "confirmed", now_ms())?;
        journal.record_outcome_as(&f, "filled", now_ms())?;
        self.book.add(&f);
        Ok(f)
    }

    fn fill_from_receipt(
        &self,
        intent: &OrderIntent,
        rc: &TransactionReceipt,
    ) -> Result<Fill, VenueError> {
        let token = self.tokens.get(&intent.token).copied().unwrap_or_default();
        let (token_in, token_out) = match intent.side {
            Side::Buy => (self.quote, token),
            Side::Sell => (token, self.quote),
        };
        // with the native coin, the router wraps what we sent and pays the pool, or takes the pool's WETH and
        // unwraps it to us: its WETH transfers are ours
        let native = self.cfg.quote.native;
        let payer = if native && token_in == self.weth {
            self.router
        } else {
            self.account
        };
        let receiver = if native && token_out == self.weth {
            self.router
        } else {
            self.account
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
        let paid_d = from_base_units(paid, self.dec(token_in)).unwrap_or_default();
        let got_d = from_base_units(got, self.dec(token_out)).unwrap_or_default();
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
        let fee = self
            .native_price()
            .map(|p| (gas_native * p).round_dp(8))
            .unwrap_or_default();
        let block_ts = self.rt.block_on(async {
            let b = match rc.block_number {
                Some(n) => self
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
            venue: self.name().into(),
            token: intent.token.clone(),
            side: intent.side,
            quantity,
            price,
            fee,
            gas: gas_native,
            tx_hash: Some(format!("{:#x}", rc.transaction_hash)),
            status: FillStatus::Filled,
            reason: format!(
                "block {} gas {} ({} native); paid {paid_d} received {got_d}",
                rc.block_number.unwrap_or_default(),
                rc.gas_used,
                gas_native
            ),
            fill_time: block_ts.unwrap_or_else(now_ms),
        })
    }

    /// After a restart: every journaled transaction not yet resolved is settled against the chain: a receipt
    /// by its hash decides it; a nonce the chain has used by another transaction makes it failed; otherwise the
    /// same signed bytes are broadcast again. No new swap is ever signed for such an intent.
    pub fn recover(&mut self, journal: &Journal) -> Result<Vec<Fill>, VenueError> {
        let mut out = Vec::new();
        for (row, intent) in journal.unresolved_txs()? {
            if row.chain_id != self.cfg.chain_id {
                continue;
            }
            let hash: B256 = row
                .tx_hash
                .parse()
                .map_err(|_| VenueError::Setup(format!("journal: bad hash {}", row.tx_hash)))?;
            let (receipt, used) = self.rt.block_on(async {
                let rc = self
                    .provider
                    .get_transaction_receipt(hash)
                    .await
                    .map_err(rpc)?;
                let used = self
                    .provider
                    .get_transaction_count(self.account)
                    .await
                    .map_err(rpc)?;
                Ok::<_, VenueError>((rc, used))
            })?;
            if receipt.is_none() && used > row.nonce {
                // the nonce went to another transaction (a replacement, or one sent from elsewhere)
                journal.set_tx_state(&row.tx_hash, "replaced", now_ms())?;
                if journal
                    .txs_of(&intent.id)?
                    .iter()
                    .all(|t| t.state == "replaced" || t.state == "not-sent")
                {
                    let f = self.reject(
                        &intent,
                        format!(
                            "nonce {} was used by another transaction; this swap never landed",
                            row.nonce
                        ),
                    );
                    journal.record_outcome_as(&f, "failed", now_ms())?;
                    out.push(f);
                }
                continue;
            }
            if receipt.is_none() {
                let raw = alloy::hex::decode(&row.raw_tx).map_err(|e| {
                    VenueError::Setup(format!("journal: raw tx of {}: {e}", row.tx_hash))
                })?;
                if let Err(e) = self.send_raw(&raw) {
                    tracing::warn!("rebroadcast of {} failed: {e}", row.tx_hash);
                }
                journal.set_tx_state(&row.tx_hash, "broadcast", now_ms())?;
                journal.set_state(&intent.id, "broadcast", now_ms())?;
            }
            out.push(self.confirm(&intent, journal)?);
        }
        Ok(out)
    }
}

/// What `send_prepared` needs to know of the plan.
#[derive(Clone, Debug)]
pub struct PlanView {
    pub notional: Decimal,
}

fn plan_view(p: &Plan) -> PlanView {
    PlanView {
        notional: p.notional,
    }
}
