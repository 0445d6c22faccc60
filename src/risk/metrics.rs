//! Performance metrics, one definition each (see README "Metrics"): daily series = last equity of each UTC
//! day, Sharpe/Sortino annualized with sqrt(365) and ddof=1, drawdown on the full-resolution curve, trade
//! statistics on closed trades with a break-even trade not a win. Undefined values are `null`, never a
//! sentinel number.

use crate::model::time::{to_rfc3339, Millis};
use crate::model::Trade;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::Serialize;

const DAY_MS: i64 = 86_400_000;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Metrics {
    pub total_return: Option<f64>,
    pub cagr: Option<f64>,
    pub sharpe: Option<f64>,
    pub sortino: Option<f64>,
    pub calmar: Option<f64>,
    pub max_drawdown: Option<f64>,
    pub max_drawdown_start: Option<String>,
    pub max_drawdown_trough: Option<String>,
    /// RFC 3339 time equity regained the prior peak, or "not recovered".
    pub max_drawdown_recovery: Option<String>,
    pub win_rate: Option<f64>,
    pub profit_factor: Option<f64>,
    /// Mean pnl per closed trade, quote units (exact decimal as a string).
    pub expectancy: Option<Decimal>,
    pub avg_win: Option<Decimal>,
    pub avg_loss: Option<Decimal>,
    pub payoff_ratio: Option<f64>,
    pub trades: usize,
    pub exposure: Option<f64>,
    /// Traded notional (every filled buy and sell) over the mean equity at bar closes: 2.0 is the whole
    /// equity bought and sold once.
    #[serde(default)]
    pub turnover: Option<f64>,
    /// The largest share of equity one position held at any bar close.
    #[serde(default)]
    pub max_position_share: Option<f64>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub initial_equity: Option<Decimal>,
    pub final_equity: Option<Decimal>,
    pub daily_returns: usize,
    pub risk_free_rate: f64,
    /// How signal onsets (judged by `dataflow::signal_quality`) fared at each horizon.
    pub signal_quality: Vec<SignalQuality>,
}

/// Aggregates per horizon for metrics.json.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SignalQuality {
    pub horizon: String,
    /// signals judged at this horizon (later data existed)
    pub evaluated: usize,
    pub up_signals: usize,
    pub down_signals: usize,
    /// share of judged signals whose forward return had the predicted sign (a zero return is a miss)
    pub hit_rate: Option<f64>,
    /// share of up signals (entries) not followed by a rise
    pub false_positive_rate: Option<f64>,
    /// mean forward return x predicted direction
    pub mean_directional_return: Option<f64>,
}

/// Last equity of each UTC day from the first to the last day, carrying values over empty days.
pub fn daily_series(curve: &[(Millis, Decimal)]) -> Vec<(i64, Decimal)> {
    let mut out: Vec<(i64, Decimal)> = Vec::new();
    for &(t, e) in curve {
        let day = t.div_euclid(DAY_MS);
        match out.last_mut() {
            Some((d, v)) if *d == day => *v = e,
            Some(&mut (d, v)) => {
                for gap in d + 1..day {
                    out.push((gap, v));
                }
                out.push((day, e));
            }
            None => out.push((day, e)),
        }
    }
    out
}

pub fn daily_returns(curve: &[(Millis, Decimal)]) -> Vec<f64> {
    day_returns(&daily_series(curve))
        .into_iter()
        .map(|(_, r)| r)
        .collect()
}

/// Each day's return over the day before (of a [`daily_series`]), with the day it ends.
pub fn day_returns(days: &[(i64, Decimal)]) -> Vec<(i64, f64)> {
    days.windows(2)
        .filter_map(|w| ratio(w[1].1, w[0].1).map(|r| (w[1].0, r - 1.0)))
        .collect()
}

/// `a / b` as a statistic: exact when the quotient fits a decimal, in floating point when it does not (an
/// equity that grew from a cent to 10^27), None when `b` is zero.
fn ratio(a: Decimal, b: Decimal) -> Option<f64> {
    if b.is_zero() {
        return None;
    }
    match a.checked_div(b) {
        Some(q) => q.to_f64(),
        None => Some(a.to_f64()? / b.to_f64()?),
    }
}

/// A checked sum of amounts: None when it leaves what a decimal holds.
fn total<'a>(v: impl IntoIterator<Item = &'a Decimal>) -> Option<Decimal> {
    v.into_iter()
        .try_fold(Decimal::ZERO, |acc, x| acc.checked_add(*x))
}

