//! The paper venue: the backtest's fill model against `market.ticks`, so a paper run means what a backtest
//! means by "filled" without any money moving. A market intent fills at the first tick of its token at or
//! after its decision time (never an earlier one), through the model's slippage, fee and gas, stamped with
//! the open of the bar that tick is in, as the backtest stamps a fill at the next bar's open; a triggered exit
//! (a protective order the dataflow saw cross inside a bar, the end of the data) fills at its trigger. Buys
//! need the cash of their pipeline's book. Every bar close of the ticks read is journaled as a mark, so the
//! live book's equity is measured where the backtest measures its own.

use super::book::LiveBook;
use super::clock::Clock;
use super::journal::{BarMark, Journal};
use super::tape::TickTape;
use super::venue::{Venue, VenueError};
use crate::config::FillConfig;
use crate::dataflow::fill_model::FillModel;
use crate::model::time::to_rfc3339;
use crate::model::{Fill, FillStatus, OrderIntent, Side};
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::time::Duration;

/// How long a live paper venue waits for the first tick after a decision before it refuses the intent as
/// decided on stale data.
pub const LIVE_WAIT: Duration = Duration::from_secs(30);

/// A replay's tape counts as read to its end after this long without a record.
const REPLAY_QUIET: Duration = Duration::from_secs(2);

pub struct PaperConfig {
    pub fills: FillConfig,
    /// The pipeline's bar interval: fills are stamped, and closes marked, on its grid.
    pub bar_ms: i64,
    /// Each pipeline's starting cash.
    pub capital: Decimal,
    pub clock: Clock,
}

pub struct PaperVenue {
    model: FillModel,
    tape: TickTape,
    bar_ms: i64,
    capital: Decimal,
    clock: Clock,
    /// Each pipeline's free cash, read from the journal at its first buy, then moved by this venue's fills.
    cash: HashMap<String, Decimal>,
    /// The last bar close journaled as marks.
    marked_to: Option<i64>,
}

impl PaperVenue {
    pub fn connect(brokers: &str, cfg: PaperConfig) -> Result<Self, VenueError> {
        // a replay needs the history from its start; live, the recent ticks are enough
        let tape = if cfg.clock.is_event() {
            TickTape::connect(brokers, None, REPLAY_QUIET)?
        } else {
            TickTape::connect(brokers, Some(10_000), LIVE_WAIT)?
        };
        Ok(PaperVenue {
            model: FillModel::new(cfg.fills),
            tape,
            bar_ms: cfg.bar_ms.max(1),
            capital: cfg.capital,
            clock: cfg.clock,
            cash: HashMap::new(),
            marked_to: None,
        })
    }

    fn bar_of(&self, t: i64) -> i64 {
        t - t.rem_euclid(self.bar_ms)
    }

    fn wait(&self) -> Duration {
        if self.clock.is_event() {
            Duration::from_secs(120)
        } else {
            LIVE_WAIT
        }
    }

    /// A market intent at the first tick at or after its decision.
    fn fill_market(&mut self, intent: &OrderIntent, journal: &Journal) -> Result<Fill, VenueError> {
        let t = intent.decision_time;
        let Some((at, price)) = self.tape.first_from(&intent.token, t, self.wait()) else {
            let why = if self.clock.is_event() {
                "the data ends before one".to_string()
            } else {
                format!(
                    "none within {} s: the market data is stale",
                    LIVE_WAIT.as_secs()
                )
            };
            let reason = format!(
                "no market.ticks price for {} at or after the decision at {}: {why}",
                intent.token,
                to_rfc3339(t)
            );
            return Ok(self.model.reject(intent, reason, self.clock.now()));
        };
        // the open of the tick's bar, which is the decision itself for a decision at a bar close; never
        // before the decision (an operator's flatten is decided inside a bar)
        let stamp = self.bar_of(at).max(t);
        let f = self.model.fill_now(intent, price, stamp);
        if f.status == FillStatus::Filled && f.side == Side::Buy {
            let need = f.quantity * f.price + f.fee + f.gas;
            let cash = self.cash_of(&intent.pipeline_id, journal)?;
            if need > cash {
                let reason = format!("insufficient cash: need {need:.2}, have {cash:.2}");
                return Ok(self.model.reject(intent, reason, stamp));
            }
        }
        Ok(f)
    }

