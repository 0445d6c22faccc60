//! End-to-end tests of the `hypeflow` binary: outputs, determinism across runs and worker counts, Freqtrade
//! conventions on the SMA pipeline, bad input, and help on every subcommand.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hypeflow"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn run_ok(args: &[&str]) -> Output {
    let out = bin().args(args).output().expect("run hypeflow");
    assert!(
        out.status.success(),
        "hypeflow {:?} failed:\nstdout: {}\nstderr: {}",
        args,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

fn backtest(out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["backtest", "--quiet", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    run_ok(&args)
}

#[test]
fn sample_backtest_writes_every_output_with_the_stated_columns() {
    let dir = tempfile::tempdir().unwrap();
    let out = backtest(dir.path(), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("total return") && stdout.contains("Sharpe"),
        "{stdout}"
    );

    let trades = read(&dir.path().join("trades.csv"));
    let mut lines = trades.lines();
    assert_eq!(lines.next(), Some("token,side,entry_time,entry_price,exit_time,exit_price,quantity,fees,pnl,return,exit_reason"));
    let rows: Vec<&str> = lines.collect();
    assert!(rows.len() >= 5, "the sample should trade: {trades}");
    for r in &rows {
        let cols: Vec<&str> = r.split(',').collect();
        assert_eq!(cols.len(), 11, "{r}");
        assert!(
            cols[2].ends_with('Z') && cols[4].ends_with('Z'),
            "RFC 3339 UTC times: {r}"
        );
        assert!(cols[2] <= cols[4], "entry before exit: {r}");
    }

    let equity = read(&dir.path().join("equity.csv"));
    assert!(equity.starts_with("timestamp,equity\n"));
    assert!(equity.lines().count() > 1000);

    let metrics: serde_json::Value =
        serde_json::from_str(&read(&dir.path().join("metrics.json"))).unwrap();
    for key in [
        "total_return",
        "cagr",
        "sharpe",
        "sortino",
        "calmar",
        "max_drawdown",
        "win_rate",
        "profit_factor",
        "expectancy",
        "avg_win",
        "avg_loss",
        "payoff_ratio",
        "trades",
        "exposure",
        "start",
        "end",
    ] {
        assert!(metrics.get(key).is_some(), "metrics.json lacks {key}");
    }
    assert_eq!(metrics["trades"].as_u64().unwrap() as usize, rows.len());

    // total return agrees with the trades: every position is closed at the end, so equity = initial + sum(pnl)
    let pnl: f64 = rows
        .iter()
        .map(|r| r.split(',').nth(8).unwrap().parse::<f64>().unwrap())
        .sum();
    let tr = metrics["total_return"].as_f64().unwrap();
    assert!(
        (tr - pnl / 10_000.0).abs() < 1e-9,
        "total_return {tr} vs sum(pnl)/equity {}",
        pnl / 10_000.0
    );

    let intents = read(&dir.path().join("intents.jsonl"));
    let mut last = (String::new(), String::new());
    for l in intents.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["id"].as_str().unwrap().len(), 32);
        let key = (
            v["decision_time"].as_str().unwrap().to_string(),
            v["id"].as_str().unwrap().to_string(),
        );
        assert!(
            key >= last,
            "intents in canonical (decision time, id) order"
        );
        last = key;
    }

    let html = read(&dir.path().join("report.html"));
    assert!(
        html.contains("<svg")
            && html.contains("Fill conventions in force")
            && html.contains("[sizing]")
    );
    // the signal-quality table (one row per derived horizon) and the monthly returns (the sample is March 2025)
    for want in [
        "<h2>Signal quality</h2>",
        "<tr><td class=l>5m</td>",
        "<tr><td class=l>1d</td>",
        "<h2>Monthly returns</h2>",
        "<h2>Rolling Sharpe (7 days)</h2><svg",
        "<tr><td class=l>2025</td>",
    ] {
        assert!(html.contains(want), "the report lacks {want}");
    }
    assert!(
        !html.contains("<script src")
            && !html.contains("src=\"http")
            && !html.contains("href=\"http"),
        "report must be self-contained"
    );
    assert_eq!(
        html.matches("<script>").count(),
        1,
        "one inline script: the hover values"
    );
}