/// Traded notional over the mean of the equity curve's points (None without equity).
pub fn turnover(traded: Decimal, curve: &[(Millis, Decimal)]) -> Option<f64> {
    let n = Decimal::from(curve.len() as u64);
    let mean = total(curve.iter().map(|(_, e)| e))?.checked_div(n)?;
    (mean > Decimal::ZERO)
        .then(|| ratio(traded, mean))
        .flatten()
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Daily returns less the annual risk-free rate compounded down to one day.
pub fn excess_returns(returns: &[f64], rf_annual: f64) -> Vec<f64> {
    let rf = (1.0 + rf_annual).powf(1.0 / 365.0) - 1.0;
    returns.iter().map(|r| r - rf).collect()
}

/// The factor from a daily ratio to an annual one (365 days: crypto trades every day).
pub fn annualizing() -> f64 {
    365f64.sqrt()
}

/// Sample variance (ddof = 1); None under two values.
pub fn sample_variance(xs: &[f64]) -> Option<f64> {
    if xs.len() < 2 {
        return None;
    }
    let m = mean(xs);
    Some(xs.iter().map(|r| (r - m) * (r - m)).sum::<f64>() / (xs.len() as f64 - 1.0))
}

/// The Sharpe ratio per observation (not annualized): mean over sample standard deviation; None under two
/// values or without spread.
pub fn daily_sharpe(excess: &[f64]) -> Option<f64> {
    let sd = sample_variance(excess)?.sqrt();
    (sd > 0.0).then(|| mean(excess) / sd)
}

pub fn sharpe(returns: &[f64], rf_annual: f64) -> Option<f64> {
    daily_sharpe(&excess_returns(returns, rf_annual)).map(|s| s * annualizing())
}

pub fn sortino(returns: &[f64], rf_annual: f64) -> Option<f64> {
    if returns.len() < 2 {
        return None;
    }
    let ex = excess_returns(returns, rf_annual);
    let dd = (ex.iter().map(|r| r.min(0.0).powi(2)).sum::<f64>() / ex.len() as f64).sqrt();
    (dd > 0.0).then(|| mean(&ex) / dd * annualizing())
}

/// (max drawdown, peak time, trough time, recovery time if any)
pub fn max_drawdown(curve: &[(Millis, Decimal)]) -> Option<(f64, Millis, Millis, Option<Millis>)> {
    let first = curve.first()?;
    let (mut peak, mut peak_t) = (first.1, first.0);
    let mut best = (Decimal::ZERO, first.0, first.0);
    for &(t, e) in curve {
        if e > peak {
            peak = e;
            peak_t = t;
        }
        if peak > Decimal::ZERO {
            let dd = e
                .checked_div(peak)
                .map_or(Decimal::ZERO, |r| Decimal::ONE - r);
            if dd > best.0 {
                best = (dd, peak_t, t);
            }
        }
    }
    let (dd, start, trough) = best;
    let peak_value = curve
        .iter()
        .find(|(t, _)| *t == start)
        .map(|p| p.1)
        .unwrap_or(peak);
    let recovery = curve
        .iter()
        .find(|(t, e)| *t > trough && *e >= peak_value)
        .map(|p| p.0);
    Some((dd.to_f64().unwrap_or(0.0), start, trough, recovery))
}

/// Fraction of [start, end] with at least one position open.
pub fn exposure(trades: &[Trade], start: Millis, end: Millis) -> Option<f64> {
    if end <= start {
        return None;
    }
    let mut iv: Vec<(Millis, Millis)> = trades
        .iter()
        .map(|t| (t.entry_time.max(start), t.exit_time.min(end)))
        .filter(|(a, b)| b > a)
        .collect();
    iv.sort();
    let mut covered = 0i64;
    let mut cur: Option<(Millis, Millis)> = None;
    for (a, b) in iv {
        match cur {
            Some((ca, cb)) if a <= cb => cur = Some((ca, cb.max(b))),
            Some((ca, cb)) => {
                covered += cb - ca;
                cur = Some((a, b));
            }
            None => cur = Some((a, b)),
        }
    }
    if let Some((a, b)) = cur {
        covered += b - a;
    }
    Some(covered as f64 / (end - start) as f64)
}

pub fn compute(curve: &[(Millis, Decimal)], trades: &[Trade], rf_annual: f64) -> Metrics {
    let rets = daily_returns(curve);
    let (start, end) = (curve.first().copied(), curve.last().copied());
    let total_return = match (start, end) {
        (Some(s), Some(e)) => ratio(e.1, s.1).map(|r| r - 1.0),
        _ => None,
    };
    let cagr = match (start, end) {
        (Some(s), Some(e)) if e.0 > s.0 && s.1 > Decimal::ZERO && e.1 > Decimal::ZERO => {
            let days = (e.0 - s.0) as f64 / DAY_MS as f64;
            ratio(e.1, s.1).map(|g| g.powf(365.0 / days) - 1.0)
        }
        _ => None,
    };
    let dd = max_drawdown(curve);
    let max_dd = dd.map(|d| d.0);
    let calmar = match (cagr, max_dd) {
        (Some(c), Some(m)) if m > 0.0 => Some(c / m),
        _ => None,
    };
    let n = trades.len();
    let wins: Vec<Decimal> = trades
        .iter()
        .map(|t| t.pnl)
        .filter(|p| *p > Decimal::ZERO)
        .collect();
    let losses: Vec<Decimal> = trades
        .iter()
        .map(|t| t.pnl)
        .filter(|p| *p < Decimal::ZERO)
        .collect();
    let gross_win = total(&wins);
    let gross_loss = total(&losses);
    let avg = |v: &[Decimal]| {
        let n = Decimal::from(v.len() as u64);
        (!v.is_empty())
            .then(|| total(v).map(|s| (s / n).round_dp(10)))
            .flatten()
    };
    let avg_win = avg(&wins);
    let avg_loss = avg(&losses);
    let all: Vec<Decimal> = trades.iter().map(|t| t.pnl).collect();
    Metrics {
        total_return,
        cagr,
        sharpe: sharpe(&rets, rf_annual),
        sortino: sortino(&rets, rf_annual),
        calmar,
        max_drawdown: max_dd,
        max_drawdown_start: dd.filter(|d| d.0 > 0.0).map(|d| to_rfc3339(d.1)),
        max_drawdown_trough: dd.filter(|d| d.0 > 0.0).map(|d| to_rfc3339(d.2)),
        max_drawdown_recovery: dd.filter(|d| d.0 > 0.0).map(|d| {
            d.3.map(to_rfc3339)
                .unwrap_or_else(|| "not recovered".into())
        }),
        win_rate: (n > 0).then(|| wins.len() as f64 / n as f64),
        profit_factor: gross_win
            .zip(gross_loss)
            .and_then(|(w, l)| ratio(w, l.abs())),
        expectancy: avg(&all),
        avg_win,
        avg_loss,
        payoff_ratio: match (avg_win, avg_loss) {
            (Some(w), Some(l)) => ratio(w, l.abs()),
            _ => None,
        },
        trades: n,
        exposure: match (start, end) {
            (Some(s), Some(e)) => exposure(trades, s.0, e.0),
            _ => None,
        },
        turnover: None,
        max_position_share: None,
        start: start.map(|s| to_rfc3339(s.0)),
        end: end.map(|e| to_rfc3339(e.0)),
        initial_equity: start.map(|s| s.1),
        final_equity: end.map(|e| e.1),
        daily_returns: rets.len(),
        risk_free_rate: rf_annual,
        signal_quality: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }
    fn trade(pnl: &str, entry: i64, exit: i64) -> Trade {
        Trade {
            token: "X".into(),
            side: "long".into(),
            entry_time: entry,
            entry_price: d("1"),
            exit_time: exit,
            exit_price: d("1"),
            quantity: d("1"),
            fees: d("0"),
            pnl: d(pnl),
            ret: d("0"),
            exit_reason: "x".into(),
            legs: Vec::new(),
        }
    }
    const H: i64 = 3_600_000;

    /// Golden values worked by hand (and cross-checked with a calculator):
    /// day ends 105, 110, 99, 99 (empty day carried), 121 -> returns 0.047619, -0.1, 0, 0.222222
    fn curve() -> Vec<(Millis, Decimal)> {
        vec![
            (0, d("100")),
            (12 * H, d("105")),
            (DAY_MS + 6 * H, d("120")),
            (DAY_MS + 20 * H, d("110")),
            (2 * DAY_MS + 10 * H, d("99")),
            (4 * DAY_MS + 23 * H, d("121")),
        ]
    }

    #[test]
    fn daily_series_carries_empty_days() {
        let s = daily_series(&curve());
        let v: Vec<Decimal> = s.iter().map(|x| x.1).collect();
        assert_eq!(v, vec![d("105"), d("110"), d("99"), d("99"), d("121")]);
    }

    #[test]
    fn golden_equity_metrics() {
        let m = compute(&curve(), &[], 0.0);
        let r = [
            110.0 / 105.0 - 1.0,
            99.0 / 110.0 - 1.0,
            0.0,
            121.0 / 99.0 - 1.0,
        ];
        let mean = r.iter().sum::<f64>() / 4.0;
        let sd = (r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 3.0).sqrt();
        assert!((m.sharpe.unwrap() - mean / sd * 365f64.sqrt()).abs() < 1e-9);
        // hand value: mean = 0.0424603..., sd = 0.1347080..., sharpe = 6.02194, sortino = 16.22406
        assert!(
            (m.sharpe.unwrap() - 6.021_94).abs() < 1e-4,
            "{:?}",
            m.sharpe
        );
        assert!(
            (m.sortino.unwrap() - 16.224_06).abs() < 1e-4,
            "{:?}",
            m.sortino
        );
        let dd = ((0.1f64 * 0.1) / 4.0).sqrt();
        assert!((m.sortino.unwrap() - mean / dd * 365f64.sqrt()).abs() < 1e-9);
        // peak 120 then 99: 1 - 99/120 = 0.175, recovered at 121
        assert!((m.max_drawdown.unwrap() - 0.175).abs() < 1e-12);
        assert_eq!(
            m.max_drawdown_start.as_deref(),
            Some("1970-01-02T06:00:00.000Z")
        );
        assert_eq!(
            m.max_drawdown_trough.as_deref(),
            Some("1970-01-03T10:00:00.000Z")
        );
        assert_eq!(
            m.max_drawdown_recovery.as_deref(),
            Some("1970-01-05T23:00:00.000Z")
        );
        assert!((m.total_return.unwrap() - 0.21).abs() < 1e-12);
        let days = (4.0 * 24.0 + 23.0) / 24.0;
        let cagr = 1.21f64.powf(365.0 / days) - 1.0;
        assert!((m.cagr.unwrap() - cagr).abs() < 1e-6);
        assert!((m.calmar.unwrap() - cagr / 0.175).abs() < 1e-6);
        assert_eq!(m.daily_returns, 4);
    }

    #[test]
    fn golden_trade_metrics() {
        let trades = [
            trade("10", 0, 10),
            trade("-5", 20, 30),
            trade("0", 25, 40),
            trade("20", 50, 60),
        ];
        let m = compute(&[(0, d("100")), (100, d("125"))], &trades, 0.0);
        assert_eq!(m.trades, 4);
        assert_eq!(m.win_rate, Some(0.5), "break-even is not a win");
        assert_eq!(m.profit_factor, Some(6.0));
        assert_eq!(m.expectancy, Some(d("6.25")));
        assert_eq!(m.avg_win, Some(d("15")));
        assert_eq!(m.avg_loss, Some(d("-5")));
        assert_eq!(m.payoff_ratio, Some(3.0));
        // union of [0,10) [20,40) [50,60) = 40 of 100
        assert_eq!(m.exposure, Some(0.4));
    }

    #[test]
    fn undefined_is_null_not_a_number() {
        let m = compute(
            &[(0, d("100")), (DAY_MS, d("100"))],
            &[trade("5", 0, 1)],
            0.0,
        );
        assert_eq!(m.sharpe, None, "one daily return");
        assert_eq!(m.profit_factor, None, "no losing trade");
        assert_eq!(m.calmar, None, "no drawdown");
        assert_eq!(m.max_drawdown, Some(0.0));
        let flat = compute(
            &[(0, d("100")), (DAY_MS, d("100")), (2 * DAY_MS, d("100"))],
            &[],
            0.0,
        );
        assert_eq!(flat.sharpe, None, "std = 0");
        let empty = compute(&[], &[], 0.0);
        assert_eq!((empty.trades, empty.win_rate, empty.start), (0, None, None));
        let json = serde_json::to_value(&m).unwrap();
        assert!(json["sharpe"].is_null());
    }
}
