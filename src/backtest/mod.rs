//! Backtests: replay files (or topics: `replay`) through the dataflow with the fill model, then write trades, equity,
//! intents, metrics and the report.

pub mod attribution;
pub mod inputs;
pub mod lookahead;
pub mod replay;
pub mod report;
pub mod report_tokens;
pub mod svg;
pub mod sweep;
pub mod walk_forward;

use crate::config::{EndOfData, PipelineConfig, SlippageModel, StopFill};
use crate::dataflow::driver::{run_shares, RunError, RunOutput, Share};
use crate::dataflow::input::DeadLetter;
use crate::dataflow::input::InputEvent;
use crate::dataflow::portfolio::ExposurePoint;
use crate::dataflow::records::Counters;
use crate::dataflow::signal_quality::SignalOutcome;
use crate::dataflow::token_chart::TokenChart;
use crate::dataflow::PortfolioEvent;
use crate::model::time::{format_duration_ms, to_rfc3339, Millis};
use crate::model::TokenTable;
use crate::model::{Fill, FillStatus, OrderIntent, Trade};
use crate::risk::metrics::{self, Metrics};
use inputs::{Loaded, Sources};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    #[error(transparent)]
    Input(#[from] inputs::InputError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("bad option: {0}")]
    Option(String),
    /// The portfolio's book left what a decimal holds; nothing after that time was decided.
    #[error("{0}")]
    Halted(String),
}

pub struct BacktestRequest {
    pub cfg: PipelineConfig,
    pub pipeline_text: String,
    pub pipeline_path: String,
    pub tweets: Option<PathBuf>,
    /// `tweets` holds scored mentions (`hypeflow score` output) rather than posts.
    pub scored: bool,
    pub prices: PathBuf,
    pub bar_interval: Option<Millis>,
    /// Only the history in this span (all of it by default).
    pub span: inputs::Span,
    pub workers: usize,
    pub progress: bool,
}

pub struct BacktestResult {
    pub cfg: PipelineConfig,
    pub pipeline_text: String,
    pub intents: Vec<OrderIntent>,
    pub fills: Vec<Fill>,
    pub trades: Vec<Trade>,
    pub equity: Vec<(Millis, Decimal)>,
    /// The book's concentration at each bar close while anything was held.
    pub exposure: Vec<(Millis, ExposurePoint)>,
    pub metrics: Metrics,
    pub dead: Vec<DeadLetter>,
    pub skipped: BTreeMap<String, usize>,
    pub clusters: BTreeMap<String, String>,
    pub summary: Vec<(String, String)>,
    pub bar_interval: Millis,
    pub events_replayed: u64,
    pub elapsed: std::time::Duration,
    /// Each token's bars and sentiment in bounded buckets, for the report's pictures.
    pub charts: Vec<TokenChart>,
    /// Entry intent id -> the accounts whose posts were in the window that made it.
    pub entry_authors: BTreeMap<String, Vec<Arc<str>>>,
}

pub fn run_backtest(req: BacktestRequest) -> Result<BacktestResult, BacktestError> {
    let started = std::time::Instant::now();
    let table = Arc::new(req.cfg.universe.token_table());
    let tick_interval = req.cfg.bar_interval_ms();
    let src = Sources {
        tweets: req.tweets.as_deref(),
        scored: req.scored,
        prices: &req.prices,
        bar_interval: req.bar_interval,
        tick_bar_interval: tick_interval,
    };
    let loaded: Loaded = inputs::load(&src, &table)?.restricted_to(req.span);
    let load_time = started.elapsed();
    let sort_time = loaded.sort_time;
    let dead = loaded.dead.clone();
    let (n_ticks, n_bars, n_tweets, bar_interval) = (
        loaded.ticks,
        loaded.bars,
        loaded.tweets,
        loaded.bar_interval,
    );
    let mut cfg = req.cfg;
    cfg.follow_bar_interval(bar_interval);
    let cfg = Arc::new(cfg);
    let dataflow_start = std::time::Instant::now();
    let out = run_loaded(cfg.clone(), table, loaded, req.workers, req.progress)?;
    let dataflow_time = dataflow_start.elapsed();
    let inputs = vec![
        ("pipeline file".to_string(), req.pipeline_path.clone()),
        ("prices".into(), req.prices.display().to_string()),
        (
            if req.scored {
                "scored mentions"
            } else {
                "tweets"
            }
            .into(),
            req.tweets
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "(none)".into()),
        ),
        (
            "loaded".into(),
            format!(
                "{n_ticks} ticks, {n_bars} bars, {n_tweets} posts; {} dead-lettered",
                dead.len()
            ),
        ),
        (
            "phases".into(),
            format!(
                "read + parse + check {:.2} s, sort {:.2} s, dataflow {:.2} s",
                load_time.saturating_sub(sort_time).as_secs_f64(),
                sort_time.as_secs_f64(),
                dataflow_time.as_secs_f64()
            ),
        ),
    ];
    finish(
        cfg,
        req.pipeline_text,
        out,
        dead,
        inputs,
        bar_interval,
        req.workers,
        started,
    )
}

