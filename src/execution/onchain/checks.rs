//! The executor's own pre-trade checks, independent of the pipeline: kill switch, stale intents, the token
//! allow-list, notional per trade and per UTC day, and the day's realized loss. A refusal is a reason, written
//! to `orders.rejects`; nothing is signed.

use super::config::Limits;
use crate::execution::guard::not_from_the_future;
use crate::execution::venue::Refused;
use crate::model::{Fill, FillStatus, OrderIntent, Side};
use rust_decimal::Decimal;
use std::collections::HashMap;

/// What the executor has done today, for the daily limits (rebuilt from the journal's fills at start).
#[derive(Clone, Debug, Default)]
pub struct DayBook {
    day: i64,
    pub notional: Decimal,
    pub realized: Decimal,
    /// Average cost and quantity held per token, for realized PnL on sells.
    held: HashMap<String, (Decimal, Decimal)>,
}

fn day_of(ms: i64) -> i64 {
    ms.div_euclid(86_400_000)
}

impl DayBook {
    fn roll(&mut self, now_ms: i64) {
        let d = day_of(now_ms);
        if d != self.day {
            self.day = d;
            self.notional = Decimal::ZERO;
            self.realized = Decimal::ZERO;
        }
    }

    /// The book after `fills` (any order: they are taken by fill time), rolled to `now_ms`'s day: costs come
    /// from the whole history, the notional and realized PnL are today's.
    pub fn rebuild(mut fills: Vec<Fill>, now_ms: i64) -> DayBook {
        fills.sort_by_key(|f| f.fill_time);
        let mut book = DayBook::default();
        for f in &fills {
            book.add(f);
        }
        book.roll(now_ms);
        book
    }

    /// Counts a confirmed fill.
    pub fn add(&mut self, f: &Fill) {
        if f.status != FillStatus::Filled {
            return;
        }
        self.roll(f.fill_time);
        let value = f.quantity * f.price;
        self.notional += value;
        let e = self.held.entry(f.token.clone()).or_default();
        match f.side {
            Side::Buy => {
                let qty = e.1 + f.quantity;
                if qty > Decimal::ZERO {
                    e.0 = (e.0 * e.1 + value + f.fee) / qty;
                }
                e.1 = qty;
            }
            Side::Sell => {
                self.realized += value - f.fee - e.0 * f.quantity;
                e.1 = (e.1 - f.quantity).max(Decimal::ZERO);
            }
        }
    }
}

