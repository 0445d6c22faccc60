//! CoinGecko prices: `/simple/price` for listed coins, the on-chain (GeckoTerminal) token price for tokens known
//! by network and address, and pool OHLCV for history. Pro and Demo differ in host and key header (a Pro key on
//! the Demo host is refused with error 10010 and the reverse with 10011, so the plan must match the key). The
//! key comes from `COINGECKO_API_KEY` and travels only in its header.

use super::price_provider::{by_address, PriceProvider, Quote, TokenFeed};
use crate::model::money::parse_decimal;
use crate::model::Bar;
use crate::net::http::{self, Call, ProviderError};
use crate::net::rate_limit::RateLimit;
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    #[default]
    Demo,
    Pro,
    /// GeckoTerminal's free public API: the on-chain endpoints without the `/onchain` prefix, no key.
    #[serde(rename = "geckoterminal")]
    GeckoTerminal,
}

impl Plan {
    pub fn default_base(self) -> &'static str {
        match self {
            Plan::Demo => "https://api.coingecko.com/api/v3",
            Plan::Pro => "https://pro-api.coingecko.com/api/v3",
            Plan::GeckoTerminal => "https://api.geckoterminal.com/api/v2",
        }
    }

    fn key_header(self) -> Option<&'static str> {
        match self {
            Plan::Demo => Some("x-cg-demo-api-key"),
            Plan::Pro => Some("x-cg-pro-api-key"),
            Plan::GeckoTerminal => None,
        }
    }

    /// Where the on-chain paths start: under `/onchain` on CoinGecko's hosts, at the root on GeckoTerminal's.
    fn onchain(self) -> &'static str {
        match self {
            Plan::GeckoTerminal => "",
            _ => "/onchain",
        }
    }

    /// Calls per minute: the Demo plan's documented 100 (older pages said 30), Pro's entry tier 250.
    fn per_minute(self) -> u32 {
        match self {
            Plan::Demo => 100,
            Plan::Pro => 250,
            Plan::GeckoTerminal => 30,
        }
    }
}

pub struct CoinGecko {
    base: String,
    plan: Plan,
    key: Option<String>,
    http: reqwest::blocking::Client,
    limit: RateLimit,
}

impl CoinGecko {
    /// `key` from `COINGECKO_API_KEY`; without one the Demo host still answers, rate-limited per IP.
    pub fn new(
        base: &str,
        plan: Plan,
        key: Option<String>,
    ) -> Result<Self, crate::net::ClientError> {
        if key.is_none() && plan.key_header().is_some() {
            tracing::warn!("COINGECKO_API_KEY is not set: CoinGecko calls go without a key and are limited per IP");
        }
        Ok(CoinGecko {
            base: base.trim_end_matches('/').to_string(),
            plan,
            // GeckoTerminal takes no key: a CoinGecko key is never sent to it
            key: key.filter(|k| !k.trim().is_empty() && plan.key_header().is_some()),
            http: http::client(Duration::from_secs(10))?,
            limit: RateLimit::new(
                "coingecko",
                plan.per_minute(),
                Duration::from_secs(60),
                Instant::now(),
            ),
        })
    }

    fn get(&self, path: &str, query: &[(&str, String)]) -> Result<String, ProviderError> {
        let url = format!("{}{path}", self.base);
        let headers: Vec<(&str, String)> = self
            .key
            .iter()
            .filter_map(|k| self.plan.key_header().map(|h| (h, k.clone())))
            .chain(std::iter::once(("accept", "application/json".to_string())))
            .collect();
        http::send(
            &self.http,
            &self.limit,
            Call {
                url: &url,
                query,
                headers: &headers,
                body: None,
                timeout: None,
            },
        )
    }

    fn body_err(&self, message: String) -> ProviderError {
        ProviderError::Body {
            provider: "coingecko".into(),
            message,
        }
    }

