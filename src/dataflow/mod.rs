//! The timely dataflow: operators by stage and the assembly of a pipeline from them.
//!
//! ```text
//! posts -> token_extraction -> scoring -> sentiment_window --\
//! ticks -> bars ----------(+ file bars)---- token_signals -> portfolio -> events (intents, fills, trades, equity)
//!                                               \-> correlation -> clusters (differential) -/
//! ```

pub mod bars;
pub mod clusters;
pub mod conditions;
pub mod correlation;
pub mod driver;
pub mod fill_model;
pub mod indicators;
pub mod input;
pub mod portfolio;
pub mod rebalance;
pub mod records;
pub mod scoring;
pub mod sentiment_window;
pub mod signal_quality;
pub mod time_stash;
pub mod token_chart;
pub mod token_extraction;
pub mod token_signals;

use crate::config::PipelineConfig;
use crate::model::TokenTable;
use input::Inputs;
use records::Counters;
use std::sync::Arc;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::Concat;
use timely::dataflow::Stream;

pub use portfolio::{PortfolioEvent, Positions};

/// Everything a pipeline needs besides its input streams.
#[derive(Clone)]
pub struct PipelineContext {
    pub cfg: Arc<PipelineConfig>,
    pub table: Arc<TokenTable>,
    pub bar_interval: i64,
    pub counters: Arc<Counters>,
    /// First event time of the run (replay start, or live start minus the rewind).
    pub history_start: i64,
    /// What decides open positions: the fill model, or the executor's fills read back from the topics.
    pub positions: Positions,
    /// Following the executor in a replay: decisions wait for the outcomes they depend on (`run --lockstep`).
    pub lockstep: bool,
}

impl PipelineContext {
    /// A context with fresh counters, which the run reads back from `counters` when it ends.
    pub fn new(
        cfg: Arc<PipelineConfig>,
        table: Arc<TokenTable>,
        bar_interval: i64,
        history_start: i64,
        positions: Positions,
    ) -> Self {
        PipelineContext {
            cfg,
            table,
            bar_interval,
            counters: Arc::new(Counters::default()),
            history_start,
            positions,
            lockstep: false,
        }
    }
}

/// Wires the operators; the same assembly serves backtests, topic replays and live runs.
pub fn assemble<'s>(
    inputs: Inputs<'s>,
    ctx: &PipelineContext,
) -> Stream<'s, u64, Vec<PortfolioEvent>> {
    let Inputs {
        ticks,
        bars: file_bars,
        tweets,
        orders,
    } = inputs;
    let cfg = &ctx.cfg;
    let bars = bars::build_bars(ticks, ctx.bar_interval, ctx.counters.clone()).concat(file_bars);
    let posts = token_extraction::token_extraction(
        tweets,
        ctx.table.clone(),
        cfg.sentiment.min_followers,
        cfg.sentiment.influencer_book.clone(),
        ctx.counters.clone(),
    );
    let mentions = scoring::scoring(posts, cfg.sentiment.clone(), ctx.counters.clone());
    let spec = sentiment_window::WindowSpec {
        window: cfg.window_ms(),
        slide: cfg.slide_ms(),
        baseline_windows: cfg.sentiment.baseline_windows,
        history_start: ctx.history_start,
        credit: sentiment_window::EntryThresholds::of(&cfg.signal),
    };
    let windows = sentiment_window::sentiment_windows(mentions, spec, ctx.counters.clone());
    let rule = token_signals::SignalRule::new(cfg);
    let updates = token_signals::token_signals(bars, windows, rule, ctx.counters.clone());
    // Clusters only matter to a cluster cap: without one, the correlation of every pair at every bar (and the
    // differential components over it) is work nobody reads, and every token is its own cluster.
    let clusters = if cfg.uses_clusters() {
        let returns = updates
            .clone()
            .flat_map(|u| u.log_return.map(|r| (u.bar.token, u.bar.close_time(), r)));
        let links = correlation::correlation_links(returns, cfg.correlation.clone());
        clusters::clusters(links)
    } else {
        timely::dataflow::operators::generic::operator::empty(updates.scope())
    };
    portfolio::portfolio(
        updates,
        clusters,
        orders,
        ctx.positions,
        ctx.lockstep,
        ctx.cfg.clone(),
        ctx.table.clone(),
    )
}
