//! The ticks of `market.ticks` in event-time order per token, as far as they have been read: the paper venue
//! fills a market intent at the first tick after its decision (never an earlier one) and marks bar closes
//! with them. Live it reads from near the end of the topic and takes what has arrived; replaying with the
//! event clock it reads from the start, only as far as the intent in hand needs, and forgets what no later
//! intent can need.

use super::venue::VenueError;
use crate::kafka::envelope;
use crate::kafka::topics;
use crate::model::PriceTick;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// (event time, arrival order) -> price: ticks at the same millisecond keep the order they were published in.
type Ticks = BTreeMap<(i64, u64), Decimal>;

pub struct TickTape {
    consumer: BaseConsumer,
    ticks: HashMap<String, Ticks>,
    /// The latest event time read from each partition (ticks of one token share a partition, in order).
    partitions: HashMap<i32, i64>,
    partition_count: usize,
    seq: u64,
    /// How long the topic may stay silent before what was read counts as all there is.
    quiet: Duration,
}

impl TickTape {
    /// From the start of the topic (`lookback` None: a replay) or `lookback` records before each partition's
    /// end (live).
    pub fn connect(
        brokers: &str,
        lookback: Option<i64>,
        quiet: Duration,
    ) -> Result<TickTape, VenueError> {
        let err =
            |e: rdkafka::error::KafkaError| VenueError::Market(format!("Kafka at {brokers}: {e}"));
        let topic = topics::name("market.ticks");
        let consumer: BaseConsumer = crate::kafka::client::base(brokers)
            .set("group.id", topics::name("hypeflow-executor-tape"))
            .set("enable.auto.commit", "false")
            .create()
            .map_err(err)?;
        let md = consumer
            .fetch_metadata(Some(&topic), Duration::from_secs(10))
            .map_err(err)?;
        let mut tpl = TopicPartitionList::new();
        let mut partition_count = 0;
        for t in md.topics() {
            for p in t.partitions() {
                let (low, high) = consumer
                    .fetch_watermarks(&topic, p.id(), Duration::from_secs(10))
                    .map_err(err)?;
                let start = lookback.map_or(low, |n| (high - n).max(low));
                let _ = tpl.add_partition_offset(&topic, p.id(), Offset::Offset(start));
                partition_count += 1;
            }
        }
        consumer.assign(&tpl).map_err(err)?;
        drop(tpl);
        Ok(TickTape {
            consumer,
            ticks: HashMap::new(),
            partitions: HashMap::new(),
            partition_count,
            seq: 0,
            quiet,
        })
    }

    /// Takes in what has arrived, without waiting.
    pub fn drain(&mut self) {
        while let Some(Ok(m)) = self.consumer.poll(Duration::ZERO) {
            let (p, bytes) = (m.partition(), m.payload().unwrap_or_default().to_vec());
            drop(m);
            self.take(p, &bytes);
        }
    }

    /// Reads until `done` holds, or the topic has been silent for the quiet time, or `max` has passed; true
    /// when `done` holds.
    fn read_until(&mut self, max: Duration, done: impl Fn(&TickTape) -> bool) -> bool {
        let start = Instant::now();
        let mut last = Instant::now();
        while !done(self) {
            if start.elapsed() >= max || last.elapsed() >= self.quiet {
                return false;
            }
            match self.consumer.poll(Duration::from_millis(50)) {
                Some(Ok(m)) => {
                    last = Instant::now();
                    let (p, bytes) = (m.partition(), m.payload().unwrap_or_default().to_vec());
                    drop(m);
                    self.take(p, &bytes);
                }
                Some(Err(e)) => tracing::warn!("market.ticks: {e}"),
                None => {}
            }
        }
        true
    }

    fn take(&mut self, partition: i32, payload: &[u8]) {
        let Ok(t) = envelope::decode::<PriceTick>("tick", payload) else {
            return;
        };
        self.seq += 1;
        let p = self.partitions.entry(partition).or_insert(t.event_time);
        *p = (*p).max(t.event_time);
        self.ticks
            .entry(t.token)
            .or_default()
            .insert((t.event_time, self.seq), t.price);
    }

    /// The first tick of `token` at or after `t`, reading on for it up to `max`.
    pub fn first_from(&mut self, token: &str, t: i64, max: Duration) -> Option<(i64, Decimal)> {
        let found = |tape: &TickTape| {
            tape.ticks
                .get(token)
                .and_then(|m| m.range((t, 0)..).next())
                .map(|((at, _), p)| (*at, *p))
        };
        self.read_until(max, |tape| found(tape).is_some());
        found(self)
    }

    /// Reads until every partition has passed `t` (or the topic is quiet): every tick before `t` is in.
    pub fn reach(&mut self, t: i64, max: Duration) {
        self.read_until(max, |tape| {
            tape.partitions.len() >= tape.partition_count
                && tape.partitions.values().all(|at| *at >= t)
        });
    }

    /// The last tick of `token` before `t`.
    pub fn last_before(&self, token: &str, t: i64) -> Option<(i64, Decimal)> {
        self.ticks
            .get(token)?
            .range(..(t, 0))
            .next_back()
            .map(|((at, _), p)| (*at, *p))
    }

    /// The earliest tick of `token` still held.
    pub fn first_from_read(&self, token: &str) -> Option<i64> {
        self.ticks.get(token)?.keys().next().map(|(t, _)| *t)
    }

    /// The latest event time read.
    pub fn latest(&self) -> Option<i64> {
        self.partitions.values().max().copied()
    }

    pub fn tokens(&self) -> Vec<String> {
        let mut v: Vec<String> = self.ticks.keys().cloned().collect();
        v.sort();
        v
    }

    /// Forgets the ticks before `t`, keeping each token's last one (its price as of `t`).
    pub fn forget_before(&mut self, t: i64) {
        for m in self.ticks.values_mut() {
            let keep = m.range(..(t, 0)).next_back().map(|(k, _)| *k);
            if let Some(k) = keep {
                let rest = m.split_off(&k);
                *m = rest;
            }
        }
    }
}