/// The dataflow's output sorted by kind: equity points at one time collapse to the last, skipped entries are
/// counted by reason, and clusters keep each token's latest label.
#[derive(Default)]
struct Sorted {
    intents: Vec<OrderIntent>,
    fills: Vec<Fill>,
    trades: Vec<Trade>,
    equity: Vec<(Millis, Decimal)>,
    skipped: BTreeMap<String, usize>,
    clusters: BTreeMap<String, String>,
    cluster_changes: usize,
    outcomes: Vec<SignalOutcome>,
    halted: Option<String>,
    exposure: Vec<(Millis, ExposurePoint)>,
    charts: Vec<TokenChart>,
    entry_authors: BTreeMap<String, Vec<Arc<str>>>,
}

impl From<Vec<PortfolioEvent>> for Sorted {
    fn from(events: Vec<PortfolioEvent>) -> Sorted {
        let mut s = Sorted::default();
        for ev in events {
            match ev {
                PortfolioEvent::Intent(i) => s.intents.push(i),
                PortfolioEvent::Fill(f) => s.fills.push(f),
                PortfolioEvent::Trade(t) => s.trades.push(t),
                PortfolioEvent::Equity(t, e) => match s.equity.last_mut() {
                    Some(last) if last.0 == t => last.1 = e,
                    _ => s.equity.push((t, e)),
                },
                PortfolioEvent::Skipped(_, _, why) => *s.skipped.entry(why).or_default() += 1,
                PortfolioEvent::SignalOutcome(o) => s.outcomes.push(o),
                PortfolioEvent::Halted(_, why) => s.halted = Some(why),
                PortfolioEvent::Exposure(t, e) => s.exposure.push((t, e)),
                PortfolioEvent::Charts(c) => s.charts = c,
                PortfolioEvent::EntryAuthors(id, a) => {
                    s.entry_authors.insert(id, a);
                }
                PortfolioEvent::Cluster(_, tok, label) => {
                    s.cluster_changes += 1;
                    s.clusters.insert(tok, label);
                }
            }
        }
        s
    }
}

