//! The capital ladder: phases from paper to scaled capital, each with its venue and hard caps, gates that a
//! phase's record must pass before the next one is allowed, an automatic pause on drawdown and a step down on
//! degradation. Its state is the journal's `capital_events`, so it survives restarts; its figures come from the
//! live book with the backtest's metric definitions.

use super::book::LiveBook;
use super::journal::{Journal, JournalError};
use crate::model::money::lenient;
use crate::model::time::{span, to_rfc3339, Millis, Span};
use crate::model::Invalid;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// `capital/ladder.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapitalConfig {
    /// What the account's book starts from, in the quote token.
    #[serde(deserialize_with = "lenient")]
    pub starting_capital: Decimal,
    /// Annual risk-free rate for the Sharpe ratio of the gates (fraction).
    #[serde(default)]
    pub risk_free_rate: f64,
    #[serde(default)]
    pub pause: PauseConfig,
    #[serde(default)]
    pub gates: Gates,
    #[serde(default)]
    pub demotion: Demotion,
    #[serde(default)]
    pub breakers: Breakers,
    /// Portfolio heat cap: the open positions' loss if every stop is hit, new entry included, as a fraction
    /// of equity.
    #[serde(default = "default_heat", deserialize_with = "lenient")]
    pub max_heat: Decimal,
    #[serde(rename = "phase")]
    pub phases: Vec<Phase>,
}

/// Freqtrade's MaxDrawdown protection: at `max_drawdown` below the equity peak new entries stop for `lock`
/// (absent = until `hypeflow capital resume`); then the drawdown is measured from a new peak.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PauseConfig {
    #[serde(default = "default_pause_drawdown", deserialize_with = "lenient")]
    pub max_drawdown: Decimal,
    #[serde(default = "default_lock", with = "span::blank_is_none")]
    pub lock: Option<Span>,
}

fn default_heat() -> Decimal {
    Decimal::new(6, 2)
}

fn default_pause_drawdown() -> Decimal {
    Decimal::new(10, 2)
}
fn default_lock() -> Option<Span> {
    Span::parse("24h").ok()
}
impl Default for PauseConfig {
    fn default() -> Self {
        PauseConfig {
            max_drawdown: default_pause_drawdown(),
            lock: default_lock(),
        }
    }
}

/// What a phase's record must show before the next phase is allowed (defaults: the user's plan).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Gates {
    pub min_days: u32,
    pub min_trades: u32,
    pub min_win_rate: f64,
    pub min_sharpe: f64,
    pub max_drawdown: f64,
    /// 95th percentile of realized slippage against the venue's quote (the decision price for a fill without
    /// one), bps; judged from micro on: paper fills have no market of their own.
    #[serde(deserialize_with = "lenient")]
    pub max_slippage_p95_bps: Decimal,
}

impl Default for Gates {
    fn default() -> Self {
        Gates {
            min_days: 30,
            min_trades: 20,
            min_win_rate: 0.60,
            min_sharpe: 1.5,
            max_drawdown: 0.15,
            max_slippage_p95_bps: Decimal::from(50),
        }
    }
}

/// A phase whose last `window_trades` round trips fall below these floors steps down one phase.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Demotion {
    pub window_trades: usize,
    pub min_win_rate: f64,
    pub min_sharpe: f64,
}

impl Default for Demotion {
    fn default() -> Self {
        Demotion {
            window_trades: 20,
            min_win_rate: 0.40,
            min_sharpe: 0.0,
        }
    }
}

/// Conditions that stop new entries by themselves, each for the pause's `lock`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Breakers {
    /// This many losing round trips in a row (0 = off).
    pub max_consecutive_losses: u32,
    /// No entry in a token whose latest `market.ticks` price is older than this ("" = off).
    #[serde(with = "span::blank_is_none")]
    pub stale_after: Option<Span>,
    /// On chain: the wallet's balance of a token may differ from the book's by this fraction of the book's
    /// quantity (dust, rounding) before entries pause and the mismatch is reported.
    #[serde(deserialize_with = "lenient")]
    pub wallet_tolerance: Decimal,
    /// This many venue failures (the node or RPC unreachable, market data that cannot be read) within
    /// `venue_error_window` hold entries for `venue_error_cooldown` (0 = off).
    pub max_venue_errors: u32,
    pub venue_error_window: Span,
    pub venue_error_cooldown: Span,
}

