//! `hypeflow execute --venue paper`: a consumer-group member on `orders.intents`. For each intent: claim its
//! id in the journal (a duplicate stops here), fill it on paper against the latest `market.ticks` price with the
//! backtest's fill model, journal the outcome, publish it to `orders.fills` or `orders.rejects`, and only then
//! commit the intent's offset. Executors sharing a journal file never execute an id twice, whatever the group
//! rebalances or Kafka redelivers.

use super::journal::{Journal, JournalError};
use super::onchain::UniswapV3Venue;
use super::PaperExecutor;
use crate::config::FillConfig;
use crate::kafka::envelope;
use crate::kafka::publish::{PublishError, Publisher};
use crate::kafka::topics;
use crate::model::{Fill, FillStatus, OrderIntent, PriceTick};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(transparent)]
    Venue(#[from] crate::execution::onchain::uniswap_v3::VenueError),
    #[error("Kafka at {brokers}: {source}")]
    Kafka {
        brokers: String,
        source: rdkafka::error::KafkaError,
    },
}

/// Which venue carries the intents out.
pub enum VenueChoice {
    /// The backtest's fill model against the latest `market.ticks` price.
    Paper(FillConfig),
    /// Swaps on chain (Uniswap V3 or PancakeSwap V3), already connected and verified.
    Onchain(Box<UniswapV3Venue>),
}

pub struct ExecutorConfig {
    pub brokers: String,
    pub group: String,
    pub journal: PathBuf,
    pub instance: String,
    /// Stop after this long without a new intent (batch runs and tests); None = run until killed.
    pub exit_when_idle: Option<Duration>,
    /// Ticks read back per partition at start, to know the latest prices.
    pub price_lookback: i64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExecutorStats {
    pub filled: u64,
    pub rejected: u64,
    pub duplicates: u64,
    pub dead_lettered: u64,
    pub republished: u64,
    pub commit_failures: u64,
    /// On-chain intents settled from the journal at start.
    pub recovered: u64,
}

fn kafka(brokers: &str) -> impl Fn(rdkafka::error::KafkaError) -> ExecutorError + '_ {
    move |source| ExecutorError::Kafka {
        brokers: brokers.into(),
        source,
    }
}

/// Latest price per token from `market.ticks`, by event time.
struct Prices {
    consumer: BaseConsumer,
    latest: HashMap<String, (i64, Decimal)>,
}

impl Prices {
    fn new(brokers: &str, lookback: i64) -> Result<Self, ExecutorError> {
        let ticks = topics::name("market.ticks");
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", topics::name("hypeflow-executor-prices"))
            .set("enable.auto.commit", "false")
            .create()
            .map_err(kafka(brokers))?;
        let md = consumer
            .fetch_metadata(Some(&ticks), Duration::from_secs(10))
            .map_err(kafka(brokers))?;
        let mut tpl = TopicPartitionList::new();
        for t in md.topics() {
            for p in t.partitions() {
                let (low, high) = consumer
                    .fetch_watermarks(&ticks, p.id(), Duration::from_secs(10))
                    .map_err(kafka(brokers))?;
                let _ = tpl.add_partition_offset(
                    &ticks,
                    p.id(),
                    Offset::Offset((high - lookback).max(low)),
                );
            }
        }
        consumer.assign(&tpl).map_err(kafka(brokers))?;
        drop(tpl);
        Ok(Prices {
            consumer,
            latest: HashMap::new(),
        })
    }

