//! The on-chain venue's configuration (`venues/*.toml`): chain, pinned contract addresses, the quote token and
//! the allow-listed tokens, confirmation depth, deadline, gas budget, and the executor's own limits. Everything
//! that can move money is checked again here whatever the pipeline decided; unknown keys are errors.

use crate::model::money::lenient;
use crate::model::Invalid;
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
    /// While this file exists, every new intent is refused; a file holding the word `entries` refuses buys
    /// only, so positions can still be closed.
    pub kill_switch_file: Option<PathBuf>,
    /// The native coin (ETH, BNB) the account must keep for gas: below it, entries are held (an exit still
    /// goes out while the coin lasts) until it is topped up and an operator resumes. 0 = no floor.
    #[serde(default, deserialize_with = "lenient")]
    pub min_native_balance: Decimal,
    /// A pool holding less of the quote token than this is not traded against (0 = no floor).
    #[serde(default, deserialize_with = "lenient")]
    pub min_pool_liquidity: Decimal,
    /// The highest buy, sell or transfer tax (basis points) a token may take, measured by a simulated round trip
    /// before its first buy.
    #[serde(default = "default_max_tax", deserialize_with = "lenient")]
    pub max_token_tax_bps: Decimal,
}

/// The largest amount of quote currency any limit may name (10^12): beyond what any user trades, and far
/// inside what a `Decimal` holds when multiplied by a price.
pub const MAX_MONEY: i64 = 1_000_000_000_000;

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
    /// With `execute --signer browser`: how long a prepared transaction waits on the dashboard for the
    /// wallet's answer before it is withdrawn (and its intent rejected). Must be under `deadline_s`, so what
    /// the wallet signs at the last moment still has time to be mined before the router's deadline.
    #[serde(default = "default_approval_timeout")]
    pub approval_timeout_s: u64,
    /// Fee tiers to quote (default: the venue's).
    pub fee_tiers: Option<Vec<u32>>,
    /// Gas limit x max fee must stay under this many basis points of the trade's notional.
    #[serde(default = "default_gas_budget", deserialize_with = "lenient")]
    pub gas_budget_bps: Decimal,
    /// The priority fee: this percentile of the priority fees paid in the last 10 blocks (eth_feeHistory).
    #[serde(default = "default_priority_percentile")]
    pub priority_fee_percentile: f64,
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
fn default_approval_timeout() -> u64 {
    90
}
fn default_replacements() -> u32 {
    3
}
fn default_gas_budget() -> Decimal {
    Decimal::from(100)
}

impl VenueConfig {
    pub fn parse(text: &str, origin: &str) -> Result<Self, Invalid> {
        let c: VenueConfig = toml::from_str(text).map_err(|e| Invalid(format!("{origin}: {e}")))?;
        c.check().map_err(|e| e.context(origin))?;
        Ok(c)
    }

    /// Every key within its range: a value outside one is refused rather than clamped, since a wrong limit
    /// with real money behind it must stop the start, not pass quietly.
    fn check(&self) -> Result<(), Invalid> {
        use crate::model::ranges::{address, count, dec, name, real};
        let (zero, bps_max, money_max) = (
            Decimal::ZERO,
            Decimal::from(10_000),
            Decimal::from(MAX_MONEY),
        );
        let l = &self.limits;
        count("chain_id", self.chain_id, 1, u64::from(u32::MAX))?;
        if self.tokens.is_empty() {
            return Err(Invalid(
                "[tokens] allows no token: list each tradable token's address".into(),
            ));
        }
        for (sym, a) in &self.tokens {
            name("[tokens] symbol", sym, 32)?;
            address(&format!("[tokens] {sym}"), a)?;
        }
        let c = &self.contracts;
        for (k, a) in [
            ("factory", &c.factory),
            ("router", &c.router),
            ("quoter", &c.quoter),
            ("weth", &c.weth),
        ] {
            address(&format!("[contracts] {k}"), a)?;
        }
        name("[quote] symbol", &self.quote.symbol, 32)?;
        address("[quote] address", &self.quote.address)?;
        dec(
            "[limits] max_notional_per_trade",
            l.max_notional_per_trade,
            zero,
            money_max,
            false,
        )?;
        dec(
            "[limits] max_notional_per_day",
            l.max_notional_per_day,
            zero,
            money_max,
            false,
        )?;
        dec(
            "[limits] max_daily_loss",
            l.max_daily_loss,
            zero,
            money_max,
            true,
        )?;
        count("[limits] max_intent_age_s", l.max_intent_age_s, 1, 86_400)?;
        dec(
            "[limits] min_native_balance",
            l.min_native_balance,
            zero,
            Decimal::from(1_000_000),
            true,
        )?;
        dec(
            "[limits] min_pool_liquidity",
            l.min_pool_liquidity,
            zero,
            money_max,
            true,
        )?;
        dec(
            "[limits] max_token_tax_bps",
            l.max_token_tax_bps,
            zero,
            bps_max,
            true,
        )?;
        if self.quote.native && !self.quote.address.eq_ignore_ascii_case(&c.weth) {
            return Err(Invalid(
                "[quote] native = true needs the quote token to be contracts.weth".into(),
            ));
        }
        count("confirmations", self.confirmations, 1, 64)?;
        count("deadline_s", self.deadline_s, 10, 3_600)?;
        count("receipt_timeout_s", self.receipt_timeout_s, 1, 3_600)?;
        count("max_replacements", u64::from(self.max_replacements), 0, 20)?;
        count("approval_timeout_s", self.approval_timeout_s, 5, 3_600)?;
        dec("gas_budget_bps", self.gas_budget_bps, zero, bps_max, false)?;
        real(
            "priority_fee_percentile",
            self.priority_fee_percentile,
            0.0,
            100.0,
        )?;
        for t in self.fee_tiers.iter().flatten() {
            count("fee_tiers", u64::from(*t), 1, 999_999)
                .map_err(|e| e.context("a fee tier is in hundredths of a basis point"))?;
        }
        Ok(())
    }

