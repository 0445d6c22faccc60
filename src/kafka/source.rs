//! The timely Kafka source. Each worker owns a deterministic subset of partitions (`partition % peers ==
//! index`, not a consumer-group assignment), so every run splits work the same way. A partition's watermark is
//! the largest event time it has delivered minus the allowed lateness; the worker's capability follows the
//! minimum over its unfinished partitions. Records are stamped with their event-time epoch (never below the
//! capability), so downstream windows close on the frontier exactly as in a file replay.
//!
//! Bounded mode (replay) reads each owned partition from its start (or `--from`) to the end offset seen at
//! start, then drops the capability, which closes every window.

use crate::config::TokenTable;
use crate::dataflow::input::{check_post, check_scored, check_tick, DeadLetter, InputEvent};
use crate::dataflow::records::{epoch, OrderState, TickRec, TweetRec};
use crate::kafka::envelope;
use crate::model::{PriceTickRef, Tweet};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::{Scope, Stream};

/// How close to the wall clock a record must be for the fine quantum.
const FINE_WITHIN_MS: i64 = 5_000;

/// How long a fetch waits at the broker for data (`fetch.wait.max.ms`) unless told otherwise. Apache Kafka
/// answers a waiting fetch as soon as data arrives; librdkafka's mock cluster (`dev-broker`) holds every
/// empty fetch for the whole wait, so against it this bounds how late a caught-up consumer sees a record.
pub const DEFAULT_FETCH_WAIT_MS: u64 = 10;

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
    /// Live only: a finer quantum (dividing `quantum_ms`) for records near the wall clock, so a decision is
    /// not held back by up to a coarse quantum; records further behind (a catch-up) keep the coarse one,
    /// which progress tracking handles far more cheaply.
    pub fine_quantum_ms: Option<i64>,
    pub table: Arc<TokenTable>,
    pub dead: Arc<Mutex<Vec<DeadLetter>>>,
    /// `fetch.wait.max.ms` of the consumers (see [`DEFAULT_FETCH_WAIT_MS`]).
    pub fetch_wait_ms: u64,
}

impl SourceSpec {
    /// The timestamp a record (or watermark) at event time `t` gets, seen at wall-clock `now_ms`.
    fn epoch_of(&self, t: i64, now_ms: i64) -> u64 {
        match self.fine_quantum_ms {
            Some(q) if t >= now_ms - FINE_WITHIN_MS => epoch(t, q),
            _ => epoch(t, self.quantum_ms),
        }
    }

