//! What the report sets beside the strategy: which accounts' posts its entries came from (and how those
//! trades did), and what simply holding the universe would have made.

use super::BacktestResult;
use crate::dataflow::token_chart::TokenChart;
use crate::model::{Fill, FillStatus, Side};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One account's share in the run: every entry whose sentiment window held one of its posts counts fully
/// for it (a window of five accounts credits all five).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuthorRow {
    pub author: String,
    /// Entry intents its posts were behind (filled or not).
    pub entries: usize,
    /// Of those, the round trips that closed, the winners among them, and their profit after costs.
    pub trades: usize,
    pub wins: usize,
    pub pnl: Decimal,
    pub tokens: BTreeSet<String>,
}

impl AuthorRow {
    pub fn hit_rate(&self) -> Option<f64> {
        (self.trades > 0).then(|| self.wins as f64 / self.trades as f64)
    }
}

/// The filled buys by (token, fill time): the round trip of a token entered at that time opened with it.
pub fn entry_fills(fills: &[Fill]) -> HashMap<(&str, i64), &Fill> {
    fills
        .iter()
        .filter(|f| f.status == FillStatus::Filled && f.side == Side::Buy)
        .map(|f| ((f.token.as_str(), f.fill_time), f))
        .collect()
}

/// Accounts by profit of the trades they were behind (highest first), then by entries and name.
pub fn attribution(r: &BacktestResult) -> Vec<AuthorRow> {
    let mut rows: BTreeMap<&str, AuthorRow> = BTreeMap::new();
    for authors in r.entry_authors.values() {
        for a in authors {
            rows.entry(a).or_default().entries += 1;
        }
    }
    let opened = entry_fills(&r.fills);
    for t in &r.trades {
        let Some(f) = opened.get(&(t.token.as_str(), t.entry_time)) else {
            continue;
        };
        for a in r.entry_authors.get(&f.intent_id).into_iter().flatten() {
            let row = rows.entry(a).or_default();
            row.trades += 1;
            row.wins += usize::from(t.pnl > Decimal::ZERO);
            row.pnl = row.pnl.saturating_add(t.pnl);
            row.tokens.insert(t.token.clone());
        }
    }
    let mut out: Vec<AuthorRow> = rows
        .into_iter()
        .map(|(name, mut row)| {
            row.author = name.to_string();
            row
        })
        .collect();
    out.sort_by(|a, b| {
        b.pnl
            .cmp(&a.pnl)
            .then(b.entries.cmp(&a.entries))
            .then(a.author.cmp(&b.author))
    });
    out
}

/// The equal-weight buy and hold of every token with prices: the initial equity split evenly, each share
/// bought at its token's first bar open (cash until then) and held to the last close, without costs.
pub struct BuyAndHold {
    pub tokens: usize,
    /// The exact total return (from each token's first open and last close).
    pub total_return: Option<Decimal>,
    /// Its value at the given times, for drawing beside the equity curve.
    pub curve: Vec<(i64, f64)>,
}

pub fn buy_and_hold(charts: &[TokenChart], initial: Decimal, times: &[i64]) -> BuyAndHold {
    let held: Vec<&TokenChart> = charts
        .iter()
        .filter(|c| c.first_open > Decimal::ZERO && !c.points.is_empty())
        .collect();
    let n = Decimal::from(held.len().max(1));
    let total_return = (!held.is_empty())
        .then(|| {
            held.iter()
                .try_fold(Decimal::ZERO, |acc, c| {
                    acc.checked_add(c.last_close.checked_div(c.first_open)?)
                })
                .and_then(|sum| sum.checked_div(n))
                .map(|mean| mean - Decimal::ONE)
        })
        .flatten();
    let share = initial.to_f64().unwrap_or(0.0) / held.len().max(1) as f64;
    let curve = if held.is_empty() {
        Vec::new()
    } else {
        times
            .iter()
            .map(|&t| {
                let v: f64 = held.iter().map(|c| share * growth(c, t)).sum();
                (t, v)
            })
            .collect()
    };
    BuyAndHold {
        tokens: held.len(),
        total_return,
        curve,
    }
}

/// A token's price at `t` over its first open: 1 before its first bar, the last bucket's close that ended
/// by `t` after it (the first bucket's open inside it).
fn growth(c: &TokenChart, t: i64) -> f64 {
    let first = c.first_open.to_f64().unwrap_or(0.0);
    if first <= 0.0 {
        return 1.0;
    }
    let done = c.points.partition_point(|p| p.end <= t);
    let price = match done {
        0 => c.points[0].open,
        k => c.points[k - 1].close,
    };
    price / first
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataflow::token_chart::ChartPoint;

    fn chart(token: &str, closes: &[(i64, f64)]) -> TokenChart {
        let points = closes
            .iter()
            .map(|&(end, close)| {
                serde_json::from_value::<ChartPoint>(serde_json::json!({
                    "start": end - 10, "end": end, "open": close, "high": close, "low": close,
                    "close": close, "score": null, "mentions": 0, "velocity_z": null
                }))
                .unwrap()
            })
            .collect();
        TokenChart {
            token: token.into(),
            points,
            first_open: Decimal::from_f64_retain(closes[0].1).unwrap(),
            last_close: Decimal::from_f64_retain(closes[closes.len() - 1].1).unwrap(),
        }
    }

    #[test]
    fn buy_and_hold_splits_evenly_and_waits_in_cash_for_a_late_token() {
        let a = chart("A", &[(10, 1.0), (20, 2.0), (30, 3.0)]);
        let b = chart("B", &[(30, 10.0), (40, 5.0)]);
        let bh = buy_and_hold(&[a, b], Decimal::from(100), &[5, 20, 40]);
        // A: 3x, B: 0.5x -> mean 1.75
        assert_eq!(bh.total_return, Some(Decimal::new(75, 2)));
        assert_eq!(bh.tokens, 2);
        // at 5: both at their start; at 20: A doubled, B still cash; at 40: 150 + 25
        assert_eq!(bh.curve, vec![(5, 100.0), (20, 150.0), (40, 175.0)]);
    }
}
