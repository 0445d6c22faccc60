//! `hypeflow sweep`: the CLI edge of `backtest::sweep` (arguments, the output folder, the printed ranking).

use anyhow::{bail, Result};
use clap::Args;
use hypeflow::backtest::{self, sweep};
use std::path::PathBuf;

#[derive(Args)]
pub struct SweepArgs {
    #[command(flatten)]
    inputs: super::file_inputs::FileInputs,
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
    let r = a.inputs.resolve()?;
    let req = sweep::SweepRequest {
        // the resolved list (`--tokens`, `"*"`) goes into every combination's pipeline
        tokens: Some(r.cfg.universe.tokens.clone()),
        pipeline_text: r.text,
        pipeline_path: r.pipeline_path.display().to_string(),
        axes: axes.clone(),
        random: a.random.map(|n| (n, a.seed)),
        prices: r.prices,
        tweets: r.tweets,
        scored: r.scored,
        bar_interval: r.bar_interval,
        jobs: a.jobs,
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
