//! A record's bytes to an input event: envelopes decoded (the canonical tick layout without the general JSON
//! parser), checked by the same functions as the file loader, and given a sequence number that is the same in
//! every run; records that fail go to the source's dead letters with where they sit.

use super::{SourceSpec, TopicKind};
use crate::dataflow::input::{check_post, check_scored, check_tick, DeadLetter, InputEvent};
use crate::dataflow::records::{OrderState, TickRec, TweetRec};
use crate::kafka::envelope;
use crate::model::{Invalid, TokenTable};
use crate::model::{PriceTickRef, Tweet};
use rdkafka::message::Message;
use std::collections::BTreeMap;

/// Why a record went to the dead letters, as a bounded label: its bytes are not a record of the topic, or
/// they are one that fails validation (unknown token, price not positive, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum DeadClass {
    Undecodable,
    Invalid,
}

impl DeadClass {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            DeadClass::Undecodable => "undecodable",
            DeadClass::Invalid => "invalid",
        }
    }
}

fn undecodable(e: Invalid) -> (DeadClass, Invalid) {
    (DeadClass::Undecodable, e)
}

fn invalid(e: Invalid) -> (DeadClass, Invalid) {
    (DeadClass::Invalid, e)
}

pub(super) fn decode(
    kind: TopicKind,
    bytes: &[u8],
    seq: u64,
    table: &TokenTable,
) -> Result<InputEvent, (DeadClass, Invalid)> {
    match kind {
        TopicKind::Ticks => {
            let t: PriceTickRef = match envelope::decode_tick_canonical(bytes) {
                Some(t) => t,
                None => envelope::decode("tick", bytes).map_err(undecodable)?,
            };
            let token =
                check_tick(&t.token, t.price, t.volume, t.event_time, table).map_err(invalid)?;
            Ok(InputEvent::Tick(TickRec {
                token,
                time: t.event_time,
                seq,
                price: t.price,
                volume: t.volume,
            }))
        }
        TopicKind::Tweets => {
            let tweet: Tweet = envelope::decode("tweet", bytes).map_err(undecodable)?;
            check_post(&tweet).map_err(invalid)?;
            Ok(InputEvent::Tweet(TweetRec::post(seq, tweet)))
        }
        TopicKind::Scored => {
            let m: crate::model::ScoredMention =
                envelope::decode("scored", bytes).map_err(undecodable)?;
            check_scored(&m).map_err(invalid)?;
            Ok(InputEvent::Tweet(TweetRec::scored(seq, m)))
        }
        TopicKind::Intents => Ok(InputEvent::Order(OrderState::Intent(
            envelope::decode("intent", bytes).map_err(undecodable)?,
        ))),
        TopicKind::Fills => Ok(InputEvent::Order(OrderState::Outcome(
            envelope::decode("fill", bytes).map_err(undecodable)?,
        ))),
        TopicKind::Rejects => Ok(InputEvent::Order(OrderState::Outcome(
            envelope::decode("reject", bytes).map_err(undecodable)?,
        ))),
    }
}

/// A record's tie-break sequence number: (topic index, partition, offset), unique and the same in every run.
pub(super) fn record_seq(topic_index: usize, partition: i32, offset: i64) -> u64 {
    ((topic_index as u64) << 56)
        | ((partition as u64 & 0xFFFF) << 40)
        | (offset as u64 & 0xFF_FFFF_FFFF)
}

/// A record's topic -> its index in the spec. Looking the name up checks it as UTF-8 on every record (a tenth
/// of the source's time with the canonical tick reader); librdkafka hands every record of a topic the same
/// topic handle, so the handle's address is remembered instead.
pub(super) struct TopicLookup {
    by_name: BTreeMap<String, usize>,
    by_handle: Vec<(usize, usize)>,
}

impl TopicLookup {
    pub(super) fn new(by_name: BTreeMap<String, usize>) -> Self {
        TopicLookup {
            by_name,
            by_handle: Vec::new(),
        }
    }

    pub(super) fn index_of(&mut self, m: &rdkafka::message::BorrowedMessage<'_>) -> Option<usize> {
        let handle = m.topic_ptr() as usize;
        if let Some((_, i)) = self.by_handle.iter().find(|(h, _)| *h == handle) {
            return Some(*i);
        }
        let i = *self.by_name.get(m.topic())?;
        self.by_handle.push((handle, i));
        Some(i)
    }
}

/// Records a record that could not be decoded, with where it sits in the topic.
pub(super) fn dead_letter(
    spec: &SourceSpec,
    topic: &str,
    partition: i32,
    offset: i64,
    reason: String,
    bytes: &[u8],
) {
    if let Ok(mut d) = spec.dead.lock() {
        d.total += 1;
        if d.kept.len() < super::MAX_DEAD_KEPT {
            d.kept.push(DeadLetter {
                file: format!("{topic}/{partition}"),
                line: offset as u64,
                reason,
                raw: String::from_utf8_lossy(bytes).chars().take(2000).collect(),
            });
        }
    }
}

/// Records handed over again below a partition's read position, skipped (process-wide).
pub static REDELIVERED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Notes a record skipped because its partition had already read past it: each record enters the dataflow once
/// whatever the client hands over, so a refetch after a broker hiccup cannot count a post or a tick twice.
/// Logged at the first and then at every power of two, so a refetched partition does not flood the log.
pub(super) fn redelivered(topic: &str, partition: i32, offset: i64, next: i64) {
    let n = REDELIVERED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    if n.is_power_of_two() {
        tracing::warn!(
            "{topic}/{partition}: offset {offset} delivered again (already read up to {next}); skipped \
             ({n} such records so far)"
        );
    }
}
