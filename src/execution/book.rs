//! The live book: what the executor's fills have made of its capital, per pipeline. Positions, cash and round
//! trips follow the backtest's accounting exactly (`risk::Book`: fees and gas counted once, a buy into a held
//! position averaging in, a partial sell closing its share), and the equity curve feeds the backtest's own
//! metric definitions (`risk::metrics`), so a live Sharpe or drawdown means what a backtest's does.

use super::journal::{BarMark, Journal, JournalError};
use crate::model::time::{to_rfc3339, Millis};
use crate::model::{Fill, FillStatus, OrderIntent, Side, Trade};
use crate::risk::metrics::{self, Metrics};
use crate::risk::Book;
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;

/// One pipeline's book.
#[derive(Clone, Debug)]
pub struct LiveBook {
    pub pipeline: String,
    pub capital: Decimal,
    book: Book,
    /// Dense ids for `risk::Book`, in the order tokens first traded.
    ids: BTreeMap<String, u32>,
    pub trades: Vec<Trade>,
    /// Equity after each fill and each mark, in time order (the metrics' curve).
    pub curve: Vec<(Millis, Decimal)>,
    pub fees: Decimal,
    pub gas: Decimal,
    pub fills: u64,
    /// Every fill held to its decision price: the execution-quality report.
    pub quality: Vec<FillQuality>,
    /// (fill time, notional) of every fill, for the day's notional.
    notional_log: Vec<(Millis, Decimal)>,
    /// Each held token's stop price (from its latest buy intent's stop-loss), for the portfolio heat.
    stops: BTreeMap<String, Decimal>,
    /// Time of each token's mark (a fill price until a market price arrives).
    marked_at: BTreeMap<String, Millis>,
    /// The curve's points are the bar closes the paper venue journaled, not the fills (the backtest's curve).
    bar_marked: bool,
}

/// The books the journal's fills make (grouped by `key`; `open` makes one from the start), with its bar marks
/// when it has them: each fill before the first bar close after it, as the backtest's fill model applies it.
fn replay(
    journal: &Journal,
    capital: Decimal,
    open: Option<(&str, Millis)>,
    key: impl Fn(&OrderIntent) -> String,
) -> Result<BTreeMap<String, LiveBook>, JournalError> {
    let marks = journal.marks()?;
    let mut fills = journal.filled()?;
    fills.sort_by_key(|(_, f)| f.fill_time);
    let bar_start = marks.first().map(|m| m.open);
    let mut books: BTreeMap<String, LiveBook> = BTreeMap::new();
    if let Some((name, s)) = open {
        let first = bar_start.map_or(s, |b| b.min(s));
        books.insert(name.to_string(), LiveBook::new(name, capital, first));
    }
    let mut pending = fills.into_iter().peekable();
    let mut apply_before = |books: &mut BTreeMap<String, LiveBook>, before: Option<Millis>| {
        while let Some((intent, fill)) =
            pending.next_if(|(_, f)| before.is_none_or(|b| f.fill_time < b))
        {
            let k = key(&intent);
            let t0 = bar_start.unwrap_or(fill.fill_time);
            let book = books.entry(k.clone()).or_insert_with(|| {
                let mut b = LiveBook::new(&k, capital, t0);
                b.bar_marked = bar_start.is_some();
                b
            });
            book.apply_for(&intent, &fill);
        }
    };
    for b in books.values_mut() {
        b.bar_marked = bar_start.is_some();
    }
    let mut i = 0;
    while i < marks.len() {
        let close = marks[i].close;
        let j = i + marks[i..].iter().take_while(|m| m.close == close).count();
        apply_before(&mut books, Some(close));
        for b in books.values_mut() {
            b.close_bar(close, &marks[i..j]);
        }
        i = j;
    }
    apply_before(&mut books, None);
    Ok(books)
}

impl LiveBook {
    pub fn new(pipeline: &str, capital: Decimal, start: Millis) -> LiveBook {
        LiveBook {
            pipeline: pipeline.into(),
            capital,
            book: Book::new(capital),
            ids: BTreeMap::new(),
            trades: Vec::new(),
            curve: vec![(start, capital)],
            fees: Decimal::ZERO,
            gas: Decimal::ZERO,
            fills: 0,
            notional_log: Vec::new(),
            quality: Vec::new(),
            stops: BTreeMap::new(),
            marked_at: BTreeMap::new(),
            bar_marked: false,
        }
    }