impl Default for Breakers {
    fn default() -> Self {
        Breakers {
            max_consecutive_losses: 5,
            stale_after: Span::parse("5m").ok(),
            wallet_tolerance: Decimal::new(1, 3),
            max_venue_errors: 3,
            venue_error_window: Span::parse("10m").expect("a valid span"),
            venue_error_cooldown: Span::parse("15m").expect("a valid span"),
        }
    }
}

/// Where a phase trades.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub enum PhaseVenue {
    #[serde(rename = "paper")]
    Paper,
    #[serde(rename = "uniswap-v3")]
    UniswapV3,
    #[serde(rename = "pancakeswap-v3")]
    PancakeswapV3,
    #[serde(rename = "1inch")]
    Oneinch,
}

impl PhaseVenue {
    /// The name the venue's fills carry (`Venue::name`).
    pub fn as_str(self) -> &'static str {
        match self {
            PhaseVenue::Paper => "paper",
            PhaseVenue::UniswapV3 => "uniswap-v3",
            PhaseVenue::PancakeswapV3 => "pancakeswap-v3",
            PhaseVenue::Oneinch => "1inch",
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    pub name: String,
    pub venue: PhaseVenue,
    /// Largest value of one position, in the quote token.
    #[serde(deserialize_with = "lenient")]
    pub max_position: Decimal,
    #[serde(deserialize_with = "lenient")]
    pub max_notional_per_day: Decimal,
    /// Largest value of all open positions together.
    #[serde(deserialize_with = "lenient")]
    pub max_exposure: Decimal,
}

impl CapitalConfig {
    pub fn parse(text: &str, origin: &str) -> Result<Self, Invalid> {
        let c: CapitalConfig =
            toml::from_str(text).map_err(|e| Invalid(format!("{origin}: {e}")))?;
        c.check().map_err(|e| e.context(origin))?;
        Ok(c)
    }

    fn check(&self) -> Result<(), Invalid> {
        use crate::model::ranges::{count, dec, dur, name, real};
        let (zero, one) = (Decimal::ZERO, Decimal::ONE);
        let money = Decimal::from(super::onchain::config::MAX_MONEY);
        let (minute, week) = (60_000, 7 * 86_400_000);
        dec(
            "starting_capital",
            self.starting_capital,
            zero,
            money,
            false,
        )?;
        real("risk_free_rate", self.risk_free_rate, -0.5, 0.5)?;
        dec("max_heat", self.max_heat, zero, one, false)?;
        dec(
            "[pause] max_drawdown",
            self.pause.max_drawdown,
            zero,
            one - Decimal::new(1, 4),
            false,
        )?;
        if let Some(lock) = &self.pause.lock {
            dur("[pause] lock", lock.ms(), minute, 365 * 86_400_000)?;
        }
        let g = &self.gates;
        count("[gates] min_days", u64::from(g.min_days), 0, 3650)?;
        count("[gates] min_trades", u64::from(g.min_trades), 0, 100_000)?;
        real("[gates] min_win_rate", g.min_win_rate, 0.0, 1.0)?;
        real("[gates] max_drawdown", g.max_drawdown, 0.0, 1.0)?;
        real("[gates] min_sharpe", g.min_sharpe, -10.0, 10.0)?;
        dec(
            "[gates] max_slippage_p95_bps",
            g.max_slippage_p95_bps,
            zero,
            Decimal::from(10_000),
            true,
        )?;
        let d = &self.demotion;
        count(
            "[demotion] window_trades",
            d.window_trades as u64,
            2,
            10_000,
        )?;
        real("[demotion] min_win_rate", d.min_win_rate, 0.0, 1.0)?;
        real("[demotion] min_sharpe", d.min_sharpe, -10.0, 10.0)?;
        let b = &self.breakers;
        dec(
            "[breakers] wallet_tolerance",
            b.wallet_tolerance,
            zero,
            one - Decimal::new(1, 4),
            true,
        )?;
        count(
            "[breakers] max_venue_errors",
            u64::from(b.max_venue_errors),
            0,
            1000,
        )?;
        dur(
            "[breakers] venue_error_window",
            b.venue_error_window.ms(),
            1_000,
            week,
        )?;
        dur(
            "[breakers] venue_error_cooldown",
            b.venue_error_cooldown.ms(),
            1_000,
            week,
        )?;
        count(
            "[breakers] max_consecutive_losses",
            u64::from(b.max_consecutive_losses),
            0,
            1000,
        )?;
        if let Some(stale) = &b.stale_after {
            dur("[breakers] stale_after", stale.ms(), 1_000, week)?;
        }
        if self.phases.is_empty() {
            return Err(Invalid("no [[phase]]: list the ladder, paper first".into()));
        }
        let mut names = std::collections::HashSet::new();
        for p in &self.phases {
            name("phase name", &p.name, 64)?;
            if !names.insert(p.name.as_str()) {
                return Err(Invalid(format!("phase name {:?} is listed twice", p.name)));
            }
            let key = |k: &str| format!("phase {}: {k}", p.name);
            dec(&key("max_position"), p.max_position, zero, money, false)?;
            dec(
                &key("max_notional_per_day"),
                p.max_notional_per_day,
                zero,
                money,
                false,
            )?;
            dec(&key("max_exposure"), p.max_exposure, zero, money, false)?;
        }
        Ok(())
    }