#[test]
fn same_inputs_same_bytes_for_any_worker_count() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    backtest(dirs[0].path(), &["-w", "1"]);
    backtest(dirs[1].path(), &["-w", "1"]);
    backtest(dirs[2].path(), &["-w", "2"]);
    for f in ["intents.jsonl", "trades.csv", "equity.csv", "metrics.json"] {
        let a = std::fs::read(dirs[0].path().join(f)).unwrap();
        assert!(!a.is_empty(), "{f} is empty");
        assert_eq!(
            a,
            std::fs::read(dirs[1].path().join(f)).unwrap(),
            "{f} differs between two runs"
        );
        assert_eq!(
            a,
            std::fs::read(dirs[2].path().join(f)).unwrap(),
            "{f} differs between -w 1 and -w 2"
        );
    }
}

const T0: i64 = 1_704_067_200_000; // 2024-01-01T00:00:00Z
const BAR: i64 = 15 * 60_000;

/// Flat at 100, a cross up at bar 40, a crash through the 5% stop at bar 44, flat at 96, a second cross up at
/// bar 80, and the data ends at bar 82 with that trade open.
fn sma_bars() -> String {
    let mut closes: Vec<f64> = vec![100.0; 40];
    closes.extend([101.0, 102.0, 103.0, 103.0, 96.0]);
    closes.extend(vec![96.0; 35]);
    closes.extend([97.0, 98.0, 99.0]);
    let mut csv = String::from("token,timestamp,open,high,low,close,volume\n");
    let mut prev: f64 = 100.0;
    for (i, c) in closes.iter().enumerate() {
        let (o, c) = (prev, *c);
        let hi = o.max(c) + 0.5;
        let lo = if i == 44 { 90.0 } else { o.min(c) - 0.5 };
        csv.push_str(&format!(
            "AXL,{},{o},{hi},{lo},{c},1000\n",
            T0 + i as i64 * BAR
        ));
        prev = c;
    }
    csv
}