    /// `/simple/price` in USD for coin ids; the time is CoinGecko's `last_updated_at`.
    pub fn simple_prices(&self, ids: &[&str]) -> Result<HashMap<String, Quote>, ProviderError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        if self.plan == Plan::GeckoTerminal {
            return Err(self.body_err(
                "GeckoTerminal serves on-chain prices only: give these tokens a network and an address, \
                 or use the demo or pro plan for coin ids"
                    .into(),
            ));
        }
        let text = self.get(
            "/simple/price",
            &[
                ("ids", ids.join(",")),
                ("vs_currencies", "usd".into()),
                ("include_last_updated_at", "true".into()),
                ("precision", "full".into()),
            ],
        )?;
        let v: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(&text).map_err(|e| self.body_err(e.to_string()))?;
        let mut out = HashMap::new();
        for (id, entry) in v {
            let price = entry.get("usd").and_then(number);
            let at = entry
                .get("last_updated_at")
                .and_then(serde_json::Value::as_i64);
            if let (Some(price), Some(at)) = (price, at) {
                out.insert(
                    id,
                    Quote {
                        price,
                        observed_at: at * 1000,
                    },
                );
            }
        }
        Ok(out)
    }

    /// The on-chain token price (numbers as strings) for addresses on a GeckoTerminal network; the time is the
    /// token's last trade.
    pub fn onchain_prices(
        &self,
        network: &str,
        addresses: &[&str],
    ) -> Result<HashMap<String, Quote>, ProviderError> {
        if addresses.is_empty() {
            return Ok(HashMap::new());
        }
        let text = self.get(
            &format!(
                "{}/simple/networks/{network}/token_price/{}",
                self.plan.onchain(),
                addresses.join(",")
            ),
            &[],
        )?;
        #[derive(Deserialize)]
        struct R {
            data: D,
        }
        #[derive(Deserialize)]
        struct D {
            attributes: A,
        }
        #[derive(Deserialize)]
        struct A {
            #[serde(default)]
            token_prices: BTreeMap<String, Option<String>>,
            #[serde(default)]
            last_trade_timestamp: BTreeMap<String, Option<serde_json::Value>>,
        }
        let r: R = serde_json::from_str(&text).map_err(|e| self.body_err(e.to_string()))?;
        let a = r.data.attributes;
        let mut out = HashMap::new();
        for (addr, price) in a.token_prices {
            let Some(price) = price.as_deref().and_then(|p| parse_decimal(p).ok()) else {
                continue;
            };
            let at = a
                .last_trade_timestamp
                .get(&addr)
                .and_then(|v| v.as_ref())
                .and_then(|v| match v {
                    serde_json::Value::String(s) => s.parse::<i64>().ok(),
                    other => other.as_i64(),
                });
            if let Some(at) = at {
                out.insert(
                    addr.to_ascii_lowercase(),
                    Quote {
                        price,
                        observed_at: at * 1000,
                    },
                );
            }
        }
        Ok(out)
    }

    /// Pool OHLCV bars (`timeframe` day|hour|minute, `aggregate` as documented), oldest first, in USD, labelled
    /// with `token`. CoinGecko lists them newest first.
    pub fn pool_ohlcv(
        &self,
        network: &str,
        pool: &str,
        timeframe: &str,
        aggregate: u32,
        limit: u32,
        token: &str,
    ) -> Result<Vec<Bar>, ProviderError> {
        let seconds = match timeframe {
            "day" => 86_400,
            "hour" => 3_600,
            "minute" => 60,
            "second" => 1,
            other => return Err(self.body_err(format!("unknown timeframe {other}"))),
        } * i64::from(aggregate.max(1));
        let text = self.get(
            &format!(
                "{}/networks/{network}/pools/{pool}/ohlcv/{timeframe}",
                self.plan.onchain()
            ),
            &[
                ("aggregate", aggregate.to_string()),
                ("limit", limit.min(1000).to_string()),
                ("currency", "usd".into()),
            ],
        )?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| self.body_err(e.to_string()))?;
        let rows = v["data"]["attributes"]["ohlcv_list"]
            .as_array()
            .ok_or_else(|| self.body_err("no data.attributes.ohlcv_list".into()))?;
        let mut bars = Vec::with_capacity(rows.len());
        for r in rows {
            let f = |i: usize| r.get(i).and_then(number);
            let (Some(t), Some(o), Some(h), Some(l), Some(c)) = (
                r.get(0).and_then(serde_json::Value::as_i64),
                f(1),
                f(2),
                f(3),
                f(4),
            ) else {
                return Err(self.body_err(format!("an OHLCV row that is not [t,o,h,l,c,v]: {r}")));
            };
            bars.push(Bar {
                token: token.to_string(),
                open_time: t * 1000,
                interval_ms: seconds * 1000,
                open: o,
                high: h,
                low: l,
                close: c,
                volume: f(5).unwrap_or_default(),
            });
        }
        bars.sort_by_key(|b| b.open_time);
        Ok(bars)
    }
}

/// A JSON number or numeric string as an exact decimal (through its shortest spelling).
fn number(v: &serde_json::Value) -> Option<Decimal> {
    match v {
        serde_json::Value::Number(n) => parse_decimal(&n.to_string()).ok(),
        serde_json::Value::String(s) => parse_decimal(s).ok(),
        _ => None,
    }
}

impl PriceProvider for CoinGecko {
    fn name(&self) -> &str {
        "coingecko"
    }

    fn supports(&self, t: &TokenFeed) -> bool {
        t.coingecko_id.is_some() || (t.network.is_some() && t.address.is_some())
    }

    fn quotes(&self, tokens: &[&TokenFeed]) -> Result<HashMap<String, Quote>, ProviderError> {
        let ids: Vec<&str> = tokens
            .iter()
            .filter_map(|t| t.coingecko_id.as_deref())
            .collect();
        let by_id = self.simple_prices(&ids)?;
        let mut out = HashMap::new();
        let mut by_network: BTreeMap<&str, Vec<&TokenFeed>> = BTreeMap::new();
        for t in tokens {
            match t.coingecko_id.as_deref().and_then(|id| by_id.get(id)) {
                Some(q) => {
                    out.insert(t.symbol.clone(), q.clone());
                }
                None => {
                    if let (Some(n), Some(_)) = (&t.network, &t.address) {
                        by_network.entry(n).or_default().push(t);
                    }
                }
            }
        }
        by_address(by_network, &mut out, |n, a| self.onchain_prices(n, a))?;
        Ok(out)
    }
}
