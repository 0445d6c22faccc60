//! Faults around a live run: the broker goes away and comes back while `run` and `execute` are up; poison
//! records sit among good ones. (A run killed with SIGKILL is in kafka_positions.rs.)

use crate::common;

use common::{
    bin, dev_broker, intent_ids_in, number_after, publish_file, run_ok, split_sample, topic_data,
    topic_intent_ids, topic_records,
};
use std::collections::BTreeSet;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn replay_ids(b: &str, dir: &std::path::Path) -> BTreeSet<String> {
    let out = dir.join("replay");
    run_ok(&["replay", "--brokers", b, "--out", out.to_str().unwrap()]);
    intent_ids_in(&out.join("intents.jsonl"))
        .into_iter()
        .collect()
}

fn wait_ok(mut child: Child, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            assert!(
                status.success(),
                "{what} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not finish");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn run_and_execute_ride_out_a_broker_outage() {
    // Two partitions, so every data partition holds records and none is ever declared idle (--idle-ms is
    // longer than the test): the watermark then waits for all of them, and the result cannot depend on when
    // each topic's second half arrives after the outage.
    if common::external_broker().is_some() {
        eprintln!("skipped on an external cluster: it needs the dev-broker's down/up");
        return;
    }
    let mut broker = dev_broker(2);
    let b = broker.bootstrap.clone();
    let dir = tempfile::tempdir().unwrap();
    let cut = "2025-03-05T12:00:00.000Z";
    let (ticks_a, ticks_b) = split_sample("ticks.jsonl", "event_time", cut, dir.path());
    let (posts_a, posts_b) = split_sample("tweets.jsonl", "created_at", cut, dir.path());
    publish_file(&b, "market.ticks", &ticks_a);
    publish_file(&b, "social.tweets", &posts_a);

    let journal = dir.path().join("journal.sqlite");
    let spawn = |args: &[&str]| {
        bin()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let run = spawn(&[
        "run",
        "--brokers",
        &b,
        "--positions",
        "model",
        "--idle-ms",
        "600000",
        "--exit-when-idle",
        "30",
    ]);
    let execute = spawn(&[
        "execute",
        "--brokers",
        &b,
        "--journal",
        journal.to_str().unwrap(),
        "--exit-when-idle",
        "30",
    ]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while topic_data(&b, "orders.fills").is_empty() {
        assert!(Instant::now() < deadline, "nothing executed within 60 s");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Every connection is cut and refused for a while; the log survives.
    broker.set_up(false);
    std::thread::sleep(Duration::from_secs(6));
    broker.set_up(true);
    publish_file(&b, "market.ticks", &ticks_b);
    publish_file(&b, "social.tweets", &posts_b);

    let ran = wait_ok(run, "run");
    let executed = wait_ok(execute, "execute");
    let live = topic_intent_ids(&b);
    assert_eq!(
        live,
        replay_ids(&b, dir.path()),
        "after the outage the run must still decide what a replay decides: {ran}"
    );
    assert_eq!(
        number_after(&executed, "filled") + number_after(&executed, "rejected"),
        live.len() as u64,
        "every intent of both halves executed once: {executed}"
    );
}

#[test]
fn poison_records_go_to_the_dead_letter_topic_once_and_the_run_goes_on() {
    let broker = dev_broker(2);
    let b = broker.bootstrap.as_str();
    run_ok(&["publish", "--brokers", b, "--sample"]);
    {
        use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
        let p: BaseProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", b)
            .create()
            .unwrap();
        p.send(
            BaseRecord::to(&common::topic("market.ticks"))
                .key("AXL")
                .payload("not json at all"),
        )
        .unwrap();
        p.send(
            BaseRecord::to(&common::topic("social.tweets"))
                .key("9000001")
                .payload(r#"{"schema":"tweet","v":1,"data":{"id":"x"}}"#),
        )
        .unwrap();
        p.flush(Duration::from_secs(10)).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let expected = replay_ids(b, dir.path());

    let out = common::run_model(b, "3");
    assert_eq!(number_after(&out, "dead-lettered"), 2, "{out}");
    assert_eq!(
        topic_intent_ids(b),
        expected,
        "the poison changed decisions"
    );
    let ticks = topic_records(b, "deadletter.market.ticks");
    assert_eq!(ticks.len(), 1);
    assert_eq!(
        ticks[0].payload, b"not json at all",
        "the raw record, as it was"
    );
    assert_eq!(ticks[0].key, "AXL");
    let reason = &ticks[0]
        .headers
        .iter()
        .find(|(k, _)| k == "reason")
        .expect("a reason header")
        .1;
    assert!(reason.contains("offset"), "{reason}");
    let tweets = topic_records(b, "deadletter.social.tweets");
    assert_eq!(tweets.len(), 1);

    // A restart rewinds over the poison to rebuild its windows but does not dead-letter it again.
    common::run_model(b, "3");
    assert_eq!(topic_records(b, "deadletter.market.ticks").len(), 1);
    assert_eq!(topic_records(b, "deadletter.social.tweets").len(), 1);
}