fn iso(bar: i64) -> String {
    chrono::DateTime::from_timestamp_millis(T0 + bar * BAR)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

#[test]
fn sma_cross_follows_freqtrade_conventions_trade_by_trade() {
    let dir = tempfile::tempdir().unwrap();
    let prices = dir.path().join("AXL_15m.csv");
    std::fs::write(&prices, sma_bars()).unwrap();
    let out = dir.path().join("out");
    backtest(
        &out,
        &[
            "--pipeline",
            "pipelines/sma_cross.toml",
            "--prices",
            prices.to_str().unwrap(),
        ],
    );
    let trades = read(&out.join("trades.csv"));
    let rows: Vec<Vec<String>> = trades
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    assert_eq!(rows.len(), 2, "{trades}");
    let fee = 0.001;
    let f = |s: &str| s.parse::<f64>().unwrap();

    // 1: signal at bar 40's close -> entry at bar 41's open (101); stop 5% -> exactly 95.95, stamped bar 44's open
    let t = &rows[0];
    assert_eq!(
        (t[2].as_str(), t[4].as_str()),
        (iso(41).as_str(), iso(44).as_str())
    );
    assert_eq!((f(&t[3]), f(&t[5])), (101.0, 95.95));
    assert_eq!(t[10], "stop_loss");
    let amount = 100.0 / 101.0;
    assert!((f(&t[6]) - amount).abs() < 1e-10);
    // Freqtrade: profit_abs = amount*exit*(1-fee) - amount*entry*(1+fee)
    let profit_abs = amount * 95.95 * (1.0 - fee) - amount * 101.0 * (1.0 + fee);
    assert!(
        (f(&t[8]) - profit_abs).abs() < 1e-8,
        "pnl {} vs {profit_abs}",
        t[8]
    );
    assert!((f(&t[7]) - amount * (101.0 + 95.95) * fee).abs() < 1e-8);
    assert!(
        (f(&t[9]) - profit_abs / 100.0).abs() < 1e-8,
        "return = pnl / cost"
    );

    // 2: cross at bar 80 -> entry at bar 81's open (97); still open at the end -> force_exit at the LAST bar's open (98)
    let t = &rows[1];
    assert_eq!(
        (t[2].as_str(), t[4].as_str()),
        (iso(81).as_str(), iso(82).as_str())
    );
    assert_eq!(
        (f(&t[3]), f(&t[5]), t[10].as_str()),
        (97.0, 98.0, "force_exit")
    );
    let amount = 100.0 / 97.0;
    let profit_abs = amount * 98.0 * (1.0 - fee) - amount * 97.0 * (1.0 + fee);
    assert!((f(&t[8]) - profit_abs).abs() < 1e-8);

    // the exit signal (cross below) arrives while flat and must not create a sell intent
    let intents = read(&out.join("intents.jsonl"));
    assert_eq!(intents.lines().count(), 2, "{intents}");
    assert!(intents.lines().all(|l| l.contains("\"side\":\"buy\"")));
}

#[test]
fn bad_records_are_dead_lettered_and_counted_never_fatal() {
    let (dead, stdout, trades) = sma_backtest_with(concat!(
        "AXL,not-a-time,1,1,1,1,1\n",
        "AXL,2030-01-01T00:00:00Z,1,0.5,2,1,1\n", // high < low
        "DOGE,2024-01-01T00:00:00Z,1,1,1,1,1\n",  // not in the universe
        "AXL,2024-01-01T00:00:00Z,100,100.5,99.5,100,1000\n", // duplicate
        "AXL,2024-01-01T00:00:00Z\n",             // short row
    ));
    assert_eq!(dead.lines().count(), 5, "{dead}");
    for reason in [
        "bad time",
        "high",
        "not in the pipeline's universe",
        "duplicate",
        "expected 7 columns",
    ] {
        assert!(dead.contains(reason), "no dead letter for {reason}: {dead}");
    }
    assert!(stdout.contains("5 dead-lettered"));
    // the good rows still trade exactly as without the bad ones
    assert_eq!(trades, 3);
}

/// The SMA reference bars plus `extra` rows, backtested: (deadletter.jsonl, stdout, lines of trades.csv).
fn sma_backtest_with(extra: &str) -> (String, String, usize) {
    let dir = tempfile::tempdir().unwrap();
    let prices = dir.path().join("bars.csv");
    std::fs::write(&prices, sma_bars() + extra).unwrap();
    let out = dir.path().join("out");
    let o = backtest(
        &out,
        &[
            "--pipeline",
            "pipelines/sma_cross.toml",
            "--prices",
            prices.to_str().unwrap(),
        ],
    );
    (
        read(&out.join("deadletter.jsonl")),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        read(&out.join("trades.csv")).lines().count(),
    )
}

#[test]
fn extreme_values_that_parse_are_dead_lettered_and_the_rest_trades_the_same() {
    let max = "79228162514264337593543950335";
    let tiny = "0.0000000000000000000000000001";
    let (dead, stdout, trades) = sma_backtest_with(&format!(
        "AXL,2024-01-09T00:00:00Z,{max},{max},{max},{max},1\n\
         AXL,2024-01-09T00:05:00Z,{tiny},{tiny},{tiny},{tiny},1\n\
         AXL,2024-01-09T00:10:00Z,100,100,100,100,{max}\n\
         AXL,9999-01-01T00:00:00Z,100,100,100,100,1\n"
    ));
    assert_eq!(dead.lines().count(), 4, "{dead}");
    for reason in [
        "outside [0.000000000001, 1000000000000]",
        "volume",
        "after 2100",
    ] {
        assert!(dead.contains(reason), "no dead letter for {reason}: {dead}");
    }
    assert!(stdout.contains("4 dead-lettered"));
    assert_eq!(trades, 3);
}

/// Runs a backtest expected to fail; returns the exit code and stderr.
fn backtest_err(pipeline: &Path, prices: &Path, out: &Path) -> (Option<i32>, String) {
    let o = bin()
        .args(["backtest", "--quiet", "--pipeline"])
        .arg(pipeline)
        .arg("--prices")
        .arg(prices)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn fatal_input_problems_are_clear_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let sma = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/sma_cross.toml");

    let (code, err) = backtest_err(&sma, &dir.path().join("nope.jsonl"), dir.path());
    assert_eq!(code, Some(2));
    assert!(
        err.contains("nope.jsonl") && !err.contains("panicked"),
        "{err}"
    );
    assert_eq!(
        err.matches("os error 2").count(),
        1,
        "the cause said once: {err}"
    );

    // nothing valid: the reason of the first refusal, not a folder that was never written
    let all_bad = dir.path().join("all_bad.jsonl");
    std::fs::write(
        &all_bad,
        "{\"token\":\"AXL\",\"price\":\"-1\",\"event_time\":0}\n",
    )
    .unwrap();
    let (code, err) = backtest_err(&sma, &all_bad, &dir.path().join("never"));
    assert_eq!(code, Some(2));
    assert!(
        err.contains("line 1: price -1 is not positive") && !err.contains("output folder"),
        "{err}"
    );

    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "ts,o,h,l,c\n1,1,1,1,1\n").unwrap();
    let (code, err) = backtest_err(&sma, &bad, dir.path());
    assert_eq!(code, Some(2));
    assert!(
        err.contains("bad.csv line 1")
            && err.contains("token,timestamp,open,high,low,close,volume"),
        "{err}"
    );

    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let (code, err) = backtest_err(&sma, &empty, dir.path());
    assert_eq!(code, Some(2));
    assert!(err.contains("empty"), "{err}");

    let typo = dir.path().join("typo.toml");
    std::fs::write(&typo, read(&sma).replace("fast = 10", "fsat = 10")).unwrap();
    let (code, err) = backtest_err(&typo, &bad, dir.path());
    assert_eq!(code, Some(2));
    assert!(err.contains("fsat"), "{err}");
}

