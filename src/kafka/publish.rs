//! Loading history files into topics: keyed as `kafka/topics.toml` says, the event time as the Kafka timestamp,
//! idempotent producer, lz4-compressed batches. A line that does not parse goes to `deadletter.<topic>` with the
//! reason in a header, never silently dropped.

use super::envelope;
use crate::model::{PriceTick, Tweet};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;
use std::io::BufRead;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("cannot create a Kafka producer for {brokers}: {source}")]
    Producer { brokers: String, source: KafkaError },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("unknown topic {0}: publish writes social.tweets (posts JSONL), social.scored (scored mentions JSONL), market.ticks (ticks JSONL) or orders.intents (intents JSONL)")]
    Topic(String),
    #[error("{failed} of {sent} records were not acknowledged by the broker (last error: {last}); nothing is lost on our side, re-run publish: ids and keys are the same")]
    Delivery {
        failed: u64,
        sent: u64,
        last: String,
    },
    #[error("producing to {topic} failed: {source}")]
    Send { topic: String, source: KafkaError },
    #[error("{pending} records were still unacknowledged after waiting {waited_s} s for the broker; check that it is up, then re-run (ids and keys are the same, nothing is lost on our side)")]
    Unacknowledged { pending: i32, waited_s: u64 },
}

#[derive(Default)]
pub struct Delivery {
    ok: AtomicU64,
    failed: AtomicU64,
    last_error: std::sync::Mutex<String>,
}

/// Producer context counting acknowledgements and failures.
pub struct Counting(Arc<Delivery>);

impl ClientContext for Counting {}
impl ProducerContext for Counting {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {
        match r {
            Ok(_) => {
                self.0.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.0.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut l) = self.0.last_error.lock() {
                    *l = e.to_string();
                }
            }
        }
    }
}

/// Why a record was dead-lettered, as the `reason` header every dead-letter record carries.
fn reason_header(reason: &str) -> OwnedHeaders {
    OwnedHeaders::new().insert(Header {
        key: "reason",
        value: Some(reason),
    })
}

pub struct Publisher {
    producer: BaseProducer<Counting>,
    delivery: Arc<Delivery>,
    sent: u64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PublishStats {
    pub published: u64,
    pub dead_lettered: u64,
}

impl Publisher {
    /// A producer for bulk loads: batches for up to 5 ms.
    pub fn new(brokers: &str) -> Result<Self, PublishError> {
        Self::with_linger(brokers, 5)
    }

    /// A producer for single records on the decision path (intents, fills): sends at once.
    pub fn immediate(brokers: &str) -> Result<Self, PublishError> {
        Self::with_linger(brokers, 0)
    }

    fn with_linger(brokers: &str, linger_ms: u32) -> Result<Self, PublishError> {
        let delivery = Arc::new(Delivery::default());
        let producer = super::client::producer(brokers, linger_ms)
            .create_with_context(Counting(delivery.clone()))
            .map_err(|source| PublishError::Producer {
                brokers: brokers.into(),
                source,
            })?;
        Ok(Publisher {
            producer,
            delivery,
            sent: 0,
        })
    }

