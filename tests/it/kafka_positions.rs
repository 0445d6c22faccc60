//! A live run whose positions follow the executor (`--positions fills`, the default): without fills nothing
//! is held, whatever was decided; fills read back from `orders.fills` open positions that a restarted run
//! knows about and protects; a run killed with SIGKILL mid-stream and restarted leaves exactly the decisions
//! of an uninterrupted run in `orders.intents`, and the executor carries each out once.

use crate::common;

use common::{
    bin, dev_broker, number_after, publish_file as publish, run_ok, sample, split_sample as split,
    topic_data,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn intents(b: &str) -> Vec<Value> {
    topic_data(b, "orders.intents")
}

fn ids(v: &[Value]) -> BTreeSet<String> {
    v.iter()
        .map(|i| i["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn run_fills(b: &str) -> String {
    run_ok(&["run", "--brokers", b, "--exit-when-idle", "3"])
}

fn execute(b: &str, journal: &Path) -> String {
    run_ok(&[
        "execute",
        "--brokers",
        b,
        "--journal",
        journal.to_str().unwrap(),
        "--exit-when-idle",
        "3",
    ])
}

#[test]
fn fills_not_intents_decide_positions_and_a_restart_protects_them() {
    let broker = dev_broker(4);
    let b = broker.bootstrap.as_str();
    run_ok(&["publish", "--brokers", b, "--sample"]);

    // No executor yet: every entry stays pending, so at most one buy per token and never a sell.
    let out = run_fills(b);
    let first = intents(b);
    assert_eq!(number_after(&out, "published"), first.len() as u64, "{out}");
    assert!(!first.is_empty(), "the sample must trigger entries");
    let mut per_token: BTreeMap<String, usize> = BTreeMap::new();
    for i in &first {
        assert_eq!(i["side"], "buy", "nothing is held, so nothing is sold: {i}");
        *per_token
            .entry(i["token"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert!(
        per_token.values().all(|n| *n == 1),
        "a pending entry blocks a second one: {per_token:?}"
    );
    assert!(
        first.len() <= 4,
        "max_open_positions counts pending entries"
    );

    // The executor fills them at the latest tick.
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.sqlite");
    execute(b, &journal);
    let fills: BTreeMap<String, Value> = topic_data(b, "orders.fills")
        .into_iter()
        .map(|f| (f["token"].as_str().unwrap().to_string(), f))
        .collect();
    assert!(!fills.is_empty(), "the paper executor filled nothing");
    for f in fills.values() {
        // the paper venue's quote is the latest tick; the fill model's slippage is on top of it
        let q: f64 = f["quoted_price"]
            .as_str()
            .expect("a quote")
            .parse()
            .unwrap();
        let p: f64 = f["price"].as_str().unwrap().parse().unwrap();
        assert!(p >= q && p / q - 1.0 < 0.01, "{f}");
    }

    // The market falls through every stop after the sample ends.
    let end = last_tick_time();
    let crash = dir.path().join("crash.jsonl");
    let mut lines = String::new();
    for minute in 1..=120 {
        let t = end + chrono::Duration::minutes(minute);
        for (token, f) in &fills {
            let price: rust_decimal::Decimal = f["price"].as_str().unwrap().parse().unwrap();
            lines.push_str(&format!(
                "{{\"token\":\"{token}\",\"price\":\"{}\",\"volume\":\"1\",\"source\":\"test\",\"event_time\":\"{}\"}}\n",
                (price / rust_decimal::Decimal::TWO).round_dp(10),
                t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            ));
        }
    }
    std::fs::write(&crash, lines).unwrap();
    run_ok(&[
        "publish",
        "--brokers",
        b,
        "--topic",
        "market.ticks",
        crash.to_str().unwrap(),
    ]);

    // The restarted run rewinds only a few hours, yet knows what the executor holds and sells exactly that.
    run_fills(b);
    let sells: Vec<Value> = intents(b)
        .into_iter()
        .filter(|i| i["side"] == "sell")
        .collect();
    let sold: BTreeMap<String, &Value> = sells
        .iter()
        .map(|i| (i["token"].as_str().unwrap().to_string(), i))
        .collect();
    assert_eq!(
        sold.keys().collect::<Vec<_>>(),
        fills.keys().collect::<Vec<_>>(),
        "every held token and only those are sold: {sells:?}"
    );
    assert_eq!(sells.len(), sold.len(), "one sell per position: {sells:?}");
    for (token, s) in &sold {
        assert_eq!(
            s["quantity"], fills[token]["quantity"],
            "a sell closes the filled quantity"
        );
        assert!(
            ["stop_loss", "trailing_stop"].contains(&s["reason"].as_str().unwrap()),
            "a 50% fall exits by the stop: {s}"
        );
        assert!(
            s["decision_time"].as_str().unwrap() > fills[token]["fill_time"].as_str().unwrap(),
            "exit decided after the fill: {s}"
        );
    }
}

fn last_tick_time() -> chrono::DateTime<chrono::Utc> {
    std::fs::read_to_string(sample("ticks.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| {
            chrono::DateTime::parse_from_rfc3339(v["event_time"].as_str()?)
                .ok()
                .map(|t| t.with_timezone(&chrono::Utc))
        })
        .max()
        .unwrap()
}

#[test]
fn sigkill_mid_stream_then_restart_loses_no_decision_and_executes_none_twice() {
    // Reference: one uninterrupted run over the whole sample.
    let reference = dev_broker(4);
    run_ok(&["publish", "--brokers", &reference.bootstrap, "--sample"]);
    run_fills(&reference.bootstrap);
    let expected = ids(&intents(&reference.bootstrap));
    assert!(!expected.is_empty());
    drop(reference);

    let broker = dev_broker(4);
    let b = broker.bootstrap.as_str();
    let dir = tempfile::tempdir().unwrap();
    let cut = "2025-03-05T12:00:00.000Z";
    let (ticks_a, ticks_b) = split("ticks.jsonl", "event_time", cut, dir.path());
    let (posts_a, posts_b) = split("tweets.jsonl", "created_at", cut, dir.path());
    publish(b, "market.ticks", &ticks_a);
    publish(b, "social.tweets", &posts_a);

    // The first half streams in; kill -9 as soon as the first decision is out.
    let mut live = bin()
        .args(["run", "--brokers", b])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while intents(b).is_empty() {
        assert!(Instant::now() < deadline, "no intent within 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    live.kill().unwrap(); // SIGKILL
    live.wait().unwrap();

    // The rest arrives while it is down; the restart catches up.
    publish(b, "market.ticks", &ticks_b);
    publish(b, "social.tweets", &posts_b);
    run_fills(b);
    let all = intents(b);
    assert_eq!(
        ids(&all),
        expected,
        "the killed and restarted run must leave exactly the uninterrupted run's decisions"
    );

    // Repeats in the topic are harmless: the executor carries each id out once.
    let journal = dir.path().join("journal.sqlite");
    let ex = execute(b, &journal);
    assert_eq!(
        number_after(&ex, "filled") + number_after(&ex, "rejected"),
        expected.len() as u64,
        "{ex}"
    );
    let outcomes: Vec<String> = topic_data(b, "orders.fills")
        .into_iter()
        .chain(topic_data(b, "orders.rejects"))
        .map(|f| f["intent_id"].as_str().unwrap().to_string())
        .collect();
    let distinct: BTreeSet<&String> = outcomes.iter().collect();
    assert_eq!(outcomes.len(), distinct.len(), "an intent executed twice");
    assert_eq!(distinct.len(), expected.len());
}

/// `run --capital`: sized from the ladder's starting capital (the executor's book), not `[backtest]
/// initial_equity`: the same entries at half the capital are smaller, and they are other intents.
#[test]
fn a_run_under_the_ladder_sizes_from_its_starting_capital() {
    let dir = tempfile::tempdir().unwrap();
    let half = common::ladder(
        dir.path(),
        &[(
            "starting_capital = \"10000\"",
            "starting_capital = \"5000\"",
        )],
    );
    let entries = |capital: Option<&str>| {
        let broker = dev_broker(1);
        let b = broker.bootstrap.as_str();
        run_ok(&["publish", "--brokers", b, "--sample"]);
        let mut args = vec!["run", "--brokers", b, "--exit-when-idle", "3"];
        if let Some(c) = capital {
            args.extend(["--capital", c]);
        }
        run_ok(&args);
        intents(b)
            .into_iter()
            .map(|i| {
                let n: f64 = i["notional"].as_str().unwrap().parse().unwrap();
                (
                    i["token"].as_str().unwrap().to_string(),
                    (i["id"].clone(), n),
                )
            })
            .collect::<BTreeMap<_, _>>()
    };
    let full = entries(None);
    let halved = entries(Some(&half));
    assert!(!full.is_empty());
    assert_eq!(
        full.keys().collect::<Vec<_>>(),
        halved.keys().collect::<Vec<_>>(),
        "the same entries"
    );
    for (token, (id, n)) in &full {
        let (hid, hn) = &halved[token];
        assert_ne!(
            id, hid,
            "{token}: sized from another equity, another intent"
        );
        assert!(
            (hn / n - 0.5).abs() < 1e-6,
            "{token}: {hn} is not half of {n}"
        );
    }
    let o = bin()
        .args([
            "run",
            "--brokers",
            "127.0.0.1:1",
            "--positions",
            "model",
            "--capital",
            &half,
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("needs --positions fills"));
}