#[test]
fn unsorted_ticks_replay_in_event_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let sample = read(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/sample/ticks.jsonl"));
    let mut lines: Vec<&str> = sample.lines().collect();
    lines.reverse();
    let shuffled = dir.path().join("rev.jsonl");
    std::fs::write(&shuffled, lines.join("\n")).unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    backtest(&a, &[]);
    backtest(&b, &["--prices", shuffled.to_str().unwrap()]);
    assert_eq!(read(&a.join("trades.csv")), read(&b.join("trades.csv")));
}

#[test]
fn every_subcommand_has_help() {
    for args in [
        vec!["--help"],
        vec!["backtest", "--help"],
        vec!["sample", "--help"],
        vec!["sample", "generate", "--help"],
        vec!["sentiment", "--help"],
        vec!["sentiment", "eval", "--help"],
        vec!["sentiment", "score", "--help"],
        vec!["bench", "--help"],
        vec!["dev-broker", "--help"],
        vec!["topics", "--help"],
        vec!["topics", "create", "--help"],
        vec!["topics", "describe", "--help"],
        vec!["publish", "--help"],
        vec!["replay", "--help"],
        vec!["execute", "--help"],
        vec!["run", "--help"],
        vec!["influencers", "--help"],
        vec!["influencers", "sync", "--help"],
    ] {
        let o = run_ok(&args);
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("Usage"),
            "{args:?}"
        );
    }
}

#[test]
fn sentiment_eval_reports_accuracy_f1_and_confusion() {
    let o = run_ok(&["sentiment", "eval"]);
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(
        s.contains("crypto_posts.csv")
            && s.contains("rows 320")
            && s.contains("macro-F1")
            && s.contains("confusion"),
        "{s}"
    );
    let o = run_ok(&["sentiment", "eval", "--split", "test"]);
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.contains("(split test)") && s.contains("rows 101"), "{s}");
}

#[test]
fn sample_generator_is_reproducible() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for d in [&a, &b] {
        run_ok(&[
            "sample",
            "generate",
            "--days",
            "2",
            "--seed",
            "11",
            "--out",
            d.path().to_str().unwrap(),
        ]);
    }
    for f in ["ticks.jsonl", "tweets.jsonl", "bars_15m.csv"] {
        assert_eq!(
            std::fs::read(a.path().join(f)).unwrap(),
            std::fs::read(b.path().join(f)).unwrap(),
            "{f}"
        );
    }
    // and the shipped sample is what the generator makes with the documented arguments
    let c = tempfile::tempdir().unwrap();
    run_ok(&["sample", "generate", "--out", c.path().to_str().unwrap()]);
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample");
    for f in ["ticks.jsonl", "tweets.jsonl", "bars_15m.csv"] {
        assert_eq!(
            std::fs::read(c.path().join(f)).unwrap(),
            std::fs::read(shipped.join(f)).unwrap(),
            "shipped {f} is stale"
        );
    }
}