    pub fn phase_index(&self, name: &str) -> Option<usize> {
        self.phases.iter().position(|p| p.name == name)
    }
}

/// A change of the ladder's state, as journaled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CapitalEvent {
    /// Into `phase` (up or down); `forced` when an operator overrode failing gates.
    Phase {
        at: Millis,
        from: String,
        phase: String,
        reason: String,
        forced: bool,
        figures: Vec<GateResult>,
    },
    /// New entries stop until `until` (None: until a resume). `keep_baseline` for a hold that is the venue's
    /// doing, not the record's (venue errors, a wallet short of gas): when it ends, the drawdown is still
    /// measured from the old peak.
    Pause {
        at: Millis,
        until: Option<Millis>,
        reason: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        keep_baseline: bool,
    },
    Resume {
        at: Millis,
        reason: String,
    },
    /// Nothing trades, exits included, until a resume.
    Kill {
        at: Millis,
        reason: String,
    },
}

impl CapitalEvent {
    pub fn at(&self) -> Millis {
        match self {
            CapitalEvent::Phase { at, .. }
            | CapitalEvent::Pause { at, .. }
            | CapitalEvent::Resume { at, .. }
            | CapitalEvent::Kill { at, .. } => *at,
        }
    }
}

/// One gate's judgement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    pub gate: String,
    /// None when the record cannot say yet (no trades, no daily returns).
    pub figure: Option<f64>,
    pub threshold: f64,
    pub pass: bool,
    /// Since when it has passed without interruption (RFC 3339), when it passes.
    pub since: Option<String>,
}

/// The ladder's state, read back from the journal's events.
#[derive(Clone, Debug, PartialEq)]
pub struct LadderState {
    pub phase: usize,
    pub phase_since: Millis,
    /// The pause in force: (since, until).
    pub paused: Option<(Millis, Option<Millis>)>,
    /// Drawdown is measured from the peak after this (the last resume or phase change).
    pub baseline: Millis,
    /// Killed by an operator at this time: nothing trades until a resume.
    pub killed: Option<Millis>,
    /// Why the pause in force was made.
    pub pause_reason: String,
}

impl LadderState {
    pub fn from_events(
        cfg: &CapitalConfig,
        events: &[CapitalEvent],
        start: Millis,
        now: Millis,
    ) -> LadderState {
        let mut s = LadderState {
            phase: 0,
            phase_since: start,
            paused: None,
            baseline: start,
            killed: None,
            pause_reason: String::new(),
        };
        let mut rebase = true;
        for e in events {
            match e {
                CapitalEvent::Phase { at, phase, .. } => {
                    s.phase = cfg.phase_index(phase).unwrap_or(s.phase);
                    s.phase_since = *at;
                    s.paused = None;
                    s.baseline = *at;
                }
                CapitalEvent::Pause {
                    at,
                    until,
                    keep_baseline,
                    reason,
                } => {
                    s.paused = Some((*at, *until));
                    s.pause_reason = reason.clone();
                    rebase = !keep_baseline;
                }
                CapitalEvent::Resume { at, .. } => {
                    s.paused = None;
                    s.killed = None;
                    s.baseline = *at;
                }
                CapitalEvent::Kill { at, .. } => s.killed = Some(*at),
            }
        }
        // a lock that has run out ends the pause, and the drawdown starts again from a new peak
        if let Some((_, Some(until))) = s.paused {
            if until <= now {
                s.paused = None;
                if rebase {
                    s.baseline = until;
                }
            }
        }
        s
    }
}