    /// Every pipeline's book from the journal's fills, each starting from `capital` at its first fill (or,
    /// when the journal holds bar marks, at the first bar's open).
    pub fn from_journal(
        journal: &Journal,
        capital: Decimal,
    ) -> Result<Vec<LiveBook>, JournalError> {
        let books = replay(journal, capital, None, |i| i.pipeline_id.clone())?;
        Ok(books.into_values().collect())
    }

    /// One book over every pipeline's fills: the account's, which the capital ladder judges.
    pub fn account_from_journal(
        journal: &Journal,
        capital: Decimal,
        start: Millis,
    ) -> Result<LiveBook, JournalError> {
        let mut books = replay(journal, capital, Some(("(account)", start)), |_| {
            "(account)".into()
        })?;
        Ok(books
            .remove("(account)")
            .unwrap_or_else(|| LiveBook::new("(account)", capital, start)))
    }

    /// A bar close: every held token marked at its close, and the curve's point at the close, as the
    /// backtest takes one at each bar close (held or not).
    fn close_bar(&mut self, close: Millis, marks: &[BarMark]) {
        for m in marks {
            if let Some(&id) = self.ids.get(&m.token) {
                if self.book.quantity(id).is_some() {
                    self.book.mark(id, m.price);
                    self.marked_at.insert(m.token.clone(), close);
                }
            }
        }
        self.point(close);
    }

    /// Counts a fill of `intent`, with its slippage against the intent's decision price.
    pub fn apply_for(&mut self, intent: &OrderIntent, f: &Fill) {
        if f.status == FillStatus::Filled && intent.reference_price > Decimal::ZERO {
            let bps = slippage_bps(f.side, f.price, intent.reference_price);
            let vs_quote = f
                .quoted_price
                .filter(|q| *q > Decimal::ZERO)
                .map(|q| slippage_bps(f.side, f.price, q));
            self.quality.push(FillQuality {
                intent_id: f.intent_id.clone(),
                venue: f.venue.clone(),
                token: f.token.clone(),
                side: f.side,
                at: f.fill_time,
                decision_price: intent.reference_price,
                quoted_price: f.quoted_price,
                executed_price: f.price,
                slippage_bps: bps,
                slippage_vs_quote_bps: vs_quote,
                fee: f.fee,
                gas: f.gas,
            });
        }
        if f.status == FillStatus::Filled && f.side == Side::Buy {
            match intent.protection.stop_loss {
                Some(d) => self.stops.insert(f.token.clone(), d.below(f.price)),
                None => self.stops.remove(&f.token),
            };
        }
        self.apply(f);
        if self.held(&f.token) <= Decimal::ZERO {
            self.stops.remove(&f.token);
        }
    }

    fn id(&mut self, token: &str) -> u32 {
        let next = self.ids.len() as u32;
        *self.ids.entry(token.to_string()).or_insert(next)
    }

    /// Counts a fill (a refusal changes nothing).
    pub fn apply(&mut self, f: &Fill) {
        if f.status != FillStatus::Filled {
            return;
        }
        let id = self.id(&f.token);
        match self.book.apply(id, f) {
            Ok(Some(t)) => self.trades.push(t),
            Ok(None) => {}
            // the fill happened (it is journaled); only this book's figures cannot follow it
            Err(e) => tracing::error!(
                "the live book cannot count the fill of {} ({}): {e}; its figures leave it out",
                f.intent_id,
                f.token
            ),
        }
        self.fees += f.fee;
        self.gas += f.gas;
        self.fills += 1;
        let notional = f.quantity.checked_mul(f.price).unwrap_or(Decimal::MAX);
        self.notional_log.push((f.fill_time, notional));
        self.marked_at.insert(f.token.clone(), f.fill_time);
        if !self.bar_marked {
            self.point(f.fill_time);
        }
    }

