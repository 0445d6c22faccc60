//! Helpers shared by the integration tests: the binary, broker processes, topic readers.
#![allow(dead_code)]

pub mod chain;
pub mod fake_http;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A broker for one test: a process of ours (killed when dropped), or the external cluster named by
/// `KAFKA_BOOTSTRAP` with this test's own topic namespace.
pub struct Broker {
    pub child: Option<Child>,
    pub bootstrap: String,
    /// The dev-broker's stdin: `down`/`up` simulate an outage.
    pub control: Option<std::process::ChildStdin>,
}

impl Broker {
    /// Takes every broker of the dev-broker down (`false`) or back up (`true`); the log survives.
    pub fn set_up(&mut self, up: bool) {
        use std::io::Write;
        let c = self
            .control
            .as_mut()
            .expect("only a dev-broker takes commands");
        writeln!(c, "{}", if up { "up" } else { "down" }).expect("write to dev-broker");
        c.flush().expect("flush dev-broker stdin");
    }

    /// Delays every answer of mock broker `id` by `ms` (0 ends it).
    pub fn set_rtt(&mut self, id: u32, ms: u64) {
        use std::io::Write;
        let c = self
            .control
            .as_mut()
            .expect("only a dev-broker takes commands");
        writeln!(c, "rtt {id} {ms}").expect("write to dev-broker");
        c.flush().expect("flush dev-broker stdin");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

thread_local! {
    /// The topic namespace of the running test (each test runs on its own thread) on an external cluster.
    static PREFIX: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}
static TEST_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The external cluster to test against, if `KAFKA_BOOTSTRAP` names one.
pub fn external_broker() -> Option<String> {
    std::env::var("KAFKA_BOOTSTRAP")
        .ok()
        .filter(|s| !s.trim().is_empty())
}

/// A topic's name in the running test's namespace.
pub fn topic(base: &str) -> String {
    PREFIX.with(|p| format!("{}{base}", p.borrow()))
}

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hypeflow"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c.env_remove("KAFKA_BOOTSTRAP");
    PREFIX.with(|p| {
        if !p.borrow().is_empty() {
            c.env("HYPEFLOW_TOPIC_PREFIX", p.borrow().as_str());
        }
    });
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

/// Starts `hypeflow dev-broker` and reads `bootstrap=...` from its first stdout line; with `KAFKA_BOOTSTRAP` set,
/// creates this test's own topics on that cluster instead (under a fresh `HYPEFLOW_TOPIC_PREFIX`, with the
/// partition counts of kafka/topics.toml and replication 1).
pub fn dev_broker(partitions: u32) -> Broker {
    dev_brokers(partitions, 1)
}

/// As [`dev_broker`], a mock cluster of `brokers` brokers (partition leaders spread over them).
pub fn dev_brokers(partitions: u32, brokers: u32) -> Broker {
    if let Some(bootstrap) = external_broker() {
        let prefix = format!(
            "test-{}-{}-{}.",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0),
            TEST_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        PREFIX.with(|p| *p.borrow_mut() = prefix);
        run_ok(&[
            "topics",
            "create",
            "--brokers",
            &bootstrap,
            "--max-replication",
            "1",
        ]);
        return Broker {
            child: None,
            bootstrap,
            control: None,
        };
    }
    let mut child = bin()
        .args(["dev-broker", "--partitions", &partitions.to_string()])
        .args(["--brokers", &brokers.to_string()])
        .stdin(Stdio::piped())
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
    let control = child.stdin.take();
    Broker {
        child: Some(child),
        bootstrap,
        control,
    }
}

/// A record as stored: key, payload and headers.
pub struct RawRecord {
    pub key: String,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

/// Every record of a topic, from the start to each partition's end at call time.
pub fn topic_records(brokers: &str, base: &str) -> Vec<RawRecord> {
    use rdkafka::message::Headers;
    let name = topic(base);
    let topic = name.as_str();
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
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|x| {
                            (
                                x.key.to_string(),
                                String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push(RawRecord {
                key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                payload: m.payload().unwrap_or_default().to_vec(),
                headers,
            });
            remaining -= 1;
        }
    }
    out
}

/// The envelope `data` of every record of a topic, from the start to each partition's end at call time.
pub fn topic_data(brokers: &str, topic: &str) -> Vec<serde_json::Value> {
    topic_records(brokers, topic)
        .into_iter()
        .map(|r| {
            let v: serde_json::Value = serde_json::from_slice(&r.payload).unwrap();
            v["data"].clone()
        })
        .collect()
}

/// A file of the shipped sample.
pub fn sample(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/sample")
        .join(name)
}

/// Splits a sample JSONL file at `cut` (RFC 3339 strings of one format compare in time order) into
/// (before the cut, from the cut on), written to `dir`.
pub fn split_sample(
    name: &str,
    field: &str,
    cut: &str,
    dir: &Path,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let text = read(&sample(name));
    let (mut a, mut b) = (String::new(), String::new());
    for l in text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let target = if v[field].as_str().unwrap() < cut {
            &mut a
        } else {
            &mut b
        };
        target.push_str(l);
        target.push('\n');
    }
    let (pa, pb) = (dir.join(format!("a-{name}")), dir.join(format!("b-{name}")));
    std::fs::write(&pa, a).unwrap();
    std::fs::write(&pb, b).unwrap();
    (pa, pb)
}

/// Publishes a JSONL file to a topic with `hypeflow publish`.
pub fn publish_file(brokers: &str, topic: &str, file: &Path) {
    run_ok(&[
        "publish",
        "--brokers",
        brokers,
        "--topic",
        topic,
        file.to_str().unwrap(),
    ]);
}

/// The distinct intent ids of `orders.intents`.
pub fn topic_intent_ids(brokers: &str) -> std::collections::BTreeSet<String> {
    topic_data(brokers, "orders.intents")
        .iter()
        .map(|i| i["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// `hypeflow run --positions model` until the topics have been quiet for `idle_s`; returns its summary.
pub fn run_model(brokers: &str, idle_s: &str) -> String {
    run_ok(&[
        "run",
        "--brokers",
        brokers,
        "--positions",
        "model",
        "--exit-when-idle",
        idle_s,
    ])
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

/// Everything a finished command printed (stdout, then stderr).
pub fn printed(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Asserts the command succeeded and that `secret` appears nowhere in what it printed; returns the print.
pub fn assert_ok_without_secret(o: &std::process::Output, secret: &str) -> String {
    let text = printed(o);
    assert!(o.status.success(), "{text}");
    assert!(!text.contains(secret), "a secret leaked into the output");
    text
}

/// Every line of a JSONL file as `T` (a missing file is empty).
pub fn read_jsonl<T: serde::de::DeserializeOwned>(p: &Path) -> Vec<T> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", p.display())))
        .collect()
}

/// The shipped ladder with `edits` applied (each a (from, to) replacement that must match).
/// The stale-data breaker is off unless a test asks for it: the sample's ticks are from 2025, and the devnet's
/// tokens have none.
pub fn ladder(dir: &std::path::Path, edits: &[(&str, &str)]) -> String {
    let mut text =
        read(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("capital/ladder.toml"));
    if !edits
        .iter()
        .any(|(from, _)| from.starts_with("stale_after"))
    {
        text = text.replacen("stale_after = \"5m\"", "stale_after = \"\"", 1);
    }
    for (from, to) in edits {
        assert!(text.contains(from), "{from}");
        text = text.replacen(from, to, 1);
    }
    let p = dir.join("ladder.toml");
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

/// A free TCP port on 127.0.0.1 (for a server a test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// puppeteer-core's node_modules, which scripts/evm-setup.sh installs beside the EVM tools (the browser tests
/// drive Debian's chromium with it).
pub fn puppeteer_modules() -> std::path::PathBuf {
    let dir = std::env::var("HYPEFLOW_EVM_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/hypeflow-evm")
        })
        .join("puppeteer/node_modules");
    assert!(
        dir.join("puppeteer-core").exists(),
        "puppeteer-core is not installed: run `bash scripts/test.sh` (scripts/evm-setup.sh installs it)"
    );
    dir
}

/// A program the test command installs: the path in `env`, else `name` on the PATH.
pub fn installed(env: &str, name: &str) -> std::path::PathBuf {
    if let Ok(p) = std::env::var(env) {
        return std::path::PathBuf::from(p);
    }
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!("{name} is not installed: run `bash scripts/test.sh`, which installs Debian's package")
        })
}

/// The shipped sample's ticks into `market.ticks`.
pub fn publish_sample_ticks(brokers: &str) {
    run_ok(&[
        "publish",
        "--brokers",
        brokers,
        "--topic",
        "market.ticks",
        "data/sample/ticks.jsonl",
    ]);
}

/// SIGTERM, then the exit status and everything it wrote.
pub fn stop(mut c: std::process::Child) -> (std::process::ExitStatus, String, String) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &c.id().to_string()])
        .status();
    let t0 = std::time::Instant::now();
    let status = loop {
        if let Ok(Some(s)) = c.try_wait() {
            break s;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(60),
            "{:?} did not stop within 60 s of SIGTERM",
            c.id()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let (mut out, mut err) = (String::new(), String::new());
    use std::io::Read;
    let _ = c.stdout.take().map(|mut s| s.read_to_string(&mut out));
    let _ = c.stderr.take().map(|mut s| s.read_to_string(&mut err));
    (status, out, err)
}
