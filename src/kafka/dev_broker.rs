//! `hypeflow dev-broker`: librdkafka's mock cluster hosted in its own process, so other processes (tests,
//! `publish`, `replay`, `run`) can connect over real TCP and be killed and restarted while it lives. It gets
//! groups, commits and resume right; it keeps everything in memory and does not enforce transactions.

use super::topics::TopicSpec;
use rdkafka::mocking::MockCluster;
use std::io::Write;

#[derive(Debug, thiserror::Error)]
pub enum DevBrokerError {
    #[error("cannot start the mock cluster: {0}")]
    Start(rdkafka::error::KafkaError),
    #[error("cannot create topic {topic} on the mock cluster: {source}")]
    Topic {
        topic: String,
        source: rdkafka::error::KafkaError,
    },
}

/// Starts the cluster, creates the topics, prints `bootstrap=HOST:PORT[,...]` as the first stdout line and
/// calls `wait` (which returns when the broker should stop).
pub fn serve(
    brokers: i32,
    topics: &[TopicSpec],
    partitions: Option<i32>,
    wait: impl FnOnce(),
) -> Result<(), DevBrokerError> {
    let cluster = MockCluster::new(brokers.max(1)).map_err(DevBrokerError::Start)?;
    for t in topics {
        let p = partitions.unwrap_or(t.partitions);
        cluster
            .create_topic(&t.name, p, t.replication.min(brokers.max(1)))
            .map_err(|source| DevBrokerError::Topic {
                topic: t.name.clone(),
                source,
            })?;
    }
    let mut out = std::io::stdout();
    let _ = writeln!(out, "bootstrap={}", cluster.bootstrap_servers());
    let _ = out.flush();
    eprintln!(
        "dev-broker: librdkafka mock cluster, {} broker(s), in memory; topics: {}",
        brokers.max(1),
        topics
            .iter()
            .map(|t| format!("{}({})", t.name, partitions.unwrap_or(t.partitions)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    wait();
    drop(cluster);
    Ok(())
}
