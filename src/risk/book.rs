//! The portfolio as fills made it: cash, open positions, marks. Fills, not intents, decide positions.

use crate::model::money::{Exact, Overflow};
use crate::model::{ExitLeg, Fill, FillStatus, Side, Trade};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashMap};

#[derive(Clone, Debug)]
pub struct Position {
    pub symbol: String,
    pub quantity: Decimal,
    pub entry_price: Decimal,
    pub entry_time: i64,
    /// Entry fee plus entry gas, of the quantity still held.
    pub entry_costs: Decimal,
    pub intent_id: String,
    /// The parts already sold (a trim, a scale-out leg): the round trip is one trade when the last part goes.
    pub legs: Vec<ExitLeg>,
}

impl Position {
    /// The profit of the parts already sold, fees included.
    pub fn realized(&self) -> Decimal {
        self.legs.iter().map(|l| l.pnl).sum()
    }
}

#[derive(Clone, Debug)]
pub struct Book {
    pub cash: Decimal,
    pub positions: BTreeMap<u32, Position>,
    marks: HashMap<u32, Decimal>,
    pub peak_equity: Decimal,
}

impl Book {
    pub fn new(cash: Decimal) -> Self {
        Book {
            cash,
            positions: BTreeMap::new(),
            marks: HashMap::new(),
            peak_equity: cash,
        }
    }

    pub fn mark(&mut self, token: u32, price: Decimal) {
        self.marks.insert(token, price);
    }

    /// Forgets a token's mark (its value falls back to the entry price).
    pub fn unmark(&mut self, token: u32) {
        self.marks.remove(&token);
    }

    pub fn mark_of(&self, token: u32) -> Option<Decimal> {
        self.marks.get(&token).copied()
    }

    /// A position's value at its mark (its entry price before the first mark).
    pub fn position_value(&self, token: u32) -> Result<Decimal, Overflow> {
        match self.positions.get(&token) {
            Some(p) => {
                let mark = self.marks.get(&token).copied().unwrap_or(p.entry_price);
                p.quantity.times(mark, "a position's value")
            }
            None => Ok(Decimal::ZERO),
        }
    }

    pub fn equity(&self) -> Result<Decimal, Overflow> {
        self.positions.keys().try_fold(self.cash, |acc, t| {
            acc.plus(self.position_value(*t)?, "the equity")
        })
    }

    /// Updates the peak and returns the current drawdown from it (fraction).
    pub fn drawdown(&mut self) -> Result<Decimal, Overflow> {
        let e = self.equity()?;
        if e > self.peak_equity {
            self.peak_equity = e;
        }
        if self.peak_equity.is_zero() {
            return Ok(Decimal::ZERO);
        }
        Ok(Decimal::ONE - e.over(self.peak_equity, "the drawdown")?)
    }

    pub fn quantity(&self, token: u32) -> Option<Decimal> {
        self.positions.get(&token).map(|p| p.quantity)
    }

    /// Applies a fill; a sell returns the round trip it closes. A buy into a held position averages in (the
    /// entry price weighted by quantity, costs added); a sell of part of a position closes that part, with
    /// its share of the entry costs, and leaves the rest open. Selling more than is held closes what is held.
    /// Every figure is computed before the book changes, so an overflow leaves it as it was.
    pub fn apply(&mut self, token: u32, fill: &Fill) -> Result<Option<Trade>, Overflow> {
        if fill.status != FillStatus::Filled {
            return Ok(None);
        }
        let gross = fill.quantity.times(fill.price, "a fill's value")?;
        let costs = fill.fee.plus(fill.gas, "a fill's costs")?;
        match fill.side {
            Side::Buy => {
                let cash = self
                    .cash
                    .minus(gross.plus(costs, "a buy's cost")?, "the cash")?;
                match self.positions.get_mut(&token) {
                    Some(p) => {
                        let qty = p.quantity.plus(fill.quantity, "a position's quantity")?;
                        let cost = p.quantity.times(p.entry_price, "a position's cost")?;
                        let cost = cost.plus(gross, "a position's cost")?;
                        let avg = if qty > Decimal::ZERO {
                            cost.over(qty, "an entry price")?
                        } else {
                            fill.price
                        };
                        let entry_costs = p.entry_costs.plus(costs, "a position's costs")?;
                        (p.entry_price, p.quantity, p.entry_costs) = (avg, qty, entry_costs);
                    }
                    _ => {
                        self.positions.insert(
                            token,
                            Position {
                                symbol: fill.token.clone(),
                                quantity: fill.quantity,
                                entry_price: fill.price,
                                entry_time: fill.fill_time,
                                entry_costs: costs,
                                intent_id: fill.intent_id.clone(),
                                legs: Vec::new(),
                            },
                        );
                    }
                }
                self.cash = cash;
                self.mark(token, fill.price);
                Ok(None)
            }
            Side::Sell => self.sell(token, fill, gross, costs),
        }
    }

