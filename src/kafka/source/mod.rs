//! The timely Kafka source. Each worker owns a deterministic subset of partitions (`partition % peers ==
//! index`, not a consumer-group assignment), so every run splits work the same way. A partition's watermark is
//! the largest event time it has delivered minus the allowed lateness; the worker's capability follows the
//! minimum over its unfinished partitions. Records are stamped with their event-time epoch (never below the
//! capability), so downstream windows close on the frontier exactly as in a file replay.
//!
//! Bounded mode (replay) reads each owned partition from its start (or `--from`) to the end offset seen at
//! start, then drops the capability, which closes every window.
//!
//! Parts: `consumer` (consumer set-up, partition metadata, lookups by time, the history start), `decode` (a
//! record's bytes to an input event, through the same checks as the file loader), `bounded` (replays) and
//! `live` (the `run` command), which share the spec, the batching by timestamp and the epoch rule here.

mod bounded;
mod consumer;
mod decode;
mod live;

pub use bounded::bounded_source;
pub use consumer::{consumer, history_start, partition_count};
pub use decode::REDELIVERED;
pub use live::{live_source, Advance, FinalCommit, LiveOptions, WatermarkLog};

use crate::dataflow::input::{DeadLetter, InputEvent};
use crate::dataflow::records::epoch;
use crate::model::TokenTable;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use timely::container::CapacityContainerBuilder;

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
    pub dead: Arc<Mutex<DeadLetters>>,
    /// `fetch.wait.max.ms` of the consumers (see [`DEFAULT_FETCH_WAIT_MS`]).
    pub fetch_wait_ms: u64,
}

/// Records that could not be decoded: all counted, the first [`MAX_DEAD_KEPT`] kept (a replay writes them to
/// `deadletter.jsonl`; a live run's are in the dead-letter topic, so holding every one for weeks would only
/// grow its memory).
#[derive(Debug, Default)]
pub struct DeadLetters {
    pub kept: Vec<DeadLetter>,
    pub total: u64,
}

pub const MAX_DEAD_KEPT: usize = 10_000;

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

/// Decoded records of one activation, grouped by timestamp as they are read (sorting the records by stamp cost
/// several percent of the source). Consecutive records mostly share a stamp; millisecond stamps near the wall
/// clock can give thousands of groups in one batch, hence the index.
#[derive(Default)]
struct Batch {
    groups: Vec<(u64, Vec<InputEvent>)>,
    index: BTreeMap<u64, usize>,
}

/// What a source operator writes its events to.
pub(super) type Output<'a> = timely::dataflow::operators::generic::OutputBuilderSession<
    'a,
    u64,
    CapacityContainerBuilder<Vec<InputEvent>>,
>;

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
        output: &mut Output<'_>,
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

#[cfg(test)]
mod tests {
    use super::live::trigger_of;
    use super::*;
    use crate::dataflow::records::TickRec;

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
            table: Arc::new(crate::config::pipeline::Universe::default().token_table()),
            dead: Default::default(),
            fetch_wait_ms: DEFAULT_FETCH_WAIT_MS,
        }
    }

    #[test]
    fn dead_letters_are_all_counted_and_the_first_kept() {
        let s = spec(None);
        for offset in 0..(MAX_DEAD_KEPT as i64 + 5) {
            super::decode::dead_letter(&s, "t", 0, offset, "bad".into(), b"x");
        }
        let d = s.dead.lock().unwrap();
        assert_eq!(
            (d.total, d.kept.len()),
            (MAX_DEAD_KEPT as u64 + 5, MAX_DEAD_KEPT)
        );
        assert_eq!(d.kept[0].line, 0);
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
