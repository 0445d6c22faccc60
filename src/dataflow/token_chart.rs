//! Each token's picture for the report: its bars and its sentiment, in buckets that double in width whenever
//! a token has more than `MAX_POINTS` of them, so memory stays bounded on years of bars (and in a live run,
//! which never reaches the end where the pictures are emitted). The values are for drawing: prices as `f64`
//! here never enter a decision or a figure of money.

use super::records::TokenUpdate;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Buckets kept per token at most (a chart 900 pixels wide shows no more).
pub const MAX_POINTS: usize = 360;

/// One bucket of bars: their open, high, low and close, and the sentiment windows seen at their closes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChartPoint {
    /// The first bar's open time and the last bar's close time.
    pub start: i64,
    pub end: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    /// The mean score of the windows current at the bucket's bar closes (none: no window was current).
    pub score: Option<f64>,
    /// The most mentions and the highest mention velocity (z) among those windows.
    pub mentions: u32,
    pub velocity_z: Option<f64>,
    #[serde(skip)]
    scores: (f64, u32),
}

impl ChartPoint {
    fn of(u: &TokenUpdate) -> ChartPoint {
        let f = |d: rust_decimal::Decimal| d.to_f64().unwrap_or(0.0);
        let b = &u.bar;
        let mut p = ChartPoint {
            start: b.open_time,
            end: b.close_time(),
            open: f(b.open),
            high: f(b.high),
            low: f(b.low),
            close: f(b.close),
            score: None,
            mentions: 0,
            velocity_z: None,
            scores: (0.0, 0),
        };
        if let Some(w) = &u.sentiment {
            p.scores = (w.score, 1);
            p.score = Some(w.score);
            p.mentions = w.mentions;
            p.velocity_z = Some(w.velocity_z);
        }
        p
    }

    /// `later` (the bars right after these) folded into this bucket.
    fn absorb(&mut self, later: &ChartPoint) {
        self.end = later.end;
        self.high = self.high.max(later.high);
        self.low = self.low.min(later.low);
        self.close = later.close;
        self.scores.0 += later.scores.0;
        self.scores.1 += later.scores.1;
        self.score = (self.scores.1 > 0).then(|| self.scores.0 / self.scores.1 as f64);
        self.mentions = self.mentions.max(later.mentions);
        self.velocity_z = match (self.velocity_z, later.velocity_z) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

/// One token's buckets, oldest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenChart {
    pub token: String,
    pub points: Vec<ChartPoint>,
    /// The first bar's open and the last bar's close, exact: the buy-and-hold benchmark's return.
    pub first_open: Decimal,
    pub last_close: Decimal,
}

#[derive(Default)]
struct Series {
    width: i64,
    points: Vec<ChartPoint>,
    first_open: Decimal,
    last_close: Decimal,
}

impl Series {
    fn push(&mut self, p: ChartPoint, max: usize) {
        fold_in(&mut self.points, self.width, p);
        while self.points.len() > max {
            self.widen();
        }
    }

    /// Doubles the bucket width and merges the buckets that now share one.
    fn widen(&mut self) {
        self.width = self.width.saturating_mul(2);
        for p in std::mem::take(&mut self.points) {
            fold_in(&mut self.points, self.width, p);
        }
    }
}

/// `p` appended to `points`, or folded into the last bucket when both start in the same `width`.
fn fold_in(points: &mut Vec<ChartPoint>, width: i64, p: ChartPoint) {
    let key = |t: i64| t.div_euclid(width.max(1));
    match points.last_mut() {
        Some(last) if key(last.start) == key(p.start) => last.absorb(&p),
        _ => points.push(p),
    }
}

/// Every token's series, fed the bar closes in time order.
#[derive(Default)]
pub struct ChartRecorder {
    series: BTreeMap<u32, Series>,
}

impl ChartRecorder {
    pub fn observe(&mut self, u: &TokenUpdate) {
        let s = self.series.entry(u.bar.token).or_insert_with(|| Series {
            width: u.bar.interval.max(1),
            points: Vec::new(),
            first_open: u.bar.open,
            last_close: u.bar.close,
        });
        s.last_close = u.bar.close;
        s.push(ChartPoint::of(u), MAX_POINTS);
    }

    /// The pictures, by token symbol.
    pub fn charts(&self, symbol: impl Fn(u32) -> String) -> Vec<TokenChart> {
        let mut out: Vec<TokenChart> = self
            .series
            .iter()
            .map(|(tok, s)| TokenChart {
                token: symbol(*tok),
                points: s.points.clone(),
                first_open: s.first_open,
                last_close: s.last_close,
            })
            .collect();
        out.sort_by(|a, b| a.token.cmp(&b.token));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataflow::records::{BarRec, SentimentWindow};

    fn update(i: i64, close: i64, window: Option<(f64, u32)>) -> TokenUpdate {
        let d = Decimal::from;
        TokenUpdate {
            bar: BarRec {
                token: 0,
                open_time: i * 60,
                interval: 60,
                open: d(close - 1),
                high: d(close + 2),
                low: d(close - 3),
                close: d(close),
                volume: d(1),
            },
            atr: None,
            volatility: None,
            log_return: None,
            sentiment: window.map(|(score, mentions)| SentimentWindow {
                token: 0,
                end: i * 60 + 60,
                mentions,
                score,
                velocity_z: mentions as f64,
                authors: Vec::new(),
            }),
            signal: None,
        }
    }

    #[test]
    fn buckets_double_and_keep_the_range_and_the_sentiment() {
        let mut r = ChartRecorder::default();
        let n = MAX_POINTS as i64 * 4 + 3;
        for i in 0..n {
            let w = (i % 10 == 0).then_some((0.5, (i % 7) as u32 + 1));
            r.observe(&update(i, 100 + i, w));
        }
        let c = r.charts(|_| "TOK".into());
        let pts = &c[0].points;
        assert!(
            pts.len() <= MAX_POINTS && pts.len() > MAX_POINTS / 2,
            "{}",
            pts.len()
        );
        assert_eq!(pts[0].start, 0);
        assert_eq!(pts[0].open, 99.0, "the first bar's open");
        assert_eq!(
            (c[0].first_open, c[0].last_close),
            (99.into(), (100 + n - 1).into())
        );
        assert_eq!(pts.last().unwrap().end, n * 60);
        assert_eq!(pts.last().unwrap().close, (100 + n - 1) as f64);
        // no gap and no overlap between buckets, and every bar inside one
        for w in pts.windows(2) {
            assert_eq!(w[0].end, w[1].start);
        }
        let highest = pts.iter().map(|p| p.high).fold(f64::MIN, f64::max);
        let lowest = pts.iter().map(|p| p.low).fold(f64::MAX, f64::min);
        assert_eq!((lowest, highest), (97.0, (100 + n - 1 + 2) as f64));
        // a bucket of 8 bars holds one window in ten bars or none
        assert!(pts
            .iter()
            .all(|p| p.score.is_none() || p.score == Some(0.5)));
        assert_eq!(pts.iter().map(|p| p.mentions).max(), Some(7));
        assert!(pts.iter().any(|p| p.score.is_none()));
    }
}
