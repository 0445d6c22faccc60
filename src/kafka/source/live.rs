//! The live source (`run`): unbounded; idle partitions advance by a processing-time heartbeat; offsets are
//! committed only behind the output's frontier, with the event-time watermark as commit metadata so a restart
//! rewinds to rebuild windows.

use super::consumer::{consumer, offset_at_time, partition_count, watermarks};
use super::decode::{dead_letter, decode, record_seq, redelivered, TopicLookup};
use super::{Batch, Output, SourceError, SourceSpec, TopicKind};
use crate::dataflow::input::InputEvent;
use crate::dataflow::records::OrderState;
use crate::kafka::lockstep::Lockstep;
use crate::telemetry::names;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::operators::Capability;
use timely::dataflow::{Scope, Stream};

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
    /// `run --lockstep`: the watermark moves a bar at a time, once the executor has answered.
    pub lockstep: Option<Arc<Lockstep>>,
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
pub(super) fn trigger_of(
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

/// A worker's source that has not reported for this long is not ready (its loop has stopped or hangs).
const HEALTH_STALE: Duration = Duration::from_secs(30);

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
    /// `hypeflow_records_in_total` and `hypeflow_watermark_lag_seconds` of this partition (handles made once:
    /// an increment is an atomic add, nothing per record is looked up).
    records_in: metrics::Counter,
    lag: metrics::Gauge,
    /// The offset after the last record read (at assignment: where reading starts).
    next_offset: i64,
    /// Silent and nothing left to read as of the last look at the broker's high watermark: only then may
    /// silence make a partition idle. A partition whose first fetch is slow (a loaded machine, a far broker, a
    /// restart far behind) is silent but not drained; taking it for idle would let the watermark run past its
    /// records, which then arrive late and are decided out of event order.
    drained: bool,
    /// When the high watermark was last asked for while the partition was silent and not drained.
    drain_checked: Option<Instant>,
}

impl LivePart {
    /// Silent for `after` and drained (or silent past [`DRAIN_GRACE`] whatever the broker says).
    fn quiet_for(&self, now: Instant, after: Duration) -> bool {
        now.duration_since(self.last_message) >= after && self.drained
    }

    /// Decides whether a partition silent for `idle` (the shorter of the idle and exit silences) has read
    /// everything the broker holds; asks the broker at most once per `idle` while it has not. False when the
    /// broker could not be asked (ask no other partition in this activation: every ask blocks the worker up to
    /// [`DRAIN_ASK_TIMEOUT`]).
    fn settle_drained(
        &mut self,
        c: &BaseConsumer,
        topic: &str,
        p: i32,
        now: Instant,
        idle: Duration,
    ) -> bool {
        let silent = now.duration_since(self.last_message);
        if self.drained
            || silent < idle
            || self
                .drain_checked
                .is_some_and(|t| now.duration_since(t) < idle)
        {
            return true;
        }
        self.drain_checked = Some(now);
        if silent >= DRAIN_GRACE {
            // e.g. a transactional producer's commit marker keeps the high watermark one past the last record
            tracing::warn!(
                "{topic}/{p}: silent for {} s though the broker reports records past offset {}; counting it idle",
                silent.as_secs(),
                self.next_offset
            );
            self.drained = true;
            return true;
        }
        match c.fetch_watermarks(topic, p, DRAIN_ASK_TIMEOUT) {
            Ok((_, high)) => {
                self.drained = self.next_offset >= high;
                true
            }
            Err(e) => {
                // the broker cannot say (yet): ask again later; DRAIN_GRACE bounds the wait
                tracing::debug!("{topic}/{p}: high watermark unavailable ({e}); asking again");
                false
            }
        }
    }
}

/// A silent partition with records still reported past its position holds the watermark at most this long.
const DRAIN_GRACE: Duration = Duration::from_secs(30);
/// How long the live loop may wait for a partition's high watermark (it blocks the worker meanwhile).
const DRAIN_ASK_TIMEOUT: Duration = Duration::from_millis(1500);