    /// Sends one record, waiting on a full local queue instead of failing.
    pub fn send(
        &mut self,
        topic: &str,
        key: &str,
        value: &[u8],
        timestamp: i64,
        headers: Option<OwnedHeaders>,
    ) -> Result<(), PublishError> {
        let mut rec = BaseRecord::to(topic)
            .key(key)
            .payload(value)
            .timestamp(timestamp);
        if let Some(h) = headers {
            rec = rec.headers(h);
        }
        loop {
            match self.producer.send(rec) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    self.producer.poll(Duration::from_millis(50));
                    rec = r;
                }
                Err((source, _)) => {
                    return Err(PublishError::Send {
                        topic: topic.into(),
                        source,
                    })
                }
            }
        }
        self.sent += 1;
        if self.sent.is_multiple_of(1024) {
            self.serve_ready();
        }
        Ok(())
    }

    /// Sends one record and waits for its acknowledgement, retrying through broker outages for as long as they
    /// last. For what must not be lost and cannot be recomputed cheaply (an intent, an executed fill): the caller
    /// has nothing better to do than wait, and a warning says so every attempt.
    pub fn send_until_acked(
        &mut self,
        topic: &str,
        key: &str,
        value: &[u8],
        timestamp: i64,
    ) -> Result<(), PublishError> {
        self.send_until_acked_with(topic, key, value, timestamp, || None)
    }

    /// A record for `deadletter.<topic>` with the reason in a header, acknowledged before returning.
    pub fn dead_letter_until_acked(
        &mut self,
        topic: &str,
        key: &str,
        raw: &[u8],
        reason: &str,
    ) -> Result<(), PublishError> {
        self.send_until_acked_with(
            &super::topics::dead_letter_of(topic),
            key,
            raw,
            chrono::Utc::now().timestamp_millis(),
            || Some(reason_header(reason)),
        )
    }

    fn send_until_acked_with(
        &mut self,
        topic: &str,
        key: &str,
        value: &[u8],
        timestamp: i64,
        headers: impl Fn() -> Option<OwnedHeaders>,
    ) -> Result<(), PublishError> {
        let mut attempt = 0u32;
        loop {
            let sent = self.send(topic, key, value, timestamp, headers());
            match sent.and_then(|_| self.flush()) {
                Ok(()) => return Ok(()),
                Err(PublishError::Producer { brokers, source }) => {
                    return Err(PublishError::Producer { brokers, source })
                }
                Err(e) => {
                    attempt += 1;
                    tracing::warn!("{topic}: not acknowledged (attempt {attempt}), retrying: {e}");
                    std::thread::sleep(Duration::from_millis(500 * u64::from(attempt.min(10))));
                }
            }
        }
    }

    pub fn dead_letter(
        &mut self,
        topic: &str,
        key: &str,
        raw: &[u8],
        reason: &str,
    ) -> Result<(), PublishError> {
        let headers = reason_header(reason);
        self.send(
            &super::topics::dead_letter_of(topic),
            key,
            raw,
            chrono::Utc::now().timestamp_millis(),
            Some(headers),
        )
    }

    /// Connects to the topic's leaders and gets the idempotent producer its id now, so the first record does not
    /// wait for them. librdkafka asks for the id when a metadata answer arrives, from a broker that is up; the
    /// first answer comes from the bootstrap connection, which it closes at once, and without a broker it only
    /// tries again 500 ms later (that put ~270 ms on the first intent of a run). The second answer comes from
    /// the leader's own connection.
    pub fn warm_up(&mut self, topic: &str) {
        for _ in 0..2 {
            if let Err(e) = self
                .producer
                .client()
                .fetch_metadata(Some(topic), Duration::from_secs(10))
            {
                tracing::warn!("producer warm-up for {topic}: {e}");
                return;
            }
        }
    }

    /// Serves delivery reports without waiting (a long run of sends should call it now and then).
    pub fn poll(&mut self) {
        self.serve_ready();
    }

    /// Serves every delivery report that is ready. rust-rdkafka's `poll(0)` serves a single event (one produce
    /// response's reports) per call, so one call per many sends let reports pile up by the thousand, and a
    /// flush behind them took seconds to work through them.
    fn serve_ready(&self) {
        loop {
            let before = self.producer.in_flight_count();
            if before == 0 {
                return;
            }
            self.producer.poll(Duration::ZERO);
            if self.producer.in_flight_count() >= before {
                return;
            }
        }
    }

    /// Waits until everything sent so far is acknowledged; fails if any record since the last flush was not
    /// (the failures are reported once, so the publisher stays usable after a broker outage).
    pub fn flush(&mut self) -> Result<(), PublishError> {
        // rdkafka's own flush polls in 100 ms slices that run to their end even when the acknowledgement came
        // at once, which put 100 ms on every intent; this returns within 0.2 ms of the last acknowledgement.
        const WAIT: Duration = Duration::from_secs(30);
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            self.serve_ready();
            if self.producer.in_flight_count() == 0 {
                break;
            }
            if std::time::Instant::now() >= deadline {
                return Err(PublishError::Unacknowledged {
                    pending: self.producer.in_flight_count(),
                    waited_s: WAIT.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let failed = self.delivery.failed.swap(0, Ordering::Relaxed);
        if failed > 0 {
            let last = self
                .delivery
                .last_error
                .lock()
                .map(|l| l.clone())
                .unwrap_or_default();
            return Err(PublishError::Delivery {
                failed,
                sent: self.sent,
                last,
            });
        }
        Ok(())
    }

    /// Waits for every record to be acknowledged; returns how many were.
    pub fn finish(mut self) -> Result<u64, PublishError> {
        self.flush()?;
        Ok(self.delivery.ok.load(Ordering::Relaxed))
    }
}

/// A JSONL line as (key, timestamp, envelope), the key and timestamp taken from the record as `kafka/topics.toml` says.
fn keyed<T: serde::de::DeserializeOwned + serde::Serialize>(
    line: &str,
    schema: &str,
    key: impl Fn(&T) -> (&String, i64),
) -> Result<(String, i64, Vec<u8>), serde_json::Error> {
    let r: T = serde_json::from_str(line)?;
    let (k, ts) = key(&r);
    Ok((k.clone(), ts, envelope::encode(schema, &r)))
}

/// Publishes a JSONL file of posts (to social.tweets) or ticks (to market.ticks), in event-time order (stable
/// for equal times), so each partition is ordered and its watermark means something.
pub fn publish_file(
    p: &mut Publisher,
    topic: &str,
    path: &Path,
) -> Result<PublishStats, PublishError> {
    let f = std::fs::File::open(path).map_err(|source| PublishError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let mut stats = PublishStats::default();
    let mut records: Vec<(i64, String, Vec<u8>)> = Vec::new();
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|source| PublishError::Read {
            path: path.display().to_string(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed = match topic {
            "social.tweets" => keyed(&line, "tweet", |t: &Tweet| (&t.author_id, t.created_at)),
            "market.ticks" => keyed(&line, "tick", |t: &PriceTick| (&t.token, t.event_time)),
            "social.scored" => keyed(&line, "scored", |m: &crate::model::ScoredMention| {
                (&m.token, m.created_at)
            }),
            "orders.intents" => keyed(&line, "intent", |i: &crate::model::OrderIntent| {
                (&i.token, i.decision_time)
            }),
            other => return Err(PublishError::Topic(other.into())),
        };
        match parsed {
            Ok((key, ts, value)) => records.push((ts, key, value)),
            Err(e) => {
                p.dead_letter(
                    topic,
                    "",
                    line.as_bytes(),
                    &format!("{} line {}: {e}", path.display(), i + 1),
                )?;
                stats.dead_lettered += 1;
            }
        }
    }
    records.sort_by_key(|r| r.0);
    let target = super::topics::name(topic);
    for (ts, key, value) in records {
        p.send(&target, &key, &value, ts, None)?;
        stats.published += 1;
    }
    Ok(stats)
}
