//! `hypeflow sweep`: every combination runs as the `backtest` of a file with its values would (checked on the
//! best runs' outputs, byte for byte, and on every row's figures), ranked by the chosen metric; random draws
//! are seeded; a key that would change how inputs are read is refused.

use crate::common;

use common::{read, run_ok};
use std::path::Path;

fn rows(csv: &str) -> Vec<Vec<String>> {
    csv.lines()
        .skip(1)
        .map(|l| l.split(',').map(String::from).collect())
        .collect()
}

#[test]
fn each_run_is_the_backtest_of_its_values_and_the_ranking_follows_the_metric() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sweep");
    let printed = run_ok(&[
        "sweep",
        "--pipeline",
        "pipelines/sma_cross.toml",
        "--grid",
        "signal.fast=5,10",
        "--grid",
        "sizing.stop_loss=0.03,0.08",
        "--rank-by",
        "total_return",
        "--top",
        "2",
        "-j",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(printed.contains("4 runs"), "{printed}");
    let csv = read(&out.join("results.csv"));
    let header = csv.lines().next().unwrap();
    assert!(
        header.starts_with("rank,run,signal.fast,sizing.stop_loss,total_return,"),
        "{header}"
    );
    let table = rows(&csv);
    assert_eq!(table.len(), 4);
    let col = |name: &str| header.split(',').position(|h| h == name).unwrap();
    let returns: Vec<f64> = table
        .iter()
        .map(|r| r[col("total_return")].parse().unwrap())
        .collect();
    assert!(
        returns.windows(2).all(|w| w[0] >= w[1]),
        "ranked best first: {returns:?}"
    );
    let text = read(Path::new("pipelines/sma_cross.toml"));
    for (rank, row) in table.iter().enumerate() {
        let (fast, stop) = (&row[col("signal.fast")], &row[col("sizing.stop_loss")]);
        let file = dir.path().join(format!("p{rank}.toml"));
        let edited = text
            .replace("fast = 10\n", &format!("fast = {fast}\n"))
            .replace("stop_loss = 0.05 ", &format!("stop_loss = {stop} "));
        assert!(
            edited.contains(&format!("fast = {fast}\n"))
                && edited.contains(&format!("stop_loss = {stop} "))
        );
        std::fs::write(&file, &edited).unwrap();
        let single = dir.path().join(format!("single{rank}"));
        run_ok(&[
            "backtest",
            "--quiet",
            "--pipeline",
            file.to_str().unwrap(),
            "--out",
            single.to_str().unwrap(),
        ]);
        let metrics: serde_json::Value =
            serde_json::from_str(&read(&single.join("metrics.json"))).unwrap();
        let want = metrics["total_return"].as_f64().unwrap();
        assert_eq!(
            row[col("total_return")].parse::<f64>().unwrap(),
            want,
            "run {row:?}"
        );
        assert_eq!(
            row[col("trades")],
            metrics["trades"].to_string(),
            "run {row:?}"
        );
        if rank < 2 {
            for f in ["intents.jsonl", "trades.csv", "equity.csv", "fills.jsonl"] {
                let best = out.join(format!("best-{}", rank + 1)).join(f);
                assert_eq!(read(&best), read(&single.join(f)), "best-{} {f}", rank + 1);
            }
        }
    }
    assert!(!out.join("best-3").exists(), "--top 2");
}

#[test]
fn random_draws_are_seeded_and_grid_keys_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = |name: &str, seed: &str| {
        let out = dir.path().join(name);
        run_ok(&[
            "sweep",
            "--pipeline",
            "pipelines/sma_cross.toml",
            "--grid",
            "signal.fast=4,6,8,10,12",
            "--grid",
            "signal.slow=20,30,40",
            "--random",
            "3",
            "--seed",
            seed,
            "--top",
            "0",
            "--out",
            out.to_str().unwrap(),
        ]);
        let mut runs: Vec<String> = rows(&read(&out.join("results.csv")))
            .iter()
            .map(|r| format!("{} {}", r[2], r[3]))
            .collect();
        runs.sort();
        runs
    };
    let a = sweep("a", "7");
    assert_eq!(a.len(), 3);
    assert_eq!(
        a,
        sweep("b", "7"),
        "the same seed draws the same combinations"
    );
    for (grid, says) in [
        ("universe.tokens=AXL", "one sweep per value"),
        ("signal.fast=40", "0 < fast < slow"),
        ("signal.nosuchkey=1", "nosuchkey"),
    ] {
        let o = common::bin()
            .args([
                "sweep",
                "--pipeline",
                "pipelines/sma_cross.toml",
                "--grid",
                grid,
                "--out",
            ])
            .arg(dir.path().join("bad"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(says), "{grid}: {err}");
    }
}

/// The values a walk-forward fold chose, as sweep keys (TOML values from the CSV cells).
fn chosen(header: &str, row: &[String], keys: &[&str]) -> hypeflow::backtest::sweep::Combination {
    let col = |name: &str| header.split(',').position(|h| h == name).unwrap();
    keys.iter()
        .map(|k| {
            let v: toml::Table = toml::from_str(&format!("v = {}", row[col(k)])).unwrap();
            (k.to_string(), v["v"].clone())
        })
        .collect()
}

#[test]
fn walk_forward_chooses_on_each_training_span_and_its_test_spans_are_single_backtests() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("wf");
    let grid = [
        "--pipeline",
        "pipelines/sma_cross.toml",
        "--grid",
        "signal.fast=5,10",
        "--grid",
        "sizing.stop_loss=0.03,0.08",
        "--rank-by",
        "total_return",
        "-j",
        "2",
    ];
    let printed = run_ok(
        &[
            &[
                "sweep",
                "--walk-forward",
                "4d:2d",
                "--out",
                out.to_str().unwrap(),
            ],
            &grid[..],
        ]
        .concat(),
    );
    assert!(
        printed.contains("3 folds (train 4d, test 2d, step 2d) of 4 runs"),
        "{printed}"
    );
    let csv = read(&out.join("walk_forward.csv"));
    let header = csv.lines().next().unwrap().to_string();
    let col = |name: &str| header.split(',').position(|h| h == name).unwrap();
    let table = rows(&csv);
    assert_eq!(table.len(), 3, "{csv}");
    let text = read(Path::new("pipelines/sma_cross.toml"));
    // the first test span starts from the file's own initial equity
    let mut equity = "1000".to_string();
    assert!(text.contains("initial_equity = 1000\n"));
    let mut chained = String::from("timestamp,equity\n");
    for (i, row) in table.iter().enumerate() {
        // the choice is the best of a sweep over the training span alone
        let train = dir.path().join(format!("train{i}"));
        let (from, to) = (&row[col("train_from")], &row[col("train_to")]);
        run_ok(
            &[
                &[
                    "sweep",
                    "--from",
                    from,
                    "--to",
                    to,
                    "--out",
                    train.to_str().unwrap(),
                ][..],
                &grid[..],
            ]
            .concat(),
        );
        let ranked = read(&train.join("results.csv"));
        let best = rows(&ranked).remove(0);
        let rh = ranked.lines().next().unwrap();
        let rcol = |name: &str| rh.split(',').position(|h| h == name).unwrap();
        for k in ["signal.fast", "sizing.stop_loss"] {
            assert_eq!(row[col(k)], best[rcol(k)], "fold {} {k}", i + 1);
        }
        assert_eq!(
            row[col("in_rank_by_total_return")],
            best[rcol("total_return")]
        );
        assert_eq!(row[col("tried")], "4");
        // the test span is the backtest of a file with those values, from the equity the last fold ended with
        let mut combo = chosen(&header, row, &["signal.fast", "sizing.stop_loss"]);
        combo.push((
            "backtest.initial_equity".into(),
            toml::Value::String(equity.clone()),
        ));
        let file = dir.path().join(format!("fold{i}.toml"));
        std::fs::write(
            &file,
            hypeflow::backtest::sweep::apply(&text, &combo).unwrap(),
        )
        .unwrap();
        let single = dir.path().join(format!("single{i}"));
        let (from, to) = (&row[col("test_from")], &row[col("test_to")]);
        run_ok(&[
            "backtest",
            "--quiet",
            "--pipeline",
            file.to_str().unwrap(),
            "--from",
            from,
            "--to",
            to,
            "--out",
            single.to_str().unwrap(),
        ]);
        let fold = out.join(format!("fold-{}", i + 1));
        for f in ["intents.jsonl", "trades.csv", "equity.csv", "fills.jsonl"] {
            assert_eq!(
                read(&fold.join(f)),
                read(&single.join(f)),
                "fold {} {f}",
                i + 1
            );
        }
        let eq = read(&single.join("equity.csv"));
        assert!(eq.lines().count() > 100, "a test span has its own curve");
        chained.extend(eq.lines().skip(1).map(|l| format!("{l}\n")));
        equity = row[col("out_final_equity")].clone();
        let metrics: serde_json::Value =
            serde_json::from_str(&read(&single.join("metrics.json"))).unwrap();
        assert_eq!(metrics["trades"].to_string(), row[col("out_trades")]);
        let dsr: f64 = row[col("deflated_sharpe")].parse().unwrap_or(0.5);
        assert!((0.0..=1.0).contains(&dsr), "{dsr}");
    }
    // the out-of-sample record is the test spans chained, ending where the last one ended
    let oos = out.join("out-of-sample");
    assert_eq!(read(&oos.join("equity.csv")), chained);
    let metrics: serde_json::Value =
        serde_json::from_str(&read(&oos.join("metrics.json"))).unwrap();
    assert_eq!(
        metrics["final_equity"]
            .as_str()
            .unwrap()
            .trim_end_matches('0'),
        equity.trim_end_matches('0')
    );
    assert!(read(&oos.join("report.html")).contains("walk-forward"));
}
