//! `hypeflow sweep`: the CLI edge of `backtest::sweep` (arguments, the output folder, the printed ranking).

use super::{load_pipeline_any, locate, resolve_tokens};
use anyhow::{bail, Result};
use clap::Args;
use hypeflow::backtest::{self, sweep};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct SweepArgs {
    /// Pipeline file (TOML) whose keys the grid varies
    #[arg(long, default_value = "pipelines/influencer_momentum.toml")]
    pipeline: PathBuf,
    /// Posts as JSONL (default: the sample's posts for sentiment pipelines)
    #[arg(long)]
    tweets: Option<PathBuf>,
    /// Scored mentions JSONL instead of posts
    #[arg(long, conflicts_with = "tweets")]
    scored: Option<PathBuf>,
    /// Price history: ticks .jsonl, bars .csv, freqtrade .json, or a folder of them
    #[arg(long, default_value = "data/sample/ticks.jsonl")]
    prices: PathBuf,
    /// Bar interval of bar files; inferred when absent
    #[arg(long)]
    bar_interval: Option<String>,
    /// TABLE.KEY=V1,V2,... (repeatable): the values a pipeline key takes; every combination runs
    #[arg(long = "grid", required = true)]
    grid: Vec<String>,
    /// Run N combinations drawn at random (without repetition) instead of all of them
    #[arg(long)]
    random: Option<usize>,
    /// Seed of the --random draws
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Rank by this metric (max_drawdown lowest first, the others highest first)
    #[arg(long, default_value = "sharpe")]
    rank_by: String,
    /// Write the full outputs (report included) of this many best runs (0-20)
    #[arg(long, default_value_t = 3)]
    top: usize,
    /// Trade these tokens instead of the pipeline's list (`*`: every token in the price data)
    #[arg(long, value_delimiter = ',')]
    tokens: Option<Vec<String>>,
    /// Output folder: results.csv and best-1, best-2, ...
    #[arg(long, default_value = "out/sweep")]
    out: PathBuf,
    /// Runs at a time (each on one worker thread)
    #[arg(short = 'j', long = "jobs", default_value_t = 1)]
    jobs: usize,
}

pub fn sweep_cmd(a: SweepArgs) -> Result<()> {
    if !sweep::METRICS.contains(&a.rank_by.as_str()) {
        bail!(
            "--rank-by {}: one of {}",
            a.rank_by,
            sweep::METRICS.join(", ")
        );
    }
    if a.top > 20 || a.jobs == 0 || a.jobs > 64 {
        bail!(
            "--top takes 0 to 20 and -j 1 to 64 (got --top {}, -j {})",
            a.top,
            a.jobs
        );
    }
    let axes: Vec<sweep::Axis> = a
        .grid
        .iter()
        .map(|g| g.parse())
        .collect::<Result<_, String>>()
        .map_err(anyhow::Error::msg)?;
    let (cfg, text, pipeline_path) = load_pipeline_any(&a.pipeline)?;
    let prices = locate(&a.prices);
    let tokens = if a.tokens.is_some() || cfg.universe.is_all() {
        Some(
            resolve_tokens(cfg.clone(), a.tokens, &prices, &pipeline_path)?
                .universe
                .tokens,
        )
    } else {
        None
    };
    let tweets = match a.tweets.or(a.scored.clone()) {
        Some(t) => Some(locate(&t)),
        None if cfg.uses_sentiment() => Some(locate(Path::new("data/sample/tweets.jsonl"))),
        None => None,
    };
    let bar_interval = a
        .bar_interval
        .as_deref()
        .map(hypeflow::model::time::parse_duration_ms)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let req = sweep::SweepRequest {
        pipeline_text: text,
        pipeline_path: pipeline_path.display().to_string(),
        axes: axes.clone(),
        random: a.random.map(|n| (n, a.seed)),
        prices,
        tweets,
        scored: a.scored.is_some(),
        bar_interval,
        jobs: a.jobs,
        tokens,
    };
    let started = std::time::Instant::now();
    let runs = sweep::run_sweep(&req)?;
    let seconds = started.elapsed().as_secs_f64();
    let order = sweep::ranking(&runs, &a.rank_by);
    std::fs::create_dir_all(&a.out)?;
    std::fs::write(
        a.out.join("results.csv"),
        sweep::results_csv(&runs, &axes, &order),
    )?;
    for (rank, &i) in order.iter().take(a.top).enumerate() {
        backtest::write_outputs(&runs[i].result, &a.out.join(format!("best-{}", rank + 1)))?;
    }
    println!(
        "hypeflow sweep: {} runs in {seconds:.2} s ({} at a time), ranked by {}",
        runs.len(),
        a.jobs,
        a.rank_by
    );
    for (rank, &i) in order.iter().take(10).enumerate() {
        let r = &runs[i];
        let values: Vec<String> = r
            .combination
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let m =
            sweep::metric(&r.result.metrics, &a.rank_by).map_or("-".into(), |x| format!("{x:.4}"));
        println!(
            "{:>3}. {} = {m:<10} trades {:<5} {}",
            rank + 1,
            a.rank_by,
            r.result.metrics.trades,
            values.join(" ")
        );
    }
    println!(
        "results in {}: results.csv, best-1 .. best-{}",
        a.out.display(),
        a.top.min(runs.len())
    );
    Ok(())
}
