//! Hostile input, generated: every decoder (ticks, bar CSV, freqtrade JSON, posts, scored mentions, X stream
//! lines and search pages, Kafka envelopes, pipeline TOML) is fed values that parse but are
//! extreme (the largest and smallest decimals, NaN, infinities, i64/u64 edges, far-future times, empty and
//! wrong-typed fields) and random bytes. Properties: nothing panics, and every record of a file is either
//! accepted or dead-lettered, none lost. Budgets are fixed (cases per property) so the run time is too.

use hypeflow::backtest::inputs::{load, load_scored, load_ticks, load_tweets, Sources};
use hypeflow::config::PipelineConfig;
use hypeflow::model::TokenTable;
use proptest::prelude::*;
use proptest::test_runner::Config;
use std::path::Path;

/// Values a careless or hostile file holds, in their JSON spelling.
const EXTREMES: &[&str] = &[
    "0",
    "-1",
    "1",
    "\"100.5\"",
    "\"0.0000000000000000000000000001\"",
    "\"79228162514264337593543950335\"",
    "\"-79228162514264337593543950335\"",
    "79228162514264337593543950336",
    "\"NaN\"",
    "\"inf\"",
    "1e400",
    "-1e-400",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "\"\"",
    "null",
    "true",
    "[]",
    "{}",
    "\"2024-01-01T00:00:00Z\"",
    "\"+275760-09-13T00:00:00Z\"",
    "\"9999-12-31T23:59:59.999Z\"",
    "\"1969-12-31T23:59:59Z\"",
    "1.5",
];

fn extreme() -> impl Strategy<Value = &'static str> {
    prop::sample::select(EXTREMES)
}

fn table() -> TokenTable {
    PipelineConfig::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/influencer_momentum.toml"),
    )
    .unwrap()
    .universe
    .token_table()
}

