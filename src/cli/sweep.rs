//! `hypeflow sweep`: the CLI edge of `backtest::sweep` (arguments, the output folder, the printed ranking).

use anyhow::{bail, Result};
use clap::Args;
use hypeflow::backtest::{self, sweep, walk_forward};
use hypeflow::risk::deflated::Deflated;
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
    /// TRAIN:TEST[:STEP] (e.g. 90d:30d): choose the best combination on each training span, run it on the
    /// test span after it, and report the chained test spans beside the in-sample figures
    #[arg(long = "walk-forward")]
    walk_forward: Option<String>,
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
        span: r.span,
        jobs: a.jobs,
    };
    if let Some(w) = &a.walk_forward {
        let spec: walk_forward::WalkSpec = w.parse().map_err(anyhow::Error::msg)?;
        return walk_forward_cmd(&req, spec, &a.rank_by, &a.out, &axes);
    }
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
    if let Some(&best) = order.first() {
        let rf = runs[best].result.cfg.backtest.risk_free_rate;
        println!(
            "{}",
            deflated_line(walk_forward::deflate(&runs, best, rf), runs.len())
        );
    }
    println!(
        "results in {}: results.csv, best-1 .. best-{}",
        a.out.display(),
        a.top.min(runs.len())
    );
    Ok(())
}

/// The best run's Sharpe deflated for the number of runs tried, in words.
fn deflated_line(d: Option<Deflated>, runs: usize) -> String {
    match d {
        Some(d) => format!(
            "deflated Sharpe of the best run: {:.3} (probability its true Sharpe is above zero after choosing \
             it from {} runs; daily Sharpe {:.4} against {:.4} expected from the best of {} zero-skill runs, \
             {} daily returns)",
            d.probability, runs, d.sharpe, d.expected_max, d.trials, d.observations
        ),
        None => "deflated Sharpe of the best run: undefined (fewer than 3 daily returns, or no spread)".into(),
    }
}

fn walk_forward_cmd(
    req: &sweep::SweepRequest,
    spec: walk_forward::WalkSpec,
    rank_by: &str,
    out: &std::path::Path,
    axes: &[sweep::Axis],
) -> Result<()> {
    let started = std::time::Instant::now();
    let w = walk_forward::walk_forward(req, spec, rank_by)?;
    let seconds = started.elapsed().as_secs_f64();
    std::fs::create_dir_all(out)?;
    std::fs::write(
        out.join("walk_forward.csv"),
        walk_forward::folds_csv(&w, axes),
    )?;
    for (i, f) in w.folds.iter().enumerate() {
        backtest::write_outputs(&f.out_of_sample, &out.join(format!("fold-{}", i + 1)))?;
    }
    backtest::write_outputs(&w.stitched, &out.join("out-of-sample"))?;
    println!(
        "hypeflow sweep --walk-forward: {} folds ({}) of {} runs each, ranked by {}, in {seconds:.2} s",
        w.folds.len(),
        spec.describe(),
        w.folds.first().map_or(0, |f| f.tried),
        rank_by
    );
    for (k, v) in &w.stitched.summary {
        println!("{k:<26} {v}");
    }
    let m = &w.stitched.metrics;
    let f4 = |x: Option<f64>| x.map_or("-".into(), |v| format!("{v:.4}"));
    println!(
        "out of sample: total return {}, Sharpe {}, max drawdown {}, {} trades, final equity {}",
        f4(m.total_return),
        f4(m.sharpe),
        f4(m.max_drawdown),
        m.trades,
        m.final_equity
            .map_or("-".into(), |e| e.normalize().to_string())
    );
    println!(
        "results in {}: walk_forward.csv, out-of-sample/ (the chained test spans, report included), fold-1 .. fold-{}",
        out.display(),
        w.folds.len()
    );
    Ok(())
}
