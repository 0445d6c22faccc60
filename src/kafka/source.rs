//! The timely Kafka source. Each worker owns a deterministic subset of partitions (`partition % peers ==
//! index`, not a consumer-group assignment), so every run splits work the same way. A partition's watermark is
//! the largest event time it has delivered minus the allowed lateness; the worker's capability follows the
//! minimum over its unfinished partitions. Records are stamped with their event-time epoch (never below the
//! capability), so downstream windows close on the frontier exactly as in a file replay.
//!
//! Bounded mode (replay) reads each owned partition from its start (or `--from`) to the end offset seen at
//! start, then drops the capability, which closes every window.

use crate::backtest::inputs::{check_price, DeadLetter, InputEvent};
use crate::config::TokenTable;
use crate::dataflow::records::{epoch, TickRec, TweetRec};
use crate::kafka::envelope;
use crate::model::{PriceTick, Tweet};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::{Scope, Stream};

#[derive(Clone)]
pub struct SourceSpec {
    pub brokers: String,
    pub group_id: String,
    /// (topic, its kind) in a fixed order; the index enters record sequence numbers.
    pub topics: Vec<(String, TopicKind)>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub lateness_ms: i64,
    pub quantum_ms: i64,
    pub table: Arc<TokenTable>,
    pub dead: Arc<Mutex<Vec<DeadLetter>>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopicKind {
    Tweets,
    Ticks,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot create a Kafka consumer for {brokers}: {source}")]
    Consumer {
        brokers: String,
        source: rdkafka::error::KafkaError,
    },
    #[error("cannot read metadata of topic {topic} from {brokers}: {message}")]
    Metadata {
        topic: String,
        brokers: String,
        message: String,
    },
}

/// One owned partition's reading state.
struct Part {
    topic_index: usize,
    kind: TopicKind,
    stop: i64,
    max_event: Option<i64>,
    done: bool,
}

pub fn consumer(brokers: &str, group: &str) -> Result<BaseConsumer, SourceError> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .create()
        .map_err(|source| SourceError::Consumer {
            brokers: brokers.into(),
            source,
        })
}

pub fn partition_count(c: &BaseConsumer, brokers: &str, topic: &str) -> Result<i32, SourceError> {
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(|e| SourceError::Metadata {
            topic: topic.into(),
            brokers: brokers.into(),
            message: e.to_string(),
        })?;
    match md.topics().first() {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
            Ok(t.partitions().len() as i32)
        }
        _ => Err(SourceError::Metadata {
            topic: topic.into(),
            brokers: brokers.into(),
            message: "topic missing: run `hypeflow topics create`".into(),
        }),
    }
}

/// Earliest event time present at the start of any partition (records are published in event-time order per
/// partition): the history start every worker must agree on.
pub fn history_start(spec: &SourceSpec) -> Result<Option<i64>, SourceError> {
    let c = consumer(&spec.brokers, &format!("{}-probe", spec.group_id))?;
    let mut earliest: Option<i64> = None;
    for (topic, _) in &spec.topics {
        let n = partition_count(&c, &spec.brokers, topic)?;
        for p in 0..n {
            let (low, high) = c
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .map_err(|e| SourceError::Metadata {
                    topic: topic.clone(),
                    brokers: spec.brokers.clone(),
                    message: e.to_string(),
                })?;
            if high <= low {
                continue;
            }
            let mut tpl = TopicPartitionList::new();
            let _ = tpl.add_partition_offset(topic, p, Offset::Offset(low));
            let _ = c.assign(&tpl);
            drop(tpl);
            for _ in 0..100 {
                if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                    if let Some(ts) = m.timestamp().to_millis() {
                        let ts = spec.from_ms.map_or(ts, |f| ts.max(f));
                        earliest = Some(earliest.map_or(ts, |e: i64| e.min(ts)));
                    }
                    break;
                }
            }
        }
    }
    Ok(earliest)
}

fn decode(
    kind: TopicKind,
    bytes: &[u8],
    seq: u64,
    table: &TokenTable,
) -> Result<InputEvent, String> {
    match kind {
        TopicKind::Ticks => {
            let t: PriceTick = envelope::decode("tick", bytes)?;
            let token = check_price(&t.token, t.price, t.volume, table)?;
            Ok(InputEvent::Tick(TickRec {
                token,
                time: t.event_time,
                seq,
                price: t.price,
                volume: t.volume,
            }))
        }
        TopicKind::Tweets => {
            let tweet: Tweet = envelope::decode("tweet", bytes)?;
            if tweet.id.trim().is_empty() {
                return Err("tweet has an empty id".into());
            }
            Ok(InputEvent::Tweet(TweetRec { seq, tweet }))
        }
    }
}