    pub fn fee_tiers(&self) -> Vec<u32> {
        self.fee_tiers
            .clone()
            .unwrap_or_else(|| self.venue.default_fee_tiers())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"venue = "uniswap-v3"
chain_id = 31337
receipt_timeout_s = 30
[contracts]
factory = "0x0000000000000000000000000000000000000001"
router = "0x0000000000000000000000000000000000000002"
quoter = "0x0000000000000000000000000000000000000003"
weth = "0x0000000000000000000000000000000000000004"
[quote]
symbol = "USD"
address = "0x0000000000000000000000000000000000000005"
[tokens]
TKA = "0x0000000000000000000000000000000000000006"
[limits]
max_notional_per_trade = "500"
max_notional_per_day = "5000"
max_daily_loss = "100"
"#;

    #[test]
    fn every_key_outside_its_range_is_refused() {
        assert!(VenueConfig::parse(GOOD, "v").is_ok());
        for (from, to, why) in [
            (
                "receipt_timeout_s = 30",
                "receipt_timeout_s = 0",
                "receipt_timeout_s",
            ),
            (
                "chain_id = 31337",
                "chain_id = 31337\nconfirmations = 0",
                "confirmations",
            ),
            (
                "chain_id = 31337",
                "chain_id = 31337\ndeadline_s = 5",
                "deadline_s",
            ),
            (
                "chain_id = 31337",
                "chain_id = 31337\npriority_fee_percentile = 150.0",
                "percentile",
            ),
            (
                "chain_id = 31337",
                "chain_id = 31337\ngas_budget_bps = 0",
                "gas_budget_bps",
            ),
            (
                "chain_id = 31337",
                "chain_id = 31337\nfee_tiers = [0]",
                "fee_tiers is 0",
            ),
            (
                "chain_id = 31337",
                "chain_id = 31337\nmax_replacements = 99",
                "max_replacements",
            ),
            (
                "chain_id = 31337",
                "chain_id = 31337\napproval_timeout_s = 1",
                "approval_timeout_s",
            ),
            (
                "max_daily_loss = \"100\"",
                "max_daily_loss = \"-1\"",
                "max_daily_loss",
            ),
            (
                "max_daily_loss = \"100\"",
                "max_daily_loss = \"100\"\nmax_intent_age_s = 0",
                "max_intent_age_s",
            ),
            (
                "max_daily_loss = \"100\"",
                "max_daily_loss = \"100\"\nmax_token_tax_bps = \"20000\"",
                "max_token_tax_bps",
            ),
            ("chain_id = 31337", "chain_id = 0", "chain_id is 0"),
            (
                "TKA = \"0x0000000000000000000000000000000000000006\"",
                "TKA = \"0x06\"",
                "[tokens] TKA is \"0x06\"",
            ),
            (
                "router = \"0x0000000000000000000000000000000000000002\"",
                "router = \"uniswap\"",
                "[contracts] router",
            ),
            ("symbol = \"USD\"", "symbol = \"\"", "[quote] symbol"),
            (
                "max_notional_per_trade = \"500\"",
                "max_notional_per_trade = \"100000000000000000000\"",
                "max_notional_per_trade",
            ),
            (
                "chain_id = 31337",
                "chain_id = 31337\npriority_fee_percentile = nan",
                "priority_fee_percentile is NaN",
            ),
        ] {
            let err = VenueConfig::parse(&GOOD.replace(from, to), "v").unwrap_err();
            assert!(
                err.0.starts_with("v: ") && err.0.contains(why),
                "{to}: {err}"
            );
        }
    }

    #[test]
    fn the_shipped_venue_files_read_and_pin_their_chains_contracts() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/venues");
        let read = |f: &str| {
            let path = format!("{dir}/{f}");
            VenueConfig::parse(&std::fs::read_to_string(&path).unwrap(), &path).unwrap()
        };
        let eth = read("mainnet.toml");
        assert_eq!((eth.venue, eth.chain_id), (Dex::UniswapV3, 1));
        assert!(eth
            .quote
            .address
            .eq_ignore_ascii_case("0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"));
        let bsc = read("bsc.toml");
        assert_eq!((bsc.venue, bsc.chain_id), (Dex::PancakeswapV3, 56));
        assert_eq!(bsc.fee_tiers(), [500, 2500, 10000]);
        let agg = read("mainnet-1inch.toml");
        assert_eq!((agg.venue, agg.chain_id), (Dex::Oneinch, 1));
        assert_eq!(
            agg.contracts.weth, eth.contracts.weth,
            "the Uniswap contracts still price gas"
        );
        let files = std::fs::read_dir(dir).unwrap().count();
        assert_eq!(files, 3, "every shipped venue file is checked here");
    }
}
