//! `hypeflow ingest prices`: every polling interval, each token's price from the first provider in the
//! configured priority that is healthy and has a fresh quote for it. A provider that errors or rate-limits is
//! skipped (after a 429 for as long as `retry-after` says; after other errors for a backoff that doubles from one
//! interval up to five minutes) and probed again when that ends; a quote older than `stale_after` does not count
//! and its token falls to the next provider in the same round, so a failing provider is replaced within one
//! interval. Each tick names its source; its event time is the provider's observation time (for on-chain pools,
//! the block's).

use super::clock::Clock;
use super::price_provider::{PriceProvider, TokenFeed};
use crate::kafka::sink::{Sink, SinkError};
use crate::model::time::{to_rfc3339, Millis, Span};
use crate::model::{Invalid, PriceTick};
use crate::net::http::ProviderError;
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoinGeckoSection {
    #[serde(default)]
    pub plan: super::coingecko::Plan,
    pub base_url: Option<String>,
}

/// `feeds/prices.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    #[serde(default = "default_interval")]
    pub interval: Span,
    #[serde(default = "default_stale")]
    pub stale_after: Span,
    /// Providers, most preferred first.
    pub priority: Vec<Provider>,
    pub coingecko: Option<CoinGeckoSection>,
    pub dexscreener_base_url: Option<String>,
    /// JSON-RPC endpoint for the on-chain provider (or RPC_URL / --rpc-url).
    pub rpc_url: Option<String>,
    pub tokens: Vec<TokenFeed>,
}

fn default_interval() -> Span {
    Span::parse("5s").expect("literal duration")
}

fn default_stale() -> Span {
    Span::parse("2m").expect("literal duration")
}

/// Where a price can come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// The token's own pool, read over JSON-RPC.
    Onchain,
    CoinGecko,
    DexScreener,
}

impl FeedConfig {
    pub fn parse(text: &str, origin: &str) -> Result<Self, Invalid> {
        let c: FeedConfig = toml::from_str(text).map_err(|e| Invalid(format!("{origin}: {e}")))?;
        if c.priority.is_empty() {
            return Err(Invalid(format!("{origin}: priority names no provider")));
        }
        if c.tokens.is_empty() {
            return Err(Invalid(format!("{origin}: no [[tokens]]")));
        }
        c.check().map_err(|e| e.context(origin))?;
        Ok(c)
    }

    /// Every key in range: a 1 ms interval would hammer paid APIs into their rate limits, a malformed
    /// address would price the wrong token.
    fn check(&self) -> Result<(), Invalid> {
        use crate::model::ranges::{address, count, dur, name};
        // a local node can be polled fast; the paid APIs' own rate limits still apply (429s back off)
        dur("interval", self.interval.ms(), 100, 3_600_000)?;
        dur("stale_after", self.stale_after.ms(), 1_000, 86_400_000)?;
        count("[[tokens]] count", self.tokens.len() as u64, 1, 1_000)?;
        let mut seen = std::collections::HashSet::new();
        for t in &self.tokens {
            name("[[tokens]] symbol", &t.symbol, 32)?;
            if !seen.insert(t.symbol.as_str()) {
                return Err(Invalid(format!("[[tokens]] {} is listed twice", t.symbol)));
            }
            for (k, a) in [("address", &t.address), ("pool", &t.pool)] {
                if let Some(a) = a {
                    address(&format!("[[tokens]] {}: {k}", t.symbol), a)?;
                }
            }
        }
        Ok(())
    }

    pub fn interval_ms(&self) -> Millis {
        self.interval.ms()
    }

    pub fn stale_ms(&self) -> Millis {
        self.stale_after.ms()
    }
}

const MAX_BACKOFF: Duration = Duration::from_secs(300);

#[derive(Clone, Debug, Default)]
struct Health {
    down_until: Option<Instant>,
    failures: u32,
}

/// What happened in one round, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Round {
    pub ticks: Vec<PriceTick>,
    /// (provider, why) for every provider skipped or failing this round.
    pub skipped: Vec<(String, String)>,
    /// Tokens no provider had a fresh price for.
    pub unpriced: Vec<String>,
}

pub struct PriceFeed {
    providers: Vec<Box<dyn PriceProvider>>,
    health: Vec<Health>,
    tokens: Vec<TokenFeed>,
    interval: Duration,
    stale_after_ms: Millis,
    last: HashMap<String, Millis>,
}