    /// Marks a held token to a market price seen at `at`; older prices than the last mark are ignored.
    pub fn mark(&mut self, token: &str, price: Decimal, at: Millis) {
        let Some(&id) = self.ids.get(token) else {
            return;
        };
        if self.book.quantity(id).is_none() || self.marked_at.get(token).is_some_and(|t| *t > at) {
            return;
        }
        let before = self.book.mark_of(id);
        self.book.mark(id, price);
        if let Err(e) = self.book.equity() {
            // a price that makes the book's value unrepresentable is not a market: the last mark stands
            tracing::warn!("the price {price} of {token} at {at} is ignored: {e}");
            match before {
                Some(b) => self.book.mark(id, b),
                None => self.book.unmark(id),
            }
            return;
        }
        self.marked_at.insert(token.into(), at);
        self.point(at);
    }

    fn point(&mut self, at: Millis) {
        let e = self.equity();
        match self.curve.last_mut() {
            Some(last) if last.0 == at => last.1 = e,
            Some(last) if last.0 > at => {}
            _ => self.curve.push((at, e)),
        }
        // the peak moves with the equity; an equity that cannot be computed leaves it
        let _ = self.book.drawdown();
    }

    /// The equity at the marks. Marks that would make it unrepresentable are refused (`mark`), so only a fill
    /// the book could not count leaves it beyond a decimal: it then reads as the largest decimal, which no cap
    /// passes.
    pub fn equity(&self) -> Decimal {
        self.book.equity().unwrap_or(Decimal::MAX)
    }

    /// How much of `token` is held.
    pub fn held(&self, token: &str) -> Decimal {
        self.ids
            .get(token)
            .and_then(|id| self.book.quantity(*id))
            .unwrap_or(Decimal::ZERO)
    }

    /// A held token's value at its mark.
    pub fn position_value(&self, token: &str) -> Decimal {
        self.ids
            .get(token)
            .map(|id| self.book.position_value(*id).unwrap_or(Decimal::MAX))
            .unwrap_or(Decimal::ZERO)
    }

    /// The open positions' value at their marks.
    pub fn exposure(&self) -> Decimal {
        let values = self
            .book
            .positions
            .keys()
            .map(|id| self.book.position_value(*id));
        crate::model::money::sum_exact(values, "the exposure").unwrap_or(Decimal::MAX)
    }

    /// Portfolio heat: what the open positions lose if every stop is hit, (entry - stop) x quantity summed; a
    /// position without a stop can lose all of it.
    pub fn heat(&self) -> Decimal {
        self.book
            .positions
            .values()
            .map(|p| {
                let stop = self.stops.get(&p.symbol).copied().unwrap_or(Decimal::ZERO);
                let loss = (p.entry_price - stop).max(Decimal::ZERO);
                loss.checked_mul(p.quantity).unwrap_or(Decimal::MAX)
            })
            .fold(Decimal::ZERO, |a, b| a.saturating_add(b))
    }

    /// Notional traded on `at`'s UTC day.
    pub fn day_notional(&self, at: Millis) -> Decimal {
        let day = at.div_euclid(86_400_000);
        self.notional_log
            .iter()
            .rev()
            .take_while(|(t, _)| t.div_euclid(86_400_000) == day)
            .map(|(_, n)| *n)
            .fold(Decimal::ZERO, |a, b| a.saturating_add(b))
    }

    /// The highest equity since `since`: the equity standing at that moment, every point after, and now.
    pub fn peak_since(&self, since: Millis) -> Decimal {
        let standing = self
            .curve
            .iter()
            .rev()
            .find(|(t, _)| *t <= since)
            .map(|(_, e)| *e);
        self.curve
            .iter()
            .filter(|(t, _)| *t > since)
            .map(|(_, e)| *e)
            .chain(standing)
            .fold(self.equity(), Decimal::max)
    }

    /// Drawdown from the equity peak (fraction).
    pub fn drawdown(&self) -> Decimal {
        let peak = self.book.peak_equity.max(self.equity());
        if peak.is_zero() {
            Decimal::ZERO
        } else {
            Decimal::ONE - self.equity().checked_div(peak).unwrap_or(Decimal::ONE)
        }
    }

    /// The backtest's metrics over this book's curve and round trips.
    pub fn metrics(&self, risk_free_rate: f64) -> Metrics {
        metrics::compute(&self.curve, &self.trades, risk_free_rate)
    }

