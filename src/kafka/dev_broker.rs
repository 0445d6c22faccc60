//! `hypeflow dev-broker`: librdkafka's mock cluster hosted in its own process, so other processes (tests,
//! `publish`, `replay`, `run`) can connect over real TCP and be killed and restarted while it lives. It gets
//! groups, commits and resume right; it keeps everything in memory and does not enforce transactions.
//!
//! For fault tests it reads commands on stdin: `down` disconnects every broker and refuses new connections,
//! `up` lets them back (the data stays), so clients see an outage without losing the log; `rtt ID MS` delays
//! every answer of broker ID by MS milliseconds (a far or overloaded broker; `rtt ID 0` ends it).

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
            other => match parse_rtt(other, brokers.max(1)) {
                Some((id, delay)) => cluster.broker_round_trip_time(id, delay),
                None => {
                    eprintln!(
                        "dev-broker: unknown command {other:?} (known: down, up, rtt ID MS with ID 1-{} and MS 0-60000)",
                        brokers.max(1)
                    );
                    Ok(())
                }
            },
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

/// `rtt ID MS`: a broker of this cluster and a delay of at most a minute.
fn parse_rtt(cmd: &str, brokers: i32) -> Option<(i32, std::time::Duration)> {
    let mut words = cmd.split_whitespace();
    let (Some("rtt"), Some(id), Some(ms), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return None;
    };
    let id: i32 = id.parse().ok().filter(|id| (1..=brokers).contains(id))?;
    let ms: u64 = ms.parse().ok().filter(|ms| *ms <= 60_000)?;
    Some((id, std::time::Duration::from_millis(ms)))
}

#[cfg(test)]
mod tests {
    use super::parse_rtt;
    use std::time::Duration;

    #[test]
    fn rtt_takes_a_known_broker_and_a_bounded_delay() {
        assert_eq!(
            parse_rtt("rtt 2 1500", 2),
            Some((2, Duration::from_millis(1500)))
        );
        assert_eq!(parse_rtt("rtt 1 0", 1), Some((1, Duration::ZERO)));
        for bad in [
            "rtt 3 10",
            "rtt 0 10",
            "rtt 1 60001",
            "rtt 1",
            "rtt 1 10 x",
            "rtt x 10",
            "rtt 1 -5",
        ] {
            assert_eq!(parse_rtt(bad, 2), None, "{bad}");
        }
    }
}
