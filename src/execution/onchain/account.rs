//! One account on one chain, and what every on-chain venue does with it the same way: read the head, simulate
//! a transaction exactly, price EIP-1559 fees from the node's fee history, sign locally, broadcast (to the
//! private endpoint when one is set), wait for confirmations, approve the router for exactly a trade's amount,
//! and replace a stuck transaction. alloy is async; the executor is a thread, so the account owns a small tokio
//! runtime and blocks on it.

use super::config::VenueConfig;
use crate::chain::contracts::IERC20;
use crate::execution::approval::ApprovalQueue;
use crate::execution::journal::{Journal, State, TxRow, TxState};
use crate::execution::venue::Refused;
use crate::execution::venue::VenueError;
use alloy::eips::eip2718::Encodable2718;
use alloy::eips::BlockNumberOrTag;
use alloy::network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) fn rpc(e: impl std::fmt::Display) -> VenueError {
    VenueError::Rpc(e.to_string())
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The reason inside a revert, when the node returned one.
pub(crate) fn revert_reason(e: &alloy::transports::TransportError) -> String {
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
pub(crate) fn contract_reason(e: &alloy::contract::Error) -> String {
    match e {
        alloy::contract::Error::TransportError(t) => revert_reason(t),
        other => other.to_string(),
    }
}

/// A pinned address from the venue file, or a set-up error naming which one is wrong.
pub(crate) fn parse_addr(s: &str, what: &str) -> Result<Address, VenueError> {
    s.parse()
        .map_err(|_| VenueError::Setup(format!("{what} {s:?} is not an address")))
}

/// Who signs: a key the executor holds, or the user's browser wallet, through the dashboard's approval queue
/// (the executor then holds no key and never signs).
pub enum Signing {
    Local(EthereumWallet),
    Browser(Arc<ApprovalQueue>),
}

impl From<PrivateKeySigner> for Signing {
    fn from(k: PrivateKeySigner) -> Self {
        Signing::Local(EthereumWallet::from(k))
    }
}

impl Signing {
    /// The account that signs: the key's, or the one the wallet must connect.
    pub fn address(&self) -> Address {
        match self {
            Signing::Local(w) => {
                alloy::network::NetworkWallet::<alloy::network::Ethereum>::default_signer_address(w)
            }
            Signing::Browser(q) => q.account,
        }
    }
}

fn no_key() -> VenueError {
    VenueError::Setup("with --signer browser the executor holds no key: the wallet signs".into())
}

pub struct Account {
    pub cfg: VenueConfig,
    pub provider: DynProvider,
    broadcast: DynProvider,
    pub rt: tokio::runtime::Runtime,
    pub(super) signing: Signing,
    pub address: Address,
    /// The allow-listed router: every swap goes to it, every approval is for it.
    pub router: Address,
    pub weth: Address,
    pub quote: Address,
    /// The allow-listed tokens by symbol.
    pub tokens: HashMap<String, Address>,
    decimals: HashMap<Address, u8>,
}

impl Account {
    /// Connects to the node (and the private broadcast endpoint, if any) and checks what every venue needs:
    /// the chain id, and code at every pinned contract; reads every token's decimals.
    pub fn connect(cfg: VenueConfig, rpc_url: &str, signing: Signing) -> Result<Self, VenueError> {
        crate::net::install_tls();
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
        let mut tokens = HashMap::new();
        for (sym, a) in &cfg.tokens {
            tokens.insert(sym.clone(), parse_addr(a, sym)?);
        }
        let mut acct = Account {
            router: parse_addr(&cfg.contracts.router, "router")?,
            weth: parse_addr(&cfg.contracts.weth, "weth")?,
            quote: parse_addr(&cfg.quote.address, "quote token")?,
            address: signing.address(),
            signing,
            cfg,
            provider,
            broadcast,
            rt,
            tokens,
            decimals: HashMap::new(),
        };
        let pinned = [
            (
                "factory",
                parse_addr(&acct.cfg.contracts.factory, "factory")?,
            ),
            ("router", acct.router),
            ("quoter", parse_addr(&acct.cfg.contracts.quoter, "quoter")?),
            ("weth", acct.weth),
        ];
        acct.verify(&pinned)?;
        Ok(acct)
    }

    fn verify(&mut self, pinned: &[(&str, Address)]) -> Result<(), VenueError> {
        let p = &self.provider;
        let chain = self.rt.block_on(async {
            let chain = p.get_chain_id().await.map_err(rpc)?;
            for (name, a) in pinned {
                if p.get_code_at(*a).await.map_err(rpc)?.is_empty() {
                    return Err(VenueError::Setup(format!(
                        "no contract at the {name} address {a}"
                    )));
                }
            }
            Ok(chain)
        })?;
        if chain != self.cfg.chain_id {
            return Err(VenueError::Setup(format!(
                "the node is on chain {chain}, the venue is configured for {}",
                self.cfg.chain_id
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

    /// A token's decimals as the chain answered at start (18 for one never asked about).
    pub fn dec(&self, a: Address) -> u8 {
        self.decimals.get(&a).copied().unwrap_or(18)
    }

    /// Whether the trade pays in the native coin (the router wraps it).
    pub fn native_in(&self, token_in: Address) -> bool {
        self.cfg.quote.native && token_in == self.weth
    }

    /// Whether the trade is paid out in the native coin (the router unwraps it).
    pub fn native_out(&self, token_out: Address) -> bool {
        self.cfg.quote.native && token_out == self.weth
    }

    pub async fn head(&self) -> Result<(u64, u64), VenueError> {
        let b = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .map_err(rpc)?
            .ok_or_else(|| VenueError::Rpc("the node has no latest block".into()))?;
        Ok((b.header.number, b.header.timestamp))
    }

    /// `eth_call` then `eth_estimateGas` of the exact transaction; the gas limit with 20% headroom.
    pub fn simulate(&self, tx: &TransactionRequest) -> Result<u64, Refused> {
        self.rt.block_on(async {
            self.provider
                .call(tx.clone())
                .await
                .map_err(|e| Refused(format!("simulation reverted: {}", revert_reason(&e))))?;
            let gas = self
                .provider
                .estimate_gas(tx.clone())
                .await
                .map_err(|e| Refused(format!("gas estimate failed: {}", revert_reason(&e))))?;
            Ok(gas.saturating_mul(12) / 10)
        })
    }

    /// EIP-1559 fees from the last 10 blocks: priority = the median of their `priority_fee_percentile`th
    /// priority fees (at least 1 wei), max fee = twice the next block's base fee plus the priority (room for
    /// six full blocks of base-fee growth).
    pub async fn fees(&self) -> Result<alloy::eips::eip1559::Eip1559Estimation, VenueError> {
        let pct = self.cfg.priority_fee_percentile;
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
    pub fn sign(
        &self,
        tx: TransactionRequest,
        gas: u64,
    ) -> Result<(Vec<u8>, B256, u64, u128), VenueError> {
        let Signing::Local(wallet) = &self.signing else {
            return Err(no_key());
        };
        self.rt.block_on(async {
            let nonce = self
                .provider
                .get_transaction_count(self.address)
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
                .build(wallet)
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

    pub fn send_raw(&self, raw: &[u8]) -> Result<(), Refused> {
        self.rt.block_on(async {
            match self.broadcast.send_raw_transaction(raw).await {
                Ok(_) => Ok(()),
                // a rebroadcast of what the node already has is fine
                Err(e) if e.to_string().contains("already known") => Ok(()),
                Err(e) => Err(Refused(revert_reason(&e))),
            }
        })
    }

    /// Waits for the receipt with the configured confirmations; None on timeout.
    pub fn wait(&self, hash: B256) -> Result<Option<TransactionReceipt>, VenueError> {
        Ok(self.wait_any(&[hash])?.map(|(_, rc)| rc))
    }

    /// Waits for a receipt of any of `hashes` (a transaction and its replacements) with the configured
    /// confirmations; None on timeout.
    pub fn wait_any(
        &self,
        hashes: &[B256],
    ) -> Result<Option<(B256, TransactionReceipt)>, VenueError> {
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

    /// Sends a plain transaction (an approval), signed here or by the wallet, and waits for it.
    fn send_and_wait(
        &self,
        what: &str,
        tx: TransactionRequest,
        intent: Option<&str>,
    ) -> Result<(), Refused> {
        let gas = self.simulate(&tx)?;
        let hash = match &self.signing {
            Signing::Local(_) => {
                let (raw, hash, _, _) = self.sign(tx, gas).map_err(|e| Refused(e.to_string()))?;
                self.send_raw(&raw)?;
                hash
            }
            Signing::Browser(q) => self.allowance_through_wallet(q, what, &tx, gas, intent)?,
        };
        match self.wait(hash).map_err(|e| Refused(e.to_string()))? {
            Some(rc) if rc.status() => Ok(()),
            Some(_) => Err(Refused(format!("{what} {hash} reverted"))),
            None => Err(Refused(format!(
                "{what} {hash} not mined within the timeout"
            ))),
        }
    }

    /// Whether the router may already spend `amount` of `token`.
    pub fn allowance_covers(&self, token: Address, amount: U256) -> Result<bool, VenueError> {
        let erc = IERC20::new(token, &self.provider);
        let current = self
            .rt
            .block_on(async { erc.allowance(self.address, self.router).call().await })
            .map_err(rpc)?;
        Ok(current >= amount)
    }

    /// Allowance for the router of exactly what this trade needs (reset to zero first if some is left, as
    /// USDT-like tokens require). `intent` names the trade it is for on the wallet's approval queue.
    pub fn ensure_allowance(
        &self,
        token: Address,
        amount: U256,
        intent: Option<&str>,
    ) -> Result<(), Refused> {
        let erc = IERC20::new(token, &self.provider);
        let current = self
            .rt
            .block_on(async { erc.allowance(self.address, self.router).call().await })
            .map_err(|e| Refused(e.to_string()))?;
        if current >= amount {
            return Ok(());
        }
        let approve = |v: U256| {
            TransactionRequest::default()
                .with_from(self.address)
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
            self.send_and_wait("approval reset", approve(U256::ZERO), intent)?;
        }
        self.send_and_wait("approval", approve(amount), intent)
    }

    /// Re-signs a journaled transaction with the same nonce and call and fees up 12.5% (at least what the node
    /// now estimates), journals it, then broadcasts it: the node keeps whichever of the two pays more.
    pub fn replace(&self, row: &TxRow, journal: &Journal) -> Result<(), VenueError> {
        use alloy::consensus::Transaction;
        use alloy::eips::eip2718::Decodable2718;
        let Signing::Local(wallet) = &self.signing else {
            return Err(no_key());
        };
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
            .with_from(self.address)
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
            .block_on(tx.build(wallet))
            .map_err(|e| VenueError::Rpc(format!("signing the replacement failed: {e}")))?;
        let new = TxRow {
            tx_hash: format!("{:#x}", env.tx_hash()),
            raw_tx: alloy::hex::encode(env.encoded_2718()),
            state: TxState::Signed,
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
            Ok(()) => journal.set_tx_state(&new.tx_hash, TxState::Broadcast, now_ms())?,
            // e.g. the original was mined meanwhile ("nonce too low"): the next wait finds its receipt
            Err(e) => {
                tracing::warn!("replacement {} not accepted: {e}", new.tx_hash);
                journal.set_tx_state(&new.tx_hash, TxState::NotSent, now_ms())?
            }
        }
        journal.set_state(&row.intent_id, State::Broadcast, now_ms())?;
        Ok(())
    }
}
