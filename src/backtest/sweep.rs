//! `hypeflow sweep`: one pipeline over a grid of its keys (every combination, or seeded random draws), the
//! inputs read once, each combination run as the `backtest` of a file with those values would run it, and
//! the runs ranked by a metric.

use super::inputs::{self, Loaded, Sources};
use super::{finish, run_loaded, BacktestError, BacktestResult};
use crate::config::PipelineConfig;
use crate::risk::metrics::Metrics;
use rand::seq::index::sample;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A sweep has at most this many runs (the grid's product, or `--random N`).
pub const MAX_RUNS: usize = 10_000;

/// `KEY=V1,V2,...`: a dotted pipeline key and the values it takes (TOML values: `0.3`, `true`, `"1h"`,
/// bare words read as strings).
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub key: String,
    pub values: Vec<toml::Value>,
}

impl std::str::FromStr for Axis {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (key, list) = s.split_once('=').ok_or_else(|| {
            format!("--grid {s:?}: expected KEY=V1,V2,... (e.g. signal.entry_score=0.2,0.3)")
        })?;
        let key = key.trim();
        let parts: Vec<&str> = key.split('.').collect();
        if parts.len() != 2 || parts.iter().any(|p| p.is_empty()) {
            return Err(format!(
                "--grid {s:?}: the key must be TABLE.KEY (e.g. sizing.stop_atr_mult)"
            ));
        }
        if matches!(parts[0], "universe" | "bars" | "pipeline") {
            return Err(format!(
                "--grid {key}: [{}] decides how the inputs are read or named; run one sweep per value instead",
                parts[0]
            ));
        }
        let values: Vec<toml::Value> = list
            .split(',')
            .map(|v| value(v.trim()))
            .collect::<Result<_, _>>()?;
        if values.is_empty() || values.len() > 1000 {
            return Err(format!("--grid {key}: 1 to 1000 values"));
        }
        Ok(Axis {
            key: key.to_string(),
            values,
        })
    }
}

fn value(text: &str) -> Result<toml::Value, String> {
    if text.is_empty() {
        return Err("--grid: an empty value".into());
    }
    match toml::from_str::<toml::Table>(&format!("v = {text}")) {
        Ok(mut t) => Ok(t.remove("v").unwrap_or(toml::Value::String(text.into()))),
        Err(_) => Ok(toml::Value::String(text.to_string())),
    }
}

/// One run's values, in axis order.
pub type Combination = Vec<(String, toml::Value)>;

/// Every combination in axis order (the last axis fastest), or `draws` of them chosen without repetition by
/// a generator seeded with `seed`, in the grid's order.
pub fn combinations(
    axes: &[Axis],
    random: Option<(usize, u64)>,
) -> Result<Vec<Combination>, String> {
    let total = axes
        .iter()
        .try_fold(1usize, |n, a| n.checked_mul(a.values.len()));
    let total = total
        .filter(|n| *n > 0)
        .ok_or("the grid is empty or too large")?;
    let picks: Vec<usize> = match random {
        None if total > MAX_RUNS => {
            return Err(format!(
                "the grid has {total} combinations; at most {MAX_RUNS} (or use --random N)"
            ))
        }
        None => (0..total).collect(),
        Some((n, _)) if n == 0 || n > MAX_RUNS => {
            return Err(format!("--random takes 1 to {MAX_RUNS}"))
        }
        Some((n, seed)) => {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut v = sample(&mut rng, total, n.min(total)).into_vec();
            v.sort_unstable();
            v
        }
    };
    Ok(picks
        .into_iter()
        .map(|mut i| {
            let mut combo: Combination = Vec::with_capacity(axes.len());
            for a in axes.iter().rev() {
                combo.push((a.key.clone(), a.values[i % a.values.len()].clone()));
                i /= a.values.len();
            }
            combo.reverse();
            combo
        })
        .collect())
}

/// The pipeline file's text with the combination's values set (a key the file lacks is added to its table).
pub fn apply(text: &str, combo: &Combination) -> Result<String, String> {
    let mut doc: toml::Table =
        toml::from_str(text).map_err(|e| format!("the pipeline file: {e}"))?;
    for (key, v) in combo {
        let (table, name) = key.split_once('.').unwrap_or((key, ""));
        let t = doc
            .entry(table)
            .or_insert_with(|| toml::Value::Table(Default::default()));
        let toml::Value::Table(t) = t else {
            return Err(format!("{table} is not a table in the pipeline file"));
        };
        t.insert(name.to_string(), v.clone());
    }
    toml::to_string(&doc).map_err(|e| e.to_string())
}

pub struct SweepRequest {
    pub pipeline_text: String,
    pub pipeline_path: String,
    pub axes: Vec<Axis>,
    pub random: Option<(usize, u64)>,
    pub prices: PathBuf,
    pub tweets: Option<PathBuf>,
    pub scored: bool,
    pub bar_interval: Option<i64>,
    /// Only the history in this span (all of it by default).
    pub span: inputs::Span,
    pub jobs: usize,
    /// Applied to every combination's pipeline before it runs (`--tokens`, `"*"` resolved).
    pub tokens: Option<Vec<String>>,
}

