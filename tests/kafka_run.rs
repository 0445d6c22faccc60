//! The live `run` against a broker process: the intents it publishes for the published sample are, record for
//! record, those `replay` computes for the same history; a restart resumes from the committed watermark
//! (minus the rewind), not from the beginning.

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Broker {
    child: Child,
    bootstrap: String,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hypeflow"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn dev_broker() -> Broker {
    let mut child = bin()
        .args(["dev-broker", "--partitions", "4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let bootstrap = line.trim().strip_prefix("bootstrap=").unwrap().to_string();
    Broker { child, bootstrap }
}

fn run_ok(args: &[&str]) -> String {
    let o = bin().args(args).output().unwrap();
    assert!(
        o.status.success(),
        "hypeflow {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn topic_data(brokers: &str, topic: &str) -> Vec<serde_json::Value> {
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
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while remaining > 0 && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
            out.push(v["data"].clone());
            remaining -= 1;
        }
    }
    out
}

fn published(out: &str) -> u64 {
    let w: Vec<&str> = out.split_whitespace().collect();
    w[w.iter().position(|x| *x == "published").unwrap() + 1]
        .parse()
        .unwrap()
}

#[test]
fn live_run_publishes_the_replays_intents_and_resumes_after_restart() {
    let broker = dev_broker();
    let b = broker.bootstrap.as_str();
    run_ok(&["publish", "--brokers", b, "--sample"]);
    let dir = tempfile::tempdir().unwrap();
    let replay = dir.path().join("replay");
    run_ok(&["replay", "--brokers", b, "--out", replay.to_str().unwrap()]);
    let by_id = |v: &serde_json::Value| v["id"].as_str().unwrap_or("").to_string();
    let mut expected: Vec<serde_json::Value> =
        std::fs::read_to_string(replay.join("intents.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    expected.sort_by_key(by_id);
    assert!(expected.len() > 10);

    let first = run_ok(&["run", "--brokers", b, "--exit-when-idle", "3"]);
    assert_eq!(published(&first), expected.len() as u64, "{first}");
    let mut live = topic_data(b, "orders.intents");
    live.sort_by_key(by_id);
    assert_eq!(
        live, expected,
        "the live run's intents differ from the replay's"
    );

    // restart: resumes from the committed watermark minus the rewind, so it reprocesses only the tail
    let second = run_ok(&["run", "--brokers", b, "--exit-when-idle", "3"]);
    let again = published(&second);
    assert!(
        again < expected.len() as u64,
        "a restart must not start over from the beginning: {second}"
    );
}