/// Turns what the dataflow emitted into the result: canonical order, metrics, summary. Shared by file
/// backtests and topic replays so both write the same outputs the same way.
#[allow(clippy::too_many_arguments)]
pub fn finish(
    cfg: Arc<PipelineConfig>,
    pipeline_text: String,
    out: RunOutput,
    dead: Vec<DeadLetter>,
    inputs: Vec<(String, String)>,
    bar_interval: Millis,
    workers: usize,
    started: std::time::Instant,
) -> Result<BacktestResult, BacktestError> {
    let Sorted {
        mut intents,
        fills,
        mut trades,
        equity,
        skipped,
        clusters,
        cluster_changes,
        outcomes,
        halted,
        exposure,
        charts,
        entry_authors,
    } = Sorted::from(out.events);
    if let Some(why) = halted {
        return Err(BacktestError::Halted(why));
    }
    // Canonical orders: intents by (decision time, id), trades by (exit, entry, token).
    intents.sort_by(|a, b| (a.decision_time, &a.id).cmp(&(b.decision_time, &b.id)));
    trades.sort_by(|a, b| {
        (a.exit_time, a.entry_time, &a.token).cmp(&(b.exit_time, b.entry_time, &b.token))
    });
    let mut metrics = run_metrics(
        cfg.backtest.risk_free_rate,
        &equity,
        &trades,
        &fills,
        &exposure,
    );
    let horizons = cfg.signal_horizons_ms();
    metrics.signal_quality = crate::dataflow::signal_quality::summarize(&outcomes, &horizons);

    let c = &out.counters;
    let rejects = fills
        .iter()
        .filter(|f| f.status == FillStatus::Rejected)
        .count();
    let mut summary = vec![(
        "pipeline".to_string(),
        format!("{} (version {})", cfg.pipeline.id, cfg.inputs_version()),
    )];
    summary.extend(inputs);
    summary.extend(vec![
        ("bar interval".into(), format_duration_ms(bar_interval)),
        ("bars built from ticks".into(), Counters::get(&c.bars_built).to_string()),
        (
            "posts".into(),
            format!(
                "{} scored mentions; {} posts name no universe token; {} below min_followers; {} not on the influencer list; {} cashtags/addresses outside the universe",
                Counters::get(&c.mentions),
                Counters::get(&c.tweets_without_token),
                Counters::get(&c.tweets_below_followers),
                Counters::get(&c.tweets_not_influencer),
                Counters::get(&c.unknown_token_mentions)
            ),
        ),
        ("sentiment windows".into(), format!("{} ({})", Counters::get(&c.windows), cfg.describe_windows())),
        ("late records".into(), Counters::get(&c.late_records).to_string()),
        ("signals".into(), Counters::get(&c.signals).to_string()),
        ("intents".into(), intents.len().to_string()),
        ("fills / venue rejects".into(), format!("{} / {rejects}", fills.len() - rejects)),
        (
            "entries not taken".into(),
            if skipped.is_empty() { "0".into() } else { skipped.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ") },
        ),
        (
            "clusters at the end".into(),
            if !cfg.uses_clusters() { "(not computed: no cluster cap)".into() } else if clusters.is_empty() { "(none linked)".into() } else { clusters.iter().map(|(k, v)| format!("{k}->{v}")).collect::<Vec<_>>().join(", ") },
        ),
        ("cluster changes".into(), format!("{cluster_changes} membership changes over the run")),
        ("buy and hold".into(), buy_and_hold_line(&charts, cfg.backtest.initial_equity)),
        ("workers".into(), workers.to_string()),
    ]);
    let elapsed = started.elapsed();
    summary.push((
        "replay time".into(),
        format!("{:.2} s for {} events", elapsed.as_secs_f64(), out.fed),
    ));
    Ok(BacktestResult {
        cfg: Arc::try_unwrap(cfg).unwrap_or_else(|a| (*a).clone()),
        pipeline_text,
        intents,
        fills,
        trades,
        equity,
        metrics,
        dead,
        skipped,
        clusters,
        summary,
        bar_interval,
        events_replayed: out.fed,
        elapsed,
        exposure,
        charts,
        entry_authors,
    })
}

/// The benchmark in words: what holding the universe from the first bar would have returned.
fn buy_and_hold_line(charts: &[TokenChart], initial: Decimal) -> String {
    let bh = attribution::buy_and_hold(charts, initial, &[]);
    match bh.total_return {
        Some(r) => format!(
            "total return {:.4} (equal weight over the {} tokens with prices, bought at each one's first open, no costs)",
            r, bh.tokens
        ),
        None => "(no prices)".into(),
    }
}

/// A run's metrics from its curve, trades, fills and exposure (all but the signal quality).
pub(crate) fn run_metrics(
    risk_free_rate: f64,
    equity: &[(Millis, Decimal)],
    trades: &[Trade],
    fills: &[Fill],
    exposure: &[(Millis, ExposurePoint)],
) -> Metrics {
    let mut metrics = metrics::compute(equity, trades, risk_free_rate);
    let traded = fills
        .iter()
        .filter(|f| f.status == FillStatus::Filled)
        .map(|f| f.quantity.checked_mul(f.price).unwrap_or(Decimal::MAX))
        .fold(Decimal::ZERO, |a, b| a.saturating_add(b));
    metrics.turnover = metrics::turnover(traded, equity);
    metrics.max_position_share = exposure
        .iter()
        .map(|(_, p)| p.largest)
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    metrics
}

/// The fill conventions, in words, for the report and the summary.
pub fn conventions(cfg: &PipelineConfig, bar_interval: Millis) -> Vec<(String, String)> {
    let f = &cfg.fills;
    vec![
        ("decision".into(), format!("at each bar close ({} bars); a bar is usable only at its close time", format_duration_ms(bar_interval))),
        ("market fills".into(), "at the open of the token's next bar (first tick after the decision)".into()),
        (
            "slippage".into(),
            match f.slippage_model {
                SlippageModel::Bps => format!("fixed {} bps against the trade", f.slippage_bps),
                SlippageModel::Amm => format!("constant-product price impact, quote-side pool depth {} (per-token overrides: {})", f.default_pool_liquidity, f.pool_liquidity.len()),
            },
        ),
        ("fees".into(), format!("{} of notional per side, paid on top of the stake; gas {} quote per fill", f.fee_rate, f.gas_quote)),
        (
            "stops".into(),
            match f.stop_fill {
                StopFill::StopPrice => "stop-loss fills exactly at the stop price when the bar's low reaches it (checked before take-profit)".into(),
                StopFill::GapAware => "stop-loss fills at the stop price, or at the open when the bar opens below it (checked before take-profit)".into(),
            },
        ),
        (
            "end of data".into(),
            match f.end_of_data {
                EndOfData::LastOpen => "open positions closed at the last bar's open, stamped with its open time (force_exit)".into(),
                EndOfData::LastClose => "open positions closed at the last bar's close (force_exit)".into(),
            },
        ),
        ("max slippage".into(), format!("entries whose fill would slip more than {} bps are rejected by the venue", f.max_slippage_bps)),
        ("trade return".into(), "pnl / (quantity x entry price); pnl = proceeds - cost - all fees and gas".into()),
        ("initial equity".into(), cfg.backtest.initial_equity.to_string()),
    ]
}

fn create(path: &Path) -> Result<std::io::BufWriter<std::fs::File>, BacktestError> {
    std::fs::File::create(path)
        .map(std::io::BufWriter::new)
        .map_err(|source| BacktestError::Write {
            path: path.display().to_string(),
            source,
        })
}

fn werr(path: &Path) -> impl Fn(std::io::Error) -> BacktestError + '_ {
    move |source| BacktestError::Write {
        path: path.display().to_string(),
        source,
    }
}