/// Reads the events and the account's book.
pub fn load(
    cfg: &CapitalConfig,
    journal: &Journal,
    now: Millis,
) -> Result<(LiveBook, Vec<CapitalEvent>, LadderState), JournalError> {
    let events: Vec<CapitalEvent> = journal.capital_events()?;
    let first_fill = journal.filled()?.first().map(|(_, f)| f.fill_time);
    let start = events
        .first()
        .map(CapitalEvent::at)
        .into_iter()
        .chain(first_fill)
        .min()
        .unwrap_or(now);
    let book = LiveBook::account_from_journal(journal, cfg.starting_capital, start)?;
    let state = LadderState::from_events(cfg, &events, start, now);
    Ok((book, events, state))
}

/// The gates of the current phase judged on its record (fills since the phase began) at `now`.
pub fn gates(
    cfg: &CapitalConfig,
    book: &LiveBook,
    state: &LadderState,
    now: Millis,
) -> Vec<GateResult> {
    // evaluated at every close of a round trip in the phase and now: "since" is the start of the last run of
    // passes that reaches now
    let since = state.phase_since;
    let mut points: Vec<Millis> = book
        .trades
        .iter()
        .map(|t| t.exit_time)
        .filter(|t| *t >= since && *t <= now)
        .collect();
    points.push(now);
    let mut history: Vec<Vec<GateResult>> =
        points.iter().map(|t| judge(cfg, book, state, *t)).collect();
    let mut out = history.pop().unwrap_or_default();
    for (i, g) in out.iter_mut().enumerate() {
        if !g.pass {
            continue;
        }
        let mut first = now;
        for (at, h) in points.iter().zip(&history).rev() {
            if h.get(i).is_some_and(|x| x.pass) {
                first = *at;
            } else {
                break;
            }
        }
        g.since = Some(to_rfc3339(first));
    }
    out
}

/// The gates at one moment, on the phase's record up to it.
fn judge(cfg: &CapitalConfig, book: &LiveBook, state: &LadderState, at: Millis) -> Vec<GateResult> {
    let g = &cfg.gates;
    let since = state.phase_since;
    let curve: Vec<(Millis, Decimal)> = book
        .curve
        .iter()
        .copied()
        .filter(|(t, _)| *t >= since && *t <= at)
        .collect();
    let trades: Vec<_> = book
        .trades
        .iter()
        .filter(|t| t.exit_time >= since && t.exit_time <= at)
        .cloned()
        .collect();
    let m = crate::risk::metrics::compute(&curve, &trades, cfg.risk_free_rate);
    let days = (at - since) as f64 / 86_400_000.0;
    let mut out = vec![
        gate(
            "days in phase",
            Some(days),
            g.min_days as f64,
            days >= g.min_days as f64,
        ),
        gate(
            "closed trades",
            Some(trades.len() as f64),
            g.min_trades as f64,
            trades.len() >= g.min_trades as usize,
        ),
        gate(
            "win rate",
            m.win_rate,
            g.min_win_rate,
            m.win_rate.is_some_and(|w| w > g.min_win_rate),
        ),
        gate(
            "sharpe",
            m.sharpe,
            g.min_sharpe,
            m.sharpe.is_some_and(|s| s > g.min_sharpe),
        ),
        gate(
            "max drawdown",
            Some(m.max_drawdown.unwrap_or(0.0)),
            g.max_drawdown,
            m.max_drawdown.unwrap_or(0.0) < g.max_drawdown,
        ),
    ];
    if cfg.phases[state.phase].venue != PhaseVenue::Paper {
        let p95 = percentile_95(
            book.quality
                .iter()
                .filter(|q| q.at >= since && q.at <= at)
                // the execution's own cost: against the venue's quote, or the decision price for a fill
                // that has none (recovered after a restart)
                .map(|q| q.slippage_vs_quote_bps.unwrap_or(q.slippage_bps))
                .collect(),
        );
        let limit = g.max_slippage_p95_bps;
        out.push(gate(
            "slippage p95 (bps)",
            p95.and_then(|p| p.to_f64()),
            limit.to_f64().unwrap_or(0.0),
            p95.is_some_and(|p| p <= limit),
        ));
    }
    out
}

fn gate(name: &str, figure: Option<f64>, threshold: f64, pass: bool) -> GateResult {
    GateResult {
        gate: name.into(),
        figure,
        threshold,
        pass,
        since: None,
    }
}

