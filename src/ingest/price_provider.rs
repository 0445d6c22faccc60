//! What a price provider is to the feed: the token it is asked about (with its name at each provider), the quote
//! it answers, and the trait every provider (CoinGecko, DexScreener, on-chain pools) implements.

use crate::model::time::Millis;
use crate::net::http::ProviderError;
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::HashMap;

/// One token and the names it has at each provider.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TokenFeed {
    /// The pipeline's symbol; ticks carry it.
    pub symbol: String,
    /// CoinGecko coin id (`/simple/price`).
    pub coingecko_id: Option<String>,
    /// GeckoTerminal network slug (`eth`, `bsc`, `base`) for on-chain prices by address.
    pub network: Option<String>,
    /// Token contract address.
    pub address: Option<String>,
    /// DexScreener chain slug (`ethereum`, `bsc`, `base`, `solana`).
    pub dexscreener_chain: Option<String>,
    /// A Uniswap V3 / PancakeSwap V3 pool holding the token, read on chain (`slot0`) at `rpc_url`.
    pub pool: Option<String>,
    /// The pool's other token: "USD" (a USD stablecoin, the default) or another token of this feed.
    pub pool_quote: Option<String>,
}

/// A price and when the provider observed it (ms since the epoch, UTC).
#[derive(Clone, Debug, PartialEq)]
pub struct Quote {
    pub price: Decimal,
    pub observed_at: Millis,
}

pub trait PriceProvider {
    fn name(&self) -> &str;
    /// Whether this provider knows the token by one of its names.
    fn supports(&self, t: &TokenFeed) -> bool;
    /// Quotes by symbol for the tokens it could price (a token missing from the answer is not an error).
    fn quotes(&self, tokens: &[&TokenFeed]) -> Result<HashMap<String, Quote>, ProviderError>;
}

/// For providers that price by address: one fetch per group (network or chain), answers matched back to
/// symbols by address, whatever its case.
pub fn by_address(
    groups: std::collections::BTreeMap<&str, Vec<&TokenFeed>>,
    out: &mut HashMap<String, Quote>,
    mut fetch: impl FnMut(&str, &[&str]) -> Result<HashMap<String, Quote>, ProviderError>,
) -> Result<(), ProviderError> {
    for (group, ts) in groups {
        let addrs: Vec<&str> = ts.iter().filter_map(|t| t.address.as_deref()).collect();
        let q = fetch(group, &addrs)?;
        for t in ts {
            if let Some(q) = t
                .address
                .as_deref()
                .and_then(|a| q.get(&a.to_ascii_lowercase()))
            {
                out.insert(t.symbol.clone(), q.clone());
            }
        }
    }
    Ok(())
}