    fn drain(&mut self) {
        while let Some(Ok(m)) = self.consumer.poll(Duration::ZERO) {
            if let Ok(t) = envelope::decode::<PriceTick>("tick", m.payload().unwrap_or_default()) {
                let e = self
                    .latest
                    .entry(t.token.clone())
                    .or_insert((t.event_time, t.price));
                if t.event_time >= e.0 {
                    *e = (t.event_time, t.price);
                }
            }
        }
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn execute_one(paper: &PaperExecutor, prices: &Prices, intent: &OrderIntent) -> Fill {
    match prices.latest.get(&intent.token) {
        Some((time, price)) => paper.fill_now(intent, *price, *time),
        None => paper.reject(
            intent,
            format!("no market.ticks price for {} yet", intent.token),
            now_ms(),
        ),
    }
}

/// A reject for an intent record that names its id but cannot be read as an intent; never executed, never
/// journaled (it has no claimable content).
fn malformed_reject(payload: &[u8], reason: &str) -> Option<Fill> {
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let d = &v["data"];
    let id = d["id"].as_str().filter(|s| !s.trim().is_empty())?;
    let side = if d["side"].as_str() == Some("sell") {
        crate::model::Side::Sell
    } else {
        crate::model::Side::Buy
    };
    Some(Fill::refusal(
        id,
        "executor",
        d["token"].as_str().unwrap_or_default(),
        side,
        format!("malformed intent, not executed: {reason}"),
        now_ms(),
    ))
}

/// Publishes a journaled outcome and waits for the broker's acknowledgement, through outages: the offset of
/// its intent is committed only after this returns.
fn publish_outcome(p: &mut Publisher, f: &Fill) -> Result<(), PublishError> {
    match f.status {
        FillStatus::Filled => p.send_until_acked(
            &topics::name("orders.fills"),
            &f.token,
            &envelope::encode("fill", f),
            f.fill_time,
        ),
        FillStatus::Rejected => p.send_until_acked(
            &topics::name("orders.rejects"),
            &f.token,
            &envelope::encode("reject", f),
            f.fill_time,
        ),
    }
}

enum Venue {
    Paper {
        paper: PaperExecutor,
        prices: Box<Prices>,
    },
    Chain(Box<UniswapV3Venue>),
}

impl Venue {
    fn drain(&mut self) {
        if let Venue::Paper { prices, .. } = self {
            prices.drain();
        }
    }

    /// Executes a claimed intent; the outcome is journaled when this returns.
    fn execute(&mut self, intent: &OrderIntent, journal: &Journal) -> Result<Fill, ExecutorError> {
        match self {
            Venue::Paper { paper, prices } => {
                prices.drain();
                let f = execute_one(paper, prices, intent);
                journal.record_outcome(&f, now_ms())?;
                Ok(f)
            }
            Venue::Chain(v) => Ok(v.execute(intent, journal)?),
        }
    }
}

/// The executor loop over any venue.
pub fn run(cfg: &ExecutorConfig, choice: VenueChoice) -> Result<ExecutorStats, ExecutorError> {
    let journal = Journal::open(&cfg.journal)?;
    let mut publisher = Publisher::immediate(&cfg.brokers)?;
    publisher.warm_up(&topics::name("orders.fills"));
    let mut stats = ExecutorStats::default();
    let mut venue = match choice {
        VenueChoice::Paper(fills) => Venue::Paper {
            paper: PaperExecutor::new(fills),
            prices: Box::new(Prices::new(&cfg.brokers, cfg.price_lookback)?),
        },
        VenueChoice::Onchain(v) => Venue::Chain(v),
    };
    venue.drain();

    // Recovery: transactions signed before a stop are settled on chain (never signed again); what this
    // instance claimed and signed nothing for is executed; what was journaled but not acked is published.
    if let Venue::Chain(v) = &mut venue {
        for f in journal.outcomes_since(now_ms() - 86_400_000)? {
            v.book.add(&f);
        }
        let settled = v.recover(&journal)?;
        stats.recovered += settled.len() as u64;
    }
    for intent in journal.unfinished(&cfg.instance)? {
        venue.execute(&intent, &journal)?;
    }
    for f in journal.unpublished()? {
        publish_outcome(&mut publisher, &f)?;
        publisher.flush()?;
        journal.mark_published(&f.intent_id)?;
        stats.republished += 1;
    }

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &cfg.brokers)
        .set("group.id", topics::name(&cfg.group))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .create()
        .map_err(kafka(&cfg.brokers))?;
    consumer
        .subscribe(&[topics::name("orders.intents").as_str()])
        .map_err(kafka(&cfg.brokers))?;
    let mut last_activity = Instant::now();
    // The idle clock starts once the group has given us partitions (joining takes seconds), or after 30 s.
    let started = Instant::now();
    let mut assigned = false;
    loop {
        venue.drain();
        if !assigned {
            assigned = consumer
                .assignment()
                .map(|a| a.count() > 0)
                .unwrap_or(false);
            if assigned || started.elapsed() > Duration::from_secs(30) {
                assigned = true;
                last_activity = Instant::now();
            }
        }
        let Some(res) = consumer.poll(Duration::from_millis(100)) else {
            if assigned
                && cfg
                    .exit_when_idle
                    .is_some_and(|d| last_activity.elapsed() > d)
            {
                break;
            }
            continue;
        };
        let m = match res {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("orders.intents poll: {e}");
                continue;
            }
        };
        last_activity = Instant::now();
        let payload = m.payload().unwrap_or_default();
        match envelope::decode::<OrderIntent>("intent", payload) {
            Err(reason) => {
                publisher.dead_letter(
                    "orders.intents",
                    "",
                    payload,
                    &format!(
                        "partition {} offset {}: {reason}",
                        m.partition(),
                        m.offset()
                    ),
                )?;
                publisher.flush()?;
                stats.dead_lettered += 1;
                // whoever sent it learns it was refused, when it can be told which intent it was
                if let Some(f) = malformed_reject(payload, &reason) {
                    publish_outcome(&mut publisher, &f)?;
                    stats.rejected += 1;
                }
            }
            Ok(intent) => {
                if journal.claim(&intent, &cfg.instance, now_ms())? {
                    let f = venue.execute(&intent, &journal)?;
                    publish_outcome(&mut publisher, &f)?;
                    publisher.flush()?;
                    journal.mark_published(&f.intent_id)?;
                    match f.status {
                        FillStatus::Filled => stats.filled += 1,
                        FillStatus::Rejected => stats.rejected += 1,
                    }
                } else {
                    stats.duplicates += 1;
                }
            }
        }
        // The outcome is journaled and acknowledged: now the offset may move. A commit refused during a
        // rebalance only means the intent may be delivered again, which the journal turns into a duplicate.
        if let Err(e) = consumer.commit_message(&m, CommitMode::Sync) {
            tracing::warn!(
                "commit of orders.intents partition {} offset {} failed: {e}",
                m.partition(),
                m.offset()
            );
            stats.commit_failures += 1;
        }
    }
    publisher.finish()?;
    Ok(stats)
}
