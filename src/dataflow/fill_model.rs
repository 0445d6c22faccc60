//! The fill model: how an intent fills against market data. The portfolio operator uses it for backtests and
//! the paper venue uses it live, so a backtest and a paper run mean the same thing by "filled".
//!
//! Conventions (printed in every report): a market intent decided at a bar close fills at the next bar's open
//! of that token; slippage is fixed bps or constant-product price impact; a fee per side on notional; optional
//! gas per fill. Protective orders (stop-loss, trailing stop, take-profit) rest at the venue and are checked
//! against each later bar's range, stop before take-profit ("low before high").

use super::records::BarRec;
use crate::config::{FillConfig, SlippageModel, StopFill};
use crate::model::money::{Exact, Overflow};
use crate::model::{Distance, Fill, FillStatus, OrderIntent, Side, Trigger};
use rust_decimal::Decimal;
use std::collections::BTreeMap;

pub(crate) const QTY_DP: u32 = 12;
const MONEY_DP: u32 = 10;

/// An entry whose fill price is worse than its decision price by more than its slippage bound: the market
/// ran away between the decision and the fill, and it is not chased (a backtest and a paper venue alike;
/// exits always go).
fn drift_of(intent: &OrderIntent, price: Decimal) -> Option<String> {
    drift_over_bound(intent, price).map(|bps| {
        format!(
            "price drift: the fill {} is {bps:.1} bps above the decision price {} (bound {} bps)",
            price.round_dp(10),
            intent.reference_price,
            intent.max_slippage_bps
        )
    })
}

/// How far (bps) an entry at `price` is above its decision price, when that is beyond its slippage bound;
/// None for a sell, an intent without a decision price, or a price within the bound. The one drift rule of the
/// fill model and of every executor venue.
pub fn drift_over_bound(intent: &OrderIntent, price: Decimal) -> Option<Decimal> {
    let reference = intent.reference_price;
    if intent.side != Side::Buy || reference <= Decimal::ZERO {
        return None;
    }
    // a ratio beyond what a decimal holds is a drift beyond any bound
    let bps = bps_above(price, reference).unwrap_or(Decimal::MAX);
    (bps > intent.max_slippage_bps).then_some(bps)
}

/// How many bps `price` is above `reference`, checked.
fn bps_above(price: Decimal, reference: Decimal) -> Result<Decimal, Overflow> {
    let ratio = price.over(reference, "a slippage")?;
    (ratio - Decimal::ONE).times(Decimal::from(10_000), "a slippage")
}

/// An entry's fill price, its slippage (bps over the reference), quantity and the cash it takes.
struct BuyTerms {
    price: Decimal,
    slip_bps: Decimal,
    qty: Decimal,
    need: Decimal,
}

/// Which order a fill belongs to.
struct Ref<'a> {
    intent_id: &'a str,
    symbol: &'a str,
}

#[derive(Clone, Debug)]
struct Resting {
    symbol: String,
    intent_id: String,
    stop: Option<Decimal>,
    take_profit: Option<Decimal>,
    trailing: Option<Distance>,
    high_water: Decimal,
    /// Scale-out legs still resting, lowest first: (level, quantity).
    legs: Vec<(Decimal, Decimal)>,
}

/// A resting protective order a bar crossed: where it fills, which order it was, and the quantity of a
/// scale-out leg (None: the whole position).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    pub price: Decimal,
    pub why: &'static str,
    pub part: Option<Decimal>,
}

impl Hit {
    /// Limit orders (a take-profit, a scale-out leg) fill at their price; stops go through the slippage.
    pub fn exact(&self) -> bool {
        matches!(self.why, "take_profit" | "scale_out")
    }
}