    /// A sell closes its part of the position (the whole when it is at least what is held) with that part's
    /// share of the entry costs; the round trip becomes a trade when nothing is left, its legs summed: the
    /// quantity, the average entry and exit prices, the fees and the profit of every part.
    fn sell(
        &mut self,
        token: u32,
        fill: &Fill,
        gross: Decimal,
        costs: Decimal,
    ) -> Result<Option<Trade>, Overflow> {
        let cash = self
            .cash
            .plus(gross, "the cash")?
            .minus(costs, "the cash")?;
        let Some(p) = self.positions.get(&token) else {
            self.cash = cash;
            return Ok(None);
        };
        let partial = fill.quantity < p.quantity;
        let (closed, entry_costs) = if partial {
            let share = p.entry_costs.times(fill.quantity, "a share of costs")?;
            (fill.quantity, share.over(p.quantity, "a share of costs")?)
        } else {
            (p.quantity, p.entry_costs)
        };
        let cost = closed.times(p.entry_price, "a trade's cost")?;
        let fees = entry_costs.plus(costs, "a trade's fees")?;
        let proceeds = closed.times(fill.price, "a trade's proceeds")?;
        let pnl = proceeds
            .minus(cost, "a trade's profit")?
            .minus(fees, "a trade's profit")?;
        let leg = ExitLeg {
            time: fill.fill_time,
            price: fill.price,
            quantity: closed,
            fees,
            pnl,
            reason: fill.reason.clone(),
        };
        let trade = if partial {
            None
        } else {
            Some(round_trip(p, &leg, cost)?)
        };
        self.cash = cash;
        if partial {
            if let Some(p) = self.positions.get_mut(&token) {
                p.quantity -= closed;
                p.entry_costs -= entry_costs;
                p.legs.push(leg);
            }
        } else {
            self.positions.remove(&token);
        }
        Ok(trade)
    }
}

/// The trade of a position whose last part `last` (costing `last_cost` at the entry price) was just sold.
/// One leg is the plain round trip; several sum (prices are quantity-weighted averages) and are listed.
fn round_trip(p: &Position, last: &ExitLeg, last_cost: Decimal) -> Result<Trade, Overflow> {
    let mut trade = Trade {
        token: p.symbol.clone(),
        side: "long".into(),
        entry_time: p.entry_time,
        entry_price: p.entry_price,
        exit_time: last.time,
        exit_price: last.price,
        quantity: last.quantity,
        fees: last.fees,
        pnl: last.pnl,
        ret: Decimal::ZERO,
        exit_reason: last.reason.clone(),
        legs: Vec::new(),
    };
    let mut cost = last_cost;
    if !p.legs.is_empty() {
        let what = "a trade's legs";
        let mut proceeds = last.quantity.times(last.price, what)?;
        for l in &p.legs {
            trade.quantity = trade.quantity.plus(l.quantity, what)?;
            trade.fees = trade.fees.plus(l.fees, what)?;
            trade.pnl = trade.pnl.plus(l.pnl, what)?;
            proceeds = proceeds.plus(l.quantity.times(l.price, what)?, what)?;
        }
        // what was paid for everything sold: proceeds less the profit and the fees
        cost = proceeds.minus(trade.pnl, what)?.minus(trade.fees, what)?;
        trade.entry_price = cost.over(trade.quantity, what)?;
        trade.exit_price = proceeds.over(trade.quantity, what)?;
        trade.legs = p.legs.iter().cloned().chain([last.clone()]).collect();
    }
    trade.ret = if cost.is_zero() {
        Decimal::ZERO
    } else {
        trade.pnl.over(cost, "a trade's return")?
    };
    Ok(trade)
}