/// The nearest-rank 95th percentile.
fn percentile_95(mut v: Vec<Decimal>) -> Option<Decimal> {
    v.sort();
    super::book::nearest_rank(&v, 95)
}

/// Whether the last `window_trades` round trips of the phase have fallen below the demotion floors; the
/// reason when they have.
pub fn degraded(cfg: &CapitalConfig, book: &LiveBook, state: &LadderState) -> Option<String> {
    let d = &cfg.demotion;
    let trades: Vec<_> = book
        .trades
        .iter()
        .filter(|t| t.exit_time >= state.phase_since)
        .collect();
    if trades.len() < d.window_trades {
        return None;
    }
    let window: Vec<_> = trades[trades.len() - d.window_trades..]
        .iter()
        .map(|t| (*t).clone())
        .collect();
    let from = window
        .first()
        .map_or(state.phase_since, |t| t.entry_time.min(t.exit_time));
    let curve: Vec<(Millis, Decimal)> = book
        .curve
        .iter()
        .copied()
        .filter(|(t, _)| *t >= from)
        .collect();
    let m = crate::risk::metrics::compute(&curve, &window, cfg.risk_free_rate);
    let win = m.win_rate.unwrap_or(0.0);
    if win < d.min_win_rate {
        return Some(format!(
            "win rate {win:.3} over the last {} trades is under {}",
            d.window_trades, d.min_win_rate
        ));
    }
    match m.sharpe {
        Some(s) if s < d.min_sharpe => Some(format!(
            "sharpe {s:.3} over the last {} trades is under {}",
            d.window_trades, d.min_sharpe
        )),
        _ => None,
    }
}

/// Losing round trips in a row at the end of the record since `since`.
pub fn losing_streak(book: &LiveBook, since: Millis) -> u32 {
    book.trades
        .iter()
        .rev()
        .take_while(|t| t.exit_time >= since && t.pnl < Decimal::ZERO)
        .count() as u32
}

/// The drawdown from the peak since the state's baseline.
pub fn drawdown(book: &LiveBook, state: &LadderState) -> Decimal {
    let peak = book.peak_since(state.baseline);
    if peak <= Decimal::ZERO {
        return Decimal::ZERO;
    }
    Decimal::ONE - book.equity() / peak
}