/// One run of a sweep.
pub struct SweepRun {
    pub combination: Combination,
    pub result: BacktestResult,
}

/// A combination, its pipeline file's text and the pipeline it parses to.
pub(super) type Planned = (Combination, String, PipelineConfig);

/// Every combination's pipeline, checked up front so a bad value fails the sweep before anything runs.
pub(super) fn pipelines(req: &SweepRequest) -> Result<Vec<Planned>, BacktestError> {
    let combos = combinations(&req.axes, req.random).map_err(BacktestError::Option)?;
    combos.into_iter().map(|c| planned(req, c)).collect()
}

/// One combination's pipeline: the file's text with its values, parsed and checked.
pub(super) fn planned(req: &SweepRequest, combo: Combination) -> Result<Planned, BacktestError> {
    let bad = |e: String| BacktestError::Option(e);
    let text = apply(&req.pipeline_text, &combo).map_err(bad)?;
    let describe = combo
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    let origin = format!("{} with {describe}", req.pipeline_path);
    let mut cfg = PipelineConfig::parse(&text, &origin).map_err(|e| bad(e.to_string()))?;
    if let Some(t) = &req.tokens {
        cfg = cfg
            .with_tokens(t.clone(), &origin)
            .map_err(|e| bad(e.to_string()))?;
    }
    Ok((combo, text, cfg))
}

/// Runs the sweep: inputs parsed once, `jobs` runs at a time, results in combination order.
pub fn run_sweep(req: &SweepRequest) -> Result<Vec<SweepRun>, BacktestError> {
    let runs = pipelines(req)?;
    let (table, loaded) = load_once(req, &runs)?;
    run_on(&runs, req, &table, &loaded)
}

/// The inputs every run shares, read and parsed once (within the request's span).
pub(super) fn load_once(
    req: &SweepRequest,
    runs: &[Planned],
) -> Result<(Arc<crate::model::TokenTable>, Loaded), BacktestError> {
    let first = &runs
        .first()
        .ok_or_else(|| BacktestError::Option("no combination".into()))?
        .2;
    let table = Arc::new(first.universe.token_table());
    let src = Sources {
        tweets: req.tweets.as_deref(),
        scored: req.scored,
        prices: &req.prices,
        bar_interval: req.bar_interval,
        tick_bar_interval: first.bar_interval_ms(),
    };
    let loaded: Loaded = inputs::load(&src, &table)?.restricted_to(req.span);
    Ok((table, loaded))
}

/// Every planned run over `loaded`, `jobs` at a time, in plan order.
pub(super) fn run_on(
    runs: &[Planned],
    req: &SweepRequest,
    table: &Arc<crate::model::TokenTable>,
    loaded: &Loaded,
) -> Result<Vec<SweepRun>, BacktestError> {
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<Option<Result<BacktestResult, BacktestError>>>> =
        Mutex::new((0..runs.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..req.jobs.clamp(1, 64) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((_, text, cfg)) = runs.get(i) else {
                    break;
                };
                let r = one_run(cfg.clone(), text.clone(), req, table, loaded);
                if let Ok(mut d) = done.lock() {
                    d[i] = Some(r);
                }
            });
        }
    });
    let done = done
        .into_inner()
        .map_err(|_| BacktestError::Option("a sweep run panicked".into()))?;
    runs.iter()
        .zip(done)
        .map(|((combination, _, _), r)| {
            let combination = combination.clone();
            let result =
                r.ok_or_else(|| BacktestError::Option("a sweep run did not finish".into()))??;
            Ok(SweepRun {
                combination,
                result,
            })
        })
        .collect()
}

fn one_run(
    mut cfg: PipelineConfig,
    text: String,
    req: &SweepRequest,
    table: &Arc<crate::model::TokenTable>,
    loaded: &Loaded,
) -> Result<BacktestResult, BacktestError> {
    let started = std::time::Instant::now();
    cfg.follow_bar_interval(loaded.bar_interval);
    let cfg = Arc::new(cfg);
    let out = run_loaded(cfg.clone(), table.clone(), loaded.clone(), 1, false)?;
    let inputs = vec![
        ("pipeline file".to_string(), req.pipeline_path.clone()),
        ("prices".into(), req.prices.display().to_string()),
    ];
    finish(
        cfg,
        text,
        out,
        loaded.dead.clone(),
        inputs,
        loaded.bar_interval,
        1,
        started,
    )
}

/// The metrics a sweep ranks and tabulates, by name; `max_drawdown` ranks lowest first, the rest highest.
pub const METRICS: [&str; 12] = [
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "win_rate",
    "profit_factor",
    "payoff_ratio",
    "exposure",
    "turnover",
    "trades",
];

