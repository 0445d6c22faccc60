//! What the executor asks of a venue, whatever it trades on: carry out one claimed intent to its journaled
//! outcome, settle at start what an earlier run left unfinished, and keep its view of the market current. The
//! paper venue and every on-chain venue implement it; the executor loop knows nothing else about them.

use super::journal::{Journal, JournalError};
use crate::model::{Fill, OrderIntent, Side};
use rust_decimal::Decimal;

#[derive(Debug, thiserror::Error)]
pub enum VenueError {
    #[error("venue set-up: {0}")]
    Setup(String),
    #[error("RPC: {0}")]
    Rpc(String),
    #[error("market data: {0}")]
    Market(String),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// Why a venue will not make a trade (a limit, the allow-list, a quote, a failed simulation): the intent gets
/// a rejected fill carrying this reason, and the run goes on. Failures that stop the run are `VenueError`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

impl From<&str> for Refused {
    fn from(reason: &str) -> Refused {
        Refused(reason.to_string())
    }
}

/// Refuses an entry whose executable price is worse than the intent's decision price by more than the
/// intent's slippage bound: price impact against the pool is bounded elsewhere, but a market that has run away
/// since the decision (a buy decided at 1.0 when the pool now sells at 2.0) must not be chased. Exits are not
/// held back by it: a position must always be able to close.
pub fn drift_guard(intent: &OrderIntent, executable: Option<Decimal>) -> Result<(), Refused> {
    if intent.side != Side::Buy {
        return Ok(());
    }
    let Some(px) = executable else {
        return Err(Refused(
            "no executable price: the quote came back empty".into(),
        ));
    };
    if intent.reference_price <= Decimal::ZERO {
        return Err(Refused(
            "the intent has no decision price to hold the fill to".into(),
        ));
    }
    if let Some(drift) = crate::dataflow::fill_model::drift_over_bound(intent, px) {
        return Err(Refused(format!(
            "price drift: executable {} is {:.1} bps above the decision price {} (bound {} bps)",
            px.round_dp(10),
            drift,
            intent.reference_price,
            intent.max_slippage_bps
        )));
    }
    Ok(())
}

/// What the account really holds, to reconcile the book with.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Wallet {
    /// Each traded token's balance, by symbol.
    pub tokens: std::collections::BTreeMap<String, Decimal>,
    /// The native coin that pays for gas, and the least the venue needs kept for it.
    pub native: Decimal,
    pub native_floor: Decimal,
}

pub trait Venue {
    /// The name fills and rejects carry (`paper`, `uniswap-v3`, ...).
    fn name(&self) -> &str;

    /// Settles what a previous run left between signing and an outcome, never executing anything twice;
    /// returns the outcomes it settled (they are journaled).
    fn recover(&mut self, journal: &Journal) -> Result<Vec<Fill>, VenueError>;

    /// Brings the venue's view of the market up to date (prices read, nothing traded).
    fn refresh(&mut self) -> Result<(), VenueError>;

    /// What the account really holds of each traded token, to reconcile the book with; None for a venue with
    /// no holdings of its own (paper: the book is all there is).
    fn holdings(&mut self) -> Result<Option<Wallet>, VenueError> {
        Ok(None)
    }

    /// Journals the bar closes the venue has seen up to `upto` (None: all it has read), for the live book's
    /// marks; a venue without its own view of the market journals none.
    fn mark(&mut self, _journal: &Journal, _upto: Option<i64>) -> Result<(), VenueError> {
        Ok(())
    }

    /// Carries out one claimed intent; the returned fill or refusal is journaled when this returns.
    fn execute(&mut self, intent: &OrderIntent, journal: &Journal) -> Result<Fill, VenueError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_held_to_its_decision_price_and_an_exit_is_not() {
        let mut i = OrderIntent {
            id: "i".into(),
            pipeline_id: "p".into(),
            token: "AXL".into(),
            side: Side::Buy,
            quantity: None,
            notional: Some(Decimal::from(100)),
            reference_price: Decimal::ONE,
            max_slippage_bps: Decimal::from(50),
            protection: Default::default(),
            reason: String::new(),
            decision_time: 0,
            inputs_version: "v".into(),
            triggered: None,
        };
        assert!(
            drift_guard(&i, Some(Decimal::new(1005, 3))).is_ok(),
            "50 bps is within"
        );
        let e = drift_guard(&i, Some(Decimal::from(2))).unwrap_err();
        assert!(
            e.0.contains("10000.0 bps above the decision price 1"),
            "{e}"
        );
        assert!(drift_guard(&i, None).is_err());
        i.side = Side::Sell;
        assert!(drift_guard(&i, Some(Decimal::from(2))).is_ok());
    }
}
