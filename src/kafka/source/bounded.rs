//! The bounded source (`replay`): each owned partition from its start (or `--from`) to the end offset seen at
//! start, then the capability is dropped, which closes every window.

use super::consumer::{consumer, offset_at_time, partition_count, watermarks};
use super::decode::{dead_letter, decode, record_seq, redelivered, TopicLookup};
use super::{Batch, Output, SourceError, SourceSpec, TopicKind};
use crate::dataflow::input::InputEvent;
use crate::dataflow::records::epoch;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::Duration;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::operators::Capability;
use timely::dataflow::{Scope, Stream};

/// One owned partition's reading state.
struct Part {
    topic_index: usize,
    kind: TopicKind,
    stop: i64,
    /// The offset after the last record taken (at assignment: where reading starts).
    next: i64,
    max_event: Option<i64>,
    done: bool,
}

/// The worker's partitions by (topic index, partition).
type Parts = BTreeMap<(usize, i32), Part>;

/// Bounded source over the worker's partitions; returns the stream of decoded events.
pub fn bounded_source<'s>(
    scope: Scope<'s, u64>,
    spec: SourceSpec,
) -> Result<Stream<'s, u64, Vec<InputEvent>>, SourceError> {
    let (c, parts) = assign(&spec, scope.index(), scope.peers())?;
    Ok(
        source::<_, CapacityContainerBuilder<Vec<InputEvent>>, _, _>(
            scope,
            "KafkaSource",
            move |cap, info| {
                let mut run = BoundedLoop {
                    activator: scope.activator_for(info.address.clone()),
                    c,
                    cap: Some(cap),
                    r: Reader {
                        topics: TopicLookup::new(spec.topic_index()),
                        parts,
                        spec,
                        batch: Batch::default(),
                    },
                };
                move |output| run.step(output)
            },
        ),
    )
}

/// The worker's share of the partitions (partition `p` goes to worker `p % peers`), each from its start (or
/// the first offset at `--from`) to the end offset seen now.
fn assign(
    spec: &SourceSpec,
    index: usize,
    peers: usize,
) -> Result<(BaseConsumer, Parts), SourceError> {
    let c = consumer(&spec.brokers, &spec.group_id, spec.fetch_wait_ms)?;
    let mut parts = Parts::new();
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
                    next: start,
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
    Ok((c, parts))
}

/// What the bounded source keeps between activations.
struct BoundedLoop {
    c: BaseConsumer,
    /// None once every partition has reached its end offset.
    cap: Option<Capability<u64>>,
    activator: timely::scheduling::Activator,
    r: Reader,
}

/// The partitions' progress and the batch being filled (apart from the consumer, whose records borrow it).
struct Reader {
    parts: Parts,
    spec: SourceSpec,
    batch: Batch,
    topics: TopicLookup,
}

impl BoundedLoop {
    fn step(&mut self, output: &mut Output<'_>) {
        let Some(c_time) = self.cap.as_ref().map(|c| *c.time()) else {
            return;
        };
        for _ in 0..4096 {
            let Some(res) = self.c.poll(Duration::ZERO) else {
                break;
            };
            let Ok(m) = res else { continue };
            self.r.take(&m, c_time);
        }
        if let Some(cap) = self.cap.as_ref() {
            self.r.batch.emit(cap, output);
        }
        // Watermark: the slowest unfinished partition, minus the allowed lateness.
        let active: Vec<&Part> = self.r.parts.values().filter(|p| !p.done).collect();
        if active.is_empty() {
            self.cap = None;
            return;
        }
        if active.iter().all(|p| p.max_event.is_some()) {
            let wm = active.iter().filter_map(|p| p.max_event).min().unwrap_or(0)
                - self.r.spec.lateness_ms;
            let e = epoch(wm, self.r.spec.quantum_ms);
            if let Some(c) = self.cap.as_mut() {
                if e > *c.time() {
                    c.downgrade(&e);
                }
            }
        }
        self.activator.activate_after(Duration::from_millis(1));
    }
}

impl Reader {
    /// One record into the batch (or the dead letters), unless its partition has already reached its end.
    fn take(&mut self, m: &BorrowedMessage<'_>, c_time: u64) {
        let Some(ti) = self.topics.index_of(m) else {
            return;
        };
        let Some(part) = self.parts.get_mut(&(ti, m.partition())) else {
            return;
        };
        let offset = m.offset();
        if offset < part.next {
            // a record handed over a second time (a client-side refetch): it was taken already
            redelivered(m.topic(), m.partition(), offset, part.next);
            return;
        }
        if part.done || offset >= part.stop {
            part.done = true;
            return;
        }
        part.next = offset + 1;
        if offset + 1 >= part.stop {
            part.done = true;
        }
        // Sequence: topic, partition, offset: unique, and the same in every run.
        let seq = record_seq(part.topic_index, m.partition(), offset);
        let bytes = m.payload().unwrap_or_default();
        let spec = &self.spec;
        match decode(part.kind, bytes, seq, &spec.table) {
            Ok(ev) => {
                let t = ev.time();
                if spec.to_ms.is_some_and(|to| t > to) {
                    return;
                }
                part.max_event = Some(part.max_event.map_or(t, |x| x.max(t)));
                self.batch.push(epoch(t, spec.quantum_ms).max(c_time), ev);
            }
            Err((_, reason)) => {
                let p = m.partition();
                dead_letter(spec, m.topic(), p, offset, reason.into(), bytes);
            }
        }
    }
}
