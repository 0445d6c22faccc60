//! Helpers shared by the integration tests: the binary, broker processes, topic readers.
#![allow(dead_code)]

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A broker process, killed when dropped.
pub struct Broker {
    pub child: Child,
    pub bootstrap: String,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hypeflow"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

/// Runs hypeflow, asserting success; returns stdout.
pub fn run_ok(args: &[&str]) -> String {
    let o = bin().args(args).output().expect("run hypeflow");
    assert!(
        o.status.success(),
        "hypeflow {args:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// Starts `hypeflow dev-broker` and reads `bootstrap=...` from its first stdout line.
pub fn dev_broker(partitions: u32) -> Broker {
    let mut child = bin()
        .args(["dev-broker", "--partitions", &partitions.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dev-broker");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read bootstrap line");
    let bootstrap = line
        .trim()
        .strip_prefix("bootstrap=")
        .unwrap_or_else(|| panic!("first line was {line:?}"))
        .to_string();
    Broker { child, bootstrap }
}

/// The envelope `data` of every record of a topic, from the start to each partition's end at call time.
pub fn topic_data(brokers: &str, topic: &str) -> Vec<serde_json::Value> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "test-reader")
        .create()
        .unwrap();
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    let mut remaining = 0i64;
    for p in md.topics()[0].partitions() {
        let (low, high) = c
            .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
            .unwrap();
        remaining += high - low;
        tpl.add_partition_offset(topic, p.id(), Offset::Offset(low))
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while remaining > 0 && Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
            out.push(v["data"].clone());
            remaining -= 1;
        }
    }
    out
}

/// The number printed after `word` in a command's summary line.
pub fn number_after(out: &str, word: &str) -> u64 {
    let w: Vec<&str> = out.split_whitespace().collect();
    w[w.iter()
        .position(|x| *x == word)
        .unwrap_or_else(|| panic!("no {word} in {out:?}"))
        + 1]
    .parse()
    .unwrap()
}

/// The intent ids of an `intents.jsonl`, in file order.
pub fn intent_ids_in(path: &Path) -> Vec<String> {
    read(path)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}
