//! The consumers a source reads with: one place for their settings, partition metadata and offsets, the
//! lookup of an offset by event time (with a fallback for brokers without a time index), and the history start
//! all workers agree on.

use super::{SourceError, SourceSpec};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::time::Duration;

pub fn consumer(
    brokers: &str,
    group: &str,
    fetch_wait_ms: u64,
) -> Result<BaseConsumer, SourceError> {
    crate::kafka::client::consumer(brokers, group)
        // a fetch at the end of a partition returns within this: decisions wait on the slowest partition
        .set("fetch.wait.max.ms", fetch_wait_ms.to_string())
        // a full local queue postpones the next fetch by this much (librdkafka default: a whole second)
        .set("fetch.queue.backoff.ms", "5")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .create()
        .map_err(|source| SourceError::Consumer {
            brokers: brokers.into(),
            source,
        })
}

/// A partition's (low, high) offsets.
pub(super) fn watermarks(
    c: &BaseConsumer,
    brokers: &str,
    topic: &str,
    partition: i32,
) -> Result<(i64, i64), SourceError> {
    c.fetch_watermarks(topic, partition, Duration::from_secs(10))
        .map_err(|e| SourceError::Metadata {
            topic: topic.into(),
            brokers: brokers.into(),
            message: e.to_string(),
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
    let c = consumer(
        &spec.brokers,
        &format!("{}-probe", spec.group_id),
        spec.fetch_wait_ms,
    )?;
    // Every non-empty partition is read from its start at once; its first record's timestamp is all we need.
    let mut tpl = TopicPartitionList::new();
    let mut waiting: std::collections::BTreeSet<(String, i32)> = Default::default();
    for (topic, _) in spec.topics.iter().filter(|(_, k)| !k.is_state()) {
        let n = partition_count(&c, &spec.brokers, topic)?;
        for p in 0..n {
            let (low, high) = watermarks(&c, &spec.brokers, topic, p)?;
            if high > low {
                let _ = tpl.add_partition_offset(topic, p, Offset::Offset(low));
                waiting.insert((topic.clone(), p));
            }
        }
    }
    if waiting.is_empty() {
        return Ok(None);
    }
    c.assign(&tpl).map_err(|e| SourceError::Metadata {
        topic: "(history probe)".into(),
        brokers: spec.brokers.clone(),
        message: e.to_string(),
    })?;
    let mut earliest: Option<i64> = None;
    // Every process of a cluster probes on its own and all must agree (the velocity baseline starts here): a
    // partition that does not answer is an error, never a silently later start.
    let deadline = std::time::Instant::now() + HISTORY_PROBE_WAIT;
    while !waiting.is_empty() && std::time::Instant::now() < deadline {
        let Some(Ok(m)) = c.poll(Duration::from_millis(100)) else {
            continue;
        };
        if !waiting.remove(&(m.topic().to_string(), m.partition())) {
            continue;
        }
        if let Some(ts) = m.timestamp().to_millis() {
            let ts = spec.from_ms.map_or(ts, |f| ts.max(f));
            earliest = Some(earliest.map_or(ts, |e: i64| e.min(ts)));
        }
    }
    // Closing a consumer takes ~100 ms (its broker threads wind down); nothing here waits for that.
    std::thread::spawn(move || drop(c));
    if let Some((topic, p)) = waiting.first() {
        return Err(SourceError::Metadata {
            topic: topic.clone(),
            brokers: spec.brokers.clone(),
            message: format!(
                "no first record from {} non-empty partition(s) (e.g. {p}) within {HISTORY_PROBE_WAIT:?}: \
                 the history start would be wrong; is the broker overloaded? try again",
                waiting.len()
            ),
        });
    }
    Ok(earliest)
}

/// How long the history probe waits for the first record of every non-empty partition.
const HISTORY_PROBE_WAIT: Duration = Duration::from_secs(60);

/// First offset of a partition whose timestamp is at or after `time_ms`; None past the end. A broker without a
/// time index (librdkafka's mock cluster answers every by-time lookup with "none") is searched instead by
/// reading timestamps, which are event times and nearly ordered within a partition.
pub(super) fn offset_at_time(
    c: &BaseConsumer,
    brokers: &str,
    topic: &str,
    partition: i32,
    time_ms: i64,
) -> Option<i64> {
    let indexed = {
        let mut q = TopicPartitionList::new();
        q.add_partition_offset(topic, partition, Offset::Offset(time_ms.max(0)))
            .ok()?;
        let found = c.offsets_for_times(q, Duration::from_secs(10)).ok();
        found.and_then(|f| {
            f.find_partition(topic, partition)
                .and_then(|e| e.offset().to_raw())
        })
    };
    if let Some(o) = indexed.filter(|o| *o >= 0) {
        return Some(o);
    }
    let (low, high) = watermarks(c, brokers, topic, partition).ok()?;
    // one small fetch per probe, answered at once
    let probe: BaseConsumer = crate::kafka::client::consumer(brokers, "hypeflow-time-probe")
        .set("fetch.wait.max.ms", "1")
        .create()
        .ok()?;
    let (mut lo, mut hi) = (low, high);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let (at, ts) = first_record_from(&probe, topic, partition, mid)?;
        if ts >= time_ms {
            hi = mid;
        } else {
            lo = at + 1;
        }
    }
    (lo < high).then_some(lo)
}

/// Offset and timestamp of the first record at or after `offset`.
fn first_record_from(
    c: &BaseConsumer,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Option<(i64, i64)> {
    {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
            .ok()?;
        c.assign(&tpl).ok()?;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m))
                if m.topic() == topic && m.partition() == partition && m.offset() >= offset =>
            {
                return Some((m.offset(), m.timestamp().to_millis()?));
            }
            _ => continue,
        }
    }
    None
}
