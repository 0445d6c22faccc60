//! `hypeflow lookahead-check`: the CLI edge of `backtest::lookahead`.

use anyhow::{bail, Result};
use clap::Args;
use hypeflow::backtest::inputs::{self, Sources};
use hypeflow::backtest::lookahead;
use hypeflow::model::time::to_rfc3339;
use std::sync::Arc;

#[derive(Args)]
pub struct LookaheadArgs {
    #[command(flatten)]
    inputs: super::file_inputs::FileInputs,
    /// How many truncated copies to run (1-100), cut at bar and window boundaries spread over the input
    #[arg(long, default_value_t = 10)]
    cuts: usize,
}

pub fn lookahead_cmd(a: LookaheadArgs) -> Result<()> {
    if a.cuts == 0 || a.cuts > 100 {
        bail!("--cuts takes 1 to 100, got {}", a.cuts);
    }
    let r = a.inputs.resolve()?;
    let mut cfg = r.cfg;
    let table = Arc::new(cfg.universe.token_table());
    let src = Sources {
        tweets: r.tweets.as_deref(),
        scored: r.scored,
        prices: &r.prices,
        bar_interval: r.bar_interval,
        tick_bar_interval: cfg.bar_interval_ms(),
    };
    let loaded = inputs::load(&src, &table)?.within(r.span);
    cfg.follow_bar_interval(loaded.bar_interval);
    let checks = lookahead::check(Arc::new(cfg), table, &loaded, a.cuts)?;
    let mut changed = 0;
    for c in &checks {
        println!(
            "cut {}: {} decisions before it, {}",
            to_rfc3339(c.cut),
            c.compared,
            if c.changes.is_empty() {
                "all unchanged".to_string()
            } else {
                format!("{} CHANGED", c.changes.len())
            }
        );
        for ch in &c.changes {
            println!("  {} {}", ch.id, ch.what);
        }
        changed += c.changes.len();
    }
    if changed > 0 {
        bail!("{changed} decisions changed when later data was removed: the pipeline looks ahead");
    }
    println!(
        "lookahead-check: no decision changed when later data was removed ({} cuts)",
        checks.len()
    );
    Ok(())
}