impl PriceFeed {
    pub fn new(
        providers: Vec<Box<dyn PriceProvider>>,
        tokens: Vec<TokenFeed>,
        interval: Duration,
        stale_after_ms: Millis,
    ) -> Self {
        PriceFeed {
            health: vec![Health::default(); providers.len()],
            providers,
            tokens,
            interval,
            stale_after_ms,
            last: HashMap::new(),
        }
    }

    fn fail(&mut self, i: usize, now: Instant, e: &ProviderError) {
        let h = &mut self.health[i];
        h.failures += 1;
        let wait = match e {
            ProviderError::RateLimited { retry_after, .. } => *retry_after,
            _ => (self.interval * 2u32.saturating_pow(h.failures - 1)).min(MAX_BACKOFF),
        };
        h.down_until = Some(now + wait);
        tracing::warn!(
            "price feed: {e}; skipping {} for {wait:?}",
            self.providers[i].name()
        );
    }

    /// One polling round at `now` (monotonic, for health) and `wall_ms` (for staleness).
    pub fn round(&mut self, now: Instant, wall_ms: Millis) -> Round {
        let mut out = Round::default();
        let mut pending: Vec<usize> = (0..self.tokens.len()).collect();
        for i in 0..self.providers.len() {
            if pending.is_empty() {
                break;
            }
            let name = self.providers[i].name().to_string();
            if let Some(until) = self.health[i].down_until {
                if now < until {
                    out.skipped
                        .push((name, format!("down for {:?} more", until - now)));
                    continue;
                }
            }
            let asked: Vec<&TokenFeed> = pending
                .iter()
                .map(|&t| &self.tokens[t])
                .filter(|t| self.providers[i].supports(t))
                .collect();
            if asked.is_empty() {
                continue;
            }
            let quotes = match self.providers[i].quotes(&asked) {
                Ok(q) => q,
                Err(e) => {
                    out.skipped.push((name, e.to_string()));
                    self.fail(i, now, &e);
                    continue;
                }
            };
            let mut fresh = 0;
            let mut stale = Vec::new();
            pending.retain(|&t| {
                let sym = &self.tokens[t].symbol;
                let Some(q) = quotes.get(sym) else {
                    return true;
                };
                if wall_ms - q.observed_at > self.stale_after_ms {
                    stale.push(format!("{sym} observed {}", to_rfc3339(q.observed_at)));
                    return true;
                }
                fresh += 1;
                // a repeat of the last observation adds nothing; an older one would go back in time
                if self.last.get(sym).is_none_or(|&l| q.observed_at > l) {
                    self.last.insert(sym.clone(), q.observed_at);
                    out.ticks.push(PriceTick {
                        token: sym.clone(),
                        price: q.price,
                        volume: Decimal::ZERO,
                        source: name.clone(),
                        event_time: q.observed_at,
                    });
                }
                false
            });
            if fresh == 0 && !stale.is_empty() {
                let e = ProviderError::Stale {
                    provider: name.clone(),
                    message: format!("only stale quotes: {}", stale.join(", ")),
                };
                out.skipped.push((name, e.to_string()));
                self.fail(i, now, &e);
            } else {
                self.health[i] = Health::default();
            }
        }
        out.unpriced = pending
            .iter()
            .map(|&t| self.tokens[t].symbol.clone())
            .collect();
        if !out.unpriced.is_empty() {
            tracing::warn!(
                "price feed: no provider has a fresh price for {}",
                out.unpriced.join(", ")
            );
        }
        out
    }

