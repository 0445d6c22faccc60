//! What the dashboard shows of the market: each input topic's freshness, and per token the latest price and
//! the posts naming it over the pipeline's sentiment window (how many, their mean score). Read by its own
//! thread and consumer from near the topics' ends; it never touches the executor's loop.

use crate::config::PipelineConfig;
use crate::kafka::{envelope, topics};
use crate::model::{PriceTick, ScoredMention, TokenTable, Tweet};
use crate::sentiment::{tokens, LexiconScorer};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Records read back per partition at start, so the view is whole at once.
const LOOKBACK: i64 = 5_000;
/// Mentions kept per token (the window's, bounded whatever the rate).
const MAX_MENTIONS: usize = 10_000;

#[derive(Default)]
struct TokenState {
    price: Option<(i64, Decimal)>,
    /// (event time, score) of the posts naming it, oldest first.
    mentions: VecDeque<(i64, f64)>,
}

#[derive(Default)]
pub struct MarketView {
    /// topic -> (newest event time, wall time it was read at)
    sources: BTreeMap<String, (i64, i64)>,
    tokens: BTreeMap<String, TokenState>,
    window_ms: i64,
}

impl MarketView {
    /// The view as JSON at wall time `now`.
    pub fn to_json(&self, now: i64) -> serde_json::Value {
        let sources: Vec<serde_json::Value> = self
            .sources
            .iter()
            .map(|(t, (event, read))| {
                serde_json::json!({"topic": t, "newest_event": crate::model::time::to_rfc3339(*event),
                    "event_age_s": (now - event) as f64 / 1000.0, "read_age_s": (now - read) as f64 / 1000.0})
            })
            .collect();
        let tokens: Vec<serde_json::Value> = self
            .tokens
            .iter()
            .map(|(sym, s)| {
                let newest = s.mentions.back().map(|m| m.0);
                let inside: Vec<f64> = s
                    .mentions
                    .iter()
                    .filter(|m| newest.is_some_and(|n| m.0 > n - self.window_ms))
                    .map(|m| m.1)
                    .collect();
                let mean =
                    (!inside.is_empty()).then(|| inside.iter().sum::<f64>() / inside.len() as f64);
                serde_json::json!({"token": sym, "price": s.price.map(|p| p.1),
                    "price_age_s": s.price.map(|p| (now - p.0) as f64 / 1000.0),
                    "mentions": inside.len(), "score": mean.map(|m| (m * 1000.0).round() / 1000.0)})
            })
            .collect();
        serde_json::json!({"sources": sources, "tokens": tokens,
            "window_s": self.window_ms as f64 / 1000.0})
    }

    fn mention(&mut self, symbol: &str, at: i64, score: f64) {
        let s = self.tokens.entry(symbol.to_string()).or_default();
        s.mentions.push_back((at, score));
        let newest = s.mentions.iter().map(|m| m.0).max().unwrap_or(at);
        while s.mentions.len() > MAX_MENTIONS
            || s.mentions
                .front()
                .is_some_and(|m| m.0 <= newest - self.window_ms)
        {
            s.mentions.pop_front();
        }
    }

    fn take(&mut self, topic: &str, payload: &[u8], table: &TokenTable, min_followers: u64) {
        let now = chrono::Utc::now().timestamp_millis();
        // topic names may carry HYPEFLOW_TOPIC_PREFIX: match on the base name at the end
        let event = if topic.ends_with("market.ticks") {
            let Ok(t) = envelope::decode::<PriceTick>("tick", payload) else {
                return;
            };
            let s = self.tokens.entry(t.token.clone()).or_default();
            if s.price.is_none_or(|p| t.event_time >= p.0) {
                s.price = Some((t.event_time, t.price));
            }
            t.event_time
        } else if topic.ends_with("social.scored") {
            let Ok(m) = envelope::decode::<ScoredMention>("scored", payload) else {
                return;
            };
            if m.followers >= min_followers {
                self.mention(&m.token, m.created_at, m.score);
            }
            m.created_at
        } else {
            let Ok(t) = envelope::decode::<Tweet>("tweet", payload) else {
                return;
            };
            if t.followers >= min_followers {
                let score = LexiconScorer::shared().score(&t.text);
                for id in tokens::extract(&t.text, table).tokens {
                    self.mention(table.symbol(id), t.created_at, score);
                }
            }
            t.created_at
        };
        let e = self
            .sources
            .entry(topic.to_string())
            .or_insert((event, now));
        *e = (e.0.max(event), now);
    }
}

/// Starts the reading thread; the view it keeps up to date.
pub fn start(brokers: &str, cfg: &PipelineConfig) -> Result<Arc<Mutex<MarketView>>, String> {
    let names = ["market.ticks", "social.tweets", "social.scored"].map(topics::name);
    let consumer: BaseConsumer = crate::kafka::client::base(brokers)
        .set("group.id", topics::name("hypeflow-dashboard"))
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| format!("Kafka at {brokers}: {e}"))?;
    let mut tpl = TopicPartitionList::new();
    for t in &names {
        let Ok(md) = consumer.fetch_metadata(Some(t), Duration::from_secs(10)) else {
            continue;
        };
        for p in md.topics().iter().flat_map(|m| m.partitions()) {
            if let Ok((low, high)) = consumer.fetch_watermarks(t, p.id(), Duration::from_secs(10)) {
                let _ =
                    tpl.add_partition_offset(t, p.id(), Offset::Offset((high - LOOKBACK).max(low)));
            }
        }
    }
    consumer
        .assign(&tpl)
        .map_err(|e| format!("Kafka at {brokers}: {e}"))?;
    let view = Arc::new(Mutex::new(MarketView {
        window_ms: cfg.window_ms(),
        ..MarketView::default()
    }));
    let (v, table, min_followers) = (
        view.clone(),
        cfg.universe.token_table(),
        cfg.sentiment.min_followers,
    );
    std::thread::Builder::new()
        .name("market-view".into())
        .spawn(move || loop {
            match consumer.poll(Duration::from_millis(500)) {
                Some(Ok(m)) => {
                    if let Ok(mut v) = v.lock() {
                        v.take(
                            m.topic(),
                            m.payload().unwrap_or_default(),
                            &table,
                            min_followers,
                        );
                    }
                }
                Some(Err(e)) => tracing::debug!("dashboard market view: {e}"),
                None => {}
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(view)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_outside_the_window_drop_out_and_the_mean_is_over_the_rest() {
        let mut v = MarketView {
            window_ms: 60_000,
            ..MarketView::default()
        };
        v.mention("AXL", 0, 1.0);
        v.mention("AXL", 50_000, 0.5);
        v.mention("AXL", 100_000, -0.1);
        let j = v.to_json(100_000);
        let axl = &j["tokens"][0];
        assert_eq!(axl["mentions"], 2, "{j}");
        assert_eq!(axl["score"], 0.2, "{j}");
    }
}
