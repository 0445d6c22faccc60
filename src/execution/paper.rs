//! The paper venue: the backtest's fill model against the latest `market.ticks` price, so a paper run means
//! what a backtest means by "filled" without any money moving.

use super::journal::Journal;
use super::prices::LatestPrices;
use super::venue::{drift_guard, Venue, VenueError};
use crate::config::FillConfig;
use crate::dataflow::fill_model::FillModel;
use crate::model::{Fill, FillStatus, OrderIntent};

pub struct PaperVenue {
    model: FillModel,
    prices: LatestPrices,
}

impl PaperVenue {
    /// Reads `market.ticks` from `lookback` records before each partition's end, to know the latest prices.
    pub fn connect(brokers: &str, fills: FillConfig, lookback: i64) -> Result<Self, VenueError> {
        Ok(PaperVenue {
            model: FillModel::new(fills),
            prices: LatestPrices::connect(brokers, lookback)?,
        })
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
        self.prices.drain();
        Ok(())
    }

    fn execute(&mut self, intent: &OrderIntent, journal: &Journal) -> Result<Fill, VenueError> {
        self.prices.drain();
        let f = match self.prices.get(&intent.token) {
            Some((time, price)) => {
                let f = self.model.fill_now(intent, price, time);
                match drift_guard(intent, Some(f.price)) {
                    Err(why) if f.status == FillStatus::Filled => {
                        self.model.reject(intent, why.0, time)
                    }
                    _ => f,
                }
            }
            None => self.model.reject(
                intent,
                format!("no market.ticks price for {} yet", intent.token),
                chrono::Utc::now().timestamp_millis(),
            ),
        };
        journal.record_outcome(&f, chrono::Utc::now().timestamp_millis())?;
        Ok(f)
    }
}
