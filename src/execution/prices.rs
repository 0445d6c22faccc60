//! The latest price of each token on `market.ticks`: what the paper venue fills at and the live book marks
//! positions to.

use super::venue::VenueError;
use crate::kafka::envelope;
use crate::kafka::topics;
use crate::model::PriceTick;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::time::Duration;

/// Latest price per token from `market.ticks`, by event time.
pub struct LatestPrices {
    consumer: BaseConsumer,
    latest: HashMap<String, (i64, Decimal)>,
}

impl LatestPrices {
    /// Reads `market.ticks` from `lookback` records before each partition's end.
    pub fn connect(brokers: &str, lookback: i64) -> Result<Self, VenueError> {
        let err =
            |e: rdkafka::error::KafkaError| VenueError::Market(format!("Kafka at {brokers}: {e}"));
        let ticks = topics::name("market.ticks");
        let consumer: BaseConsumer = crate::kafka::client::base(brokers)
            .set("group.id", topics::name("hypeflow-executor-prices"))
            .set("enable.auto.commit", "false")
            .create()
            .map_err(err)?;
        let md = consumer
            .fetch_metadata(Some(&ticks), Duration::from_secs(10))
            .map_err(err)?;
        let mut tpl = TopicPartitionList::new();
        for t in md.topics() {
            for p in t.partitions() {
                let (low, high) = consumer
                    .fetch_watermarks(&ticks, p.id(), Duration::from_secs(10))
                    .map_err(err)?;
                let _ = tpl.add_partition_offset(
                    &ticks,
                    p.id(),
                    Offset::Offset((high - lookback).max(low)),
                );
            }
        }
        consumer.assign(&tpl).map_err(err)?;
        drop(tpl);
        Ok(LatestPrices {
            consumer,
            latest: HashMap::new(),
        })
    }

    /// Takes in every tick that has arrived since the last call.
    pub fn drain(&mut self) {
        while let Some(Ok(m)) = self.consumer.poll(Duration::ZERO) {
            take(&mut self.latest, m.payload().unwrap_or_default());
        }
    }

    /// Reads until the topic has nothing more for a moment (or `max` has passed): for a one-off look at the
    /// latest prices, where `drain` only takes what has already arrived.
    pub fn catch_up(&mut self, max: Duration) {
        let start = std::time::Instant::now();
        let mut seen = false;
        while start.elapsed() < max {
            match self.consumer.poll(Duration::from_millis(500)) {
                Some(Ok(m)) => {
                    seen = true;
                    take(&mut self.latest, m.payload().unwrap_or_default());
                }
                Some(Err(_)) => {}
                None if seen => break,
                None => {}
            }
        }
    }

    /// The latest (event time, price) of a token.
    pub fn get(&self, token: &str) -> Option<(i64, Decimal)> {
        self.latest.get(token).copied()
    }
}

/// A tick into the latest prices, by event time (a late tick does not overwrite a newer price).
fn take(latest: &mut HashMap<String, (i64, Decimal)>, payload: &[u8]) {
    if let Ok(t) = envelope::decode::<PriceTick>("tick", payload) {
        let e = latest
            .entry(t.token.clone())
            .or_insert((t.event_time, t.price));
        if t.event_time >= e.0 {
            *e = (t.event_time, t.price);
        }
    }
}
