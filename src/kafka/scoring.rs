//! `hypeflow score --brokers B`: the scoring stage as a consumer-group member on `social.tweets`, writing
//! `social.scored` (keyed by token). Offsets move only after the batch's records are acknowledged, so a crash
//! re-scores (from the cache when the process survived, else afresh) rather than loses posts. Unreadable records
//! go to `deadletter.social.tweets`.

use super::publish::PublishError;
use super::{envelope, topics};
use crate::kafka::sink::{Sink, SinkError};
use crate::model::Tweet;
use crate::sentiment::scoring_stage::{Pending, ScoringStage};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::TopicPartitionList;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    #[error("Kafka at {brokers}: {source}")]
    Kafka {
        brokers: String,
        source: rdkafka::error::KafkaError,
    },
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

pub fn run(
    brokers: &str,
    stage: &mut ScoringStage,
    sink: &mut Sink,
    exit_when_idle: Option<Duration>,
) -> Result<u64, ScoreError> {
    let kafka = |source| ScoreError::Kafka {
        brokers: brokers.into(),
        source,
    };
    let consumer: BaseConsumer =
        super::client::group_member(brokers, &topics::name("hypeflow-score"))
            .set("fetch.wait.max.ms", "10")
            .create()
            .map_err(kafka)?;
    let source = topics::name("social.tweets");
    consumer.subscribe(&[source.as_str()]).map_err(kafka)?;
    let cfg = stage.config().clone();
    let capacity = cfg.batch_size.max(1) * cfg.concurrency.max(1);
    let mut pending: Vec<Pending> = Vec::new();
    let mut offsets = TopicPartitionList::new();
    let mut first_at: Option<Instant> = None;
    let mut last_activity = Instant::now();
    let started = Instant::now();
    let mut joined = false;
    let mut written = 0u64;
    loop {
        let polled = consumer.poll(Duration::from_millis(5));
        let idle = polled.is_none();
        if let Some(res) = polled {
            match res {
                Err(e) => tracing::warn!("social.tweets poll: {e}"),
                Ok(m) => {
                    last_activity = Instant::now();
                    let payload = m.payload().unwrap_or_default();
                    match envelope::decode::<Tweet>("tweet", payload) {
                        Ok(t) => {
                            first_at.get_or_insert_with(Instant::now);
                            pending.push(Pending {
                                tweet: t,
                                arrived: Instant::now(),
                            });
                        }
                        Err(reason) => {
                            let key =
                                String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
                            sink.dead_letter_to(
                                Some("social.tweets"),
                                &key,
                                payload,
                                &format!(
                                    "score: partition {} offset {}: {reason}",
                                    m.partition(),
                                    m.offset()
                                ),
                            )?;
                        }
                    }
                    let _ = offsets.add_partition_offset(
                        m.topic(),
                        m.partition(),
                        rdkafka::Offset::Offset(m.offset() + 1),
                    );
                }
            }
        }
        let due = first_at.is_some_and(|f| f.elapsed() >= cfg.max_wait);
        if pending.len() >= capacity || (due && !pending.is_empty()) {
            for r in stage.score(std::mem::take(&mut pending)) {
                sink.write("scored", &r.token, r.created_at, &r)?;
                written += 1;
            }
            first_at = None;
        }
        if pending.is_empty() && offsets.count() > 0 {
            // everything read so far is scored and acknowledged (or dead-lettered)
            if let Err(e) = consumer.commit(&offsets, CommitMode::Sync) {
                tracing::warn!(
                    "commit of social.tweets offsets failed (the posts may be scored again): {e}"
                );
            }
            offsets = TopicPartitionList::new();
        }
        if !joined {
            // the idle clock starts once the group has given us partitions (joining takes seconds)
            joined = started.elapsed() > Duration::from_secs(30)
                || consumer
                    .assignment()
                    .map(|a| a.count() > 0)
                    .unwrap_or(false);
            if joined {
                last_activity = Instant::now();
            }
        }
        if idle
            && pending.is_empty()
            && joined
            && exit_when_idle.is_some_and(|d| last_activity.elapsed() > d)
        {
            return Ok(written);
        }
    }
}
