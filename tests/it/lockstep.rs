//! Live = backtest, fills included: the shipped sample published to its topics, replayed by `run --lockstep`
//! through `execute --venue paper --clock event`, gives on `orders.fills` exactly the backtest's fills (ids,
//! quantities, prices, fees, gas, times), and `capital status` on the executor's journal reports exactly the
//! backtest's win rate, Sharpe and max drawdown; with one worker and with two.

use crate::common;

use common::{bin, dev_broker, run_ok, topic_data};
use serde_json::Value;
use std::process::Stdio;

/// The fills, in time order (the topic's partitions each hold their tokens'), with the backtest's fields.
fn filled(v: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = v
        .into_iter()
        .filter(|f| f["status"] == "filled")
        .map(|f| {
            let keys = [
                "intent_id",
                "token",
                "side",
                "quantity",
                "price",
                "fee",
                "gas",
                "fill_time",
                "reason",
            ];
            keys.iter()
                .map(|k| (k.to_string(), f[*k].clone()))
                .collect()
        })
        .collect();
    let key = |f: &Value| (f["fill_time"].to_string(), f["intent_id"].to_string());
    out.sort_by_key(key);
    out
}

fn lockstep_equals_the_backtest(workers: &str) {
    let dir = tempfile::tempdir().unwrap();
    let bt = dir.path().join("bt");
    run_ok(&["backtest", "--quiet", "--out", bt.to_str().unwrap()]);
    let broker = dev_broker(2);
    let b = broker.bootstrap.as_str();
    run_ok(&["publish", "--brokers", b, "--sample"]);
    let journal = dir.path().join("journal.sqlite");
    let executor = bin()
        .args([
            "execute",
            "--brokers",
            b,
            "--clock",
            "event",
            "--exit-when-idle",
            "15",
        ])
        .arg("--journal")
        .arg(&journal)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    run_ok(&[
        "run",
        "--brokers",
        b,
        "--lockstep",
        "--exit-when-idle",
        "5",
        "-w",
        workers,
    ]);
    let o = executor.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let expected: Vec<Value> = std::fs::read_to_string(bt.join("fills.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (expected, got) = (filled(expected), filled(topic_data(b, "orders.fills")));
    assert!(expected.len() > 10, "the sample trades: {}", expected.len());
    for (i, (e, g)) in expected.iter().zip(&got).enumerate() {
        assert_eq!(e, g, "fill {i}");
    }
    assert_eq!(expected.len(), got.len(), "as many fills");

    // the gates' figures on the journal are the backtest's metrics
    let metrics: Value =
        serde_json::from_str(&std::fs::read_to_string(bt.join("metrics.json")).unwrap()).unwrap();
    let ladder = common::ladder(dir.path(), &[]);
    let status: Value = serde_json::from_str(&run_ok(&[
        "capital",
        "status",
        "--journal",
        journal.to_str().unwrap(),
        "--capital",
        &ladder,
        "--json",
    ]))
    .unwrap();
    let gate = |name: &str| {
        status["gates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["gate"] == name)
            .unwrap_or_else(|| panic!("{name}: {status}"))["figure"]
            .as_f64()
            .unwrap()
    };
    for (gate_name, metric) in [
        ("win rate", "win_rate"),
        ("sharpe", "sharpe"),
        ("max drawdown", "max_drawdown"),
    ] {
        let want = metrics[metric].as_f64().unwrap();
        assert!(
            (gate(gate_name) - want).abs() < 1e-9,
            "{gate_name}: {} against the backtest's {want}",
            gate(gate_name)
        );
    }
}

#[test]
fn a_lockstep_replay_fills_exactly_as_the_backtest() {
    lockstep_equals_the_backtest("1");
}

#[test]
fn a_lockstep_replay_on_two_workers_fills_exactly_as_the_backtest() {
    lockstep_equals_the_backtest("2");
}