    /// Polls every interval, writing ticks to `sink`; `max_rounds` bounds a run (tests, smoke runs).
    pub fn run(
        &mut self,
        sink: &mut Sink,
        clock: &dyn Clock,
        max_rounds: Option<u64>,
        mut each: impl FnMut(&Round),
    ) -> Result<FeedStats, SinkError> {
        let mut stats = FeedStats::default();
        loop {
            let started = clock.now();
            let r = self.round(started, chrono::Utc::now().timestamp_millis());
            for t in &r.ticks {
                sink.write("tick", &t.token, t.event_time, t)?;
                *stats.by_source.entry(t.source.clone()).or_default() += 1;
            }
            stats.ticks += r.ticks.len() as u64;
            stats.rounds += 1;
            each(&r);
            if max_rounds.is_some_and(|m| stats.rounds >= m) {
                return Ok(stats);
            }
            let spent = clock.now().saturating_duration_since(started);
            clock.sleep(self.interval.saturating_sub(spent));
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct FeedStats {
    pub rounds: u64,
    pub ticks: u64,
    pub by_source: std::collections::BTreeMap<String, u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::price_provider::Quote;
    use std::cell::RefCell;

    /// A provider whose answers are scripted per call.
    struct Scripted {
        name: &'static str,
        answers: RefCell<Vec<Result<HashMap<String, Quote>, ProviderError>>>,
    }

    impl PriceProvider for Scripted {
        fn name(&self) -> &str {
            self.name
        }
        fn supports(&self, _: &TokenFeed) -> bool {
            true
        }
        fn quotes(&self, _: &[&TokenFeed]) -> Result<HashMap<String, Quote>, ProviderError> {
            self.answers.borrow_mut().remove(0)
        }
    }

    fn token(s: &str) -> TokenFeed {
        TokenFeed {
            symbol: s.into(),
            coingecko_id: None,
            network: None,
            address: None,
            dexscreener_chain: None,
            pool: None,
            pool_quote: None,
        }
    }

    fn q(at: Millis) -> Result<HashMap<String, Quote>, ProviderError> {
        Ok(HashMap::from([(
            "AXL".to_string(),
            Quote {
                price: Decimal::ONE,
                observed_at: at,
            },
        )]))
    }

    #[test]
    fn an_erroring_provider_is_replaced_in_the_same_round_and_retried_after_its_backoff() {
        let err = || {
            Err(ProviderError::Http {
                provider: "a".into(),
                status: 500,
                detail: String::new(),
            })
        };
        let a = Scripted {
            name: "a",
            answers: RefCell::new(vec![q(1_000), err(), q(40_000)]),
        };
        let b = Scripted {
            name: "b",
            answers: RefCell::new(vec![q(20_000), q(30_000)]),
        };
        let mut f = PriceFeed::new(
            vec![Box::new(a), Box::new(b)],
            vec![token("AXL")],
            Duration::from_secs(10),
            60_000,
        );
        let t0 = Instant::now();
        let src = |r: &Round| r.ticks.iter().map(|t| t.source.clone()).collect::<Vec<_>>();
        assert_eq!(src(&f.round(t0, 1_000)), ["a"]);
        assert_eq!(src(&f.round(t0 + Duration::from_secs(10), 20_000)), ["b"]);
        // a is down for one interval after its first failure: still b
        let r = f.round(t0 + Duration::from_secs(15), 30_000);
        assert_eq!(src(&r), ["b"]);
        assert!(r.skipped[0].1.contains("down for"));
        assert_eq!(src(&f.round(t0 + Duration::from_secs(21), 40_000)), ["a"]);
    }

    #[test]
    fn the_shipped_feed_file_reads_and_every_key_has_a_range() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/feeds/prices.toml"))
                .unwrap();
        assert!(FeedConfig::parse(&text, "f").is_ok());
        for (from, to, why) in [
            (
                "interval = \"5s\"",
                "interval = \"10ms\"",
                "interval is 10ms",
            ),
            (
                "stale_after = \"2m\"",
                "stale_after = \"30d\"",
                "stale_after",
            ),
            (
                "address = \"0x6982508145454ce325ddbe47a25d4ec3d2311933\"",
                "address = \"pepe\"",
                "PEPE: address",
            ),
            ("symbol = \"WETH\"", "symbol = \"PEPE\"", "listed twice"),
            ("symbol = \"PEPE\"", "symbol = \"\"", "symbol"),
        ] {
            assert!(text.contains(from), "{from}");
            let err = FeedConfig::parse(&text.replacen(from, to, 1), "f").unwrap_err();
            assert!(
                err.0.starts_with("f: ") && err.0.contains(why),
                "{to}: {err}"
            );
        }
    }

    #[test]
    fn stale_quotes_fall_through_and_repeats_are_not_ticks() {
        let a = Scripted {
            name: "a",
            answers: RefCell::new(vec![q(0), q(100_000), q(100_000)]),
        };
        let b = Scripted {
            name: "b",
            answers: RefCell::new(vec![q(95_000)]),
        };
        let mut f = PriceFeed::new(
            vec![Box::new(a), Box::new(b)],
            vec![token("AXL")],
            Duration::from_secs(1),
            60_000,
        );
        let t0 = Instant::now();
        let r = f.round(t0, 100_000);
        assert_eq!(r.ticks[0].source, "b", "a's quote is 100 s old");
        assert!(r.skipped[0].1.contains("stale"));
        // a is skipped for one interval, then its fresh quote is used once
        let r = f.round(t0 + Duration::from_secs(1), 101_000);
        assert_eq!((r.ticks.len(), r.ticks[0].source.as_str()), (1, "a"));
        let r = f.round(t0 + Duration::from_secs(2), 102_000);
        assert!(r.ticks.is_empty() && r.unpriced.is_empty(), "{r:?}");
    }
}