/// With an influencer list, only the listed accounts' posts count: the same decisions as the unfiltered
/// pipeline on a posts file holding only their posts; and the list's follower count stands in where a post
/// carries none.
#[test]
fn an_influencer_list_keeps_only_its_accounts_posts() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tweets = read(&root.join("data/sample/tweets.jsonl"));
    let posts: Vec<serde_json::Value> = tweets
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // the widely followed accounts of the sample: the list
    let mut listed: Vec<(String, String, u64)> = posts
        .iter()
        .filter(|p| p["followers"].as_u64().unwrap() >= 200_000)
        .map(|p| {
            (
                p["author_handle"].as_str().unwrap().to_string(),
                p["author_id"].as_str().unwrap().to_string(),
                p["followers"].as_u64().unwrap(),
            )
        })
        .collect();
    listed.sort();
    listed.dedup_by(|a, b| a.1 == b.1);
    assert!(listed.len() > 3, "the sample should have some big accounts");
    let ids: std::collections::HashSet<&str> = listed.iter().map(|l| l.1.as_str()).collect();
    let list = dir.path().join("influencers.csv");
    let mut csv = String::from("handle,user_id,followers,counted_on\n");
    for (h, id, f) in &listed {
        csv.push_str(&format!("{h},{id},{f},2026-11-24\n"));
    }
    std::fs::write(&list, csv).unwrap();
    let pipeline = dir.path().join("p.toml");
    let text = read(&root.join("pipelines/influencer_momentum.toml")).replace(
        "[sentiment]\n",
        &format!("[sentiment]\ninfluencers = \"{}\"\n", list.display()),
    );
    std::fs::write(&pipeline, text).unwrap();

    // their posts only, with the follower counts removed: the list supplies them
    let only: String = posts
        .iter()
        .filter(|p| ids.contains(p["author_id"].as_str().unwrap()))
        .map(|p| p.to_string() + "\n")
        .collect();
    let only_path = dir.path().join("only.jsonl");
    std::fs::write(&only_path, &only).unwrap();
    let no_counts: String = posts
        .iter()
        .map(|p| {
            let mut p = p.clone();
            p["followers"] = 0.into();
            p.to_string() + "\n"
        })
        .collect();
    let no_counts_path = dir.path().join("no_counts.jsonl");
    std::fs::write(&no_counts_path, no_counts).unwrap();

    let with_list = dir.path().join("with_list");
    let o = backtest(
        &with_list,
        &[
            "--pipeline",
            pipeline.to_str().unwrap(),
            "--tweets",
            no_counts_path.to_str().unwrap(),
        ],
    );
    let summary = String::from_utf8_lossy(&o.stdout).into_owned();
    let off_list = posts.len() - only.lines().count();
    assert!(
        summary.contains(&format!("{off_list} not on the influencer list")),
        "{summary}"
    );
    let filtered = dir.path().join("filtered");
    backtest(&filtered, &["--tweets", only_path.to_str().unwrap()]);
    // ids and the inputs version hash the pipeline file, which differs; the decisions must not
    let decisions = |p: &Path| -> Vec<String> {
        read(&p.join("intents.jsonl"))
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                let o = v.as_object_mut().unwrap();
                o.remove("id");
                o.remove("inputs_version");
                v.to_string()
            })
            .collect()
    };
    let a = decisions(&with_list);
    assert!(!a.is_empty(), "the big accounts should move something");
    assert!(
        a == decisions(&filtered),
        "the list filters differently from the filtered file"
    );
    let unfiltered = dir.path().join("unfiltered");
    backtest(&unfiltered, &[]);
    assert!(a != decisions(&unfiltered), "the list changed nothing");
}

