//! Indicator conditions in a real backtest of the shipped sample: `entry_when` gates the sentiment rule's
//! entries and says why, `exit_when` exits, an empty list changes nothing (same intent ids), a bad condition is
//! a load error naming it.

use crate::common;

use common::{bin, read, read_jsonl, run_ok};
use std::path::{Path, PathBuf};

/// The shipped sentiment pipeline with `line` added to its `[signal]` table.
fn pipeline_with(dir: &Path, name: &str, line: &str) -> PathBuf {
    let text = read(Path::new("pipelines/influencer_momentum.toml"));
    assert!(text.contains("[signal]\n"));
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        text.replace("[signal]\n", &format!("[signal]\n{line}\n")),
    )
    .unwrap();
    path
}

fn backtest(dir: &Path, name: &str, line: &str) -> (Vec<serde_json::Value>, String) {
    let out = dir.join(name);
    let p = pipeline_with(dir, name, line);
    run_ok(&[
        "backtest",
        "--quiet",
        "--pipeline",
        p.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    (
        read_jsonl(&out.join("intents.jsonl")),
        read(&out.join("trades.csv")),
    )
}

fn buys(intents: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    intents.iter().filter(|i| i["side"] == "buy").collect()
}

/// The number after `(` in `... COND (A vs B)`.
fn left_value(reason: &str, cond: &str) -> f64 {
    let at = reason
        .find(cond)
        .unwrap_or_else(|| panic!("{cond} not in {reason}"))
        + cond.len();
    reason[at..]
        .trim_start_matches(" (")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn entry_conditions_gate_the_sentiment_rule_and_exit_conditions_exit() {
    let dir = tempfile::tempdir().unwrap();
    let (base, _) = backtest(dir.path(), "base", "");
    let (empty, _) = backtest(dir.path(), "empty", "entry_when = []\nexit_when = []");
    assert_eq!(empty, base, "empty lists keep every intent and its id");
    assert!(buys(&base).len() > 10);

    let (gated, _) = backtest(dir.path(), "rsi", "entry_when = [\"rsi(14) < 60\"]");
    let gated_buys = buys(&gated);
    assert!(!gated_buys.is_empty());
    for b in &gated_buys {
        let reason = b["reason"].as_str().unwrap();
        assert!(left_value(reason, "when rsi(14) < 60") < 60.0, "{reason}");
    }
    let times = |v: &[&serde_json::Value]| -> std::collections::BTreeSet<String> {
        v.iter()
            .map(|b| format!("{}{}", b["token"], b["decision_time"]))
            .collect()
    };
    assert!(
        !times(&buys(&base)).is_subset(&times(&gated_buys)),
        "some of the sample's entries come at an RSI of 60 or more and must be dropped"
    );

    let (none, trades) = backtest(dir.path(), "never", "entry_when = [\"rsi(14) < 0\"]");
    assert!(
        buys(&none).is_empty() && trades.lines().count() == 1,
        "{trades}"
    );

    let (_, trades) = backtest(dir.path(), "exit", "exit_when = [\"close < ema(20)\"]");
    let exits: Vec<&str> = trades
        .lines()
        .filter(|l| l.contains("exit_when close < ema(20)"))
        .collect();
    assert!(!exits.is_empty(), "{trades}");
    for l in exits {
        let reason = l.rsplit(',').next().unwrap();
        let (a, b) = reason
            .trim_start_matches("exit_when close < ema(20) (")
            .trim_end_matches(')')
            .split_once(" vs ")
            .unwrap();
        assert!(
            a.parse::<f64>().unwrap() < b.parse::<f64>().unwrap(),
            "{reason}"
        );
    }
}

#[test]
fn a_bad_condition_is_a_load_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for (line, says) in [
        ("entry_when = [\"rsi(14) << 70\"]", "rsi(14) << 70"),
        (
            "entry_when = [\"rsi(0) < 70\"]",
            "period \"0\" must be a whole number in 1-2000",
        ),
        (
            "exit_when = [\"stoch(14) > 80\"]",
            "unknown indicator \"stoch\"",
        ),
    ] {
        let p = pipeline_with(dir.path(), "bad", line);
        let o = bin()
            .args(["backtest", "--quiet", "--pipeline", p.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(says), "{line}: {err}");
    }
}