fn parse_wm(meta: &str) -> Option<i64> {
    meta.strip_prefix("wm=").and_then(|v| v.parse().ok())
}

/// The worker's consumer, assigned its partitions (`partition % peers == index`; the order topics whole to
/// worker 0) at the offsets to resume from: `--from`, else the committed watermark less the rewind, else the
/// start; the order topics always from their start.
fn assign(
    spec: &SourceSpec,
    live: &LiveOptions,
    index: usize,
    peers: usize,
) -> Result<LiveState, SourceError> {
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
            let labels = [("topic", topic.clone()), ("partition", p.to_string())];
            parts.insert(
                (ti, p),
                LivePart {
                    kind: *kind,
                    max_event: None,
                    last_message: std::time::Instant::now(),
                    delivered: Default::default(),
                    fresh_from: 0,
                    records_in: metrics::counter!(names::RECORDS_IN, &labels),
                    lag: metrics::gauge!(names::WATERMARK_LAG, &labels),
                    next_offset: 0,
                    drained: false,
                    drain_checked: None,
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
        let (low, high) = watermarks(&c, &spec.brokers, &topic, p)?;
        let committed_at = committed
            .find_partition(&topic, p)
            .and_then(|c| c.offset().to_raw())
            .filter(|o| *o >= 0);
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
        // an operator's first question after a restart: where did it pick up
        let at = |t: i64| crate::model::time::to_rfc3339(t);
        match (state, spec.from_ms, resume_at) {
            (true, _, _) => tracing::debug!("{topic}/{p}: a state topic, read whole"),
            (false, Some(t), _) => tracing::info!("{topic}/{p}: reading from --from {} at {start:?}", at(t)),
            (false, None, Some(t)) => tracing::info!(
                "{topic}/{p}: resuming from the committed watermark minus the rewind ({}) at {start:?}",
                at(t)
            ),
            (false, None, None) => {
                tracing::info!("{topic}/{p}: no committed watermark, reading from {start:?}")
            }
        }
        if let Some(part) = topic_index
            .get(&topic)
            .and_then(|ti| parts.get_mut(&(*ti, p)))
        {
            part.fresh_from = committed_at.unwrap_or(low);
            part.next_offset = match start {
                Offset::Offset(o) => o,
                _ => high,
            };
        }
        let _ = assign.add_partition_offset(&topic, p, start);
    }
    drop(committed);
    if assign.count() > 0 {
        c.assign(&assign).map_err(|e| meta_err("(assignment)", e))?;
    }
    tracing::debug!("worker {index}: {} partitions assigned", assign.count());
    drop(assign);
    drop(owned);
    Ok(LiveState { c, parts })
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
    let state = Rc::new(RefCell::new(assign(&spec, &live, index, scope.peers())?));
    crate::telemetry::health().beat(
        &format!("source/{index}"),
        HEALTH_STALE,
        format!("{} partitions assigned", state.borrow().parts.len()),
    );
    let fin = FinalCommit {
        state: state.clone(),
        spec: spec.clone(),
    };
    let stream = source::<_, CapacityContainerBuilder<Vec<InputEvent>>, _, _>(
        scope,
        "KafkaLiveSource",
        move |cap, info| {
            // librdkafka calls this from its own thread when the consumer's queue stops being empty, so a
            // record is read as soon as it arrives instead of at the next timer tick.
            let wake = scope.worker().sync_activator_for(info.address.to_vec());
            state.borrow_mut().c.set_nonempty_callback(move || {
                let _ = wake.activate();
            });
            let mut run = LiveLoop {
                activator: scope.activator_for(info.address.clone()),
                topics: TopicLookup::new(spec.topic_index()),
                dead_letters: DeadLetterTopic::new(spec.brokers.clone()),
                state,
                spec,
                live,
                probe,
                index,
                cap: Some(cap),
                batch: Batch::default(),
                last_commit: Instant::now(),
                arrivals: Vec::new(),
                behind: false,
                ahead: Default::default(),
                last_beat: Instant::now(),
            };
            move |output| run.step(output)
        },
    );
    Ok((stream, fin))
}

type Parts = BTreeMap<(usize, i32), LivePart>;

/// What the live source keeps between activations.
struct LiveLoop {
    state: Rc<RefCell<LiveState>>,
    spec: SourceSpec,
    live: LiveOptions,
    probe: timely::dataflow::ProbeHandle<u64>,
    activator: timely::scheduling::Activator,
    index: usize,
    /// None once the source has finished (every partition quiet for `exit_when_idle`).
    cap: Option<Capability<u64>>,
    batch: Batch,
    last_commit: Instant,
    dead_letters: DeadLetterTopic,
    /// (partition, event time) of each record read this activation, kept only for the watermark log.
    arrivals: Vec<((usize, i32), i64)>,
    /// Lockstep: the capability is short of where the watermark allows.
    behind: bool,
    /// Lockstep: the stamps of the records emitted at or after the capability.
    ahead: std::collections::BTreeSet<u64>,
    topics: TopicLookup,
    /// When readiness was last reported.
    last_beat: Instant,
}

impl LiveLoop {
    /// One activation: read what is waiting, emit it, advance the watermark, commit behind the frontier, and
    /// ask to be scheduled again.
    fn step(&mut self, output: &mut Output<'_>) {
        let now = Instant::now();
        let wall_ms = chrono::Utc::now().timestamp_millis();
        let Some(c_time) = self.cap.as_ref().map(|c| *c.time()) else {
            return;
        };
        let state = self.state.clone();
        let mut st = state.borrow_mut();
        let LiveState { c, parts } = &mut *st;
        let before: Option<BTreeMap<(usize, i32), Option<i64>>> =
            self.live.watermark_log.as_ref().map(|_| {
                self.arrivals.clear();
                parts.iter().map(|(k, p)| (*k, p.max_event)).collect()
            });
        let drained = self.read(c, parts, c_time, wall_ms, now, before.is_some());
        // silence matters after `idle` (the watermark) or `exit_when_idle` (the exit), whichever comes first
        let quiet_after = self
            .live
            .exit_when_idle
            .map_or(self.live.idle, |d| d.min(self.live.idle));
        for ((ti, p), part) in parts.iter_mut().filter(|(_, p)| !p.kind.is_state()) {
            if !part.settle_drained(c, &self.spec.topics[*ti].0, *p, now, quiet_after) {
                break;
            }
        }
        if now.duration_since(self.last_beat) >= Duration::from_secs(1) {
            self.last_beat = now;
            self.report_health(parts, wall_ms);
        }
        if let Some(cap) = self.cap.as_ref() {
            self.batch.emit(cap, output);
        }
        self.advance(parts, before.as_ref(), now, wall_ms);
        // in lockstep the run ends only once it has stepped through everything read, every outcome in
        let awaiting = self.live.lockstep.as_ref().is_some_and(|l| l.waiting()) || self.behind;
        let all_quiet = !awaiting
            && self
                .live
                .exit_when_idle
                .is_some_and(|d| data(parts).all(|(_, p)| p.quiet_for(now, d)));
        if all_quiet {
            // Dropping the capability closes every window; what is delivered is processed and committed below.
            self.cap = None;
        }
        // Commit behind the frontier: offsets of records whose epoch the output has passed.
        if self.cap.is_none() || now.duration_since(self.last_commit) >= self.live.commit_every {
            self.last_commit = now;
            let frontier = self.probe.with_frontier(|f| f.first().copied());
            commit_behind(c, &self.spec, parts, frontier, CommitMode::Async);
        }
        if self.cap.is_some() {
            // More is waiting: come back at once. Otherwise new records wake the source (above); the
            // timer only keeps idleness, commits and the exit check moving on a silent topic.
            if drained {
                self.activator.activate_after(HEARTBEAT);
            } else {
                self.activator.activate();
            }
        }
    }

    /// Readiness: this worker's source is running (a beat that goes stale when the loop stops), with how old
    /// the newest data it read is.
    fn report_health(&self, parts: &Parts, wall_ms: i64) {
        let newest = data(parts).filter_map(|(_, p)| p.max_event).max();
        let detail = match newest {
            Some(t) => format!(
                "{} partitions, newest record {:.1} s old",
                parts.len(),
                (wall_ms - t) as f64 / 1000.0
            ),
            None => format!("{} partitions, nothing read yet", parts.len()),
        };
        crate::telemetry::health().beat(&format!("source/{}", self.index), HEALTH_STALE, detail);
    }

    /// Reads up to 4096 records into the batch; true when the consumer's queue ran dry.
    fn read(
        &mut self,
        c: &BaseConsumer,
        parts: &mut Parts,
        c_time: u64,
        wall_ms: i64,
        now: Instant,
        track: bool,
    ) -> bool {
        for _ in 0..4096 {
            let Some(res) = c.poll(Duration::ZERO) else {
                return true;
            };
            let Ok(m) = res else { continue };
            let Some(ti) = self.topics.index_of(&m) else {
                continue;
            };
            let Some(part) = parts.get_mut(&(ti, m.partition())) else {
                continue;
            };
            if m.offset() < part.next_offset {
                // a record handed over a second time (a client-side refetch): it was taken already
                redelivered(m.topic(), m.partition(), m.offset(), part.next_offset);
                continue;
            }
            part.last_message = now;
            part.next_offset = m.offset() + 1;
            part.drained = false;
            part.drain_checked = None;
            part.records_in.increment(1);
            let Some(stamp) = self.take(&m, ti, part, c_time, wall_ms, track) else {
                continue;
            };
            if self.live.lockstep.is_some() {
                self.ahead.insert(stamp);
            }
            let next = m.offset() + 1;
            match part.delivered.back_mut() {
                Some(last) if last.0 >= stamp => last.1 = next,
                _ => part.delivered.push_back((stamp, next)),
            }
        }
        false
    }

    /// One record into the batch, or to the dead letters; the stamp its offset counts as delivered under, or
    /// None for a record that does not move the partition's delivered offsets (orders, unreadable state).
    fn take(
        &mut self,
        m: &BorrowedMessage<'_>,
        ti: usize,
        part: &mut LivePart,
        c_time: u64,
        wall_ms: i64,
        track: bool,
    ) -> Option<u64> {
        let offset = m.offset();
        let seq = record_seq(ti, m.partition(), offset);
        let bytes = m.payload().unwrap_or_default();
        let spec = &self.spec;
        match decode(part.kind, bytes, seq, &spec.table) {
            Ok(InputEvent::Order(o)) => {
                if let (OrderState::Outcome(f), Some(l)) = (&o, &self.live.lockstep) {
                    l.settled(&f.intent_id);
                }
                let stamp = o
                    .time()
                    .map_or(c_time, |t| spec.epoch_of(t, wall_ms).max(c_time));
                self.batch.push(stamp, InputEvent::Order(o));
                None
            }
            Ok(ev) => {
                let t = ev.time();
                part.max_event = Some(part.max_event.map_or(t, |x| x.max(t)));
                if track {
                    self.arrivals.push(((ti, m.partition()), t));
                }
                let stamp = spec.epoch_of(t, wall_ms).max(c_time);
                self.batch.push(stamp, ev);
                Some(stamp)
            }
            Err((_, reason)) if part.kind.is_state() => {
                // written by hypeflow itself; a record it cannot read is reported, not re-routed
                tracing::warn!(
                    "unreadable record in {} partition {} offset {}: {}",
                    m.topic(),
                    m.partition(),
                    offset,
                    reason
                );
                None
            }
            Err((class, reason)) => {
                metrics::counter!(names::DEAD_LETTERS, "topic" => m.topic().to_string(), "reason" => class.as_str())
                    .increment(1);
                if offset >= part.fresh_from {
                    let key = m
                        .key()
                        .map(|k| String::from_utf8_lossy(k).into_owned())
                        .unwrap_or_default();
                    let why = format!("partition {} offset {offset}: {reason}", m.partition());
                    self.dead_letters.publish(m.topic(), &key, bytes, &why);
                }
                let p = m.partition();
                dead_letter(spec, m.topic(), p, offset, reason.into(), bytes);
                Some(c_time)
            }
        }
    }

    /// Moves the capability up to the watermark: the slowest partition that is not idle; when all are idle,
    /// everything seen so far. With a watermark log, each advance is logged with the record that allowed it.
    fn advance(
        &mut self,
        parts: &Parts,
        before: Option<&BTreeMap<(usize, i32), Option<i64>>>,
        now: Instant,
        wall_ms: i64,
    ) {
        let idle = self.live.idle;
        for (_, p) in data(parts) {
            if let Some(t) = p.max_event {
                p.lag.set((wall_ms - t) as f64 / 1000.0);
            }
        }
        let busy: Vec<(&(usize, i32), &LivePart)> = data(parts)
            .filter(|(_, p)| !p.quiet_for(now, idle))
            .collect();
        let wm = if busy.is_empty() {
            data(parts).filter_map(|(_, p)| p.max_event).max()
        } else if busy.iter().all(|(_, p)| p.max_event.is_some()) {
            busy.iter().filter_map(|(_, p)| p.max_event).min()
        } else {
            None
        };
        let spec = &self.spec;
        let (Some(wm), Some(c)) = (wm, self.cap.as_mut()) else {
            return;
        };
        let mut e = spec.epoch_of(wm - spec.lateness_ms, wall_ms);
        if let Some(l) = &self.live.lockstep {
            // every partition quiet: what was read is all there is, and the last bars may close
            let target = if busy.is_empty() {
                (wm + 2 * l.step_ms()) as u64
            } else {
                e
            };
            let cap = *c.time();
            let caught_up = self
                .probe
                .with_frontier(|f| f.first().is_none_or(|t| *t >= cap));
            while self.ahead.first().is_some_and(|s| *s < cap) {
                self.ahead.pop_first();
            }
            let first = self.ahead.first().map(|s| *s as i64);
            e = l.limit(cap as i64, first, target as i64, caught_up).max(0) as u64;
            self.behind = e < target;
        }
        if e <= *c.time() {
            return;
        }
        c.downgrade(&e);
        let (Some(log), Some(before)) = (&self.live.watermark_log, before) else {
            return;
        };
        let keys: Vec<(usize, i32)> = busy.iter().map(|(k, _)| **k).collect();
        let trigger = if keys.is_empty() {
            None
        } else {
            trigger_of(before, &keys, &self.arrivals, |slowest| {
                spec.epoch_of(slowest - spec.lateness_ms, wall_ms) >= e
            })
        };
        if let Ok(mut l) = log.lock() {
            l.push(Advance {
                worker: self.index,
                epoch: e,
                trigger_ms: trigger,
            });
        }
    }
}

/// The partitions of data topics (the state topics do not hold the watermark back).
fn data(parts: &Parts) -> impl Iterator<Item = (&(usize, i32), &LivePart)> {
    parts.iter().filter(|(_, p)| !p.kind.is_state())
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
    /// Once the dataflow has drained: everything read.
    pub fn commit(self) {
        self.commit_behind(None);
    }

    /// On a stop: the records whose epoch the output has passed (`frontier`; None = all).
    pub fn commit_behind(self, frontier: Option<u64>) {
        let mut st = self.state.borrow_mut();
        let LiveState { c, parts } = &mut *st;
        commit_behind(
            c,
            &self.spec,
            parts,
            frontier,
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