/// The drawdown pause locks entries for `drawdown_lock` and then measures from a new peak: on 40 synthetic
/// days that reach a 5% drawdown within the first two weeks, the SMA pipeline keeps trading to the end (a
/// peak-only rule stopped it for good: its last trade closed on day 12).
#[test]
fn the_drawdown_pause_ends_and_trading_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    run_ok(&[
        "sample",
        "generate",
        "--days",
        "40",
        "--seed",
        "11",
        "--out",
        data.to_str().unwrap(),
    ]);
    let text = read(Path::new("pipelines/sma_cross.toml"));
    let pause = replace_line(
        &text,
        "drawdown_pause = 1",
        "drawdown_pause = 0.05\ndrawdown_lock = \"24h\"",
    );
    let pipeline = dir.path().join("sma_dd.toml");
    std::fs::write(&pipeline, pause).unwrap();
    let out = dir.path().join("out");
    run_ok(&[
        "backtest",
        "--quiet",
        "--pipeline",
        pipeline.to_str().unwrap(),
        "--prices",
        data.join("bars_15m.csv").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let report = read(&out.join("report.html"));
    assert!(report.contains("drawdown_pause"), "the pause was hit");
    let trades = read(&out.join("trades.csv"));
    let last_exit = trades
        .lines()
        .last()
        .unwrap()
        .split(',')
        .nth(4)
        .unwrap()
        .to_string();
    let header: Vec<&str> = trades.lines().next().unwrap().split(',').collect();
    assert_eq!(header[4], "exit_time", "{header:?}");
    assert!(
        last_exit.as_str() > "2025-04-05",
        "still trading in the last days: {last_exit}"
    );
}

/// Replaces the line starting with `prefix` (the rest of it, a comment, goes too).
fn replace_line(text: &str, prefix: &str, with: &str) -> String {
    let mut found = false;
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with(prefix) {
                found = true;
                with.to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    assert!(found, "{prefix}");
    out.join("\n")
}

/// The portfolio heat cap: the sample pipeline's entries (held to 4000 and to 20% of equity a cluster) each risk
/// a little over 0.1% of equity to their stops, so a 0.1% cap lets none through, 0.4% some, and no cap all
/// 29 round trips; the skipped entries are counted by reason.
#[test]
fn the_portfolio_heat_cap_bounds_what_every_stop_hit_would_lose() {
    let dir = tempfile::tempdir().unwrap();
    let text = read(Path::new("pipelines/influencer_momentum.toml"));
    let run = |cap: &str| {
        let pipeline = dir.path().join(format!("heat-{cap}.toml"));
        std::fs::write(
            &pipeline,
            text.replacen("[risk]", &format!("[risk]\nmax_heat = {cap}"), 1),
        )
        .unwrap();
        let out = dir.path().join(format!("out-{cap}"));
        run_ok(&[
            "backtest",
            "--quiet",
            "--pipeline",
            pipeline.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        let trades = read(&out.join("trades.csv")).lines().count() - 1;
        (trades, read(&out.join("report.html")))
    };
    let (none, report) = run("0.001");
    assert_eq!(none, 0, "no entry fits a 0.1% cap");
    assert!(
        report.contains("portfolio_heat"),
        "skips are counted by reason"
    );
    let (some, _) = run("0.004");
    let (free, _) = run("1");
    assert!(some > 0 && some < free, "{some} vs {free}");
}

#[test]
fn logs_are_json_lines_when_asked_and_never_coloured_in_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bt");
    let run = |format: Option<&str>| {
        let mut c = bin();
        c.args(["backtest", "--quiet", "--out", out.to_str().unwrap()])
            .env("HYPEFLOW_LOG", "info");
        if let Some(f) = format {
            c.env("HYPEFLOW_LOG_FORMAT", f);
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let json = run(Some("json"));
    let lines: Vec<&str> = json.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "the start is logged at info");
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"));
        assert!(v["level"].is_string() && v["timestamp"].is_string(), "{l}");
    }
    let start: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(start["fields"]["command"], "backtest", "{}", lines[0]);
    let text = run(None);
    assert!(!text.is_empty() && !text.contains('\u{1b}'), "{text}");
    let o = bin()
        .args(["backtest", "--quiet", "--out", out.to_str().unwrap()])
        .env("HYPEFLOW_LOG_FORMAT", "yaml")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("use json or text"));
}

#[test]
fn sentiment_score_jsonl_scores_every_post_of_a_file_in_order() {
    let posts = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample/tweets.jsonl"),
    )
    .unwrap();
    let mut child = crate::common::bin()
        .args(["sentiment", "score", "--jsonl"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feed = posts.clone();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(feed.as_bytes()).unwrap();
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success());
    let scored: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<serde_json::Value> = posts
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].clone())
        .collect();
    assert_eq!(
        scored.iter().map(|s| s["id"].clone()).collect::<Vec<_>>(),
        ids
    );
    assert!(scored.iter().all(|s| s["score"]
        .as_f64()
        .is_some_and(|x| (-1.0..=1.0).contains(&x))));
    let n = ids.len();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!("scored {n} lines, refused 0")
    );
}