/// Bounded source over the worker's partitions; returns the stream of decoded events.
pub fn bounded_source<'s>(
    scope: Scope<'s, u64>,
    spec: SourceSpec,
) -> Result<Stream<'s, u64, Vec<InputEvent>>, SourceError> {
    let index = scope.index();
    let peers = scope.peers();
    let c = consumer(&spec.brokers, &spec.group_id)?;
    let mut parts: BTreeMap<(usize, i32), Part> = BTreeMap::new();
    let mut tpl = TopicPartitionList::new();
    for (ti, (topic, kind)) in spec.topics.iter().enumerate() {
        let n = partition_count(&c, &spec.brokers, topic)?;
        for p in (0..n).filter(|p| *p as usize % peers == index) {
            let (low, high) = c
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .map_err(|e| SourceError::Metadata {
                    topic: topic.clone(),
                    brokers: spec.brokers.clone(),
                    message: e.to_string(),
                })?;
            let start = match spec.from_ms {
                Some(from) => {
                    let mut q = TopicPartitionList::new();
                    let _ = q.add_partition_offset(topic, p, Offset::Offset(from));
                    c.offsets_for_times(q, Duration::from_secs(10))
                        .ok()
                        .and_then(|r| r.find_partition(topic, p).and_then(|e| e.offset().to_raw()))
                        .filter(|o| *o >= 0)
                        .unwrap_or(high)
                }
                None => low,
            };
            let done = start >= high;
            if !done {
                let _ = tpl.add_partition_offset(topic, p, Offset::Offset(start));
            }
            parts.insert(
                (ti, p),
                Part {
                    topic_index: ti,
                    kind: *kind,
                    stop: high,
                    max_event: None,
                    done,
                },
            );
        }
    }
    if tpl.count() > 0 {
        c.assign(&tpl).map_err(|e| SourceError::Metadata {
            topic: "(assignment)".into(),
            brokers: spec.brokers.clone(),
            message: e.to_string(),
        })?;
    }
    drop(tpl);
    let topic_index: BTreeMap<String, usize> = spec
        .topics
        .iter()
        .enumerate()
        .map(|(i, (t, _))| (t.clone(), i))
        .collect();

    Ok(
        source::<_, CapacityContainerBuilder<Vec<InputEvent>>, _, _>(
            scope,
            "KafkaSource",
            move |cap, info| {
                let activator = scope.activator_for(info.address.clone());
                let mut cap = Some(cap);
                let mut batch: Vec<(u64, InputEvent)> = Vec::new();
                move |output| {
                    let Some(c_time) = cap.as_ref().map(|c| *c.time()) else {
                        return;
                    };
                    for _ in 0..4096 {
                        let Some(res) = c.poll(Duration::ZERO) else {
                            break;
                        };
                        let Ok(m) = res else { continue };
                        let Some(&ti) = topic_index.get(m.topic()) else {
                            continue;
                        };
                        let key = (ti, m.partition());
                        let Some(part) = parts.get_mut(&key) else {
                            continue;
                        };
                        let offset = m.offset();
                        if part.done || offset >= part.stop {
                            part.done = true;
                            continue;
                        }
                        if offset + 1 >= part.stop {
                            part.done = true;
                        }
                        // Sequence: topic, partition, offset: unique, and the same in every run.
                        let seq = ((part.topic_index as u64) << 56)
                            | ((m.partition() as u64 & 0xFFFF) << 40)
                            | (offset as u64 & 0xFF_FFFF_FFFF);
                        let bytes = m.payload().unwrap_or_default();
                        match decode(part.kind, bytes, seq, &spec.table) {
                            Ok(ev) => {
                                let t = ev.time();
                                if spec.to_ms.is_some_and(|to| t > to) {
                                    continue;
                                }
                                part.max_event = Some(part.max_event.map_or(t, |x| x.max(t)));
                                batch.push((epoch(t, spec.quantum_ms).max(c_time), ev));
                            }
                            Err(reason) => {
                                if let Ok(mut d) = spec.dead.lock() {
                                    d.push(DeadLetter {
                                        file: format!("{}/{}", m.topic(), m.partition()),
                                        line: offset as u64,
                                        reason,
                                        raw: String::from_utf8_lossy(bytes)
                                            .chars()
                                            .take(2000)
                                            .collect(),
                                    });
                                }
                            }
                        }
                    }
                    if let Some(cap) = cap.as_ref() {
                        batch.sort_by_key(|(t, _)| *t);
                        let mut it = batch.drain(..);
                        let mut pending = it.next();
                        while let Some((t, first)) = pending.take() {
                            let at = cap.delayed(&t);
                            let mut session = output.session(&at);
                            session.give(first);
                            for (t2, ev) in it.by_ref() {
                                if t2 != t {
                                    pending = Some((t2, ev));
                                    break;
                                }
                                session.give(ev);
                            }
                        }
                    }
                    // Watermark: the slowest unfinished partition, minus the allowed lateness.
                    let active: Vec<&Part> = parts.values().filter(|p| !p.done).collect();
                    if active.is_empty() {
                        cap = None;
                        return;
                    }
                    if active.iter().all(|p| p.max_event.is_some()) {
                        let wm = active.iter().filter_map(|p| p.max_event).min().unwrap_or(0)
                            - spec.lateness_ms;
                        let e = epoch(wm, spec.quantum_ms);
                        if let Some(c) = cap.as_mut() {
                            if e > *c.time() {
                                c.downgrade(&e);
                            }
                        }
                    }
                    activator.activate_after(Duration::from_millis(1));
                }
            },
        ),
    )
}