fn cases(n: u32) -> Config {
    Config {
        cases: n,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Non-empty lines of a generated file (what the loaders must account for).
fn records(lines: &[String]) -> usize {
    lines.iter().filter(|l| !l.trim().is_empty()).count()
}

fn write(dir: &Path, name: &str, lines: &[String]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, lines.join("\n")).unwrap();
    p
}

proptest! {
    #![proptest_config(cases(96))]

    #[test]
    fn ticks_with_extreme_fields_are_accepted_or_dead_lettered(
        rows in prop::collection::vec(
            (prop::sample::select(&["AXL", "BOLT", "DOGE", "", "axl"][..]), extreme(), extreme(), extreme()),
            1..24,
        ),
        junk in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut lines: Vec<String> = rows
            .iter()
            .map(|(t, p, v, e)| format!(r#"{{"token":"{t}","price":{p},"volume":{v},"event_time":{e}}}"#))
            .collect();
        lines.push(String::from_utf8_lossy(&junk).replace('\n', " "));
        let path = write(dir.path(), "t.jsonl", &lines);
        let mut dead = Vec::new();
        match load_ticks(&path, &table(), &mut dead) {
            Ok(ticks) => prop_assert_eq!(ticks.len() + dead.len(), records(&lines)),
            Err(e) => prop_assert!(e.to_string().contains("no valid records") || e.to_string().contains("empty"), "{e}"),
        }
    }

    #[test]
    fn bar_csv_rows_with_extreme_values_never_panic_and_none_is_lost(
        rows in prop::collection::vec(
            (extreme(), extreme(), extreme(), extreme(), extreme(), extreme()),
            1..16,
        ),
        quoted in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut lines = vec!["token,timestamp,open,high,low,close,volume".to_string()];
        for (i, (t, o, h, l, c, v)) in rows.iter().enumerate() {
            let time = if i % 2 == 0 { t.trim_matches('"').to_string() } else { (1_704_067_200_000i64 + i as i64 * 300_000).to_string() };
            let q = |s: &str| if quoted { format!("\"{}\"", s.trim_matches('"').replace('"', "\"\"")) } else { s.trim_matches('"').to_string() };
            lines.push(format!("AXL,{},{},{},{},{},{}", q(&time), q(o), q(h), q(l), q(c), q(v)));
        }
        let path = write(dir.path(), "b.csv", &lines);
        let src = Sources { tweets: None, scored: false, prices: &path, bar_interval: Some(300_000), tick_bar_interval: 300_000 };
        if let Ok(l) = load(&src, &table()) {
            prop_assert_eq!(l.bars + l.dead.len(), records(&lines) - 1);
        }
    }

    #[test]
    fn freqtrade_json_with_extreme_values_never_panics(
        rows in prop::collection::vec((extreme(), extreme(), extreme(), extreme(), extreme(), extreme()), 0..12),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let body: Vec<String> = rows
            .iter()
            .map(|(t, o, h, l, c, v)| format!("[{t},{o},{h},{l},{c},{v}]"))
            .collect();
        let path = dir.path().join("AXL_USDT-5m.json");
        std::fs::write(&path, format!("[{}]", body.join(","))).unwrap();
        let src = Sources { tweets: None, scored: false, prices: &path, bar_interval: Some(300_000), tick_bar_interval: 300_000 };
        if let Ok(l) = load(&src, &table()) {
            prop_assert_eq!(l.bars + l.dead.len(), rows.len());
        }
    }

    #[test]
    fn posts_and_scored_mentions_with_extreme_fields_are_accepted_or_dead_lettered(
        rows in prop::collection::vec((extreme(), extreme(), extreme(), extreme()), 1..16),
        text in ".{0,200}",
    ) {
        let dir = tempfile::tempdir().unwrap();
        let text = serde_json::to_string(&text).unwrap();
        let posts: Vec<String> = rows
            .iter()
            .enumerate()
            .map(|(i, (f, c, l, _))| format!(
                r#"{{"id":"{i}","author_id":"1","followers":{f},"text":{text},"created_at":{c},"engagement":{{"likes":{l}}}}}"#
            ))
            .collect();
        let path = write(dir.path(), "p.jsonl", &posts);
        let mut dead = Vec::new();
        if let Ok(p) = load_tweets(&path, &mut dead) {
            prop_assert_eq!(p.len() + dead.len(), posts.len());
        }
        let scored: Vec<String> = rows
            .iter()
            .enumerate()
            .map(|(i, (f, c, s, k))| format!(
                r#"{{"tweet_id":"{i}","token":"AXL","score":{s},"confidence":{k},"model":"m","created_at":{c},"author_id":"1","followers":{f}}}"#
            ))
            .collect();
        let path = write(dir.path(), "s.jsonl", &scored);
        let mut dead = Vec::new();
        if let Ok(m) = load_scored(&path, &mut dead) {
            prop_assert_eq!(m.len() + dead.len(), scored.len());
        }
    }

    #[test]
    fn x_stream_lines_search_pages_and_envelopes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..256),
        (a, b, c) in (extreme(), extreme(), extreme()),
    ) {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let structured = format!(
            r#"{{"data":{{"id":{a},"text":{b},"author_id":{c},"created_at":{b}}},"includes":{{"users":[{{"id":{c},"username":{a},"public_metrics":{{"followers_count":{a}}}}}]}}}}"#
        );
        for line in [&text, &structured] {
            let _ = hypeflow::ingest::x_stream::parse_line(line);
            let _ = hypeflow::ingest::x_stream::parse_search_page(line);
        }
        let envelope = format!(r#"{{"schema":"tick","v":1,"data":{{"token":"AXL","price":{a},"volume":{b},"event_time":{c}}}}}"#);
        for payload in [bytes.as_slice(), envelope.as_bytes()] {
            let _ = hypeflow::kafka::envelope::decode::<hypeflow::model::PriceTick>("tick", payload);
            let _ = hypeflow::kafka::envelope::decode::<hypeflow::model::Tweet>("tweet", payload);
            let _ = hypeflow::kafka::envelope::decode::<hypeflow::model::OrderIntent>("intent", payload);
            let _ = hypeflow::kafka::envelope::decode_tick_canonical(payload);
        }
    }
}

/// Keys of the pipeline file with the spelling of their section, and the TOML values tried on each.
const PIPELINE_KEYS: &[(&str, &str)] = &[
    ("bars", "interval"),
    ("sentiment", "window"),
    ("sentiment", "slide"),
    ("sentiment", "baseline_windows"),
    ("sentiment", "allowed_lateness"),
    ("sentiment", "engagement_weight"),
    ("sentiment", "min_followers"),
    ("signal", "momentum_bars"),
    ("signal", "entry_score"),
    ("signal", "time_stop"),
    ("sizing", "risk_fraction"),
    ("sizing", "stop_atr_mult"),
    ("sizing", "atr_period"),
    ("sizing", "ewma_lambda"),
    ("sizing", "stake"),
    ("risk", "max_open_positions"),
    ("risk", "min_notional"),
    ("risk", "drawdown_pause"),
    ("risk", "drawdown_lock"),
    ("correlation", "window_bars"),
    ("correlation", "threshold"),
    ("correlation", "min_observations"),
    ("fills", "fee_rate"),
    ("fills", "slippage_bps"),
    ("fills", "gas_quote"),
    ("fills", "default_pool_liquidity"),
    ("backtest", "initial_equity"),
    ("backtest", "risk_free_rate"),
];

const TOML_VALUES: &[&str] = &[
    "0",
    "-1",
    "nan",
    "inf",
    "-inf",
    "9223372036854775807",
    "-9223372036854775808",
    "\"79228162514264337593543950335\"",
    "\"0.0000000000000000000000000001\"",
    "\"9223372036854775807w\"",
    "\"10000w\"",
    "\"1ms\"",
    "\"0s\"",
    "\"\"",
    "\"-5m\"",
    "1e308",
    "[]",
];

proptest! {
    #![proptest_config(cases(128))]

    #[test]
    fn pipeline_files_with_extreme_values_parse_or_say_what_is_wrong(
        edits in prop::collection::vec((prop::sample::select(PIPELINE_KEYS), prop::sample::select(TOML_VALUES)), 1..4),
    ) {
        let base = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/influencer_momentum.toml"),
        ).unwrap();
        let mut text = base;
        for ((section, key), value) in &edits {
            // replace the key where the file sets it, else add it under its section
            let lines: Vec<String> = text.lines().map(String::from).collect();
            let mut in_section = false;
            let mut done = false;
            let mut out = Vec::new();
            for l in lines {
                let t = l.trim_start();
                if t.starts_with('[') {
                    if in_section && !done {
                        out.push(format!("{key} = {value}"));
                        done = true;
                    }
                    in_section = t.trim_end() == format!("[{section}]");
                }
                if in_section && !done && t.split('=').next().map(str::trim) == Some(*key) {
                    out.push(format!("{key} = {value}"));
                    done = true;
                    continue;
                }
                out.push(l);
            }
            if !done {
                out.push(if in_section { format!("{key} = {value}") } else { format!("[{section}]\n{key} = {value}") });
            }
            text = out.join("\n");
        }
        if let Err(e) = PipelineConfig::parse(&text, "generated") {
            prop_assert!(!e.to_string().is_empty());
        }
    }
}

/// A venue file as a user writes one (addresses are placeholders).
const VENUE: &str = r#"venue = "uniswap-v3"
chain_id = 1
confirmations = 2
deadline_s = 120
receipt_timeout_s = 120
max_replacements = 3
gas_budget_bps = 100
priority_fee_percentile = 50.0
fee_tiers = [500, 3000]
[contracts]
factory = "0x1F98431c8aD98523631AE4a59f267346ea31F984"
router = "0x68b3465833fb72A70ecDF485E0e4C7bD8665Fc45"
quoter = "0x61fFE014bA17989E743c5F6cB21bF9697530B21e"
weth = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
[quote]
symbol = "USDC"
address = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
[tokens]
PEPE = "0x6982508145454Ce325dDbE47a25d4ec3d2311933"
[limits]
max_notional_per_trade = "500"
max_notional_per_day = "5000"
max_daily_loss = "100"
max_intent_age_s = 60
min_native_balance = "0.05"
min_pool_liquidity = "100000"
max_token_tax_bps = "100"
"#;

/// Values only the executor's files meet: short and malformed addresses, negative and huge amounts.
const CONFIG_VALUES: &[&str] = &[
    "\"0x12\"",
    "\"-100\"",
    "\"1000000000000000000000\"",
    "\"0x6982508145454ce325ddbe47a25d4ec3d231193z\"",
];

/// Replaces the value of the `n`th `key = value` line of `text` with `value`.
fn with_value(text: &str, n: usize, value: &str) -> String {
    let keyed: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with('#') && l.contains(" = "))
        .map(|(i, _)| i)
        .collect();
    let target = keyed[n % keyed.len()];
    text.lines()
        .enumerate()
        .map(|(i, l)| match (i == target, l.split_once(" = ")) {
            (true, Some((k, _))) => format!("{k} = {value}"),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn shipped(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

proptest! {
    #![proptest_config(cases(160))]

    /// The executor's files: a venue, the capital ladder, the price feeds and a deployment, each with one
    /// key set to an extreme value. Each parses or says what is wrong; an accepted venue keeps its limits in
    /// range, whatever the value was.
    #[test]
    fn venue_ladder_feed_and_deployment_files_with_extreme_values_parse_or_say_why(
        n in 0usize..64,
        value in prop::sample::select([TOML_VALUES, CONFIG_VALUES].concat()),
    ) {
        use hypeflow::execution::onchain::config::VenueConfig;
        let venue = with_value(VENUE, n, value);
        match VenueConfig::parse(&venue, "venue") {
            Ok(v) => {
                let l = &v.limits;
                prop_assert!(l.max_notional_per_trade > rust_decimal::Decimal::ZERO, "{venue}");
                prop_assert!(l.max_daily_loss >= rust_decimal::Decimal::ZERO, "{venue}");
                prop_assert!((1..=64).contains(&v.confirmations), "{venue}");
            }
            Err(e) => prop_assert!(e.0.starts_with("venue: ") && e.0.len() > 8, "{e}"),
        }
        let ladder = with_value(&shipped("capital/ladder.toml"), n, value);
        if let Err(e) = hypeflow::execution::capital::CapitalConfig::parse(&ladder, "ladder") {
            prop_assert!(e.0.starts_with("ladder: "), "{e}");
        }
        let feed = with_value(&shipped("feeds/prices.toml"), n, value);
        if let Err(e) = hypeflow::ingest::price_feed::FeedConfig::parse(&feed, "feed") {
            prop_assert!(e.0.starts_with("feed: "), "{e}");
        }
        let up = with_value(&shipped("deploy/up.example.toml"), n, value);
        if let Err(e) = hypeflow::supervise::config::DeploymentConfig::parse(&up, "up") {
            prop_assert!(!e.to_string().is_empty());
        }
    }
}

/// Prices that swing across the whole accepted range (10^-12 to 10^12), volumes to 10^15.
const PRICES: &[&str] = &[
    "0.000000000001",
    "0.0000001",
    "1",
    "3.5",
    "1000",
    "1000000000",
    "1000000000000",
];

proptest! {
    #![proptest_config(cases(24))]

    #[test]
    fn a_backtest_over_prices_across_the_whole_range_never_panics(
        closes in prop::collection::vec(prop::sample::select(PRICES), 40..240),
        volume in prop::sample::select(&["0", "1", "1000000000000000"][..]),
        pipeline in prop::sample::select(&["sma_cross.toml", "influencer_momentum.toml"][..]),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut lines = vec!["token,timestamp,open,high,low,close,volume".to_string()];
        for (i, c) in closes.iter().enumerate() {
            let t = 1_704_067_200_000i64 + i as i64 * 300_000;
            lines.push(format!("AXL,{t},{c},{c},{c},{c},{volume}"));
        }
        let prices = write(dir.path(), "b.csv", &lines);
        let text = shipped(&format!("pipelines/{pipeline}"));
        // a worker's panic comes back as an error naming it: that is the failure looked for
        if let Err(e) = bars_backtest(&text, prices) {
            prop_assert!(!e.to_string().contains("panicked"), "{e}");
        }
    }
}

/// A one-worker backtest of `pipeline` (its text) over a bar file.
fn bars_backtest(
    pipeline: &str,
    prices: std::path::PathBuf,
) -> Result<hypeflow::backtest::BacktestResult, hypeflow::backtest::BacktestError> {
    let cfg = PipelineConfig::parse(pipeline, "generated").unwrap();
    hypeflow::backtest::run_backtest(hypeflow::backtest::BacktestRequest {
        cfg,
        pipeline_text: pipeline.to_string(),
        pipeline_path: "generated.toml".into(),
        tweets: None,
        scored: false,
        prices,
        bar_interval: None,
        span: Default::default(),
        workers: 1,
        progress: false,
    })
}

/// Bars of one token that swing from 10^-12 to 10^12 and back `cycles` times, each swing geometric over
/// `steps` bars, so a long position bought low and sold high multiplies its stake by up to 10^24.
fn swings(cycles: usize, steps: usize) -> Vec<String> {
    let mut lines = vec!["token,timestamp,open,high,low,close,volume".to_string()];
    let mut t = 1_704_067_200_000i64;
    let mut push = |e: i32| {
        let c = if e < 0 {
            rust_decimal::Decimal::new(1, e.unsigned_abs()).to_string()
        } else {
            format!("1{}", "0".repeat(e as usize))
        };
        lines.push(format!("AXL,{t},{c},{c},{c},{c},1000"));
        t += 300_000;
    };
    for _ in 0..cycles {
        for _ in 0..40 {
            push(-12);
        }
        for i in 0..=steps {
            push(-12 + (24 * i / steps) as i32);
        }
        for i in 0..=steps {
            push(12 - (24 * i / steps) as i32);
        }
    }
    lines
}

/// Equity that compounds past what a decimal holds (a position sized on equity, bought at 10^-12 and sold
/// near 10^12, again and again) ends the backtest with an error that says so, not a worker's panic.
#[test]
fn equity_compounding_past_the_decimal_range_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let prices = write(dir.path(), "swing.csv", &swings(4, 24));
    let text = shipped("pipelines/sma_cross.toml")
        .replace(
            "mode = \"fixed_stake\"",
            "mode = \"volatility\"\nrisk_fraction = 0.02",
        )
        .replace("initial_equity = 1000", "initial_equity = 1000000000000")
        .replace("fast = 10\nslow = 30", "fast = 2\nslow = 5");
    let msg = match bars_backtest(&text, prices) {
        Ok(r) => panic!(
            "equity beyond 10^28 cannot be reported, yet it ran: {:?}",
            r.equity.last()
        ),
        Err(e) => e.to_string(),
    };
    assert!(!msg.contains("panicked"), "{msg}");
    assert!(msg.contains("AXL") && msg.contains("beyond what"), "{msg}");
}