fn dec(d: Decimal) -> String {
    d.normalize().to_string()
}

/// `trade_legs.csv`: the parts of every trade sold in several (trims, scale-outs), one row each, keyed by
/// the trade's token and entry time. Written only when a trade has legs.
/// attribution.csv, when any entry came from posts: one row per account, best PnL first.
fn write_attribution(rows: &[attribution::AuthorRow], dir: &Path) -> Result<(), BacktestError> {
    if rows.is_empty() {
        return Ok(());
    }
    let p = dir.join("attribution.csv");
    let mut w = create(&p)?;
    writeln!(w, "account,entries,trades,wins,hit_rate,pnl,tokens").map_err(werr(&p))?;
    for r in rows {
        let tokens: Vec<&str> = r.tokens.iter().map(String::as_str).collect();
        writeln!(
            w,
            "{},{},{},{},{},{},{}",
            r.author.replace(',', ";"),
            r.entries,
            r.trades,
            r.wins,
            r.hit_rate().map_or(String::new(), |x| format!("{x:.6}")),
            dec(r.pnl.round_dp(10)),
            tokens.join(";")
        )
        .map_err(werr(&p))?;
    }
    w.flush().map_err(werr(&p))
}

fn write_legs(trades: &[Trade], dir: &Path) -> Result<(), BacktestError> {
    if trades.iter().all(|t| t.legs.is_empty()) {
        return Ok(());
    }
    let p = dir.join("trade_legs.csv");
    let mut w = create(&p)?;
    writeln!(
        w,
        "token,entry_time,leg,time,price,quantity,fees,pnl,reason"
    )
    .map_err(werr(&p))?;
    for t in trades {
        for (n, l) in t.legs.iter().enumerate() {
            writeln!(
                w,
                "{},{},{},{},{},{},{},{},{}",
                t.token,
                to_rfc3339(t.entry_time),
                n + 1,
                to_rfc3339(l.time),
                dec(l.price),
                dec(l.quantity),
                dec(l.fees.round_dp(10)),
                dec(l.pnl.round_dp(10)),
                l.reason.replace(',', ";")
            )
            .map_err(werr(&p))?;
        }
    }
    w.flush().map_err(werr(&p))
}