/// Refuses an intent that breaks a limit; `notional` is what it would trade in the quote token.
pub fn pre_trade(
    intent: &OrderIntent,
    notional: Decimal,
    limits: &Limits,
    allowed: bool,
    book: &mut DayBook,
    now_ms: i64,
) -> Result<(), Refused> {
    if let Some(f) = &limits.kill_switch_file {
        if f.exists() {
            let entries_only = std::fs::read_to_string(f)
                .map(|t| t.trim().eq_ignore_ascii_case("entries"))
                .unwrap_or(false);
            if !entries_only {
                return Err(Refused(format!(
                    "kill switch: {} exists; no trades, exits included, until it is removed",
                    f.display()
                )));
            }
            if intent.side == Side::Buy {
                return Err(Refused(format!(
                    "kill switch (entries): {} exists; exits only until it is removed",
                    f.display()
                )));
            }
        }
    }
    not_from_the_future(intent, now_ms)?;
    let age_s = (now_ms - intent.decision_time) / 1000;
    if age_s > limits.max_intent_age_s as i64 {
        return Err(Refused(format!(
            "stale intent: decided {age_s} s ago, the limit is {} s",
            limits.max_intent_age_s
        )));
    }
    if !allowed {
        return Err(Refused(format!(
            "{} is not on the venue's token allow-list",
            intent.token
        )));
    }
    if notional > limits.max_notional_per_trade {
        return Err(Refused(format!(
            "notional {notional} is over the per-trade limit {}",
            limits.max_notional_per_trade
        )));
    }
    book.roll(now_ms);
    if book.notional + notional > limits.max_notional_per_day {
        return Err(Refused(format!(
            "the day's notional would be {} (limit {})",
            book.notional + notional,
            limits.max_notional_per_day
        )));
    }
    if -book.realized >= limits.max_daily_loss && intent.side == Side::Buy {
        return Err(Refused(format!(
            "the day's realized loss {} has reached the limit {}; only exits go through",
            -book.realized, limits.max_daily_loss
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Protection;

    fn limits(kill: Option<std::path::PathBuf>) -> Limits {
        Limits {
            max_notional_per_trade: Decimal::from(1000),
            max_notional_per_day: Decimal::from(1500),
            max_daily_loss: Decimal::from(50),
            max_intent_age_s: 60,
            kill_switch_file: kill,
            min_pool_liquidity: Decimal::ZERO,
            max_token_tax_bps: Decimal::from(100),
            min_native_balance: Decimal::ZERO,
        }
    }

    fn intent(side: Side, at: i64) -> OrderIntent {
        OrderIntent {
            id: "i".into(),
            pipeline_id: "p".into(),
            token: "AXL".into(),
            side,
            quantity: None,
            notional: Some(Decimal::from(100)),
            reference_price: Decimal::ONE,
            max_slippage_bps: Decimal::from(50),
            protection: Protection::default(),
            reason: String::new(),
            decision_time: at,
            inputs_version: "v".into(),
            triggered: None,
        }
    }

    fn fill(side: Side, qty: i64, price: i64, at: i64) -> Fill {
        Fill {
            intent_id: "x".into(),
            venue: "v".into(),
            token: "AXL".into(),
            side,
            quantity: Decimal::from(qty),
            price: Decimal::from(price),
            fee: Decimal::ZERO,
            gas: Decimal::ZERO,
            tx_hash: None,
            status: FillStatus::Filled,
            reason: String::new(),
            fill_time: at,
            quoted_price: None,
        }
    }

    #[test]
    fn every_limit_refuses_with_its_reason() {
        let now = 10 * 86_400_000;
        let mut book = DayBook::default();
        let l = limits(None);
        assert!(pre_trade(
            &intent(Side::Buy, now),
            Decimal::from(100),
            &l,
            true,
            &mut book,
            now
        )
        .is_ok());
        let e = |r: Result<(), Refused>| r.unwrap_err().0;
        assert!(e(pre_trade(
            &intent(Side::Buy, now - 61_000),
            Decimal::from(100),
            &l,
            true,
            &mut book,
            now
        ))
        .contains("stale"));
        assert!(e(pre_trade(
            &intent(Side::Buy, now),
            Decimal::from(100),
            &l,
            false,
            &mut book,
            now
        ))
        .contains("allow-list"));
        assert!(e(pre_trade(
            &intent(Side::Buy, now),
            Decimal::from(1001),
            &l,
            true,
            &mut book,
            now
        ))
        .contains("per-trade"));
        book.add(&fill(Side::Buy, 10, 100, now));
        assert!(e(pre_trade(
            &intent(Side::Buy, now),
            Decimal::from(600),
            &l,
            true,
            &mut book,
            now
        ))
        .contains("day's notional"));
        // sell half at a loss of 6 a unit: realized -30, then more: -60 stops buys, not sells
        book.add(&fill(Side::Sell, 5, 94, now));
        assert_eq!(book.realized, Decimal::from(-30));
        book.add(&fill(Side::Sell, 5, 94, now));
        // (with room left in the day's notional, so the loss is what refuses)
        let l = Limits {
            max_notional_per_day: Decimal::from(100_000),
            ..l
        };
        assert!(e(pre_trade(
            &intent(Side::Buy, now),
            Decimal::from(10),
            &l,
            true,
            &mut book,
            now
        ))
        .contains("realized loss"));
        assert!(pre_trade(
            &intent(Side::Sell, now),
            Decimal::from(10),
            &l,
            true,
            &mut book,
            now
        )
        .is_ok());
        // a new day starts over
        let tomorrow = now + 86_400_000;
        assert!(pre_trade(
            &intent(Side::Buy, tomorrow),
            Decimal::from(600),
            &l,
            true,
            &mut book,
            tomorrow
        )
        .is_ok());
        let dir = tempfile::tempdir().unwrap();
        let kill = dir.path().join("kill");
        std::fs::write(&kill, "").unwrap();
        let run = |side, book: &mut DayBook| {
            pre_trade(
                &intent(side, now),
                Decimal::from(1),
                &limits(Some(kill.clone())),
                true,
                book,
                now,
            )
        };
        assert!(e(run(Side::Sell, &mut book)).contains("exits included"));
        // a file that says `entries` stops buys and lets positions close
        std::fs::write(&kill, "entries\n").unwrap();
        assert!(e(run(Side::Buy, &mut book)).contains("exits only"));
        assert!(run(Side::Sell, &mut book).is_ok());
    }

    #[test]
    fn an_intent_from_the_future_is_refused() {
        let now = 10 * 86_400_000;
        let mut book = DayBook::default();
        let at = |t| {
            pre_trade(
                &intent(Side::Buy, t),
                Decimal::ONE,
                &limits(None),
                true,
                &mut DayBook::default(),
                now,
            )
        };
        assert!(
            at(now + crate::execution::guard::MAX_CLOCK_SKEW_MS).is_ok(),
            "within the skew"
        );
        let r = pre_trade(
            &intent(Side::Buy, now + 60_000),
            Decimal::ONE,
            &limits(None),
            true,
            &mut book,
            now,
        );
        assert!(r.unwrap_err().0.contains("in the future"));
    }

    #[test]
    fn a_restart_counts_todays_loss_on_a_position_bought_days_before() {
        let day = 86_400_000;
        let now = 10 * day + 3_600_000;
        // bought three days ago at 10, sold today at 8: a loss of 20 today
        let fills = vec![
            fill(Side::Sell, 10, 8, now - 60_000),
            fill(Side::Buy, 10, 10, now - 3 * day),
        ];
        let book = DayBook::rebuild(fills, now);
        assert_eq!(book.realized, Decimal::from(-20));
        assert_eq!(book.notional, Decimal::from(80), "only today's notional");
        // the window of the last 24 hours alone saw a sale of tokens it never saw bought: a gain of 80
        let mut windowed = DayBook::default();
        windowed.add(&fill(Side::Sell, 10, 8, now - 60_000));
        assert_eq!(windowed.realized, Decimal::from(80));
    }
}
