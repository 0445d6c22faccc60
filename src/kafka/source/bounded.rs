//! The bounded source (`replay`): each owned partition from its start (or `--from`) to the end offset seen at
//! start, then the capability is dropped, which closes every window.

use super::consumer::{consumer, offset_at_time, partition_count, watermarks};
use super::decode::{dead_letter, decode, record_seq, TopicLookup};
use super::{Batch, SourceError, SourceSpec, TopicKind};
use crate::dataflow::input::InputEvent;
use crate::dataflow::records::epoch;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::Duration;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::{Scope, Stream};

/// One owned partition's reading state.
struct Part {
    topic_index: usize,
    kind: TopicKind,
    stop: i64,
    max_event: Option<i64>,
    done: bool,
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
                                dead_letter(
                                    &spec,
                                    m.topic(),
                                    m.partition(),
                                    offset,
                                    reason.into(),
                                    bytes,
                                );
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
