//! The on-chain venue's configuration (`venues/*.toml`): chain, pinned contract addresses, the quote token and
//! the allow-listed tokens, confirmation depth, deadline, gas budget, and the executor's own limits. Everything
//! that can move money is checked again here whatever the pipeline decided; unknown keys are errors.

use crate::model::money::lenient;
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Dex {
    UniswapV3,
    PancakeswapV3,
    /// 1inch's aggregation router; the Uniswap contracts of the chain still price gas.
    #[serde(rename = "1inch")]
    Oneinch,
}

impl Dex {
    pub fn name(self) -> &'static str {
        match self {
            Dex::UniswapV3 => "uniswap-v3",
            Dex::PancakeswapV3 => "pancakeswap-v3",
            Dex::Oneinch => "1inch",
        }
    }

    /// The fee tiers each factory enables at deployment (Uniswap's 100 came later by governance).
    pub fn default_fee_tiers(self) -> Vec<u32> {
        match self {
            Dex::UniswapV3 => vec![100, 500, 3000, 10000],
            Dex::PancakeswapV3 => vec![100, 500, 2500, 10000],
            Dex::Oneinch => vec![100, 500, 3000, 10000],
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contracts {
    pub factory: String,
    /// SwapRouter02 (Uniswap) or SmartRouter (PancakeSwap): same `exactInputSingle` and `multicall(deadline, ...)`;
    /// for 1inch, its AggregationRouterV6 (every transaction the API returns must go there).
    pub router: String,
    pub quoter: String,
    /// WETH9 / WBNB: what the router's `WETH9()` must return.
    pub weth: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuoteToken {
    pub symbol: String,
    pub address: String,
    /// With the quote token = `contracts.weth`: pay and receive the native coin (ETH, BNB), the router wrapping
    /// on the way in and unwrapping on the way out inside the same transaction.
    #[serde(default)]
    pub native: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest notional (in the quote token) of one trade.
    #[serde(deserialize_with = "lenient")]
    pub max_notional_per_trade: Decimal,
    /// Largest total notional traded in a UTC day.
    #[serde(deserialize_with = "lenient")]
    pub max_notional_per_day: Decimal,
    /// Realized loss in a UTC day after which no new trade is made.
    #[serde(deserialize_with = "lenient")]
    pub max_daily_loss: Decimal,
    /// Intents older than this (decision time to receipt) are refused: the market has moved on.
    #[serde(default = "default_max_age")]
    pub max_intent_age_s: u64,
    /// While this file exists, every new intent is refused.
    pub kill_switch_file: Option<PathBuf>,
    /// A pool holding less of the quote token than this is not traded against (0 = no floor).
    #[serde(default, deserialize_with = "lenient")]
    pub min_pool_liquidity: Decimal,
    /// The highest buy, sell or transfer tax (basis points) a token may take, measured by a simulated round trip
    /// before its first buy.
    #[serde(default = "default_max_tax", deserialize_with = "lenient")]
    pub max_token_tax_bps: Decimal,
}

fn default_max_tax() -> Decimal {
    Decimal::from(100)
}

fn default_max_age() -> u64 {
    300
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VenueConfig {
    pub venue: Dex,
    pub chain_id: u64,
    /// Reads and simulation (or RPC_URL).
    pub rpc_url: Option<String>,
    /// Only `eth_sendRawTransaction` goes here (e.g. Flashbots Protect), when set.
    pub private_rpc_url: Option<String>,
    #[serde(default = "default_confirmations")]
    pub confirmations: u64,
    /// Deadline = the chain head's timestamp + this.
    #[serde(default = "default_deadline")]
    pub deadline_s: u64,
    /// How long a broadcast transaction may stay unmined before it is replaced with higher fees.
    #[serde(default = "default_receipt_timeout")]
    pub receipt_timeout_s: u64,
    /// Replacements (same nonce, same call, fees up 12.5%) of a stuck transaction before only waiting.
    #[serde(default = "default_replacements")]
    pub max_replacements: u32,
    /// Fee tiers to quote (default: the venue's).
    pub fee_tiers: Option<Vec<u32>>,
    /// Gas limit x max fee must stay under this many basis points of the trade's notional.
    #[serde(default = "default_gas_budget", deserialize_with = "lenient")]
    pub gas_budget_bps: Decimal,
    /// The priority fee: this percentile of the priority fees paid in the last 10 blocks (eth_feeHistory).
    #[serde(default = "default_priority_percentile")]
    pub priority_fee_percentile: f64,
    /// Slippage used when an intent names none, in basis points.
    #[serde(default = "default_slippage", deserialize_with = "lenient")]
    pub default_slippage_bps: Decimal,
    pub contracts: Contracts,
    /// 1inch API root (or ONEINCH_BASE_URL); the key is ONEINCH_API_KEY.
    pub oneinch_base_url: Option<String>,
    pub quote: QuoteToken,
    /// The allow-list: symbol = token address. Anything else is refused.
    pub tokens: BTreeMap<String, String>,
    pub limits: Limits,
}

fn default_priority_percentile() -> f64 {
    20.0
}
fn default_confirmations() -> u64 {
    1
}
fn default_deadline() -> u64 {
    120
}
fn default_receipt_timeout() -> u64 {
    120
}
fn default_replacements() -> u32 {
    3
}
fn default_gas_budget() -> Decimal {
    Decimal::from(100)
}
fn default_slippage() -> Decimal {
    Decimal::from(50)
}

impl VenueConfig {
    pub fn parse(text: &str, origin: &str) -> Result<Self, String> {
        let c: VenueConfig = toml::from_str(text).map_err(|e| format!("{origin}: {e}"))?;
        if c.tokens.is_empty() {
            return Err(format!("{origin}: [tokens] allows no token"));
        }
        if c.limits.max_notional_per_trade <= Decimal::ZERO
            || c.limits.max_notional_per_day <= Decimal::ZERO
        {
            return Err(format!("{origin}: [limits] notionals must be positive"));
        }
        if c.quote.native && !c.quote.address.eq_ignore_ascii_case(&c.contracts.weth) {
            return Err(format!(
                "{origin}: [quote] native = true needs the quote token to be contracts.weth"
            ));
        }
        if c.confirmations == 0 {
            return Err(format!("{origin}: confirmations must be at least 1"));
        }
        Ok(c)
    }

    pub fn fee_tiers(&self) -> Vec<u32> {
        self.fee_tiers
            .clone()
            .unwrap_or_else(|| self.venue.default_fee_tiers())
    }
}