/// A move to phase `to`, journaled: one step up only when every gate passes (or `force`, recorded with the
/// failing gates), any step down. Returns what was recorded, or why it was refused.
pub fn promote(
    cfg: &CapitalConfig,
    journal: &Journal,
    to: &str,
    force: bool,
    reason: Option<String>,
    now: Millis,
) -> Result<Result<CapitalEvent, String>, JournalError> {
    let (book, _, state) = load(cfg, journal, now)?;
    let Some(target) = cfg.phase_index(to) else {
        let names: Vec<&str> = cfg.phases.iter().map(|p| p.name.as_str()).collect();
        return Ok(Err(format!(
            "no phase {to} in the ladder ({})",
            names.join(", ")
        )));
    };
    if target == state.phase {
        return Ok(Err(format!("already in phase {to}")));
    }
    let gates = gates(cfg, &book, &state, now);
    let failing: Vec<&str> = gates
        .iter()
        .filter(|g| !g.pass)
        .map(|g| g.gate.as_str())
        .collect();
    if target > state.phase + 1 && !force {
        let next = &cfg.phases[state.phase + 1].name;
        return Ok(Err(format!(
            "phases are climbed one at a time: the next after {} is {next}",
            cfg.phases[state.phase].name
        )));
    }
    if target > state.phase && !failing.is_empty() && !force {
        return Ok(Err(format!(
            "refused: these gates fail: {} (see hypeflow capital status; --force --reason TEXT overrides, and is recorded)",
            failing.join(", ")
        )));
    }
    let up = target > state.phase;
    let forced = force && up && !failing.is_empty();
    let reason = reason.unwrap_or_else(|| {
        if up {
            "every gate passed"
        } else {
            "stepped down by an operator"
        }
        .into()
    });
    let e = CapitalEvent::Phase {
        at: now,
        from: cfg.phases[state.phase].name.clone(),
        phase: to.into(),
        reason,
        forced,
        figures: gates,
    };
    journal.record_capital_event(now, &e)?;
    Ok(Ok(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Fill, FillStatus, OrderIntent, Side};

    const DAY: Millis = 86_400_000;

    fn ladder() -> CapitalConfig {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/capital/ladder.toml"))
                .unwrap();
        CapitalConfig::parse(&text, "ladder").unwrap()
    }

    fn intent(side: Side, price: Decimal) -> OrderIntent {
        OrderIntent {
            id: "i".into(),
            pipeline_id: "p".into(),
            token: "AXL".into(),
            side,
            quantity: None,
            notional: None,
            reference_price: price,
            max_slippage_bps: Decimal::from(50),
            protection: Default::default(),
            reason: String::new(),
            decision_time: 0,
            inputs_version: "v".into(),
            triggered: None,
        }
    }

    fn fill(side: Side, qty: i64, price: Decimal, at: Millis) -> Fill {
        Fill {
            intent_id: format!("{at}"),
            venue: "paper".into(),
            token: "AXL".into(),
            side,
            quantity: Decimal::from(qty),
            price,
            fee: Decimal::ZERO,
            gas: Decimal::ZERO,
            tx_hash: None,
            status: FillStatus::Filled,
            reason: String::new(),
            fill_time: at,
            quoted_price: None,
        }
    }

    /// One round trip a day for `days` days, every `loss_every`-th one a small loss, the rest a gain.
    fn record(days: i64, loss_every: i64) -> LiveBook {
        let mut b = LiveBook::new("(account)", Decimal::from(10_000), 0);
        for d in 0..days {
            let buy = Decimal::from(10);
            let sell = if d % loss_every == loss_every - 1 {
                Decimal::new(99, 1)
            } else {
                Decimal::new(102, 1)
            };
            b.apply_for(
                &intent(Side::Buy, buy),
                &fill(Side::Buy, 100, buy, d * DAY + 1_000),
            );
            b.apply_for(
                &intent(Side::Sell, sell),
                &fill(Side::Sell, 100, sell, d * DAY + 3_600_000),
            );
        }
        b
    }

    #[test]
    fn the_shipped_ladder_reads_and_every_key_has_a_range() {
        let c = ladder();
        assert_eq!(c.phases[0].venue, PhaseVenue::Paper);
        assert_eq!(c.gates.min_days, 30);
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/capital/ladder.toml"))
                .unwrap();
        for (from, to, why) in [
            (
                "max_drawdown = \"0.10\"",
                "max_drawdown = \"1.5\"",
                "max_drawdown",
            ),
            (
                "starting_capital = \"10000\"",
                "starting_capital = \"0\"",
                "starting_capital",
            ),
            ("min_win_rate = 0.60", "min_win_rate = 1.60", "min_win_rate"),
            ("window_trades = 20", "window_trades = 1", "window_trades"),
            (
                "max_position = \"500\"",
                "max_position = \"-5\"",
                "max_position is -5: it must be above 0",
            ),
            (
                "min_sharpe = 1.5",
                "min_sharpe = nan",
                "[gates] min_sharpe is NaN",
            ),
            (
                "starting_capital = \"10000\"",
                "starting_capital = \"10000000000000\"",
                "up to 1000000000000",
            ),
            ("name = \"micro\"", "name = \"paper\"", "twice"),
            (
                "venue = \"paper\"",
                "venue = \"binance\"",
                "unknown variant",
            ),
        ] {
            let err = CapitalConfig::parse(&text.replacen(from, to, 1), "l").unwrap_err();
            assert!(err.0.contains(why), "{to}: {err}");
        }
    }

    #[test]
    fn gates_pass_on_a_record_that_meets_the_plan_and_not_before() {
        let c = ladder();
        let state = LadderState::from_events(&c, &[], 0, 40 * DAY);
        let good = record(35, 5);
        let g = gates(&c, &good, &state, 35 * DAY);
        assert!(g.iter().all(|g| g.pass), "{g:?}");
        // "since" (judged at each round trip's close): the days gate since the first close after day 30, the
        // trades gate since the 20th round trip
        let since = |name: &str| {
            g.iter()
                .find(|x| x.gate == name)
                .unwrap()
                .since
                .clone()
                .unwrap()
        };
        assert_eq!(since("days in phase"), to_rfc3339(30 * DAY + 3_600_000));
        assert!(
            since("closed trades").starts_with("1970-01-20"),
            "{}",
            since("closed trades")
        );
        // too early: 10 days
        let g = gates(&c, &record(10, 5), &state, 10 * DAY);
        assert!(!g.iter().find(|x| x.gate == "days in phase").unwrap().pass);
        // losing half the time: the win rate fails
        let g = gates(&c, &record(35, 2), &state, 35 * DAY);
        assert!(
            !g.iter().find(|x| x.gate == "win rate").unwrap().pass,
            "{g:?}"
        );
        // paper is not judged on slippage; micro is
        let micro = LadderState {
            phase: 1,
            ..state.clone()
        };
        assert!(gates(&c, &good, &micro, 35 * DAY)
            .iter()
            .any(|g| g.gate.starts_with("slippage") && g.pass));
    }

    #[test]
    fn pauses_lock_and_resume_and_phases_come_from_the_events() {
        let c = ladder();
        let ev = vec![
            CapitalEvent::Phase {
                at: 5,
                from: "paper".into(),
                phase: "micro".into(),
                reason: "r".into(),
                forced: true,
                figures: vec![],
            },
            CapitalEvent::Pause {
                at: 10,
                until: Some(10 + DAY),
                reason: "dd".into(),
                keep_baseline: false,
            },
        ];
        let s = LadderState::from_events(&c, &ev, 0, 20);
        assert_eq!(
            (s.phase, s.phase_since, s.paused),
            (1, 5, Some((10, Some(10 + DAY))))
        );
        // the lock runs out: no pause, and the drawdown is measured from then
        let s = LadderState::from_events(&c, &ev, 0, 10 + DAY);
        assert_eq!((s.paused, s.baseline), (None, 10 + DAY));
        // a hold that was the venue's doing ends without a new baseline
        let mut held = ev.clone();
        if let CapitalEvent::Pause { keep_baseline, .. } = &mut held[1] {
            *keep_baseline = true;
        }
        let s = LadderState::from_events(&c, &held, 0, 10 + DAY);
        assert_eq!((s.paused, s.baseline), (None, 5), "from the phase's start");
        let mut ev2 = ev.clone();
        ev2[1] = CapitalEvent::Pause {
            at: 10,
            until: None,
            reason: "dd".into(),
            keep_baseline: false,
        };
        assert!(
            LadderState::from_events(&c, &ev2, 0, 100 * DAY)
                .paused
                .is_some(),
            "until a resume"
        );
        ev2.push(CapitalEvent::Resume {
            at: 50,
            reason: "ok".into(),
        });
        let s = LadderState::from_events(&c, &ev2, 0, 100);
        assert_eq!((s.paused, s.baseline), (None, 50));
    }

    #[test]
    fn a_degraded_phase_is_named_with_its_figure() {
        let c = ladder();
        let s = LadderState::from_events(&c, &[], 0, 0);
        assert!(degraded(&c, &record(30, 5), &s).is_none());
        let why = degraded(&c, &record(30, 1), &s).unwrap();
        assert!(why.contains("win rate 0.000"), "{why}");
    }

    #[test]
    fn slippage_is_against_the_decision_price_and_the_p95_is_nearest_rank() {
        let mut b = LiveBook::new("a", Decimal::from(1000), 0);
        b.apply_for(
            &intent(Side::Buy, Decimal::from(100)),
            &fill(Side::Buy, 1, Decimal::from(101), 1),
        );
        b.apply_for(
            &intent(Side::Sell, Decimal::from(100)),
            &fill(Side::Sell, 1, Decimal::from(99), 2),
        );
        assert_eq!(
            b.quality.iter().map(|q| q.slippage_bps).collect::<Vec<_>>(),
            vec![Decimal::from(100), Decimal::from(100)]
        );
        // against the venue's quote: a buy quoted at 100.5 that filled at 101 slipped 49.75 bps
        let mut quoted = fill(Side::Buy, 1, Decimal::from(101), 3);
        quoted.quoted_price = Some(Decimal::new(1005, 1));
        b.apply_for(&intent(Side::Buy, Decimal::from(100)), &quoted);
        let last = b.quality.last().unwrap();
        assert_eq!(last.slippage_vs_quote_bps, Some(Decimal::new(497512, 4)));
        assert_eq!(b.quality[0].slippage_vs_quote_bps, None);
        let v: Vec<Decimal> = (1..=100).map(Decimal::from).collect();
        assert_eq!(percentile_95(v), Some(Decimal::from(95)));
        assert_eq!(percentile_95(vec![]), None);
    }
}