pub fn write_outputs(r: &BacktestResult, dir: &Path) -> Result<(), BacktestError> {
    std::fs::create_dir_all(dir).map_err(werr(dir))?;
    let p = dir.join("trades.csv");
    let mut w = create(&p)?;
    writeln!(w, "token,side,entry_time,entry_price,exit_time,exit_price,quantity,fees,pnl,return,exit_reason").map_err(werr(&p))?;
    for t in &r.trades {
        writeln!(
            w,
            "{},{},{},{},{},{},{},{},{},{},{}",
            t.token,
            t.side,
            to_rfc3339(t.entry_time),
            dec(t.entry_price),
            to_rfc3339(t.exit_time),
            dec(t.exit_price),
            dec(t.quantity),
            dec(t.fees.round_dp(10)),
            dec(t.pnl.round_dp(10)),
            dec(t.ret.round_dp(10)),
            t.exit_reason.replace(',', ";")
        )
        .map_err(werr(&p))?;
    }
    w.flush().map_err(werr(&p))?;
    write_legs(&r.trades, dir)?;

    let p = dir.join("equity.csv");
    let mut w = create(&p)?;
    writeln!(w, "timestamp,equity").map_err(werr(&p))?;
    for (t, e) in &r.equity {
        writeln!(w, "{},{}", to_rfc3339(*t), dec(e.round_dp(10))).map_err(werr(&p))?;
    }
    w.flush().map_err(werr(&p))?;

    let p = dir.join("intents.jsonl");
    let mut w = create(&p)?;
    for i in &r.intents {
        serde_json::to_writer(&mut w, i).map_err(|e| werr(&p)(e.into()))?;
        writeln!(w).map_err(werr(&p))?;
    }
    w.flush().map_err(werr(&p))?;

    let p = dir.join("fills.jsonl");
    let mut w = create(&p)?;
    for f in &r.fills {
        serde_json::to_writer(&mut w, f).map_err(|e| werr(&p)(e.into()))?;
        writeln!(w).map_err(werr(&p))?;
    }
    w.flush().map_err(werr(&p))?;

    let p = dir.join("metrics.json");
    let mut w = create(&p)?;
    serde_json::to_writer_pretty(&mut w, &r.metrics).map_err(|e| werr(&p)(e.into()))?;
    writeln!(w).map_err(werr(&p))?;
    w.flush().map_err(werr(&p))?;

    let p = dir.join("deadletter.jsonl");
    let mut w = create(&p)?;
    for d in &r.dead {
        serde_json::to_writer(&mut w, d).map_err(|e| werr(&p)(e.into()))?;
        writeln!(w).map_err(werr(&p))?;
    }
    w.flush().map_err(werr(&p))?;

    let authors = attribution::attribution(r);
    write_attribution(&authors, dir)?;
    let times: Vec<Millis> = r.equity.iter().map(|p| p.0).collect();
    let benchmark = attribution::buy_and_hold(&r.charts, r.cfg.backtest.initial_equity, &times);
    let conv = conventions(&r.cfg, r.bar_interval);
    let html = report::render(&report::ReportInput {
        intents: &r.intents,
        fills: &r.fills,
        charts: &r.charts,
        authors: &authors,
        benchmark: &benchmark,
        title: &format!("hypeflow backtest: {}", r.cfg.pipeline.id),
        metrics: &r.metrics,
        curve: &r.equity,
        trades: &r.trades,
        pipeline_toml: &r.pipeline_text,
        conventions: &conv,
        summary: &r.summary,
        exposure: &r.exposure,
    });
    let p = dir.join("report.html");
    std::fs::write(&p, html).map_err(werr(&p))?;
    Ok(())
}

