//! Where an ingester's records go: a Kafka topic (keyed as `kafka/topics.toml` says, acknowledged record by record so
//! nothing read from a provider is lost when the broker is away) or a JSONL file for offline use, in the same
//! format `backtest` reads. Records that cannot be read go beside them: `deadletter.<topic>` with the reason in
//! a header, or `<file>.deadletter.jsonl` with the reason in the line.

use super::{envelope, publish::Publisher, topics};
use crate::telemetry::names;
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("--out `{0}` is neither jsonl:PATH nor kafka:BOOTSTRAP")]
    Spec(String),
    #[error("cannot write {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Kafka(#[from] super::publish::PublishError),
}

pub enum Sink {
    Jsonl {
        path: PathBuf,
        out: std::io::BufWriter<std::fs::File>,
        dead: Option<std::io::BufWriter<std::fs::File>>,
    },
    Kafka {
        publisher: Box<Publisher>,
        topic: String,
    },
}

/// A dead-lettered line of a JSONL output.
#[derive(Serialize, serde::Deserialize, Debug)]
pub struct DeadLine {
    pub reason: String,
    pub key: String,
    pub raw: String,
    pub at: String,
}

impl Sink {
    /// `jsonl:PATH` (appends) or `kafka:BOOTSTRAP` (to `topic`, prefixed by `HYPEFLOW_TOPIC_PREFIX`).
    pub fn open(spec: &str, topic: &str) -> Result<Sink, SinkError> {
        if let Some(path) = spec.strip_prefix("jsonl:") {
            let path = PathBuf::from(path);
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|source| SinkError::File {
                    path: path.display().to_string(),
                    source,
                })?;
            return Ok(Sink::Jsonl {
                path,
                out: std::io::BufWriter::new(f),
                dead: None,
            });
        }
        if let Some(brokers) = spec.strip_prefix("kafka:").filter(|b| !b.is_empty()) {
            let topic = topics::name(topic);
            let mut publisher = Publisher::immediate(brokers)?;
            publisher.warm_up(&topic);
            return Ok(Sink::Kafka {
                publisher: Box::new(publisher),
                topic,
            });
        }
        Err(SinkError::Spec(spec.into()))
    }

    pub fn describe(&self) -> String {
        match self {
            Sink::Jsonl { path, .. } => path.display().to_string(),
            Sink::Kafka { topic, .. } => format!("Kafka topic {topic}"),
        }
    }

    /// Writes one record; on Kafka it returns once the broker acknowledged it (retrying through outages).
    pub fn write<T: Serialize>(
        &mut self,
        schema: &str,
        key: &str,
        event_time_ms: i64,
        record: &T,
    ) -> Result<(), SinkError> {
        metrics::counter!(names::SOURCE_RECORDS, "schema" => schema.to_string()).increment(1);
        metrics::gauge!(names::SOURCE_LAST_EVENT, "schema" => schema.to_string())
            .set(event_time_ms as f64 / 1000.0);
        match self {
            Sink::Jsonl { path, out, .. } => {
                let line = serde_json::to_string(record).map_err(|e| SinkError::File {
                    path: path.display().to_string(),
                    source: e.into(),
                })?;
                writeln!(out, "{line}")
                    .and_then(|_| out.flush())
                    .map_err(|source| SinkError::File {
                        path: path.display().to_string(),
                        source,
                    })
            }
            Sink::Kafka { publisher, topic } => Ok(publisher.send_until_acked(
                topic,
                key,
                &envelope::encode(schema, record),
                event_time_ms,
            )?),
        }
    }

    /// Keeps a record that could not be read, with why, beside this sink's output.
    pub fn dead_letter(&mut self, key: &str, raw: &[u8], reason: &str) -> Result<(), SinkError> {
        self.dead_letter_to(None, key, raw, reason)
    }

    /// As `dead_letter`, for a record read from `source` (a topic base name): on Kafka it goes to that topic's
    /// dead-letter topic, where the rest of its kind is.
    pub fn dead_letter_to(
        &mut self,
        source: Option<&str>,
        key: &str,
        raw: &[u8],
        reason: &str,
    ) -> Result<(), SinkError> {
        tracing::warn!("dead letter: {reason}");
        let topic_label = match (source, &*self) {
            (Some(s), _) => s.to_string(),
            (None, Sink::Kafka { topic, .. }) => topic.clone(),
            (None, Sink::Jsonl { .. }) => "jsonl".to_string(),
        };
        metrics::counter!(names::DEAD_LETTERS, "topic" => topic_label, "reason" => "ingest")
            .increment(1);
        match self {
            Sink::Jsonl { path, dead, .. } => {
                let dead_path = PathBuf::from(format!("{}.deadletter.jsonl", path.display()));
                let err = |source| SinkError::File {
                    path: dead_path.display().to_string(),
                    source,
                };
                if dead.is_none() {
                    let f = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&dead_path)
                        .map_err(err)?;
                    *dead = Some(std::io::BufWriter::new(f));
                }
                let line = DeadLine {
                    reason: reason.into(),
                    key: key.into(),
                    raw: String::from_utf8_lossy(raw).into_owned(),
                    at: chrono::Utc::now().to_rfc3339(),
                };
                let text = serde_json::to_string(&line).map_err(|e| err(e.into()))?;
                let w = dead
                    .as_mut()
                    .ok_or_else(|| err(std::io::Error::other("closed")))?;
                writeln!(w, "{text}").and_then(|_| w.flush()).map_err(err)
            }
            Sink::Kafka { publisher, topic } => {
                let topic = source.map(topics::name).unwrap_or_else(|| topic.clone());
                Ok(publisher.dead_letter_until_acked(&topic, key, raw, reason)?)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_records_and_dead_letters_land_in_their_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("posts.jsonl");
        let mut s = Sink::open(&format!("jsonl:{}", path.display()), "social.tweets").unwrap();
        s.write("tweet", "a", 0, &serde_json::json!({"id": "1"}))
            .unwrap();
        s.dead_letter("a", b"{broken", "not JSON").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"id\":\"1\"}\n");
        let dead =
            std::fs::read_to_string(dir.path().join("posts.jsonl.deadletter.jsonl")).unwrap();
        let d: DeadLine = serde_json::from_str(dead.trim()).unwrap();
        assert_eq!((d.reason.as_str(), d.raw.as_str()), ("not JSON", "{broken"));
        assert!(matches!(
            Sink::open("s3:bucket", "x"),
            Err(SinkError::Spec(_))
        ));
    }
}