    /// Topic name -> its position in `topics` (which enters record sequence numbers).
    fn topic_index(&self) -> BTreeMap<String, usize> {
        self.topics
            .iter()
            .enumerate()
            .map(|(i, (t, _))| (t.clone(), i))
            .collect()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopicKind {
    Tweets,
    /// `social.scored`: posts scored upstream (LLM or lexicon), one record per (post, token).
    Scored,
    Ticks,
    /// The order topics a live run reads back when its positions follow the executor. They are state, not
    /// data: read from their start on every start, never committed, and they do not move the watermark.
    Intents,
    Fills,
    Rejects,
}

impl TopicKind {
    pub fn is_state(self) -> bool {
        matches!(
            self,
            TopicKind::Intents | TopicKind::Fills | TopicKind::Rejects
        )
    }
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

pub fn consumer(
    brokers: &str,
    group: &str,
    fetch_wait_ms: u64,
) -> Result<BaseConsumer, SourceError> {
    super::client::consumer(brokers, group)
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
fn watermarks(
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
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
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
    if !waiting.is_empty() {
        tracing::warn!(
            "no first record within 10 s from {} partition(s) (e.g. {:?}); the history start ignores them",
            waiting.len(),
            waiting.first()
        );
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
            let t: PriceTickRef = match envelope::decode_tick_canonical(bytes) {
                Some(t) => t,
                None => envelope::decode("tick", bytes)?,
            };
            let token = check_tick(&t.token, t.price, t.volume, t.event_time, table)?;
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
            check_post(&tweet)?;
            Ok(InputEvent::Tweet(TweetRec::post(seq, tweet)))
        }
        TopicKind::Scored => {
            let m: crate::model::ScoredMention = envelope::decode("scored", bytes)?;
            check_scored(&m)?;
            Ok(InputEvent::Tweet(TweetRec::scored(seq, m)))
        }
        TopicKind::Intents => Ok(InputEvent::Order(OrderState::Intent(envelope::decode(
            "intent", bytes,
        )?))),
        TopicKind::Fills => Ok(InputEvent::Order(OrderState::Outcome(envelope::decode(
            "fill", bytes,
        )?))),
        TopicKind::Rejects => Ok(InputEvent::Order(OrderState::Outcome(envelope::decode(
            "reject", bytes,
        )?))),
    }
}

/// First offset of a partition whose timestamp is at or after `time_ms`; None past the end. A broker without a
/// time index (librdkafka's mock cluster answers every by-time lookup with "none") is searched instead by
/// reading timestamps, which are event times and nearly ordered within a partition.
fn offset_at_time(
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
    let probe: BaseConsumer = super::client::consumer(brokers, "hypeflow-time-probe")
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

/// A record's tie-break sequence number: (topic index, partition, offset), unique and the same in every run.
fn record_seq(topic_index: usize, partition: i32, offset: i64) -> u64 {
    ((topic_index as u64) << 56)
        | ((partition as u64 & 0xFFFF) << 40)
        | (offset as u64 & 0xFF_FFFF_FFFF)
}

/// A record's topic -> its index in the spec. Looking the name up checks it as UTF-8 on every record (a tenth
/// of the source's time with the canonical tick reader); librdkafka hands every record of a topic the same
/// topic handle, so the handle's address is remembered instead.
struct TopicLookup {
    by_name: BTreeMap<String, usize>,
    by_handle: Vec<(usize, usize)>,
}

impl TopicLookup {
    fn new(by_name: BTreeMap<String, usize>) -> Self {
        TopicLookup {
            by_name,
            by_handle: Vec::new(),
        }
    }

    fn index_of(&mut self, m: &rdkafka::message::BorrowedMessage<'_>) -> Option<usize> {
        let handle = m.topic_ptr() as usize;
        if let Some((_, i)) = self.by_handle.iter().find(|(h, _)| *h == handle) {
            return Some(*i);
        }
        let i = *self.by_name.get(m.topic())?;
        self.by_handle.push((handle, i));
        Some(i)
    }
}

/// Decoded records of one activation, grouped by timestamp as they are read (sorting the records by stamp cost
/// several percent of the source). Consecutive records mostly share a stamp; millisecond stamps near the wall
/// clock can give thousands of groups in one batch, hence the index.
#[derive(Default)]
struct Batch {
    groups: Vec<(u64, Vec<InputEvent>)>,
    index: BTreeMap<u64, usize>,
}

impl Batch {
    fn push(&mut self, stamp: u64, ev: InputEvent) {
        let Batch { groups, index } = self;
        let at = match groups.last() {
            Some((t, _)) if *t == stamp => groups.len() - 1,
            _ => *index.entry(stamp).or_insert_with(|| {
                groups.push((stamp, Vec::new()));
                groups.len() - 1
            }),
        };
        groups[at].1.push(ev);
    }

    /// Gives every group, oldest stamp first, under a capability delayed to its stamp.
    fn emit(
        &mut self,
        cap: &timely::dataflow::operators::Capability<u64>,
        output: &mut timely::dataflow::operators::generic::OutputBuilderSession<
            '_,
            u64,
            CapacityContainerBuilder<Vec<InputEvent>>,
        >,
    ) {
        self.index.clear();
        self.groups.sort_by_key(|(t, _)| *t);
        for (t, events) in self.groups.drain(..) {
            output
                .session(&cap.delayed(&t))
                .give_iterator(events.into_iter());
        }
    }
}

/// Records a record that could not be decoded, with where it sits in the topic.
fn dead_letter(
    spec: &SourceSpec,
    topic: &str,
    partition: i32,
    offset: i64,
    reason: String,
    bytes: &[u8],
) {
    if let Ok(mut d) = spec.dead.lock() {
        d.push(DeadLetter {
            file: format!("{topic}/{partition}"),
            line: offset as u64,
            reason,
            raw: String::from_utf8_lossy(bytes).chars().take(2000).collect(),
        });
    }
}

/// Bounded source over the worker's partitions; returns the stream of decoded events.
pub fn bounded_source<'s>(
    scope: Scope<'s, u64>,
    spec: SourceSpec,
) -> Result<Stream<'s, u64, Vec<InputEvent>>, SourceError> {
    let index = scope.index();
    let peers = scope.peers();
    let c = consumer(&spec.brokers, &spec.group_id, spec.fetch_wait_ms)?;
    let mut parts: BTreeMap<(usize, i32), Part> = BTreeMap::new();
    let mut tpl = TopicPartitionList::new();
    for (ti, (topic, kind)) in spec.topics.iter().enumerate() {
        let n = partition_count(&c, &spec.brokers, topic)?;
        for p in (0..n).filter(|p| *p as usize % peers == index) {
            let (low, high) = watermarks(&c, &spec.brokers, topic, p)?;
            let start = match spec.from_ms {
                Some(from) => offset_at_time(&c, &spec.brokers, topic, p, from).unwrap_or(high),
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
    let topic_index = spec.topic_index();

    Ok(
        source::<_, CapacityContainerBuilder<Vec<InputEvent>>, _, _>(
            scope,
            "KafkaSource",
            move |cap, info| {
                let activator = scope.activator_for(info.address.clone());
                let mut cap = Some(cap);
                let mut batch = Batch::default();
                let mut topics = TopicLookup::new(topic_index);
                move |output| {
                    let Some(c_time) = cap.as_ref().map(|c| *c.time()) else {
                        return;
                    };
                    for _ in 0..4096 {
                        let Some(res) = c.poll(Duration::ZERO) else {
                            break;
                        };
                        let Ok(m) = res else { continue };
                        let Some(ti) = topics.index_of(&m) else {
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
                        let seq = record_seq(part.topic_index, m.partition(), offset);
                        let bytes = m.payload().unwrap_or_default();
                        match decode(part.kind, bytes, seq, &spec.table) {
                            Ok(ev) => {
                                let t = ev.time();
                                if spec.to_ms.is_some_and(|to| t > to) {
                                    continue;
                                }
                                part.max_event = Some(part.max_event.map_or(t, |x| x.max(t)));
                                batch.push(epoch(t, spec.quantum_ms).max(c_time), ev);
                            }
                            Err(reason) => {
                                dead_letter(&spec, m.topic(), m.partition(), offset, reason, bytes);
                            }
                        }
                    }
                    if let Some(cap) = cap.as_ref() {
                        batch.emit(cap, output);
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

/// How a live source behaves (the `run` command).
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// A partition silent this long (processing time) stops holding the watermark back.
    pub idle: Duration,
    /// Stop (closing every window) once every partition has been silent this long; None = run until killed.
    pub exit_when_idle: Option<Duration>,
    /// On restart, resume this much event time before the committed watermark, so windows and indicators are
    /// rebuilt; the replayed decisions get the same intent ids and are deduplicated downstream.
    pub rewind_ms: i64,
    pub commit_every: Duration,
    /// When set, every advance of the source's watermark is logged with the record that caused it (for the
    /// decision-lag benchmark: the issue measures from the triggering record's Kafka timestamp).
    pub watermark_log: Option<WatermarkLog>,
}

/// One advance of a worker's live-source capability, and the record whose arrival allowed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advance {
    pub worker: usize,
    /// The capability's new time: every record stamped before it has been delivered.
    pub epoch: u64,
    /// Event time (= Kafka timestamp) of the record that moved the watermark there; None when a partition
    /// going idle (or the last one stopping) did it.
    pub trigger_ms: Option<i64>,
}

pub type WatermarkLog = Arc<Mutex<Vec<Advance>>>;

/// The first record among `arrivals` (in delivery order) after which the slowest of the `busy` partitions,
/// starting from `before`, reaches `epoch`.
fn trigger_of(
    before: &BTreeMap<(usize, i32), Option<i64>>,
    busy: &[(usize, i32)],
    arrivals: &[((usize, i32), i64)],
    reaches: impl Fn(i64) -> bool,
) -> Option<i64> {
    let mut maxes: BTreeMap<(usize, i32), Option<i64>> = busy
        .iter()
        .map(|k| (*k, before.get(k).copied().flatten()))
        .collect();
    for (key, t) in arrivals {
        let Some(m) = maxes.get_mut(key) else {
            continue;
        };
        *m = Some(m.map_or(*t, |x| x.max(*t)));
        let slowest = maxes
            .values()
            .try_fold(i64::MAX, |lo, m| m.map(|m| lo.min(m)));
        if slowest.is_some_and(&reaches) {
            return Some(*t);
        }
    }
    None
}

/// The live source's way to `deadletter.<topic>`: a producer made on the first bad record, which waits out
/// broker outages so a bad record is never lost.
struct DeadLetterTopic {
    brokers: String,
    publisher: Option<crate::kafka::publish::Publisher>,
}

impl DeadLetterTopic {
    fn new(brokers: String) -> Self {
        DeadLetterTopic {
            brokers,
            publisher: None,
        }
    }

    fn publish(&mut self, topic: &str, key: &str, raw: &[u8], reason: &str) {
        if self.publisher.is_none() {
            match crate::kafka::publish::Publisher::immediate(&self.brokers) {
                Ok(p) => self.publisher = Some(p),
                Err(e) => {
                    tracing::error!("cannot dead-letter a record of {topic} ({reason}): {e}");
                    return;
                }
            }
        }
        if let Some(p) = self.publisher.as_mut() {
            if let Err(e) = p.dead_letter_until_acked(topic, key, raw, reason) {
                tracing::error!("cannot dead-letter a record of {topic} ({reason}): {e}");
            }
        }
    }
}

/// One owned partition of a live source.
struct LivePart {
    kind: TopicKind,
    max_event: Option<i64>,
    last_message: std::time::Instant,
    /// (epoch of a delivered record, offset after it), coalesced per epoch: what a commit may cover.
    delivered: std::collections::VecDeque<(u64, i64)>,
    /// Records before this offset were handled by an earlier run (rewound only to rebuild state): a bad one
    /// among them is already in the dead-letter topic.
    fresh_from: i64,
}

fn parse_wm(meta: &str) -> Option<i64> {
    meta.strip_prefix("wm=").and_then(|v| v.parse().ok())
}

/// The live source: unbounded, idle partitions advance by a processing-time heartbeat, offsets are committed to
/// the pipeline's group only behind `probe`'s frontier (everything before it has left the dataflow), with the
/// event-time watermark as commit metadata for the restart rewind.
pub fn live_source<'s>(
    scope: Scope<'s, u64>,
    spec: SourceSpec,
    live: LiveOptions,
    probe: timely::dataflow::ProbeHandle<u64>,
) -> Result<(Stream<'s, u64, Vec<InputEvent>>, FinalCommit), SourceError> {
    let index = scope.index();
    let peers = scope.peers();
    let c = consumer(&spec.brokers, &spec.group_id, spec.fetch_wait_ms)?;
    let meta_err = |topic: &str, e: rdkafka::error::KafkaError| SourceError::Metadata {
        topic: topic.into(),
        brokers: spec.brokers.clone(),
        message: e.to_string(),
    };
    let mut owned = TopicPartitionList::new();
    let mut parts: BTreeMap<(usize, i32), LivePart> = BTreeMap::new();
    for (ti, (topic, kind)) in spec.topics.iter().enumerate() {
        let n = partition_count(&c, &spec.brokers, topic)?;
        // State topics go whole to worker 0, which also owns partition 0 of every data topic, so the worker
        // that stamps them always has a moving capability.
        let mine = |p: i32| {
            if kind.is_state() {
                index == 0
            } else {
                p as usize % peers == index
            }
        };
        for p in (0..n).filter(|p| mine(*p)) {
            let _ = owned.add_partition(topic, p);
            parts.insert(
                (ti, p),
                LivePart {
                    kind: *kind,
                    max_event: None,
                    last_message: std::time::Instant::now(),
                    delivered: Default::default(),
                    fresh_from: 0,
                },
            );
        }
    }
    let topic_kinds: BTreeMap<String, TopicKind> = spec.topics.iter().cloned().collect();
    let committed = c
        .committed_offsets(owned.clone(), Duration::from_secs(10))
        .map_err(|e| meta_err("(committed)", e))?;
    let mut assign = TopicPartitionList::new();
    let topic_index = spec.topic_index();
    for e in owned.elements() {
        let (topic, p) = (e.topic().to_string(), e.partition());
        let (low, _high) = watermarks(&c, &spec.brokers, &topic, p)?;
        let committed_at = committed
            .find_partition(&topic, p)
            .and_then(|c| c.offset().to_raw())
            .filter(|o| *o >= 0);
        if let Some(part) = topic_index
            .get(&topic)
            .and_then(|ti| parts.get_mut(&(*ti, p)))
        {
            part.fresh_from = committed_at.unwrap_or(low);
        }
        let resume_at = match (
            spec.from_ms,
            committed
                .find_partition(&topic, p)
                .and_then(|c| parse_wm(c.metadata())),
        ) {
            (Some(from), _) => Some(from),
            (None, Some(wm)) => Some(wm - live.rewind_ms),
            (None, None) => None,
        };
        let state = topic_kinds.get(&topic).is_some_and(|k| k.is_state());
        let start = match resume_at {
            _ if state => Offset::Offset(low),
            // nothing at or after the rewind point: continue where the last run stopped
            Some(t) => offset_at_time(&c, &spec.brokers, &topic, p, t)
                .or(committed_at)
                .map_or(Offset::End, Offset::Offset),
            None => Offset::Offset(low),
        };
        tracing::debug!(
            "{topic}/{p}: committed {committed_at:?}, resume at {resume_at:?} -> {start:?}"
        );
        let _ = assign.add_partition_offset(&topic, p, start);
    }
    drop(committed);
    if assign.count() > 0 {
        c.assign(&assign).map_err(|e| meta_err("(assignment)", e))?;
    }
    tracing::debug!("worker {index}: {} partitions assigned", assign.count());
    drop(assign);
    drop(owned);
    let state = Rc::new(RefCell::new(LiveState { c, parts }));
    let fin = FinalCommit {
        state: state.clone(),
        spec: spec.clone(),
    };

    let stream = source::<_, CapacityContainerBuilder<Vec<InputEvent>>, _, _>(
        scope,
        "KafkaLiveSource",
        move |cap, info| {
            let activator = scope.activator_for(info.address.clone());
            // librdkafka calls this from its own thread when the consumer's queue stops being empty, so a
            // record is read as soon as it arrives instead of at the next timer tick.
            let wake = scope.worker().sync_activator_for(info.address.to_vec());
            state.borrow_mut().c.set_nonempty_callback(move || {
                let _ = wake.activate();
            });
            let mut cap = Some(cap);
            let mut batch = Batch::default();
            let mut last_commit = std::time::Instant::now();
            let mut dead_letters = DeadLetterTopic::new(spec.brokers.clone());
            let mut arrivals: Vec<((usize, i32), i64)> = Vec::new();
            let mut topics = TopicLookup::new(topic_index);
            move |output| {
                let now = std::time::Instant::now();
                let wall_ms = chrono::Utc::now().timestamp_millis();
                let mut st = state.borrow_mut();
                let LiveState { c, parts } = &mut *st;
                let Some(c_time) = cap.as_ref().map(|c| *c.time()) else {
                    return;
                };
                let before: Option<BTreeMap<(usize, i32), Option<i64>>> =
                    live.watermark_log.as_ref().map(|_| {
                        arrivals.clear();
                        parts.iter().map(|(k, p)| (*k, p.max_event)).collect()
                    });
                let mut drained = false;
                for _ in 0..4096 {
                    let Some(res) = c.poll(Duration::ZERO) else {
                        drained = true;
                        break;
                    };
                    let Ok(m) = res else { continue };
                    let Some(ti) = topics.index_of(&m) else {
                        continue;
                    };
                    let Some(part) = parts.get_mut(&(ti, m.partition())) else {
                        continue;
                    };
                    part.last_message = now;
                    let offset = m.offset();
                    let seq = record_seq(ti, m.partition(), offset);
                    let bytes = m.payload().unwrap_or_default();
                    let stamp = match decode(part.kind, bytes, seq, &spec.table) {
                        Ok(InputEvent::Order(o)) => {
                            let stamp = o
                                .time()
                                .map_or(c_time, |t| spec.epoch_of(t, wall_ms).max(c_time));
                            batch.push(stamp, InputEvent::Order(o));
                            continue;
                        }
                        Ok(ev) => {
                            let t = ev.time();
                            part.max_event = Some(part.max_event.map_or(t, |x| x.max(t)));
                            if before.is_some() {
                                arrivals.push(((ti, m.partition()), t));
                            }
                            let stamp = spec.epoch_of(t, wall_ms).max(c_time);
                            batch.push(stamp, ev);
                            stamp
                        }
                        Err(reason) if part.kind.is_state() => {
                            // written by hypeflow itself; a record it cannot read is reported, not re-routed
                            tracing::warn!(
                                "unreadable record in {} partition {} offset {}: {}",
                                m.topic(),
                                m.partition(),
                                offset,
                                reason
                            );
                            continue;
                        }
                        Err(reason) => {
                            if offset >= part.fresh_from {
                                let key = m
                                    .key()
                                    .map(|k| String::from_utf8_lossy(k).into_owned())
                                    .unwrap_or_default();
                                let why = format!(
                                    "partition {} offset {offset}: {reason}",
                                    m.partition()
                                );
                                dead_letters.publish(m.topic(), &key, bytes, &why);
                            }
                            dead_letter(&spec, m.topic(), m.partition(), offset, reason, bytes);
                            c_time
                        }
                    };
                    match part.delivered.back_mut() {
                        Some(last) if last.0 >= stamp => last.1 = offset + 1,
                        _ => part.delivered.push_back((stamp, offset + 1)),
                    }
                }
                if let Some(cap) = cap.as_ref() {
                    batch.emit(cap, output);
                }
                // Watermark: the slowest partition that is not idle; when all are idle, everything seen so far.
                let data = || parts.iter().filter(|(_, p)| !p.kind.is_state());
                let busy: Vec<(&(usize, i32), &LivePart)> = data()
                    .filter(|(_, p)| now.duration_since(p.last_message) < live.idle)
                    .collect();
                let wm = if busy.is_empty() {
                    data().filter_map(|(_, p)| p.max_event).max()
                } else if busy.iter().all(|(_, p)| p.max_event.is_some()) {
                    busy.iter().filter_map(|(_, p)| p.max_event).min()
                } else {
                    None
                };
                if let (Some(wm), Some(c)) = (wm, cap.as_mut()) {
                    let e = spec.epoch_of(wm - spec.lateness_ms, wall_ms);
                    if e > *c.time() {
                        c.downgrade(&e);
                        if let (Some(log), Some(before)) = (&live.watermark_log, &before) {
                            let keys: Vec<(usize, i32)> = busy.iter().map(|(k, _)| **k).collect();
                            let trigger = if keys.is_empty() {
                                None
                            } else {
                                trigger_of(before, &keys, &arrivals, |slowest| {
                                    spec.epoch_of(slowest - spec.lateness_ms, wall_ms) >= e
                                })
                            };
                            if let Ok(mut l) = log.lock() {
                                l.push(Advance {
                                    worker: index,
                                    epoch: e,
                                    trigger_ms: trigger,
                                });
                            }
                        }
                    }
                }
                let all_quiet = live
                    .exit_when_idle
                    .is_some_and(|d| data().all(|(_, p)| now.duration_since(p.last_message) >= d));
                if all_quiet {
                    // Dropping the capability closes every window; what is delivered is processed and committed below.
                    cap = None;
                }
                // Commit behind the frontier: offsets of records whose epoch the output has passed.
                if cap.is_none() || now.duration_since(last_commit) >= live.commit_every {
                    last_commit = now;
                    let frontier = probe.with_frontier(|f| f.first().copied());
                    commit_behind(
                        c,
                        &spec,
                        parts,
                        frontier,
                        rdkafka::consumer::CommitMode::Async,
                    );
                }
                if cap.is_some() {
                    // More is waiting: come back at once. Otherwise new records wake the source (above); the
                    // timer only keeps idleness, commits and the exit check moving on a silent topic.
                    if drained {
                        activator.activate_after(HEARTBEAT);
                    } else {
                        activator.activate();
                    }
                }
            }
        },
    );
    Ok((stream, fin))
}

/// How often a live source with nothing to read looks at its partitions anyway.
const HEARTBEAT: Duration = Duration::from_millis(20);

/// The live source's consumer and partitions, shared with the final commit.
struct LiveState {
    c: BaseConsumer,
    parts: BTreeMap<(usize, i32), LivePart>,
}

/// Commits everything the live source delivered, once the dataflow has finished with it. The dataflow retires
/// as soon as no capability is left, so this cannot run inside the source; the worker calls it after its last
/// step.
pub struct FinalCommit {
    state: Rc<RefCell<LiveState>>,
    spec: SourceSpec,
}

impl FinalCommit {
    pub fn commit(self) {
        let mut st = self.state.borrow_mut();
        let LiveState { c, parts } = &mut *st;
        commit_behind(
            c,
            &self.spec,
            parts,
            None,
            rdkafka::consumer::CommitMode::Sync,
        );
    }
}

/// Commits, per partition, the offset after the last record whose epoch is behind `frontier` (everything
/// when the frontier is empty), with the event-time watermark as metadata.
fn commit_behind(
    c: &BaseConsumer,
    spec: &SourceSpec,
    parts: &mut BTreeMap<(usize, i32), LivePart>,
    frontier: Option<u64>,
    mode: rdkafka::consumer::CommitMode,
) {
    let mut tpl = TopicPartitionList::new();
    for ((ti, p), part) in parts.iter_mut() {
        let mut commit_to = None;
        while let Some(&(e, next)) = part.delivered.front() {
            if frontier.is_some_and(|f| e >= f) {
                break;
            }
            commit_to = Some(next);
            part.delivered.pop_front();
        }
        if let Some(next) = commit_to {
            let wm = frontier.map_or(part.max_event.unwrap_or(0), |f| f as i64);
            if tpl
                .add_partition_offset(&spec.topics[*ti].0, *p, Offset::Offset(next))
                .is_ok()
            {
                if let Some(mut el) = tpl.find_partition(&spec.topics[*ti].0, *p) {
                    el.set_metadata(format!("wm={wm}"));
                }
            }
        }
    }
    if tpl.count() > 0 {
        if let Err(e) = c.commit(&tpl, mode) {
            tracing::warn!(
                "offset commit failed (harmless: a restart rewinds and deduplicates): {e}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(fine: Option<i64>) -> SourceSpec {
        SourceSpec {
            brokers: String::new(),
            group_id: String::new(),
            topics: vec![],
            from_ms: None,
            to_ms: None,
            lateness_ms: 0,
            quantum_ms: 60_000,
            fine_quantum_ms: fine,
            table: Arc::new(TokenTable::new(&Default::default())),
            dead: Default::default(),
            fetch_wait_ms: DEFAULT_FETCH_WAIT_MS,
        }
    }

    #[test]
    fn a_batch_groups_records_by_stamp_in_arrival_order() {
        let tick = |seq| {
            InputEvent::Tick(TickRec {
                token: 0,
                time: 0,
                seq,
                price: Default::default(),
                volume: Default::default(),
            })
        };
        let mut b = Batch::default();
        for (seq, stamp) in [5, 5, 3, 5, 7, 3, 3].into_iter().enumerate() {
            b.push(stamp, tick(seq as u64));
        }
        let seqs: Vec<(u64, Vec<u64>)> = b
            .groups
            .iter()
            .map(|(t, evs)| {
                let seqs = evs.iter().map(|e| match e {
                    InputEvent::Tick(t) => t.seq,
                    _ => u64::MAX,
                });
                (*t, seqs.collect())
            })
            .collect();
        assert_eq!(
            seqs,
            vec![(5, vec![0, 1, 3]), (3, vec![2, 5, 6]), (7, vec![4])]
        );
    }

    #[test]
    fn the_trigger_is_the_record_that_lifts_the_slowest_partition() {
        let (a, b) = ((0, 0), (0, 1));
        let before = BTreeMap::from([(a, Some(90)), (b, Some(95))]);
        // a moves past 100 first; the watermark only gets there when b does, at 103
        let arrivals = [(a, 101), (a, 102), (b, 99), (b, 103), (a, 104)];
        assert_eq!(
            trigger_of(&before, &[a, b], &arrivals, |wm| wm >= 100),
            Some(103)
        );
        // an idle partition does not hold it back
        assert_eq!(
            trigger_of(&before, &[a], &arrivals, |wm| wm >= 100),
            Some(101)
        );
        // a partition with nothing delivered yet holds it back until its first record
        let fresh = BTreeMap::from([(a, Some(90))]);
        assert_eq!(
            trigger_of(&fresh, &[a, b], &arrivals, |wm| wm >= 100),
            Some(103)
        );
        assert_eq!(
            trigger_of(&before, &[a, b], &arrivals, |wm| wm >= 200),
            None
        );
    }

    #[test]
    fn records_near_the_wall_clock_get_fine_stamps_a_catch_up_coarse_ones() {
        let now = 1_700_000_123_456;
        let live = spec(Some(5));
        assert_eq!(
            live.epoch_of(now - 3, now),
            (now - 3 - (now - 3) % 5) as u64
        );
        let old = now - 3_600_000;
        assert_eq!(live.epoch_of(old, now), (old - old % 60_000) as u64);
        // a replay never uses the fine quantum
        assert_eq!(spec(None).epoch_of(now, now), (now - now % 60_000) as u64);
        // both never stamp after the event: frontiers passing a time still mean everything before it arrived
        for t in [now - 10_000, now - 4_999, now] {
            assert!(live.epoch_of(t, now) as i64 <= t);
        }
    }
}