/// `universe.tokens = "*"` trades every token in the price data, exactly as the file that lists them;
/// `--tokens` picks some; commands other than the file backtest refuse `"*"`.
#[test]
fn every_token_in_the_data_or_the_ones_named_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let listed = read(Path::new("pipelines/sma_cross.toml"));
    let line = listed
        .lines()
        .find(|l| l.starts_with("tokens = ["))
        .unwrap();
    let all = dir.path().join("all.toml");
    std::fs::write(&all, listed.replace(line, "tokens = \"*\"")).unwrap();
    let run = |name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        backtest(&out, extra);
        read(&out.join("intents.jsonl"))
    };
    let want = run("listed", &["--pipeline", "pipelines/sma_cross.toml"]);
    assert!(want.lines().count() > 10);
    assert_eq!(
        run("all", &["--pipeline", all.to_str().unwrap()]),
        want,
        "\"*\" = the five sample tokens listed"
    );
    let two = run(
        "two",
        &["--pipeline", all.to_str().unwrap(), "--tokens", "AXL,bolt"],
    );
    let tokens: std::collections::BTreeSet<String> = two
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["token"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(tokens.into_iter().collect::<Vec<_>>(), ["AXL", "BOLT"]);
    // fixed stakes, room for five positions: the two decide as they do among the five (ids differ: the
    // universe enters the pipeline's fingerprint)
    let decisions = |text: &str, only: &[&str]| -> Vec<String> {
        text.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| only.contains(&v["token"].as_str().unwrap()))
            .map(|v| {
                format!(
                    "{} {} {} {}",
                    v["token"], v["side"], v["decision_time"], v["notional"]
                )
            })
            .collect()
    };
    assert_eq!(
        decisions(&two, &["AXL", "BOLT"]),
        decisions(&want, &["AXL", "BOLT"])
    );
    let o = bin()
        .args([
            "replay",
            "--brokers",
            "127.0.0.1:1",
            "--pipeline",
            all.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("works for a file backtest only"),
        "{err}"
    );
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, listed.replace(line, "tokens = \"all\"")).unwrap();
    let o = bin()
        .args(["backtest", "--pipeline", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("a list of symbols or \"*\""));
}

/// Without a cluster cap no correlation is computed (the speed-up of issue 15): the decisions are those of a
/// run that computes the clusters under a cap that never binds.
#[test]
fn without_a_cluster_cap_no_correlation_runs_and_nothing_else_changes() {
    let dir = tempfile::tempdir().unwrap();
    let text = read(Path::new("pipelines/sma_cross.toml"));
    let off = "max_cluster_fraction = 1  # no cluster cap (Freqtrade has none)";
    assert!(text.contains(off));
    let capped = dir.path().join("capped.toml");
    std::fs::write(&capped, text.replace(off, "max_cluster_fraction = 0.999")).unwrap();
    let run = |name: &str, pipeline: &str| {
        let out = dir.path().join(name);
        let o = backtest(&out, &["--pipeline", pipeline]);
        let decisions: Vec<String> = read(&out.join("intents.jsonl"))
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                format!(
                    "{} {} {} {} {}",
                    v["token"], v["side"], v["decision_time"], v["notional"], v["reason"]
                )
            })
            .collect();
        (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            decisions,
            read(&out.join("trades.csv")),
        )
    };
    let (plain_out, plain, plain_trades) = run("off", "pipelines/sma_cross.toml");
    let (capped_out, with_clusters, capped_trades) = run("capped", capped.to_str().unwrap());
    assert!(plain.len() > 10);
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(sorted(plain), sorted(with_clusters));
    assert_eq!(plain_trades, capped_trades);
    assert!(
        plain_out.contains("(not computed: no cluster cap)"),
        "{plain_out}"
    );
    assert!(!capped_out.contains("not computed"), "{capped_out}");
}

/// `lookahead-check` on the shipped pipelines: every decision before each cut is the one the full run made.
#[test]
fn the_shipped_pipelines_decide_nothing_from_later_data() {
    for pipeline in [
        "pipelines/sma_cross.toml",
        "pipelines/influencer_momentum.toml",
    ] {
        let o = run_ok(&["lookahead-check", "--pipeline", pipeline, "--cuts", "3"]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(out.matches("all unchanged").count(), 3, "{pipeline}: {out}");
        assert!(
            out.contains("no decision changed when later data was removed (3 cuts)"),
            "{out}"
        );
        let compared: Vec<u64> = out
            .lines()
            .filter_map(|l| l.split(": ").nth(1)?.split(' ').next()?.parse().ok())
            .collect();
        assert!(
            compared.len() == 3 && compared.windows(2).all(|w| w[0] <= w[1]) && compared[2] > 5,
            "{out}"
        );
    }
    let o = bin()
        .args(["lookahead-check", "--cuts", "0"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("--cuts takes 1 to 100"));
}

/// The sample's posts, as (author, followers, text, created_at in ms).
fn sample_posts() -> Vec<(String, u64, String, i64)> {
    read(Path::new("data/sample/tweets.jsonl"))
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let t = v["created_at"].as_str().unwrap();
            (
                format!("@{}", v["author_handle"].as_str().unwrap()),
                v["followers"].as_u64().unwrap(),
                v["text"].as_str().unwrap().to_lowercase(),
                hypeflow::model::time::parse_time(t).unwrap(),
            )
        })
        .collect()
}

