//! Portfolio management through the whole backtest: standing caps trim a position that ran up, the trade
//! keeps its legs, the metrics and the report show the concentration; without a policy the shipped
//! backtests write what earlier versions wrote, byte for byte.

use crate::common::{read_jsonl, run_ok};
use hypeflow::model::Fill;
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use std::path::Path;

fn digest(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The outputs of the shipped backtests as the version before portfolio management wrote them (sha256).
/// Updated deliberately twice since: the protections' kinds were renamed (`absolute` -> `price_distance`,
/// `fraction` -> `fraction_of_fill`; intents.jsonl only), and sma_cross's signal horizons are now derived from
/// its 15-minute bars (15m, 4h, 7d instead of 5m, 1h, 24h), which changes its fingerprint and so its intent
/// ids (intents.jsonl, fills.jsonl); every decision, trade and equity point is as before.
const BEFORE: &[(&str, &str, &str)] = &[
    (
        "pipelines/influencer_momentum.toml",
        "trades.csv",
        "c71529ce872bb13bbaad6ec0ba8228588162cb5620fc1e5e658b630c6cbf342e",
    ),
    (
        "pipelines/influencer_momentum.toml",
        "fills.jsonl",
        "a3abc62eed5e6421bb661b4aa10f5c3bbb14c95ed43590450937008c23053d72",
    ),
    (
        "pipelines/influencer_momentum.toml",
        "intents.jsonl",
        "f41b0cf9b3387b58c65628ef8b7bcc1977fe976e2eea1fca0f8714a0189fe320",
    ),
    (
        "pipelines/influencer_momentum.toml",
        "equity.csv",
        "7368b408f8e23c0d5d62a2865de7b34d08f97daa4b591f58fc3503ea4a4df1b6",
    ),
    (
        "pipelines/sma_cross.toml",
        "trades.csv",
        "50bf436741bd412377af03bdf15d1001377df37b254edda6012f27734bb24f7b",
    ),
    (
        "pipelines/sma_cross.toml",
        "intents.jsonl",
        "b590ed529fcb252470442d53b9ae6d68ea232c3647628ac99ab12e5fcd5b4f6f",
    ),
    (
        "pipelines/sma_cross.toml",
        "fills.jsonl",
        "5a44fa6d7d62241f48d866fdf9ab34a1ee2ada3ff380c734a5f409169c34efa6",
    ),
    (
        "pipelines/sma_cross.toml",
        "equity.csv",
        "4c84b7f934aaff41f6fd7dc1b64fb52220d08d8273cc6468c70202681b64a7d5",
    ),
];

#[test]
fn without_a_rebalancing_policy_the_shipped_backtests_are_byte_identical_to_earlier_versions() {
    let dir = tempfile::tempdir().unwrap();
    for pipeline in [
        "pipelines/influencer_momentum.toml",
        "pipelines/sma_cross.toml",
    ] {
        let out = dir.path().join(pipeline.replace('/', "_"));
        let out_s = out.display().to_string();
        run_ok(&[
            "backtest",
            "--quiet",
            "--pipeline",
            pipeline,
            "--out",
            &out_s,
        ]);
        assert!(
            !out.join("trade_legs.csv").exists(),
            "no trade is sold in parts"
        );
        for (p, file, want) in BEFORE.iter().filter(|b| b.0 == pipeline) {
            assert_eq!(&digest(&out.join(file)), want, "{p} {file}");
        }
    }
}

/// One token: flat, a small rise that crosses SMA(2) over SMA(5), then a jump to four times the price.
fn run_up_bars(dir: &Path) -> std::path::PathBuf {
    let mut lines = vec!["token,timestamp,open,high,low,close,volume".to_string()];
    let prices = std::iter::repeat_n("1", 20)
        .chain(std::iter::repeat_n("1.01", 10))
        .chain(std::iter::repeat_n("4", 20));
    for (i, p) in prices.enumerate() {
        let t = 1_704_067_200_000i64 + i as i64 * 900_000;
        lines.push(format!("AXL,{t},{p},{p},{p},{p},1000"));
    }
    let path = dir.join("bars.csv");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

#[test]
fn standing_caps_trim_a_position_that_ran_up_and_the_outputs_show_it() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/sma_cross.toml"),
    )
    .unwrap()
    .replace("fast = 10\nslow = 30", "fast = 2\nslow = 5")
    .replace(
        "min_notional = 1",
        "min_notional = 1\nmax_position_fraction = 0.25",
    ) + "\n[rebalance]\npolicy = \"caps\"\n";
    let pipeline = dir.path().join("caps.toml");
    std::fs::write(&pipeline, text).unwrap();
    let bars = run_up_bars(dir.path());
    let out = dir.path().join("out");
    run_ok(&[
        "backtest",
        "--quiet",
        "--pipeline",
        &pipeline.display().to_string(),
        "--prices",
        &bars.display().to_string(),
        "--out",
        &out.display().to_string(),
    ]);
    let fills: Vec<Fill> = read_jsonl(&out.join("fills.jsonl"));
    let reasons: Vec<&str> = fills.iter().map(|f| f.reason.as_str()).collect();
    assert_eq!(
        reasons,
        ["entry", "rebalance:position", "force_exit"],
        "{fills:?}"
    );
    // the stake of 100 of 1,000 grew to about 396 of 1,296 (31%): trimmed back to a quarter
    let (bought, trimmed) = (fills[0].quantity, fills[1].quantity);
    let share = (bought - trimmed) * fills[1].price;
    let equity_then = Decimal::from(900) - fills[0].fee + bought * fills[1].price;
    let after = (share / equity_then).round_dp(3);
    assert_eq!(after, Decimal::new(25, 2), "{share} of {equity_then}");
    let legs = std::fs::read_to_string(out.join("trade_legs.csv")).unwrap();
    assert_eq!(legs.lines().count(), 3, "{legs}");
    let trades = std::fs::read_to_string(out.join("trades.csv")).unwrap();
    assert_eq!(trades.lines().count(), 2, "one round trip: {trades}");
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    let peak = metrics["max_position_share"].as_f64().unwrap();
    assert!(
        (0.30..0.31).contains(&peak),
        "the share before the trim: {peak}"
    );
    assert!(metrics["turnover"].as_f64().unwrap() > 0.2, "{metrics}");
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(report.contains("Exposure per cluster") && report.contains("Largest position"));
    assert!(
        report.contains("2 legs: rebalance:position"),
        "the trade list names the legs"
    );
}

/// Trims are decisions like any other: the same ids and fills with one worker or two.
#[test]
fn rebalancing_decides_the_same_with_any_worker_count() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/influencer_momentum.toml"),
    )
    .unwrap()
    .replace(
        "min_notional = 25",
        "min_notional = 25\nmax_position_fraction = 0.1",
    ) + "\n[rebalance]\npolicy = \"volatility_target\"\nevery_bars = 6\n";
    let pipeline = dir.path().join("rebalanced.toml");
    std::fs::write(&pipeline, text).unwrap();
    let mut fills = Vec::new();
    for w in ["1", "2"] {
        let out = dir.path().join(format!("w{w}"));
        run_ok(&[
            "backtest",
            "--quiet",
            "--pipeline",
            &pipeline.display().to_string(),
            "-w",
            w,
            "--out",
            &out.display().to_string(),
        ]);
        fills.push(std::fs::read_to_string(out.join("fills.jsonl")).unwrap());
    }
    assert!(
        fills[0].contains("\"rebalance:"),
        "the run rebalances at all"
    );
    assert_eq!(fills[0], fills[1]);
}
