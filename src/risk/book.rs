//! The portfolio as fills made it: cash, open positions, marks. Fills, not intents, decide positions.

use crate::model::{Fill, FillStatus, Side, Trade};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashMap};

#[derive(Clone, Debug)]
pub struct Position {
    pub symbol: String,
    pub quantity: Decimal,
    pub entry_price: Decimal,
    pub entry_time: i64,
    /// Entry fee plus entry gas.
    pub entry_costs: Decimal,
    pub intent_id: String,
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

    pub fn mark_of(&self, token: u32) -> Option<Decimal> {
        self.marks.get(&token).copied()
    }

    pub fn position_value(&self, token: u32) -> Decimal {
        self.positions
            .get(&token)
            .map(|p| p.quantity * self.marks.get(&token).copied().unwrap_or(p.entry_price))
            .unwrap_or(Decimal::ZERO)
    }

    pub fn equity(&self) -> Decimal {
        self.cash
            + self
                .positions
                .keys()
                .map(|t| self.position_value(*t))
                .sum::<Decimal>()
    }

    /// Updates the peak and returns the current drawdown from it (fraction).
    pub fn drawdown(&mut self) -> Decimal {
        let e = self.equity();
        if e > self.peak_equity {
            self.peak_equity = e;
        }
        if self.peak_equity.is_zero() {
            return Decimal::ZERO;
        }
        Decimal::ONE - e / self.peak_equity
    }

    pub fn quantity(&self, token: u32) -> Option<Decimal> {
        self.positions.get(&token).map(|p| p.quantity)
    }

    /// Applies a fill; a sell returns the round trip it closes. A buy into a held position averages in (the
    /// entry price weighted by quantity, costs added); a sell of part of a position closes that part, with
    /// its share of the entry costs, and leaves the rest open. Selling more than is held closes what is held.
    pub fn apply(&mut self, token: u32, fill: &Fill) -> Option<Trade> {
        if fill.status != FillStatus::Filled {
            return None;
        }
        let gross = fill.quantity * fill.price;
        match fill.side {
            Side::Buy => {
                self.cash -= gross + fill.fee + fill.gas;
                let costs = fill.fee + fill.gas;
                match self.positions.get_mut(&token) {
                    Some(p) if p.quantity + fill.quantity > Decimal::ZERO => {
                        let qty = p.quantity + fill.quantity;
                        p.entry_price = (p.quantity * p.entry_price + gross) / qty;
                        p.quantity = qty;
                        p.entry_costs += costs;
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
                            },
                        );
                    }
                }
                self.mark(token, fill.price);
                None
            }
            Side::Sell => {
                self.cash += gross - fill.fee - fill.gas;
                let p = self.positions.get_mut(&token)?;
                let (symbol, entry_time, entry_price) =
                    (p.symbol.clone(), p.entry_time, p.entry_price);
                let (closed, entry_costs) = if fill.quantity < p.quantity {
                    let share = p.entry_costs * fill.quantity / p.quantity;
                    p.quantity -= fill.quantity;
                    p.entry_costs -= share;
                    (fill.quantity, share)
                } else {
                    let whole = (p.quantity, p.entry_costs);
                    self.positions.remove(&token);
                    whole
                };
                let cost = closed * entry_price;
                let fees = entry_costs + fill.fee + fill.gas;
                let pnl = closed * fill.price - cost - fees;
                Some(Trade {
                    token: symbol,
                    side: "long".into(),
                    entry_time,
                    entry_price,
                    exit_time: fill.fill_time,
                    exit_price: fill.price,
                    quantity: closed,
                    fees,
                    pnl,
                    ret: if cost.is_zero() {
                        Decimal::ZERO
                    } else {
                        pnl / cost
                    },
                    exit_reason: fill.reason.clone(),
                })
            }
        }
    }
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
        assert!(b.apply(0, &fill(Side::Buy, "2", "50", "0.1", 1)).is_none());
        assert_eq!(b.cash, d("899.9"));
        b.mark(0, d("60"));
        assert_eq!(b.equity(), d("1019.9"));
        let t = b.apply(0, &fill(Side::Sell, "2", "55", "0.11", 2)).unwrap();
        // pnl = 110 - 100 - (0.1 + 0.11) = 9.79 ; return = 9.79 / 100
        assert_eq!(t.pnl, d("9.79"));
        assert_eq!(t.ret, d("0.0979"));
        assert_eq!(b.cash, d("1009.79"));
        assert!(b.positions.is_empty());
    }

    #[test]
    fn adds_average_in_and_partial_sells_close_their_share() {
        let mut b = Book::new(d("1000"));
        b.apply(0, &fill(Side::Buy, "2", "50", "1", 1));
        b.apply(0, &fill(Side::Buy, "2", "60", "1", 2));
        let p = &b.positions[&0];
        assert_eq!(
            (p.quantity, p.entry_price, p.entry_costs),
            (d("4"), d("55"), d("2"))
        );
        assert_eq!(b.cash, d("778"));
        // a quarter out at 70: pnl = 70 - 55 - (0.5 entry share + 1 fee)
        let t = b.apply(0, &fill(Side::Sell, "1", "70", "1", 3)).unwrap();
        assert_eq!((t.quantity, t.pnl), (d("1"), d("13.5")));
        let p = &b.positions[&0];
        assert_eq!((p.quantity, p.entry_costs), (d("3"), d("1.5")));
        // the rest, and more than is held: only what is held closes
        let t = b.apply(0, &fill(Side::Sell, "3", "50", "0", 4)).unwrap();
        assert_eq!((t.quantity, t.pnl), (d("3"), d("-16.5")));
        assert!(b.positions.is_empty());
        assert_eq!(
            b.cash,
            d("997"),
            "1000 and the two round trips, 13.5 - 16.5"
        );
    }
}
