//! The live `run` against a broker process: the intents it publishes for the published sample are, record for
//! record, those `replay` computes for the same history; a restart resumes from the committed watermark
//! (minus the rewind), not from the beginning.

use crate::common;

use common::{dev_broker, number_after, run_ok, topic_data};

fn published(out: &str) -> u64 {
    number_after(out, "published")
}

#[test]
fn live_run_publishes_the_replays_intents_and_resumes_after_restart() {
    let broker = dev_broker(4);
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

    let first = common::run_model(b, "3");
    assert_eq!(published(&first), expected.len() as u64, "{first}");
    let mut live = topic_data(b, "orders.intents");
    live.sort_by_key(by_id);
    assert_eq!(
        live, expected,
        "the live run's intents differ from the replay's"
    );

    // restart: resumes from the committed watermark minus the rewind, so it reprocesses only the tail
    let second = common::run_model(b, "3");
    let again = published(&second);
    assert!(
        again < expected.len() as u64,
        "a restart re-decides at most the rewound tail, not everything: {second}"
    );
    let ids: std::collections::BTreeSet<String> =
        topic_data(b, "orders.intents").iter().map(by_id).collect();
    let want: std::collections::BTreeSet<String> = expected.iter().map(by_id).collect();
    assert_eq!(
        ids, want,
        "the rewound decisions must repeat known ids only"
    );
}

/// A partition whose first records come slowly (its broker answers a second late) is silent but not drained:
/// it must hold the watermark back, or its records arrive behind the others' and are decided out of order.
#[test]
fn a_slow_partition_holds_the_watermark_until_its_records_are_read() {
    let mut broker = common::dev_brokers(4, 2);
    if broker.control.is_none() {
        return; // an external cluster cannot be slowed down
    }
    let b = broker.bootstrap.clone();
    run_ok(&["publish", "--brokers", &b, "--sample"]);
    let dir = tempfile::tempdir().unwrap();
    let replay = dir.path().join("replay");
    run_ok(&["replay", "--brokers", &b, "--out", replay.to_str().unwrap()]);
    let by_id = |v: &serde_json::Value| v["id"].as_str().unwrap_or("").to_string();
    let mut expected = common::read_jsonl(&replay.join("intents.jsonl"));
    expected.sort_by_key(by_id);
    assert!(expected.len() > 10);
    // broker 2 leads half the partitions: its answers take longer than a partition may stay silent
    broker.set_rtt(2, 1000);
    let out = run_ok(&[
        "run",
        "--brokers",
        &b,
        "--positions",
        "model",
        "--exit-when-idle",
        "3",
        "--idle-ms",
        "300",
    ]);
    broker.set_rtt(2, 0);
    assert_eq!(published(&out), expected.len() as u64, "{out}");
    let mut live = topic_data(&b, "orders.intents");
    live.sort_by_key(by_id);
    assert_eq!(
        live, expected,
        "the slowed live run's intents differ from the replay's"
    );
}

#[test]
fn sigterm_stops_a_live_run_cleanly_and_the_restart_resumes_from_its_commit() {
    let broker = dev_broker(2);
    let b = broker.bootstrap.as_str();
    run_ok(&["publish", "--brokers", b, "--sample"]);
    let live = common::bin()
        .args(["run", "--brokers", b, "--positions", "model"])
        .env("HYPEFLOW_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while topic_data(b, "orders.intents").len() < 10 {
        assert!(
            std::time::Instant::now() < deadline,
            "no intents within 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // past the first periodic commit
    std::thread::sleep(std::time::Duration::from_secs(2));
    let pid = rustix::process::Pid::from_raw(live.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let out = live.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "a stop is not a failure: {stderr}");
    assert!(
        stdout.contains("intents published"),
        "the summary is printed: {stdout}"
    );
    assert!(stderr.contains("stopped on request"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let again = common::bin()
        .args([
            "run",
            "--brokers",
            b,
            "--positions",
            "model",
            "--exit-when-idle",
            "3",
        ])
        .env("HYPEFLOW_LOG", "info")
        .output()
        .unwrap();
    let told = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{told}");
    assert!(
        told.contains("resuming from the committed watermark"),
        "the restart picks up from the stop's commit: {told}"
    );
}
