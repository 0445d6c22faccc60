//! DexScreener's free API (no key, 300 requests a minute): the latest USD price of tokens by chain slug and
//! address, up to 30 addresses a call, from the token's most liquid pair. It gives no observation time, so a
//! quote is stamped with the time it was fetched.

use super::price_provider::{by_address, PriceProvider, Quote, TokenFeed};
use crate::model::money::parse_decimal;
use crate::net::http::{self, Call, ProviderError};
use crate::net::rate_limit::RateLimit;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

pub const DEFAULT_BASE_URL: &str = "https://api.dexscreener.com";
const PER_CALL: usize = 30;

pub struct DexScreener {
    base: String,
    http: reqwest::blocking::Client,
    limit: RateLimit,
}

#[derive(Deserialize)]
struct Pair {
    #[serde(rename = "baseToken")]
    base_token: Option<TokenRef>,
    #[serde(rename = "priceUsd")]
    price_usd: Option<String>,
    liquidity: Option<Liquidity>,
}

#[derive(Deserialize)]
struct TokenRef {
    address: Option<String>,
}

#[derive(Deserialize)]
struct Liquidity {
    usd: Option<f64>,
}

impl DexScreener {
    pub fn new(base: &str) -> Result<Self, crate::net::ClientError> {
        Ok(DexScreener {
            base: base.trim_end_matches('/').to_string(),
            http: http::client(Duration::from_secs(10))?,
            limit: RateLimit::new("dexscreener", 300, Duration::from_secs(60), Instant::now()),
        })
    }

    /// Lower-cased address -> price from the most liquid pair where the token is the base.
    pub fn token_prices(
        &self,
        chain: &str,
        addresses: &[&str],
    ) -> Result<HashMap<String, Quote>, ProviderError> {
        let mut out = HashMap::new();
        for chunk in addresses.chunks(PER_CALL) {
            let url = format!("{}/tokens/v1/{chain}/{}", self.base, chunk.join(","));
            let text = http::send(
                &self.http,
                &self.limit,
                Call {
                    url: &url,
                    query: &[],
                    headers: &[],
                    body: None,
                    timeout: None,
                },
            )?;
            let now = chrono::Utc::now().timestamp_millis();
            let pairs: Vec<Pair> =
                serde_json::from_str(&text).map_err(|e| ProviderError::Body {
                    provider: "dexscreener".into(),
                    message: e.to_string(),
                })?;
            let mut best: HashMap<String, (f64, rust_decimal::Decimal)> = HashMap::new();
            for p in pairs {
                let (Some(addr), Some(price)) = (
                    p.base_token.and_then(|b| b.address),
                    p.price_usd.and_then(|s| parse_decimal(&s).ok()),
                ) else {
                    continue;
                };
                let liq = p.liquidity.and_then(|l| l.usd).unwrap_or(0.0);
                let addr = addr.to_ascii_lowercase();
                if best.get(&addr).is_none_or(|(l, _)| liq > *l) {
                    best.insert(addr, (liq, price));
                }
            }
            for (addr, (_, price)) in best {
                out.insert(
                    addr,
                    Quote {
                        price,
                        observed_at: now,
                    },
                );
            }
        }
        Ok(out)
    }
}

impl PriceProvider for DexScreener {
    fn name(&self) -> &str {
        "dexscreener"
    }

    fn supports(&self, t: &TokenFeed) -> bool {
        t.dexscreener_chain.is_some() && t.address.is_some()
    }

    fn quotes(&self, tokens: &[&TokenFeed]) -> Result<HashMap<String, Quote>, ProviderError> {
        let mut by_chain: BTreeMap<&str, Vec<&TokenFeed>> = BTreeMap::new();
        for t in tokens {
            if let (Some(c), Some(_)) = (&t.dexscreener_chain, &t.address) {
                by_chain.entry(c).or_default().push(t);
            }
        }
        let mut out = HashMap::new();
        by_address(by_chain, &mut out, |c, a| self.token_prices(c, a))?;
        Ok(out)
    }
}
