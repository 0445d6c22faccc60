//! End to end on an independent Kafka-compatible broker (tansu, in-memory storage), across processes:
//! topics create -> publish -> run -> execute. It stays inside what tansu does right (produce, consume from the
//! start, groups, idempotent producer): no bounded replay here, because tansu reports high watermarks wrong.
//! `bash scripts/test.sh` installs the pinned tansu and sets HYPEFLOW_TANSU.

use crate::common;

use common::{intent_ids_in, number_after, run_ok, Broker};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn tansu_bin() -> PathBuf {
    if let Ok(p) = std::env::var("HYPEFLOW_TANSU") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let p = PathBuf::from(home).join(".cargo/bin/tansu");
    assert!(
        p.exists(),
        "tansu is not installed: run `bash scripts/test.sh`, which installs the pinned version"
    );
    p
}

fn start_tansu() -> Broker {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("tcp://127.0.0.1:{port}");
    let child = Command::new(tansu_bin())
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
            "--storage-engine",
            "memory://tansu/",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tansu");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "tansu did not listen on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
    Broker {
        child: Some(child),
        bootstrap: format!("127.0.0.1:{port}"),
        control: None,
    }
}

/// Intent ids on orders.intents, read from the start until nothing new arrives for a few seconds.
fn intent_ids(brokers: &str) -> BTreeSet<String> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "smoke-reader")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    c.subscribe(&["orders.intents"]).unwrap();
    let mut ids = BTreeSet::new();
    let mut last = Instant::now();
    let start = Instant::now();
    while last.elapsed() < Duration::from_secs(8) && start.elapsed() < Duration::from_secs(60) {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            let v: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
            ids.insert(v["data"]["id"].as_str().unwrap().to_string());
            last = Instant::now();
        }
    }
    ids
}

#[test]
fn publish_run_execute_on_tansu() {
    let broker = start_tansu();
    let b = broker.bootstrap.as_str();
    let created = run_ok(&["topics", "create", "--brokers", b, "--max-replication", "1"]);
    assert!(created.contains("market.ticks: created"), "{created}");
    // idempotent: a second create finds them
    let again = run_ok(&["topics", "create", "--brokers", b, "--max-replication", "1"]);
    assert!(again.contains("market.ticks: exists"), "{again}");
    run_ok(&["topics", "describe", "--brokers", b]);
    run_ok(&["publish", "--brokers", b, "--sample"]);

    let dir = tempfile::tempdir().unwrap();
    let bt = dir.path().join("bt");
    run_ok(&["backtest", "--quiet", "--out", bt.to_str().unwrap()]);
    let expected: BTreeSet<String> = intent_ids_in(&bt.join("intents.jsonl"))
        .into_iter()
        .collect();

    let out = common::run_model(b, "5");
    assert_eq!(
        number_after(&out, "published"),
        expected.len() as u64,
        "{out}"
    );
    assert_eq!(
        intent_ids(b),
        expected,
        "intents on tansu differ from the file backtest's"
    );

    let journal = dir.path().join("journal.sqlite");
    let ex = run_ok(&[
        "execute",
        "--brokers",
        b,
        "--journal",
        journal.to_str().unwrap(),
        "--exit-when-idle",
        "5",
    ]);
    assert_eq!(
        number_after(&ex, "filled") + number_after(&ex, "rejected"),
        expected.len() as u64,
        "{ex}"
    );
}