pub fn metric(m: &Metrics, name: &str) -> Option<f64> {
    match name {
        "total_return" => m.total_return,
        "cagr" => m.cagr,
        "sharpe" => m.sharpe,
        "sortino" => m.sortino,
        "calmar" => m.calmar,
        "max_drawdown" => m.max_drawdown,
        "win_rate" => m.win_rate,
        "profit_factor" => m.profit_factor,
        "payoff_ratio" => m.payoff_ratio,
        "exposure" => m.exposure,
        "turnover" => m.turnover,
        "trades" => Some(m.trades as f64),
        _ => None,
    }
    .filter(|x| x.is_finite())
}

/// Run indices best first by `by`; runs without the metric last, ties in combination order.
pub fn ranking(runs: &[SweepRun], by: &str) -> Vec<usize> {
    let lower_better = by == "max_drawdown";
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (
            metric(&runs[a].result.metrics, by),
            metric(&runs[b].result.metrics, by),
        );
        match (x, y) {
            (Some(x), Some(y)) if lower_better => x.total_cmp(&y),
            (Some(x), Some(y)) => y.total_cmp(&x),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        }
        .then(a.cmp(&b))
    });
    order
}

/// `results.csv`: one row per run, best first: rank, run (combination order), each key, every metric, and
/// the final equity.
pub fn results_csv(runs: &[SweepRun], axes: &[Axis], order: &[usize]) -> String {
    let mut out = String::from("rank,run");
    for a in axes {
        out.push(',');
        out.push_str(&a.key);
    }
    for m in METRICS {
        out.push(',');
        out.push_str(m);
    }
    out.push_str(",final_equity\n");
    for (rank, &i) in order.iter().enumerate() {
        let r = &runs[i];
        out.push_str(&format!("{},{}", rank + 1, i + 1));
        for (_, v) in &r.combination {
            out.push(',');
            out.push_str(&v.to_string().replace(',', ";").replace('"', ""));
        }
        for m in METRICS {
            out.push(',');
            if let Some(x) = metric(&r.result.metrics, m) {
                out.push_str(&x.to_string());
            }
        }
        out.push(',');
        if let Some(e) = r.result.metrics.final_equity {
            out.push_str(&e.normalize().to_string());
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axes(specs: &[&str]) -> Vec<Axis> {
        specs.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn a_grid_is_every_combination_last_axis_fastest() {
        let a = axes(&["signal.fast=5,10", "sizing.stop_loss=0.05,0.1,0.2"]);
        let c = combinations(&a, None).unwrap();
        assert_eq!(c.len(), 6);
        let show = |c: &Combination| {
            c.iter()
                .map(|(_, v)| v.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(show(&c[0]), "5 0.05");
        assert_eq!(show(&c[2]), "5 0.2");
        assert_eq!(show(&c[5]), "10 0.2");
        // random draws: seeded, without repetition, a subset of the grid
        let r1 = combinations(&a, Some((4, 7))).unwrap();
        assert_eq!(r1, combinations(&a, Some((4, 7))).unwrap());
        assert_eq!(r1.len(), 4);
        assert!(r1.iter().all(|x| c.contains(x)));
        assert_eq!(
            combinations(&a, Some((100, 7))).unwrap().len(),
            6,
            "no more draws than combinations"
        );
    }

    #[test]
    fn grid_values_are_toml_and_bad_specs_say_why() {
        let a: Axis = "signal.time_stop=6h,\"12h\",24h".parse().unwrap();
        assert!(a.values.iter().all(|v| v.is_str()));
        let b: Axis = "fills.refuse_drift=true,false".parse().unwrap();
        assert_eq!(
            b.values,
            [toml::Value::Boolean(true), toml::Value::Boolean(false)]
        );
        for (spec, says) in [
            ("signal.fast", "expected KEY=V1,V2"),
            ("fast=3", "TABLE.KEY"),
            ("universe.tokens=A", "one sweep per value"),
            ("bars.interval=1h", "one sweep per value"),
            ("signal.fast=1,,2", "empty value"),
        ] {
            let e = spec.parse::<Axis>().unwrap_err();
            assert!(e.contains(says), "{spec}: {e}");
        }
        let thirty = (1..=30)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let big: Vec<Axis> = ["signal.fast", "signal.slow", "sizing.stake"]
            .iter()
            .map(|k| format!("{k}={thirty}").parse().unwrap())
            .collect();
        assert!(combinations(&big, None).unwrap_err().contains("--random"));
    }

    #[test]
    fn values_are_set_in_their_table() {
        let text = "[pipeline]\nid = \"x\"\n[signal]\nkind = \"sma_cross\"\nfast = 3\n";
        let combo = vec![
            ("signal.fast".to_string(), toml::Value::Integer(5)),
            ("sizing.stop_loss".to_string(), toml::Value::Float(0.05)),
        ];
        let t: toml::Table = toml::from_str(&apply(text, &combo).unwrap()).unwrap();
        assert_eq!(t["signal"]["fast"].as_integer(), Some(5));
        assert_eq!(t["signal"]["kind"].as_str(), Some("sma_cross"));
        assert_eq!(t["sizing"]["stop_loss"].as_float(), Some(0.05));
        assert_eq!(t["pipeline"]["id"].as_str(), Some("x"));
    }
}
