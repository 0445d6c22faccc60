//! Against a real Kafka-protocol broker process (`hypeflow dev-broker`, librdkafka's mock cluster on
//! 127.0.0.1): publish the sample, replay it through the pipeline, and get exactly the file backtest's intents
//! and trades, with 1 and 2 workers.

use crate::common;

use common::{dev_broker, read, run_ok};
use std::path::Path;

#[test]
fn replay_of_published_sample_equals_file_backtest() {
    let broker = dev_broker(4);
    let b = broker.bootstrap.as_str();
    let described = run_ok(&["topics", "describe", "--brokers", b]);
    // ours has the partitions we asked for; an external cluster gets kafka/topics.toml's
    let want = if common::external_broker().is_some() {
        "market.ticks: ok (6 partitions)"
    } else {
        "market.ticks: 4 partitions"
    };
    assert!(described.contains(want), "{described}");
    // idempotent against the dev-broker too (whose mock cannot create: it must not be asked to)
    if common::external_broker().is_none() {
        let created = run_ok(&["topics", "create", "--brokers", b]);
        assert!(
            created.contains("market.ticks: exists") && !created.contains("created"),
            "{created}"
        );
    }
    let published = run_ok(&["publish", "--brokers", b, "--sample"]);
    assert!(
        published.contains("24103 published") && published.contains("2290 published"),
        "{published}"
    );

    let dir = tempfile::tempdir().unwrap();
    let file_out = dir.path().join("file");
    run_ok(&["backtest", "--quiet", "--out", file_out.to_str().unwrap()]);
    for w in ["1", "2"] {
        let out = dir.path().join(format!("replay{w}"));
        let summary = run_ok(&[
            "replay",
            "--brokers",
            b,
            "-w",
            w,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(summary.contains("dead-lettered          0"), "{summary}");
        for f in ["intents.jsonl", "trades.csv", "equity.csv"] {
            let a = read(&file_out.join(f));
            assert!(a.lines().count() > 5, "{f} should not be trivial");
            assert_eq!(
                a,
                read(&out.join(f)),
                "{f}: replay -w {w} differs from the file backtest"
            );
        }
    }
}

#[test]
fn malformed_topic_records_are_dead_lettered_not_fatal() {
    let broker = dev_broker(2);
    let b = broker.bootstrap.as_str();
    let dir = tempfile::tempdir().unwrap();
    // a bad line is dead-lettered at publish time; valid ticks for a token outside the universe at replay time
    let ticks = dir.path().join("ticks.jsonl");
    let sample = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample/ticks.jsonl"));
    let mut body: String = sample.lines().take(3000).collect::<Vec<_>>().join("\n");
    body.push_str("\nnot json at all\n{\"token\":\"ZZZ\",\"price\":\"1\",\"event_time\":\"2025-03-01T01:00:00Z\"}\n");
    std::fs::write(&ticks, body).unwrap();
    let published = run_ok(&[
        "publish",
        "--brokers",
        b,
        "--topic",
        "market.ticks",
        ticks.to_str().unwrap(),
    ]);
    assert!(
        published.contains("3001 published, 1 dead-lettered"),
        "{published}"
    );
    let out = dir.path().join("out");
    run_ok(&[
        "replay",
        "--brokers",
        b,
        "--pipeline",
        "pipelines/sma_cross.toml",
        "--out",
        out.to_str().unwrap(),
    ]);
    let dead = read(&out.join("deadletter.jsonl"));
    assert_eq!(dead.lines().count(), 1, "{dead}");
    assert!(
        dead.contains("ZZZ") && dead.contains("market.ticks/"),
        "{dead}"
    );
}