#[test]
fn the_report_credits_each_entry_to_the_accounts_of_its_window_and_sets_buy_and_hold_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_ok(&["backtest", "--out", dir.path().to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // recomputed here from the pipeline's rules: a window ending at a decision holds the posts of the hour
    // before it, from accounts of at least 10,000 followers, naming the token (its symbol, alias or address)
    let names = |tok: &str| match tok {
        "BOLT" => vec!["bolt", "boltchain"],
        "PEPX" => vec!["pepx", "0x7a3f5c1e9b2d4a6c8e0f1a3b5c7d9e1f2a4b6c8d"],
        t => vec![t.to_lowercase().leak() as &str],
    };
    let posts = sample_posts();
    let intents: Vec<serde_json::Value> = read(&dir.path().join("intents.jsonl"))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let fills: Vec<serde_json::Value> = read(&dir.path().join("fills.jsonl"))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let trades = read(&dir.path().join("trades.csv"));
    let mut want: std::collections::BTreeMap<String, (usize, usize, usize)> = Default::default();
    for i in intents.iter().filter(|i| i["side"] == "buy") {
        assert!(i["reason"].as_str().unwrap().starts_with("sentiment"));
        let end = hypeflow::model::time::parse_time(i["decision_time"].as_str().unwrap()).unwrap();
        let tok = i["token"].as_str().unwrap();
        let mut authors: Vec<&String> = posts
            .iter()
            .filter(|p| p.1 >= 10_000 && p.3 >= end - 3_600_000 && p.3 < end)
            .filter(|p| names(tok).iter().any(|n| p.2.contains(n)))
            .map(|p| &p.0)
            .collect();
        authors.sort();
        authors.dedup();
        assert!(!authors.is_empty(), "an entry without posts: {i}");
        // its round trip, if it opened one: the trade of that token entered at the buy's fill
        let fill = fills
            .iter()
            .find(|f| f["intent_id"] == i["id"] && f["status"] == "filled");
        let trade = fill.and_then(|f| {
            let at = f["fill_time"].as_str().unwrap();
            trades
                .lines()
                .find(|l| l.starts_with(&format!("{tok},long,{at},")))
        });
        for a in authors {
            let e = want.entry(a.clone()).or_default();
            e.0 += 1;
            if let Some(t) = trade {
                e.1 += 1;
                e.2 += usize::from(t.split(',').nth(8).unwrap().parse::<f64>().unwrap() > 0.0);
            }
        }
    }
    let csv = read(&dir.path().join("attribution.csv"));
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("account,entries,trades,wins,hit_rate,pnl,tokens")
    );
    let got: std::collections::BTreeMap<String, (usize, usize, usize)> = lines
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            let n = |k: usize| c[k].parse::<usize>().unwrap();
            (c[0].to_string(), (n(1), n(2), n(3)))
        })
        .collect();
    assert!(want.len() >= 5, "{want:?}");
    assert_eq!(got, want);
    let html = read(&dir.path().join("report.html"));
    for part in [
        "<h2>Influencer attribution</h2>",
        "<h2>Per token</h2>",
        "buy and hold (equal weight)",
    ] {
        assert!(html.contains(part), "the report lacks {part}");
    }

    // buy and hold: each token bought at its first price, held to its last, in equal parts
    // token -> (first tick, last tick), each as (time, price)
    type Tick = (i64, f64);
    let mut span: std::collections::BTreeMap<String, (Tick, Tick)> = Default::default();
    for l in read(Path::new("data/sample/ticks.jsonl")).lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let t = hypeflow::model::time::parse_time(v["event_time"].as_str().unwrap()).unwrap();
        let p: f64 = v["price"].as_str().unwrap().parse().unwrap();
        let e = span
            .entry(v["token"].as_str().unwrap().to_string())
            .or_insert(((t, p), (t, p)));
        if t < e.0 .0 {
            e.0 = (t, p);
        }
        if t >= e.1 .0 {
            e.1 = (t, p);
        }
    }
    let ret = span.values().map(|(a, b)| b.1 / a.1).sum::<f64>() / span.len() as f64 - 1.0;
    let line = stdout
        .lines()
        .find(|l| l.starts_with("buy and hold"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        line.contains(&format!("total return {ret:.4} ")) && line.contains("over the 5 tokens"),
        "{line} vs {ret:.4}"
    );
}
