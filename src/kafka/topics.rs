//! The topic list of `kafka/topics.toml`, compiled in as the default.

use serde::Deserialize;
use std::path::Path;

pub const DEFAULT_TOPICS: &str = include_str!("../../kafka/topics.toml");

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub replication: i32,
    pub key: String,
    pub schema: String,
    pub retention_ms: i64,
    pub cleanup_policy: String,
}

#[derive(Debug, Deserialize)]
struct TopicsFile {
    topic: Vec<TopicSpec>,
}

#[derive(Debug, thiserror::Error)]
pub enum TopicsError {
    #[error("cannot read topics file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("topics file {path} is not valid: {message}")]
    Parse { path: String, message: String },
}

pub fn parse(text: &str, origin: &str) -> Result<Vec<TopicSpec>, TopicsError> {
    let f: TopicsFile = toml::from_str(text).map_err(|e| TopicsError::Parse {
        path: origin.into(),
        message: e.to_string(),
    })?;
    for t in &f.topic {
        if t.partitions < 1 || t.replication < 1 {
            return Err(TopicsError::Parse {
                path: origin.into(),
                message: format!("topic {}: partitions and replication must be >= 1", t.name),
            });
        }
    }
    Ok(f.topic)
}

/// The namespace of this process on the cluster: `HYPEFLOW_TOPIC_PREFIX` (e.g. `staging.`) puts a deployment,
/// or one test run, in its own set of topics and consumer groups on a shared cluster. Empty by default.
pub fn prefix() -> String {
    std::env::var("HYPEFLOW_TOPIC_PREFIX").unwrap_or_default()
}

/// A topic or consumer-group name in this process's namespace.
pub fn name(base: &str) -> String {
    format!("{}{base}", prefix())
}

/// The dead-letter topic of `topic` (given with or without the namespace prefix).
pub fn dead_letter_of(topic: &str) -> String {
    let p = prefix();
    let base = topic.strip_prefix(p.as_str()).unwrap_or(topic);
    format!("{p}deadletter.{base}")
}

/// The given file, or the compiled-in `kafka/topics.toml`, with names in this process's namespace.
pub fn load(path: Option<&Path>) -> Result<Vec<TopicSpec>, TopicsError> {
    let mut specs = load_unprefixed(path)?;
    for t in &mut specs {
        t.name = name(&t.name);
    }
    Ok(specs)
}

fn load_unprefixed(path: Option<&Path>) -> Result<Vec<TopicSpec>, TopicsError> {
    match path {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|source| TopicsError::Read {
                path: p.display().to_string(),
                source,
            })?;
            parse(&text, &p.display().to_string())
        }
        None => parse(DEFAULT_TOPICS, "kafka/topics.toml"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn shipped_topics_cover_the_design() {
        let t = super::load(None).unwrap();
        let names: Vec<&str> = t.iter().map(|t| t.name.as_str()).collect();
        for n in [
            "social.tweets",
            "social.scored",
            "market.ticks",
            "orders.intents",
            "orders.fills",
            "orders.rejects",
            "deadletter.market.ticks",
        ] {
            assert!(names.contains(&n), "{n}");
        }
    }
}