#[cfg(test)]
mod tests {
    use super::*;
    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }
    fn fill(side: Side, qty: &str, price: &str, fee: &str, t: i64) -> Fill {
        Fill {
            intent_id: "i".into(),
            venue: "paper".into(),
            token: "X".into(),
            side,
            quantity: d(qty),
            price: d(price),
            fee: d(fee),
            gas: Decimal::ZERO,
            tx_hash: None,
            status: FillStatus::Filled,
            reason: "r".into(),
            fill_time: t,
            quoted_price: None,
        }
    }

    #[test]
    fn round_trip_pnl_matches_definition() {
        let mut b = Book::new(d("1000"));
        assert!(b
            .apply(0, &fill(Side::Buy, "2", "50", "0.1", 1))
            .unwrap()
            .is_none());
        assert_eq!(b.cash, d("899.9"));
        b.mark(0, d("60"));
        assert_eq!(b.equity(), Ok(d("1019.9")));
        let t = b
            .apply(0, &fill(Side::Sell, "2", "55", "0.11", 2))
            .unwrap()
            .unwrap();
        // pnl = 110 - 100 - (0.1 + 0.11) = 9.79 ; return = 9.79 / 100
        assert_eq!(t.pnl, d("9.79"));
        assert_eq!(t.ret, d("0.0979"));
        assert_eq!(b.cash, d("1009.79"));
        assert!(b.positions.is_empty());
    }

    #[test]
    fn adds_average_in_and_a_position_sold_in_parts_is_one_trade_with_its_legs() {
        let mut b = Book::new(d("1000"));
        b.apply(0, &fill(Side::Buy, "2", "50", "1", 1)).unwrap();
        b.apply(0, &fill(Side::Buy, "2", "60", "1", 2)).unwrap();
        let p = &b.positions[&0];
        assert_eq!(
            (p.quantity, p.entry_price, p.entry_costs),
            (d("4"), d("55"), d("2"))
        );
        assert_eq!(b.cash, d("778"));
        // a quarter out at 70: the leg's pnl = 70 - 55 - (0.5 entry share + 1 fee); no trade yet
        let none = b.apply(0, &fill(Side::Sell, "1", "70", "1", 3)).unwrap();
        assert!(none.is_none());
        let p = &b.positions[&0];
        assert_eq!(
            (p.quantity, p.entry_costs, p.realized()),
            (d("3"), d("1.5"), d("13.5"))
        );
        // the rest: the round trip is one trade
        let t = b
            .apply(0, &fill(Side::Sell, "3", "50", "0", 4))
            .unwrap()
            .unwrap();
        assert!(b.positions.is_empty());
        assert_eq!(t.legs.len(), 2);
        assert_eq!((t.legs[1].quantity, t.legs[1].pnl), (d("3"), d("-16.5")));
        // 4 bought at 55 on average (220 paid), sold 1 at 70 and 3 at 50 (220 received), 3 in fees
        assert_eq!(
            (t.quantity, t.entry_price, t.exit_price),
            (d("4"), d("55"), d("55"))
        );
        assert_eq!((t.fees, t.pnl, t.exit_time), (d("3"), d("-3"), 4));
        assert_eq!(t.ret, d("-3") / d("220"));
        assert_eq!(b.cash, d("997"), "1000 and the round trip's -3");
    }

    #[test]
    fn a_value_beyond_a_decimal_is_an_error_and_leaves_the_book_as_it_was() {
        let mut b = Book::new(d("1000000"));
        b.apply(
            0,
            &fill(Side::Buy, "100000000000000000", "0.000000000001", "0", 1),
        )
        .unwrap();
        b.mark(0, d("1000000000000"));
        assert_eq!(b.equity(), Err(Overflow("a position's value")));
        let before = b.cash;
        let huge = fill(Side::Sell, "100000000000000000", "1000000000000", "0", 2);
        assert_eq!(b.apply(0, &huge).unwrap_err(), Overflow("a fill's value"));
        assert_eq!(
            (b.cash, b.positions[&0].quantity),
            (before, d("100000000000000000"))
        );
    }
}
