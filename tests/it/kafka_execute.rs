//! The paper executor against a broker process: two executors in one consumer group sharing a journal, intents
//! delivered twice, and a restart. Every intent id is executed and published exactly once.

use crate::common;

use common::{bin, dev_broker, intent_ids_in, number_after as stat, run_ok, topic_data};
use std::collections::HashMap;
use std::process::Stdio;

#[test]
fn two_executors_one_group_each_intent_once_also_after_restart() {
    let broker = dev_broker(4);
    let b = broker.bootstrap.as_str();
    let dir = tempfile::tempdir().unwrap();
    let bt = dir.path().join("bt");
    run_ok(&["backtest", "--quiet", "--out", bt.to_str().unwrap()]);
    let intents = bt.join("intents.jsonl");
    let ids: Vec<String> = intent_ids_in(&intents);
    assert!(ids.len() > 10);
    common::publish_sample_ticks(b);
    // every intent delivered twice: at-least-once delivery is the normal case
    for _ in 0..2 {
        run_ok(&[
            "publish",
            "--brokers",
            b,
            "--topic",
            "orders.intents",
            intents.to_str().unwrap(),
        ]);
    }

    let journal = dir.path().join("journal.sqlite");
    let j = journal.to_str().unwrap();
    let spawn = |name: &str| {
        bin()
            .args([
                "execute",
                "--venue",
                "paper",
                "--brokers",
                b,
                "--journal",
                j,
                "--instance",
                name,
                "--exit-when-idle",
                "5",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = spawn("A");
    let c = spawn("B");
    let outs: Vec<String> = [a, c]
        .into_iter()
        .map(|ch| {
            let o = ch.wait_with_output().unwrap();
            assert!(
                o.status.success(),
                "executor failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            String::from_utf8_lossy(&o.stdout).into_owned()
        })
        .collect();
    let executed: u64 = outs
        .iter()
        .map(|o| stat(o, "filled") + stat(o, "rejected"))
        .sum();
    let dups: u64 = outs.iter().map(|o| stat(o, "duplicates")).sum();
    assert_eq!(executed, ids.len() as u64, "{outs:?}");
    // duplicates: the second copy of each, plus any redelivery after a commit refused during the rebalance
    let refused: u64 = outs.iter().map(|o| stat(o, "commit-failures")).sum();
    assert!(
        dups >= ids.len() as u64 && dups <= ids.len() as u64 + refused,
        "{outs:?}"
    );

    // each id is on orders.fills/rejects exactly once
    let mut seen: HashMap<String, usize> = HashMap::new();
    for topic in ["orders.fills", "orders.rejects"] {
        for v in topic_data(b, topic) {
            *seen
                .entry(v["intent_id"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    for id in &ids {
        assert_eq!(seen.get(id), Some(&1), "intent {id}");
    }
    assert_eq!(seen.len(), ids.len());

    // a restarted executor finds every offset committed and every outcome published: it does nothing
    let again = run_ok(&[
        "execute",
        "--brokers",
        b,
        "--journal",
        j,
        "--instance",
        "C",
        "--exit-when-idle",
        "3",
    ]);
    assert_eq!(
        (
            stat(&again, "filled"),
            stat(&again, "duplicates"),
            stat(&again, "republished")
        ),
        (0, 0, 0),
        "{again}"
    );

    // a new group re-reads everything: the journal still refuses every id
    let other = run_ok(&[
        "execute",
        "--brokers",
        b,
        "--journal",
        j,
        "--group",
        "other",
        "--exit-when-idle",
        "3",
    ]);
    assert_eq!(stat(&other, "filled"), 0, "{other}");
    assert_eq!(stat(&other, "duplicates"), 2 * ids.len() as u64, "{other}");
}

/// A record on `orders.intents` that is not a readable intent is dead-lettered with its raw bytes and, when it
/// names an intent id, refused on `orders.rejects` with the reason; it is never executed.
#[test]
fn malformed_intents_are_refused_with_a_reason_and_dead_lettered() {
    let broker = dev_broker(1);
    let b = broker.bootstrap.as_str();
    let mut p = hypeflow::kafka::publish::Publisher::immediate(b).unwrap();
    let topic = common::topic("orders.intents");
    let named = hypeflow::kafka::envelope::encode(
        "intent",
        &serde_json::json!({"id": "bad-1", "token": "AXL", "side": "sell", "quantity": "not a number"}),
    );
    p.send(&topic, "AXL", &named, 0, None).unwrap();
    p.send(&topic, "AXL", b"\x00garbage", 0, None).unwrap();
    p.finish().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = run_ok(&[
        "execute",
        "--venue",
        "paper",
        "--brokers",
        b,
        "--exit-when-idle",
        "2",
        "--journal",
        dir.path().join("j.sqlite").to_str().unwrap(),
    ]);
    assert_eq!(
        (stat(&out, "filled"), stat(&out, "dead-lettered")),
        (0, 2),
        "{out}"
    );
    let rejects = topic_data(b, "orders.rejects");
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert_eq!(rejects[0]["intent_id"], "bad-1");
    assert_eq!(rejects[0]["side"], "sell");
    assert!(rejects[0]["reason"]
        .as_str()
        .unwrap()
        .starts_with("malformed intent"));
    assert_eq!(
        common::topic_records(b, "deadletter.orders.intents").len(),
        2
    );
}

/// An executor that stopped between claiming an intent and executing it: restarted with no `--instance`, it
/// finds its claim under the same default name and finishes the intent (with a name carrying the process id,
/// the claim belonged to nobody alive and the intent never got a fill or a reject). While it runs, a second
/// executor under the same name is refused.
#[test]
fn a_restart_without_instance_finishes_what_it_had_claimed() {
    use hypeflow::execution::executor::default_instance;
    use hypeflow::execution::journal::Journal;
    use hypeflow::model::OrderIntent;
    let broker = dev_broker(2);
    let b = broker.bootstrap.as_str();
    let dir = tempfile::tempdir().unwrap();
    let bt = dir.path().join("bt");
    run_ok(&["backtest", "--quiet", "--out", bt.to_str().unwrap()]);
    common::publish_sample_ticks(b);
    let intents: Vec<OrderIntent> = common::read_jsonl(&bt.join("intents.jsonl"));
    let claimed = &intents[0];
    let journal = dir.path().join("journal.sqlite");
    {
        // the stop: claimed under the default name, nothing executed
        let j = Journal::open(&journal).unwrap();
        let me = default_instance("hypeflow-executor");
        assert!(j.claim(claimed, &me, 0).unwrap());
        assert_eq!(
            j.state_text(&claimed.id).unwrap().as_deref(),
            Some("received")
        );
    }
    let jp = journal.to_str().unwrap();
    let first = bin()
        .args([
            "execute",
            "--brokers",
            b,
            "--journal",
            jp,
            "--exit-when-idle",
            "6",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let second = bin()
        .args([
            "execute",
            "--brokers",
            b,
            "--journal",
            jp,
            "--exit-when-idle",
            "1",
        ])
        .output()
        .unwrap();
    assert!(
        !second.status.success(),
        "a second executor under one name must not start"
    );
    let why = String::from_utf8_lossy(&second.stderr);
    assert!(
        why.contains("another executor is running as instance"),
        "{why}"
    );
    let out = first.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state = Journal::open(&journal)
        .unwrap()
        .state_text(&claimed.id)
        .unwrap();
    assert!(
        matches!(state.as_deref(), Some("filled") | Some("rejected")),
        "the claimed intent was finished: {state:?}"
    );
    let outcomes: Vec<serde_json::Value> = ["orders.fills", "orders.rejects"]
        .iter()
        .flat_map(|t| topic_data(b, t))
        .filter(|v| v["intent_id"] == claimed.id.as_str())
        .collect();
    assert_eq!(outcomes.len(), 1, "published once: {outcomes:?}");
}

/// `hypeflow book` after a paper run: its cash, positions and realized PnL recompute from the fills the
/// executor published, and open positions are marked to the latest market.ticks price.
#[test]
fn the_book_is_what_the_published_fills_add_up_to() {
    use rust_decimal::Decimal;
    use std::collections::BTreeMap;
    let broker = dev_broker(2);
    let b = broker.bootstrap.as_str();
    let dir = tempfile::tempdir().unwrap();
    let bt = dir.path().join("bt");
    run_ok(&["backtest", "--quiet", "--out", bt.to_str().unwrap()]);
    common::publish_sample_ticks(b);
    run_ok(&[
        "publish",
        "--brokers",
        b,
        "--topic",
        "orders.intents",
        bt.join("intents.jsonl").to_str().unwrap(),
    ]);
    let journal = dir.path().join("journal.sqlite");
    let j = journal.to_str().unwrap();
    // the history's intents on the history's clock: each fills where the backtest filled it
    run_ok(&[
        "execute",
        "--brokers",
        b,
        "--journal",
        j,
        "--clock",
        "event",
        "--exit-when-idle",
        "4",
    ]);
    let out = run_ok(&[
        "book",
        "--journal",
        j,
        "--capital",
        "10000",
        "--brokers",
        b,
        "--json",
    ]);
    let books: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(books.len(), 1, "one pipeline: {out}");
    let book = &books[0];
    let dec = |v: &serde_json::Value| -> Decimal { v.as_str().unwrap().parse().unwrap() };
    // recompute from orders.fills, in fill-time order; fills of one bar keep the order they were made in
    // (a token's records share a partition, in order), as the book's do
    let mut fills = topic_data(b, "orders.fills");
    fills.sort_by_key(|f| f["fill_time"].as_str().unwrap().to_string());
    // entries the history closed by its stops stay open here (no dataflow follows them), so cash runs out
    assert!(fills.len() >= 6, "{} fills", fills.len());
    let mut cash = Decimal::from(10_000);
    let mut held: BTreeMap<String, (Decimal, Decimal, Decimal)> = BTreeMap::new(); // qty, cost, entry costs
    let mut realized = Decimal::ZERO;
    for f in &fills {
        let (q, p, fee, gas) = (
            dec(&f["quantity"]),
            dec(&f["price"]),
            dec(&f["fee"]),
            dec(&f["gas"]),
        );
        let e = held
            .entry(f["token"].as_str().unwrap().to_string())
            .or_default();
        if f["side"] == "buy" {
            cash -= q * p + fee + gas;
            *e = (e.0 + q, e.1 + q * p, e.2 + fee + gas);
        } else {
            // a sell closes what is held of it (average cost, its share of the entry costs)
            cash += q * p - fee - gas;
            let closed = q.min(e.0);
            if closed > Decimal::ZERO {
                let (cost, costs) = (e.1 * closed / e.0, e.2 * closed / e.0);
                realized += closed * p - cost - costs - fee - gas;
                *e = (e.0 - closed, e.1 - cost, e.2 - costs);
            }
        }
    }
    assert_eq!(dec(&book["cash"]), cash);
    // average costs divide: the two orders of division agree to far below a cent
    let diff = (dec(&book["realized"]) - realized).abs();
    assert!(
        diff < Decimal::new(1, 12),
        "{} vs {realized}",
        book["realized"]
    );
    let open: BTreeMap<String, Decimal> = held
        .into_iter()
        .filter(|(_, v)| v.0 > Decimal::ZERO)
        .map(|(k, v)| (k, v.0))
        .collect();
    let shown: BTreeMap<String, Decimal> = book["positions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["token"].as_str().unwrap().to_string(),
                dec(&p["quantity"]),
            )
        })
        .collect();
    assert_eq!(shown, open);
    // marked to market.ticks: equity = cash + the positions' values at their marks
    let value: Decimal = book["positions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| dec(&p["value"]))
        .sum();
    assert_eq!(dec(&book["equity"]), cash + value);
    for p in book["positions"].as_array().unwrap() {
        assert!(
            p["marked_at"].as_str().unwrap().starts_with("2025-03-1"),
            "marked to the last ticks: {p}"
        );
    }
    // the execution-quality report: every fill against its intent's decision price
    let q: Vec<serde_json::Value> =
        serde_json::from_str(&run_ok(&["book", "--journal", j, "--fills", "--json"])).unwrap();
    assert_eq!(q.len(), fills.len());
    assert_eq!(book["execution"]["fills"], fills.len());
    let intents: BTreeMap<String, hypeflow::model::OrderIntent> =
        common::read_jsonl::<hypeflow::model::OrderIntent>(&bt.join("intents.jsonl"))
            .into_iter()
            .map(|i| (i.id.clone(), i))
            .collect();
    for row in &q {
        let intent = &intents[row["intent_id"].as_str().unwrap()];
        assert_eq!(dec(&row["decision_price"]), intent.reference_price);
        let ratio = dec(&row["executed_price"]) / intent.reference_price - Decimal::ONE;
        let against = if row["side"] == "buy" { ratio } else { -ratio };
        assert_eq!(
            dec(&row["slippage_bps"]),
            (against * Decimal::from(10_000)).round_dp(4),
            "{row}"
        );
    }
    // and the text form says the same
    let text = run_ok(&["book", "--journal", j]);
    assert!(
        text.contains(&format!("realized {}", realized.round_dp(2))),
        "{text}"
    );
}