    /// What `hypeflow book` prints.
    pub fn view(&self) -> BookView {
        let positions: Vec<PositionView> = self
            .book
            .positions
            .iter()
            .map(|(id, p)| {
                let mark = self.book.mark_of(*id).unwrap_or(p.entry_price);
                PositionView {
                    token: p.symbol.clone(),
                    quantity: p.quantity,
                    entry_price: p.entry_price,
                    mark,
                    marked_at: self.marked_at.get(&p.symbol).map(|t| to_rfc3339(*t)),
                    value: p.quantity * mark,
                    unrealized: p.quantity * (mark - p.entry_price) - p.entry_costs,
                }
            })
            .collect();
        // closed round trips, and the parts of open positions already sold
        let realized: Decimal = self.trades.iter().map(|t| t.pnl).sum::<Decimal>()
            + self
                .book
                .positions
                .values()
                .map(|p| p.realized())
                .sum::<Decimal>();
        let unrealized: Decimal = positions.iter().map(|p| p.unrealized).sum();
        BookView {
            pipeline: self.pipeline.clone(),
            capital: self.capital,
            cash: self.book.cash,
            equity: self.equity(),
            realized,
            unrealized,
            fees: self.fees,
            gas: self.gas,
            peak_equity: self.book.peak_equity.max(self.equity()),
            drawdown: self.drawdown().round_dp(6),
            fills: self.fills,
            round_trips: self.trades.len(),
            positions,
            daily_equity: metrics::daily_series(&self.curve)
                .into_iter()
                .map(|(day, e)| (to_rfc3339(day * 86_400_000)[..10].to_string(), e))
                .collect(),
            execution: self.execution(),
        }
    }
}

/// One fill against its intent: what was decided, what was paid, what it cost.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FillQuality {
    pub intent_id: String,
    pub venue: String,
    pub token: String,
    pub side: Side,
    #[serde(with = "crate::model::time::rfc3339")]
    pub at: Millis,
    pub decision_price: Decimal,
    /// The venue's price just before the trade went out (none for a fill recovered after a restart).
    pub quoted_price: Option<Decimal>,
    pub executed_price: Decimal,
    /// Against the trader: a buy above or a sell below the decision price is positive.
    pub slippage_bps: Decimal,
    /// The same against the venue's quote: what the execution itself cost.
    pub slippage_vs_quote_bps: Option<Decimal>,
    pub fee: Decimal,
    pub gas: Decimal,
}

/// `price` against `reference` in bps, against the trader (a buy above or a sell below is positive).
pub fn slippage_bps(side: Side, price: Decimal, reference: Decimal) -> Decimal {
    let ratio = price / reference - Decimal::ONE;
    let against = match side {
        Side::Buy => ratio,
        Side::Sell => -ratio,
    };
    (against * Decimal::from(10_000)).round_dp(4)
}

/// The fills' slippage against their decision prices, in bps (nearest-rank percentiles).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ExecutionSummary {
    pub fills: usize,
    pub slippage_bps_p50: Option<Decimal>,
    pub slippage_bps_p95: Option<Decimal>,
    pub slippage_bps_max: Option<Decimal>,
    /// Against the venue's quotes, over the fills that have one (the gate judges this p95).
    pub quote_slippage_bps_p95: Option<Decimal>,
    pub fees: Decimal,
    pub gas: Decimal,
}

