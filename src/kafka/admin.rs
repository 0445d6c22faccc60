//! `hypeflow topics create|describe`: idempotent topic creation and a check that what exists matches
//! `kafka/topics.toml` (partition counts; the broker keeps its own replication limits).

use super::topics::TopicSpec;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("cannot connect to Kafka at {brokers}: {source}")]
    Connect { brokers: String, source: KafkaError },
    #[error("creating topic {topic} failed: {message}")]
    Create { topic: String, message: String },
}

/// Creates missing topics; existing ones are left alone. Returns (topic, "created" | "exists"), in the order
/// of `topics`.
pub fn create(
    brokers: &str,
    topics: &[TopicSpec],
    replication_cap: Option<i32>,
) -> Result<Vec<(String, String)>, AdminError> {
    // What exists is read from the metadata first, so a broker that cannot create topics (librdkafka's mock
    // names a controller that is none of its brokers) still answers at once for topics it has.
    let existing = describe(brokers, topics)?;
    let missing: Vec<TopicSpec> = topics
        .iter()
        .zip(&existing)
        .filter(|(_, (_, _, actual))| actual.is_none())
        .map(|(t, _)| t.clone())
        .collect();
    let mut made = if missing.is_empty() {
        Vec::new()
    } else {
        create_missing(brokers, &missing, replication_cap)?
    };
    Ok(topics
        .iter()
        .map(|t| match made.iter().position(|(n, _)| *n == t.name) {
            Some(i) => made.swap_remove(i),
            None => (t.name.clone(), "exists".into()),
        })
        .collect())
}

fn create_missing(
    brokers: &str,
    topics: &[TopicSpec],
    replication_cap: Option<i32>,
) -> Result<Vec<(String, String)>, AdminError> {
    let admin: AdminClient<DefaultClientContext> =
        super::client::base(brokers)
            .create()
            .map_err(|source| AdminError::Connect {
                brokers: brokers.into(),
                source,
            })?;
    let retention: Vec<String> = topics.iter().map(|t| t.retention_ms.to_string()).collect();
    let news: Vec<NewTopic> = topics
        .iter()
        .zip(&retention)
        .map(|(t, r)| {
            let rf = replication_cap.map_or(t.replication, |c| t.replication.min(c));
            NewTopic::new(&t.name, t.partitions, TopicReplication::Fixed(rf))
                .set("retention.ms", r)
                .set("cleanup.policy", &t.cleanup_policy)
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results =
        futures_executor::block_on(admin.create_topics(&news, &opts)).map_err(|source| {
            AdminError::Connect {
                brokers: brokers.into(),
                source,
            }
        })?;
    let mut out = Vec::new();
    for r in results {
        match r {
            Ok(name) => out.push((name, "created".into())),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => out.push((name, "exists".into())),
            Err((name, code)) => {
                return Err(AdminError::Create {
                    topic: name,
                    message: code.to_string(),
                })
            }
        }
    }
    Ok(out)
}

/// (topic, expected partitions, actual partitions or None when missing)
pub fn describe(
    brokers: &str,
    topics: &[TopicSpec],
) -> Result<Vec<(String, i32, Option<i32>)>, AdminError> {
    let c: BaseConsumer = super::client::consumer(brokers, "hypeflow-admin")
        .create()
        .map_err(|source| AdminError::Connect {
            brokers: brokers.into(),
            source,
        })?;
    let md = c
        .fetch_metadata(None, Duration::from_secs(10))
        .map_err(|source| AdminError::Connect {
            brokers: brokers.into(),
            source,
        })?;
    Ok(topics
        .iter()
        .map(|t| {
            let actual = md
                .topics()
                .iter()
                .find(|m| m.name() == t.name && m.error().is_none())
                .map(|m| m.partitions().len() as i32);
            (t.name.clone(), t.partitions, actual)
        })
        .collect())
}
