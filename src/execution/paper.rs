//! The paper venue: the backtest's fill model against the latest `market.ticks` price, so a paper run means
//! what a backtest means by "filled" without any money moving.

use super::journal::Journal;
use super::venue::{Venue, VenueError};
use crate::config::FillConfig;
use crate::dataflow::fill_model::FillModel;
use crate::kafka::envelope;
use crate::kafka::topics;
use crate::model::{Fill, OrderIntent, PriceTick};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::time::Duration;

pub struct PaperVenue {
    model: FillModel,
    prices: Prices,
}

impl PaperVenue {
    /// Reads `market.ticks` from `lookback` records before each partition's end, to know the latest prices.
    pub fn connect(brokers: &str, fills: FillConfig, lookback: i64) -> Result<Self, VenueError> {
        Ok(PaperVenue {
            model: FillModel::new(fills),
            prices: Prices::new(brokers, lookback)?,
        })
    }
}

impl Venue for PaperVenue {
    fn name(&self) -> &str {
        "paper"
    }

    fn recover(&mut self, _journal: &Journal) -> Result<Vec<Fill>, VenueError> {
        // nothing is ever left half-done on paper: an intent without an outcome is simply executed again
        Ok(Vec::new())
    }

    fn refresh(&mut self) -> Result<(), VenueError> {
        self.prices.drain();
        Ok(())
    }

    fn execute(&mut self, intent: &OrderIntent, journal: &Journal) -> Result<Fill, VenueError> {
        self.prices.drain();
        let f = match self.prices.latest.get(&intent.token) {
            Some((time, price)) => self.model.fill_now(intent, *price, *time),
            None => self.model.reject(
                intent,
                format!("no market.ticks price for {} yet", intent.token),
                chrono::Utc::now().timestamp_millis(),
            ),
        };
        journal.record_outcome(&f, chrono::Utc::now().timestamp_millis())?;
        Ok(f)
    }
}

/// Latest price per token from `market.ticks`, by event time.
struct Prices {
    consumer: BaseConsumer,
    latest: HashMap<String, (i64, Decimal)>,
}

impl Prices {
    fn new(brokers: &str, lookback: i64) -> Result<Self, VenueError> {
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
