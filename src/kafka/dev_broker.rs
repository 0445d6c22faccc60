//! `hypeflow dev-broker`: librdkafka's mock cluster hosted in its own process, so other processes (tests,
//! `publish`, `replay`, `run`) can connect over real TCP and be killed and restarted while it lives. It gets
//! groups, commits and resume right; it keeps everything in memory and does not enforce transactions.
//!
//! For fault tests it reads commands on stdin: `down` disconnects every broker and refuses new connections,
//! `up` lets them back (the data stays), so clients see an outage without losing the log.

use super::topics::TopicSpec;
use rdkafka::mocking::MockCluster;
use std::io::{BufRead, Write};

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

pub type Cluster = MockCluster<'static, rdkafka::producer::DefaultProducerContext>;

/// A mock cluster with the topics created, serving for as long as the value lives (`hypeflow up`'s embedded
/// broker, and this command's).
pub fn start(
    brokers: i32,
    topics: &[TopicSpec],
    partitions: Option<i32>,
) -> Result<Cluster, DevBrokerError> {
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
    Ok(cluster)
}

/// Starts the cluster, creates the topics, prints `bootstrap=HOST:PORT[,...]` as the first stdout line, then
/// serves until killed, obeying `down`/`up` lines from `commands`.
pub fn serve(
    brokers: i32,
    topics: &[TopicSpec],
    partitions: Option<i32>,
    commands: impl BufRead,
) -> Result<(), DevBrokerError> {
    let cluster = start(brokers, topics, partitions)?;
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
    for line in commands.lines() {
        let Ok(line) = line else { break };
        let cmd = line.trim();
        let result = match cmd {
            "down" => (1..=brokers.max(1)).try_for_each(|id| cluster.broker_down(id)),
            "up" => (1..=brokers.max(1)).try_for_each(|id| cluster.broker_up(id)),
            "" => Ok(()),
            other => {
                eprintln!("dev-broker: unknown command {other:?} (known: down, up)");
                Ok(())
            }
        };
        match result {
            Ok(()) if !cmd.is_empty() => eprintln!("dev-broker: brokers {cmd}"),
            Ok(()) => {}
            Err(e) => eprintln!("dev-broker: {cmd} failed: {e}"),
        }
    }
    // stdin closed: keep serving until killed
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