impl Resting {
    /// The binding stop level and whether it is the trailing one.
    fn stop_level(&self) -> Option<(Decimal, bool)> {
        let trail = self.trailing.map(|d| d.below(self.high_water));
        match (self.stop, trail) {
            (Some(s), Some(t)) if t > s => Some((t, true)),
            (Some(s), _) => Some((s, false)),
            (None, Some(t)) => Some((t, true)),
            (None, None) => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct FillModel {
    cfg: FillConfig,
    venue: String,
    pending: BTreeMap<u32, OrderIntent>,
    resting: BTreeMap<u32, Resting>,
}

impl FillModel {
    pub fn new(cfg: FillConfig) -> Self {
        FillModel {
            cfg,
            venue: "paper".into(),
            pending: BTreeMap::new(),
            resting: BTreeMap::new(),
        }
    }

    pub fn submit(&mut self, token: u32, intent: OrderIntent) {
        self.pending.insert(token, intent);
    }

    pub fn has_pending(&self, token: u32) -> bool {
        self.pending.contains_key(&token)
    }

    pub fn pending(&self) -> impl Iterator<Item = (&u32, &OrderIntent)> {
        self.pending.iter()
    }

    /// Quote committed to buys not yet filled, with fee and gas, so decisions never double-spend cash.
    pub fn reserved_cash(&self) -> Result<Decimal, Overflow> {
        crate::model::money::sum_exact(
            self.pending
                .values()
                .filter(|i| i.side == Side::Buy)
                .map(|i| self.cost_of(i.notional.unwrap_or(Decimal::ZERO))),
            "the reserved cash",
        )
    }

    /// What spending `notional` takes from cash: the notional, its fee and the gas.
    pub fn cost_of(&self, notional: Decimal) -> Result<Decimal, Overflow> {
        let fee = notional.times(self.cfg.fee_rate, "a fee")?;
        notional
            .plus(fee, "a buy's cost")?
            .plus(self.cfg.gas_quote, "a buy's cost")
    }

    fn liquidity(&self, symbol: &str) -> Decimal {
        self.cfg
            .pool_liquidity
            .get(symbol)
            .copied()
            .unwrap_or(self.cfg.default_pool_liquidity)
    }

    /// Average price paid when spending `notional` at reference price `p`.
    pub fn buy_price(
        &self,
        symbol: &str,
        p: Decimal,
        notional: Decimal,
    ) -> Result<Decimal, Overflow> {
        let what = "a fill price";
        match self.cfg.slippage_model {
            SlippageModel::Bps => p.times(
                Decimal::ONE + self.cfg.slippage_bps / Decimal::from(10_000),
                what,
            ),
            // x*y=k with quote reserve R: spending q moves the average price to p * (1 + q / R).
            SlippageModel::Amm => {
                let impact = notional.over(self.liquidity(symbol), what)?;
                p.times(Decimal::ONE.plus(impact, what)?, what)
            }
        }
    }

    /// Average price received when selling `qty` at reference price `p`.
    pub fn sell_price(&self, symbol: &str, p: Decimal, qty: Decimal) -> Result<Decimal, Overflow> {
        let what = "a fill price";
        match self.cfg.slippage_model {
            SlippageModel::Bps => p.times(
                Decimal::ONE - self.cfg.slippage_bps / Decimal::from(10_000),
                what,
            ),
            // base reserve B = R / p: selling b base returns R * b / (B + b), i.e. p * B / (B + b) each.
            SlippageModel::Amm => {
                let base_reserve = self.liquidity(symbol).over(p, what)?;
                let share = base_reserve.over(base_reserve.plus(qty, what)?, what)?;
                p.times(share, what)
            }
        }
    }

    /// What an entry filling against reference price `p` comes to, every figure checked.
    fn buy_terms(&self, intent: &OrderIntent, p: Decimal) -> Result<BuyTerms, Overflow> {
        let notional = match intent.notional {
            Some(n) => n,
            None => intent.quantity.unwrap_or_default().times(p, "a notional")?,
        };
        let price = self.buy_price(&intent.token, p, notional)?;
        Ok(BuyTerms {
            price,
            slip_bps: bps_above(price, p)?,
            qty: notional
                .over(price, "a quantity")?
                .round_dp_with_strategy(QTY_DP, rust_decimal::RoundingStrategy::ToZero),
            need: self.cost_of(notional)?,
        })
    }

    fn fill(
        &self,
        Ref { intent_id, symbol }: Ref,
        side: Side,
        qty: Decimal,
        price: Decimal,
        reason: &str,
        time: i64,
    ) -> Fill {
        let price = price.round_dp(MONEY_DP);
        let fee = qty
            .times(price, "a fill's value")
            .and_then(|v| v.times(self.cfg.fee_rate, "a fee"));
        let fee = match fee {
            Ok(f) => f.round_dp(MONEY_DP),
            Err(e) => {
                return Fill::refusal(intent_id, &self.venue, symbol, side, e.to_string(), time)
            }
        };
        Fill {
            intent_id: intent_id.to_string(),
            venue: self.venue.clone(),
            token: symbol.to_string(),
            side,
            quantity: qty,
            price,
            fee,
            gas: self.cfg.gas_quote,
            tx_hash: None,
            status: FillStatus::Filled,
            reason: reason.to_string(),
            fill_time: time,
            quoted_price: None,
        }
    }

    /// A venue refusal of `intent`, with the reason.
    pub fn reject(&self, intent: &OrderIntent, reason: String, time: i64) -> Fill {
        Fill::refusal(
            &intent.id,
            &self.venue,
            &intent.token,
            intent.side,
            reason,
            time,
        )
    }

    /// Processes one bar of `token`: fills its pending intent at the open, then checks resting protective
    /// orders against the bar's range. `position` is the open quantity before this bar; `cash` is free cash.
    pub fn on_bar(&mut self, bar: &BarRec, position: Option<Decimal>, cash: Decimal) -> Vec<Fill> {
        let mut fills = Vec::new();
        let mut position = position.filter(|q| *q > Decimal::ZERO);
        if let Some(intent) = self.pending.remove(&bar.token) {
            let f = match intent.side {
                Side::Buy => self.buy_at_open(bar, &intent, position, cash),
                Side::Sell => self.sell_at_open(bar, &intent, position),
            };
            if f.status == FillStatus::Filled {
                position = match f.side {
                    Side::Buy => Some(position.unwrap_or_default() + f.quantity),
                    Side::Sell => position
                        .map(|q| q - f.quantity)
                        .filter(|q| *q > Decimal::ZERO),
                };
            }
            fills.push(f);
        }
        if let Some(qty) = position {
            fills.extend(self.protective_fill(bar, qty));
        }
        fills
    }

    /// An entry (or, into a held position, a top-up) filling at the bar's open: refused when it slips or
    /// drifts too far, when cash does not cover it, or when its quantity rounds to zero. A top-up keeps the
    /// position's resting orders; an entry places its own.
    fn buy_at_open(
        &mut self,
        bar: &BarRec,
        intent: &OrderIntent,
        held: Option<Decimal>,
        cash: Decimal,
    ) -> Fill {
        let t = bar.open_time;
        let terms = match self.buy_terms(intent, bar.open) {
            Ok(terms) => terms,
            Err(e) => return self.reject(intent, e.to_string(), t),
        };
        let (slip, bound) = (terms.slip_bps, intent.max_slippage_bps);
        if slip > bound {
            return self.reject(
                intent,
                format!("slippage {slip:.1} bps exceeds max {bound} bps"),
                t,
            );
        }
        if let Some(why) = self.drift(intent, terms.price) {
            return self.reject(intent, why, t);
        }
        if terms.need > cash {
            let need = terms.need;
            return self.reject(
                intent,
                format!("insufficient cash: need {need:.2}, have {cash:.2}"),
                t,
            );
        }
        if terms.qty <= Decimal::ZERO {
            return self.reject(intent, "quantity rounds to zero".into(), t);
        }
        let reason = if held.is_some() {
            intent.reason.as_str()
        } else {
            "entry"
        };
        let r = Ref {
            intent_id: &intent.id,
            symbol: &intent.token,
        };
        let f = self.fill(r, Side::Buy, terms.qty, terms.price, reason, t);
        if f.status == FillStatus::Filled && held.is_none() {
            self.rest_after_entry(bar.token, intent, f.price, f.quantity);
        }
        f
    }

    /// A sell filling at the bar's open: the intent's quantity (the whole position without one, never more
    /// than is held). Selling it all cancels the resting orders; a part leaves them for the rest.
    fn sell_at_open(&mut self, bar: &BarRec, intent: &OrderIntent, held: Option<Decimal>) -> Fill {
        let Some(held) = held else {
            return self.reject(intent, "no open position to sell".into(), bar.open_time);
        };
        let qty = intent.quantity.map_or(held, |q| q.min(held));
        if qty <= Decimal::ZERO {
            return self.reject(
                intent,
                "a sell needs a positive quantity".into(),
                bar.open_time,
            );
        }
        let price = match self.sell_price(&intent.token, bar.open, qty) {
            Ok(p) => p,
            Err(e) => return self.reject(intent, e.to_string(), bar.open_time),
        };
        let r = Ref {
            intent_id: &intent.id,
            symbol: &intent.token,
        };
        let f = self.fill(r, Side::Sell, qty, price, &intent.reason, bar.open_time);
        if f.status == FillStatus::Filled && qty >= held {
            self.resting.remove(&bar.token);
        }
        f
    }

    /// The fill of a resting protective order the bar crossed: the whole `qty` held, or a scale-out leg's
    /// part (the resting orders stay for the rest).
    fn protective_fill(&mut self, bar: &BarRec, qty: Decimal) -> Option<Fill> {
        let hit = self.protective_trigger(bar)?;
        let sold = hit.part.map_or(qty, |p| p.min(qty));
        let r = if sold < qty {
            self.resting.get(&bar.token).cloned()?
        } else {
            self.resting.remove(&bar.token)?
        };
        let price = if hit.exact() {
            Ok(hit.price)
        } else {
            self.sell_price(&r.symbol, hit.price, sold)
        };
        let (id, sym, t) = (&r.intent_id, &r.symbol, bar.open_time);
        Some(match price {
            Ok(p) => self.fill(
                Ref {
                    intent_id: id,
                    symbol: sym,
                },
                Side::Sell,
                sold,
                p,
                hit.why,
                t,
            ),
            Err(e) => Fill::refusal(id, &self.venue, sym, Side::Sell, e.to_string(), t),
        })
    }

    /// Places the protective orders an entry intent asked for, at levels measured from the entry price.
    pub fn rest_after_entry(
        &mut self,
        token: u32,
        intent: &OrderIntent,
        entry_price: Decimal,
        quantity: Decimal,
    ) {
        let p = &intent.protection;
        let legs = p
            .scale_out
            .iter()
            .map(|l| {
                let part = quantity
                    .checked_mul(l.fraction)
                    .unwrap_or(Decimal::ZERO)
                    .round_dp_with_strategy(QTY_DP, rust_decimal::RoundingStrategy::ToZero);
                (l.at.above(entry_price), part)
            })
            .filter(|(_, part)| *part > Decimal::ZERO)
            .collect();
        self.resting.insert(
            token,
            Resting {
                symbol: intent.token.clone(),
                intent_id: intent.id.clone(),
                stop: p.stop_loss.map(|d| d.below(entry_price)),
                take_profit: p.take_profit.map(|d| d.above(entry_price)),
                trailing: p.trailing_stop,
                high_water: entry_price,
                legs,
            },
        );
    }

    /// The binding stop level resting for a token's position, if any.
    pub fn stop_of(&self, token: u32) -> Option<Decimal> {
        self.resting
            .get(&token)
            .and_then(Resting::stop_level)
            .map(|(s, _)| s)
    }

    /// Drops the protective orders of a position that was closed.
    pub fn cancel_resting(&mut self, token: u32) {
        self.resting.remove(&token);
    }

    /// Whether a resting protective order of `bar`'s token triggers within the bar: the trigger price (stop
    /// first, "low before high"; a take-profit at its price or the better open) and which order it was. When
    /// nothing triggers, the trailing stop's high-water mark follows the bar's high.
    /// Whether a resting protective order of `bar`'s token triggers within the bar: at most one per bar, the
    /// stop first ("low before high"), then the lowest scale-out leg, then the take-profit (at its price or
    /// the better open). A leg that fills is taken off; the trailing stop's high-water mark follows the bar's
    /// high unless the position is closed.
    pub fn protective_trigger(&mut self, bar: &BarRec) -> Option<Hit> {
        let r = self.resting.get_mut(&bar.token)?;
        if let Some((level, trailing)) = r.stop_level() {
            if bar.low <= level {
                let price = match self.cfg.stop_fill {
                    StopFill::StopPrice => level,
                    StopFill::GapAware => level.min(bar.open),
                };
                let why = if trailing {
                    "trailing_stop"
                } else {
                    "stop_loss"
                };
                return Some(Hit {
                    price,
                    why,
                    part: None,
                });
            }
        }
        let leg = r
            .legs
            .first()
            .copied()
            .filter(|(level, _)| bar.high >= *level);
        if bar.high > r.high_water {
            r.high_water = bar.high;
        }
        if let Some((level, part)) = leg {
            r.legs.remove(0);
            let price = level.max(bar.open);
            return Some(Hit {
                price,
                why: "scale_out",
                part: Some(part),
            });
        }
        if let Some(tp) = r.take_profit {
            if bar.high >= tp {
                return Some(Hit {
                    price: tp.max(bar.open),
                    why: "take_profit",
                    part: None,
                });
            }
        }
        None
    }

    /// Removes the pending intent `intent_id` of `token` once the venue reported its outcome.
    pub fn settle(&mut self, token: u32, intent_id: &str) -> Option<OrderIntent> {
        match self.pending.get(&token) {
            Some(i) if i.id == intent_id => self.pending.remove(&token),
            _ => None,
        }
    }

    /// Executes a market intent right now against a reference price (the latest tick): the executor's paper
    /// venue. Same slippage model, fee and gas as the backtest; entries beyond the intent's slippage bound are
    /// rejected. A sell needs the intent's quantity.
    pub fn fill_now(&self, intent: &OrderIntent, price: Decimal, time: i64) -> Fill {
        let mut f = self.fill_at_tick(intent, price, time);
        if f.status == FillStatus::Filled {
            f.quoted_price = Some(price);
        }
        f
    }

    fn fill_at_tick(&self, intent: &OrderIntent, price: Decimal, time: i64) -> Fill {
        let r = Ref {
            intent_id: &intent.id,
            symbol: &intent.token,
        };
        match intent.side {
            Side::Buy => {
                let BuyTerms {
                    price: p,
                    slip_bps: slip,
                    qty,
                    ..
                } = match self.buy_terms(intent, price) {
                    Ok(t) => t,
                    Err(e) => return self.reject(intent, e.to_string(), time),
                };
                if slip > intent.max_slippage_bps {
                    return self.reject(
                        intent,
                        format!(
                            "slippage {slip:.1} bps exceeds max {} bps",
                            intent.max_slippage_bps
                        ),
                        time,
                    );
                }
                if let Some(why) = self.drift(intent, p) {
                    return self.reject(intent, why, time);
                }
                if qty <= Decimal::ZERO {
                    return self.reject(intent, "quantity rounds to zero".into(), time);
                }
                self.fill(r, Side::Buy, qty, p, "entry", time)
            }
            Side::Sell => match intent.quantity {
                Some(q) if q > Decimal::ZERO => match self.sell_price(&intent.token, price, q) {
                    Ok(p) => self.fill(r, Side::Sell, q, p, &intent.reason, time),
                    Err(e) => self.reject(intent, e.to_string(), time),
                },
                _ => self.reject(
                    intent,
                    "a sell intent needs a positive quantity".into(),
                    time,
                ),
            },
        }
    }

    /// The drift refusal of an entry filling at `price`, when the fill model refuses drift.
    fn drift(&self, intent: &OrderIntent, price: Decimal) -> Option<String> {
        self.cfg
            .refuse_drift
            .then(|| drift_of(intent, price))
            .flatten()
    }

    /// A triggered exit (a protective order crossed inside a bar, the end of the data) where the backtest
    /// fills it: at the trigger price, through the sell slippage unless it is exact (a take-profit), stamped
    /// with the bar it happened in.
    pub fn fill_triggered(&self, intent: &OrderIntent, trigger: &Trigger, qty: Decimal) -> Fill {
        let price = if trigger.exact {
            Ok(trigger.price)
        } else {
            self.sell_price(&intent.token, trigger.price, qty)
        };
        let r = Ref {
            intent_id: &intent.id,
            symbol: &intent.token,
        };
        match price {
            Ok(p) => self.fill(r, Side::Sell, qty, p, &intent.reason, trigger.time),
            Err(e) => self.reject(intent, e.to_string(), trigger.time),
        }
    }

    /// Closes a position outside the bar loop (end of data) at the given price and time.
    pub fn force_exit(
        &mut self,
        token: u32,
        symbol: &str,
        intent_id: &str,
        qty: Decimal,
        price: Decimal,
        time: i64,
    ) -> Fill {
        self.resting.remove(&token);
        self.pending.remove(&token);
        match self.sell_price(symbol, price, qty) {
            Ok(p) => self.fill(
                Ref { intent_id, symbol },
                Side::Sell,
                qty,
                p,
                "force_exit",
                time,
            ),
            Err(e) => Fill::refusal(
                intent_id,
                &self.venue,
                symbol,
                Side::Sell,
                e.to_string(),
                time,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Protection;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }
    fn bar(o: &str, h: &str, l: &str, c: &str, t: i64) -> BarRec {
        BarRec {
            token: 0,
            open_time: t,
            interval: 60,
            open: d(o),
            high: d(h),
            low: d(l),
            close: d(c),
            volume: d("1"),
        }
    }
    fn buy(notional: &str, protection: Protection) -> OrderIntent {
        OrderIntent {
            id: "i1".into(),
            pipeline_id: "p".into(),
            token: "X".into(),
            side: Side::Buy,
            quantity: None,
            notional: Some(d(notional)),
            reference_price: d("100"),
            max_slippage_bps: d("50"),
            protection,
            reason: "test".into(),
            decision_time: 0,
            inputs_version: "v".into(),
            triggered: None,
        }
    }

    #[test]
    fn entry_at_next_open_with_fee_and_stop_at_stop_price() {
        let cfg = FillConfig {
            fee_rate: d("0.001"),
            stop_fill: StopFill::StopPrice,
            ..Default::default()
        };
        let mut ex = FillModel::new(cfg);
        ex.submit(
            0,
            buy(
                "100",
                Protection {
                    stop_loss: Some(Distance::Fraction(d("0.05"))),
                    ..Default::default()
                },
            ),
        );
        let f = ex.on_bar(&bar("50", "51", "49", "50", 60), None, d("1000"));
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].price, f[0].quantity, f[0].fee),
            (d("50"), d("2"), d("0.1"))
        );
        // low 40 crosses stop 47.5: fills at exactly 47.5 even though the low was lower
        let f = ex.on_bar(&bar("48", "48", "40", "41", 120), Some(d("2")), d("900"));
        assert_eq!((f[0].price, f[0].reason.as_str()), (d("47.5"), "stop_loss"));
    }

    #[test]
    fn gap_aware_stop_fills_at_open_below_stop() {
        let cfg = FillConfig {
            fee_rate: d("0"),
            stop_fill: StopFill::GapAware,
            ..Default::default()
        };
        let mut ex = FillModel::new(cfg);
        ex.submit(
            0,
            buy(
                "100",
                Protection {
                    stop_loss: Some(Distance::Fraction(d("0.05"))),
                    ..Default::default()
                },
            ),
        );
        ex.on_bar(&bar("50", "50", "50", "50", 60), None, d("1000"));
        let f = ex.on_bar(&bar("45", "46", "44", "45", 120), Some(d("2")), d("900"));
        assert_eq!(f[0].price, d("45"));
    }

    #[test]
    fn trailing_stop_ratchets_and_take_profit() {
        let cfg = FillConfig {
            fee_rate: d("0"),
            stop_fill: StopFill::StopPrice,
            ..Default::default()
        };
        let mut ex = FillModel::new(cfg.clone());
        ex.submit(
            0,
            buy(
                "100",
                Protection {
                    trailing_stop: Some(Distance::Absolute(d("5"))),
                    ..Default::default()
                },
            ),
        );
        ex.on_bar(&bar("100", "110", "99", "108", 60), None, d("1000")); // high water 110 -> level 105
        let f = ex.on_bar(
            &bar("108", "109", "104", "105", 120),
            Some(d("1")),
            d("900"),
        );
        assert_eq!(
            (f[0].price, f[0].reason.as_str()),
            (d("105"), "trailing_stop")
        );

        let mut ex = FillModel::new(cfg);
        ex.submit(
            0,
            buy(
                "100",
                Protection {
                    take_profit: Some(Distance::Fraction(d("0.1"))),
                    ..Default::default()
                },
            ),
        );
        ex.on_bar(&bar("100", "101", "99", "100", 60), None, d("1000"));
        let f = ex.on_bar(
            &bar("112", "115", "111", "114", 120),
            Some(d("1")),
            d("900"),
        );
        assert_eq!(
            (f[0].price, f[0].reason.as_str()),
            (d("112"), "take_profit")
        );
    }

    #[test]
    fn drift_is_refused_on_both_paths_and_a_triggered_exit_fills_at_its_trigger() {
        // decided at 100, the next open is 102: 200 bps over the 50 bps bound
        let mut ex = FillModel::new(FillConfig::default());
        ex.submit(0, buy("100", Protection::default()));
        let f = ex.on_bar(&bar("102", "102", "102", "102", 60), None, d("1000"));
        assert!(f[0].reason.contains("price drift"), "{}", f[0].reason);
        // the paper venue's path refuses the same entry
        let paper = FillModel::new(FillConfig::default());
        let f = paper.fill_now(&buy("100", Protection::default()), d("102"), 60);
        assert!(f.reason.contains("price drift"), "{}", f.reason);
        // off, the open is taken however far it is (Freqtrade)
        let mut ex = FillModel::new(FillConfig {
            refuse_drift: false,
            ..Default::default()
        });
        ex.submit(0, buy("100", Protection::default()));
        let f = ex.on_bar(&bar("102", "102", "102", "102", 60), None, d("1000"));
        assert_eq!(f[0].status, FillStatus::Filled);

        let mut sell = buy("100", Protection::default());
        sell.side = Side::Sell;
        sell.reason = "stop_loss".into();
        let model = FillModel::new(FillConfig {
            slippage_bps: d("10"),
            ..Default::default()
        });
        let stop = Trigger {
            price: d("90"),
            time: 60,
            exact: false,
        };
        let f = model.fill_triggered(&sell, &stop, d("2"));
        assert_eq!((f.price, f.fill_time, f.quantity), (d("89.91"), 60, d("2")));
        let tp = Trigger {
            exact: true,
            ..stop
        };
        assert_eq!(model.fill_triggered(&sell, &tp, d("2")).price, d("90"));
    }

    #[test]
    fn slippage_models_and_rejections() {
        let cfg = FillConfig {
            slippage_model: SlippageModel::Amm,
            default_pool_liquidity: d("10000"),
            ..Default::default()
        };
        let ex = FillModel::new(cfg);
        // spending 100 into a 10k pool: +1%
        assert_eq!(ex.buy_price("X", d("50"), d("100")), Ok(d("50.5")));
        // selling 2 base into B = 200: 50 * 200 / 202
        assert_eq!(
            ex.sell_price("X", d("50"), d("2")).unwrap().round_dp(8),
            (d("50") * d("200") / d("202")).round_dp(8)
        );

        let mut ex = FillModel::new(FillConfig {
            slippage_model: SlippageModel::Amm,
            default_pool_liquidity: d("1000"),
            ..Default::default()
        });
        ex.submit(0, buy("100", Protection::default()));
        let f = ex.on_bar(&bar("50", "50", "50", "50", 60), None, d("1000"));
        assert_eq!(f[0].status, FillStatus::Rejected, "10% impact > 50 bps max");

        let mut ex = FillModel::new(FillConfig::default());
        ex.submit(0, buy("100", Protection::default()));
        let f = ex.on_bar(&bar("50", "50", "50", "50", 60), None, d("50"));
        assert!(f[0].reason.contains("insufficient cash"));
    }
}