    fn cash_of(&mut self, pipeline: &str, journal: &Journal) -> Result<Decimal, VenueError> {
        if let Some(c) = self.cash.get(pipeline) {
            return Ok(*c);
        }
        let books = LiveBook::from_journal(journal, self.capital)?;
        let cash = books
            .iter()
            .find(|b| b.pipeline == pipeline)
            .map_or(self.capital, |b| b.view().cash);
        self.cash.insert(pipeline.to_string(), cash);
        Ok(cash)
    }

    fn spend(&mut self, pipeline: &str, f: &Fill) {
        if f.status != FillStatus::Filled {
            return;
        }
        let gross = f.quantity * f.price;
        let delta = match f.side {
            Side::Buy => -(gross + f.fee + f.gas),
            Side::Sell => gross - f.fee - f.gas,
        };
        if let Some(c) = self.cash.get_mut(pipeline) {
            *c += delta;
        }
    }
}

impl Venue for PaperVenue {
    fn name(&self) -> &str {
        "paper"
    }

    fn recover(&mut self, _journal: &Journal) -> Result<Vec<Fill>, VenueError> {
        // nothing is ever left half-done on paper: an intent without an outcome is simply executed again
        Ok(Vec::new())
    }

    fn refresh(&mut self) -> Result<(), VenueError> {
        if !self.clock.is_event() {
            self.tape.drain();
        }
        Ok(())
    }

    /// Journals the bar closes up to `upto` (None: through the last tick read), every token's that traded in
    /// each bar, as the backtest marks its book at each bar close.
    fn mark(&mut self, journal: &Journal, upto: Option<i64>) -> Result<(), VenueError> {
        match upto {
            Some(u) if self.clock.is_event() => self.tape.reach(u, self.wait()),
            _ => self.tape.drain(),
        }
        let Some(latest) = self.tape.latest() else {
            return Ok(());
        };
        let end = self.bar_of(upto.unwrap_or(self.bar_of(latest) + self.bar_ms));
        let tokens = self.tape.tokens();
        let first = match self.marked_to {
            Some(m) => m + self.bar_ms,
            None => {
                let earliest = tokens
                    .iter()
                    .filter_map(|t| self.tape.first_from_read(t))
                    .min()
                    .unwrap_or(latest);
                self.bar_of(earliest) + self.bar_ms
            }
        };
        let mut marks = Vec::new();
        let mut b = first;
        while b <= end {
            for token in &tokens {
                if let Some((at, price)) = self.tape.last_before(token, b) {
                    if at >= b - self.bar_ms {
                        marks.push(BarMark {
                            open: b - self.bar_ms,
                            close: b,
                            token: token.clone(),
                            price,
                        });
                    }
                }
            }
            b += self.bar_ms;
        }
        journal.record_marks(&marks)?;
        if end >= first {
            self.marked_to = Some(end);
            self.tape.forget_before(end - self.bar_ms);
        }
        Ok(())
    }

    fn execute(&mut self, intent: &OrderIntent, journal: &Journal) -> Result<Fill, VenueError> {
        let f = match (&intent.triggered, intent.quantity) {
            (Some(t), Some(q)) if intent.side == Side::Sell && q > Decimal::ZERO => {
                self.model.fill_triggered(intent, t, q)
            }
            (Some(_), _) => self.model.reject(
                intent,
                "a triggered exit needs a sell of a positive quantity".into(),
                self.clock.now(),
            ),
            (None, _) => self.fill_market(intent, journal)?,
        };
        if f.status == FillStatus::Filled {
            self.cash_of(&intent.pipeline_id, journal)?;
            self.spend(&intent.pipeline_id, &f);
        }
        journal.record_outcome(&f, self.clock.now())?;
        Ok(f)
    }
}
