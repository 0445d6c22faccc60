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