/// The table printed on stdout after a run.
pub fn summary_table(r: &BacktestResult, out_dir: &Path) -> String {
    use std::fmt::Write as _;
    let m = &r.metrics;
    let f = |v: Option<f64>| {
        v.map(|x| format!("{x:.4}"))
            .unwrap_or_else(|| "null".into())
    };
    let d = |v: Option<Decimal>| {
        v.map(|x| x.round_dp(4).to_string())
            .unwrap_or_else(|| "null".into())
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "hypeflow backtest: {}  ({} to {})",
        r.cfg.pipeline.id,
        m.start.as_deref().unwrap_or("-"),
        m.end.as_deref().unwrap_or("-")
    );
    let _ = writeln!(s, "{:-<64}", "");
    let rows = [
        ("initial equity", d(m.initial_equity)),
        ("final equity", d(m.final_equity)),
        ("total return", f(m.total_return)),
        ("CAGR", f(m.cagr)),
        ("Sharpe (daily, 365)", f(m.sharpe)),
        ("Sortino", f(m.sortino)),
        ("Calmar", f(m.calmar)),
        ("max drawdown", f(m.max_drawdown)),
        ("trades", m.trades.to_string()),
        ("win rate", f(m.win_rate)),
        ("profit factor", f(m.profit_factor)),
        ("expectancy", d(m.expectancy)),
        ("payoff ratio", f(m.payoff_ratio)),
        ("exposure", f(m.exposure)),
        ("turnover", f(m.turnover)),
        ("max position share", f(m.max_position_share)),
    ];
    for (k, v) in rows {
        let _ = writeln!(s, "{k:<22} {v:>20}");
    }
    for q in &m.signal_quality {
        let _ = writeln!(
            s,
            "{:<22} {:>20}",
            format!("signal hit rate {}", q.horizon),
            format!("{} of {}", f(q.hit_rate), q.evaluated)
        );
    }
    let _ = writeln!(s, "{:-<64}", "");
    for (k, v) in &r.summary {
        let _ = writeln!(s, "{k:<22} {v}");
    }
    let _ = writeln!(s, "{:-<64}", "");
    let attributed = if r.entry_authors.is_empty() {
        ""
    } else {
        " attribution.csv"
    };
    let _ = writeln!(s, "outputs in {}: trades.csv equity.csv intents.jsonl fills.jsonl metrics.json deadletter.jsonl{attributed} report.html", out_dir.display());
    s
}

/// Replays loaded files: round-robin shares keep each worker's slice in global event-time order.
pub fn run_loaded(
    cfg: Arc<PipelineConfig>,
    table: Arc<TokenTable>,
    loaded: Loaded,
    workers: usize,
    show_progress: bool,
) -> Result<RunOutput, RunError> {
    let workers = workers.max(1);
    let total = loaded.events.len() as u64;
    let first_time = loaded
        .events
        .first()
        .map(|e| e.time())
        .or(loaded.first_time);
    let mut shares: Vec<Vec<InputEvent>> = (0..workers)
        .map(|_| Vec::with_capacity(loaded.events.len() / workers + 1))
        .collect();
    for (i, ev) in loaded.events.into_iter().enumerate() {
        shares[i % workers].push(ev);
    }
    let shares: Vec<Share> = shares
        .into_iter()
        .map(|v| Box::new(v.into_iter()) as Share)
        .collect();
    run_shares(
        cfg,
        table,
        loaded.bar_interval,
        first_time,
        shares,
        total,
        show_progress,
    )
}