/// The nearest-rank `pct` percentile of sorted values (None when there are none).
pub fn nearest_rank(sorted: &[Decimal], pct: usize) -> Option<Decimal> {
    let rank = (sorted.len() * pct).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

impl ExecutionSummary {
    /// "N fills, slippage vs decision p50 .. p95 .. max .. bps", as the book and the ladder's status print it.
    pub fn render(&self) -> String {
        let bps = |v: Option<Decimal>| v.map_or("n/a".into(), |b| b.round_dp(1).to_string());
        format!(
            "{} fills, slippage vs decision p50 {} p95 {} max {} bps, vs quote p95 {} bps",
            self.fills,
            bps(self.slippage_bps_p50),
            bps(self.slippage_bps_p95),
            bps(self.slippage_bps_max),
            bps(self.quote_slippage_bps_p95)
        )
    }
}

impl LiveBook {
    pub fn execution(&self) -> ExecutionSummary {
        let mut v: Vec<Decimal> = self.quality.iter().map(|q| q.slippage_bps).collect();
        v.sort();
        let mut q: Vec<Decimal> = self
            .quality
            .iter()
            .filter_map(|q| q.slippage_vs_quote_bps)
            .collect();
        q.sort();
        ExecutionSummary {
            fills: v.len(),
            slippage_bps_p50: nearest_rank(&v, 50),
            slippage_bps_p95: nearest_rank(&v, 95),
            slippage_bps_max: v.last().copied(),
            quote_slippage_bps_p95: nearest_rank(&q, 95),
            fees: self.fees,
            gas: self.gas,
        }
    }
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PositionView {
    pub token: String,
    pub quantity: Decimal,
    pub entry_price: Decimal,
    pub mark: Decimal,
    pub marked_at: Option<String>,
    pub value: Decimal,
    /// (mark - entry) x quantity less the entry's fees and gas: what closing at the mark, before the exit's
    /// own costs, would add to the realized PnL.
    pub unrealized: Decimal,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct BookView {
    pub pipeline: String,
    pub capital: Decimal,
    pub cash: Decimal,
    pub equity: Decimal,
    pub realized: Decimal,
    pub unrealized: Decimal,
    pub fees: Decimal,
    pub gas: Decimal,
    pub peak_equity: Decimal,
    pub drawdown: Decimal,
    pub fills: u64,
    pub round_trips: usize,
    pub positions: Vec<PositionView>,
    /// (UTC day, last equity of the day): the series the Sharpe is computed on.
    pub daily_equity: Vec<(String, Decimal)>,
    pub execution: ExecutionSummary,
}

impl BookView {
    pub fn render(&self) -> String {
        let mut s = format!(
            "pipeline {}\n  capital {}  cash {}  equity {}  peak {}  drawdown {:.2}%\n  realized {}  unrealized {}  fees {}  gas {}  fills {}  round trips {}\n",
            self.pipeline,
            self.capital,
            self.cash.round_dp(2),
            self.equity.round_dp(2),
            self.peak_equity.round_dp(2),
            self.drawdown * Decimal::from(100),
            self.realized.round_dp(2),
            self.unrealized.round_dp(2),
            self.fees.round_dp(4),
            self.gas.round_dp(4),
            self.fills,
            self.round_trips
        );
        s.push_str(&format!("  execution: {}\n", self.execution.render()));
        for p in &self.positions {
            s.push_str(&format!(
                "  {} qty {} entry {} mark {} ({}) value {} unrealized {}\n",
                p.token,
                p.quantity.round_dp(8),
                p.entry_price.round_dp(8),
                p.mark.round_dp(8),
                p.marked_at.as_deref().unwrap_or("?"),
                p.value.round_dp(2),
                p.unrealized.round_dp(2)
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn fill(token: &str, side: Side, qty: &str, price: &str, fee: &str, t: Millis) -> Fill {
        Fill {
            intent_id: format!("{token}-{t}"),
            venue: "paper".into(),
            token: token.into(),
            side,
            quantity: d(qty),
            price: d(price),
            fee: d(fee),
            gas: d("0.5"),
            tx_hash: None,
            status: FillStatus::Filled,
            reason: String::new(),
            fill_time: t,
            quoted_price: None,
        }
    }

    #[test]
    fn with_bar_marks_the_curve_is_the_bar_closes_and_fills_apply_before_the_next_close() {
        use crate::execution::journal::BarMark;
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("j.sqlite")).unwrap();
        let mark = |close: i64, price: &str| BarMark {
            open: close - 300,
            close,
            token: "AXL".into(),
            price: d(price),
        };
        j.record_marks(&[mark(300, "10"), mark(600, "12"), mark(900, "11")])
            .unwrap();
        // bought at the open of the bar closing at 600
        let buy = fill("AXL", Side::Buy, "10", "10", "0.1", 300);
        let intent = OrderIntent {
            id: buy.intent_id.clone(),
            pipeline_id: "p".into(),
            token: "AXL".into(),
            side: Side::Buy,
            quantity: None,
            notional: Some(d("100")),
            reference_price: d("10"),
            max_slippage_bps: d("50"),
            protection: Default::default(),
            reason: "t".into(),
            decision_time: 300,
            inputs_version: "v".into(),
            triggered: None,
        };
        assert!(j.claim(&intent, "t", 0).unwrap());
        j.record_outcome(&buy, 0).unwrap();
        let b = &LiveBook::from_journal(&j, d("1000")).unwrap()[0];
        // the first bar's open, then each close after the book's first fill: the position marked at 12 and
        // 11 (the flat close at 300 comes before the pipeline's first fill, and is the capital anyway)
        let cash = d("1000") - d("100.6");
        assert_eq!(
            b.curve,
            vec![
                (0, d("1000")),
                (600, cash + d("120")),
                (900, cash + d("110")),
            ]
        );
        // the account's book exists from the start: the flat close is a point too
        let a = LiveBook::account_from_journal(&j, d("1000"), 0).unwrap();
        assert_eq!(a.curve[1], (300, d("1000")));
    }

    #[test]
    fn the_book_counts_cash_positions_pnl_and_marks() {
        let day = 86_400_000;
        let mut b = LiveBook::new("p", d("1000"), 0);
        b.apply(&fill("AXL", Side::Buy, "10", "10", "0.1", day));
        b.apply(&fill("BOLT", Side::Buy, "5", "20", "0.1", day + 1));
        // 1000 - 100.6 - 100.6
        assert_eq!(b.view().cash, d("798.8"));
        b.mark("AXL", d("12"), 2 * day);
        b.mark("AXL", d("1"), 2 * day - 1); // older than the last mark: ignored
        b.mark("DOGX", d("5"), 2 * day); // not held: ignored
        let v = b.view();
        assert_eq!(v.equity, d("798.8") + d("120") + d("100"));
        assert_eq!(v.positions[0].unrealized, d("20") - d("0.6"));
        b.apply(&fill("AXL", Side::Sell, "10", "11", "0.1", 3 * day));
        let v = b.view();
        // 110 - 100 - (0.6 entry + 0.6 exit)
        assert_eq!(v.realized, d("8.8"));
        assert_eq!(
            (v.fees, v.gas, v.fills, v.round_trips),
            (d("0.3"), d("1.5"), 3, 1)
        );
        assert_eq!(v.positions.len(), 1);
        // the peak was at the AXL mark of 12: 1018.8; now 1000 + 8.8 less BOLT's entry costs 0.6
        assert_eq!(v.peak_equity, d("1018.8"));
        assert_eq!(v.equity, d("1008.2"));
        assert_eq!(v.daily_equity.len(), 4, "{:?}", v.daily_equity);
        let m = b.metrics(0.0);
        assert_eq!(m.trades, 1);
        assert_eq!(m.win_rate, Some(1.0));
    }

    #[test]
    fn books_come_from_the_journal_per_pipeline() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("j.sqlite")).unwrap();
        for (pipe, f) in [
            ("a", fill("AXL", Side::Buy, "1", "10", "0", 10)),
            ("b", fill("AXL", Side::Buy, "2", "10", "0", 20)),
        ] {
            let i = crate::model::OrderIntent {
                id: f.intent_id.clone(),
                pipeline_id: pipe.into(),
                token: f.token.clone(),
                side: f.side,
                quantity: None,
                notional: Some(d("10")),
                reference_price: d("10"),
                max_slippage_bps: d("50"),
                protection: Default::default(),
                reason: String::new(),
                decision_time: f.fill_time,
                inputs_version: "v".into(),
                triggered: None,
            };
            assert!(j.claim(&i, "t", 0).unwrap());
            j.record_outcome(&f, f.fill_time).unwrap();
        }
        let books = LiveBook::from_journal(&j, d("100")).unwrap();
        let v: Vec<(String, Decimal)> = books
            .iter()
            .map(|b| (b.pipeline.clone(), b.view().cash))
            .collect();
        assert_eq!(v, vec![("a".into(), d("89.5")), ("b".into(), d("79.5"))]);
    }
}
