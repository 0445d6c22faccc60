//! What the executor asks of a venue, whatever it trades on: carry out one claimed intent to its journaled
//! outcome, settle at start what an earlier run left unfinished, and keep its view of the market current. The
//! paper venue and every on-chain venue implement it; the executor loop knows nothing else about them.

use super::journal::{Journal, JournalError};
use crate::model::{Fill, OrderIntent};

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

pub trait Venue {
    /// The name fills and rejects carry (`paper`, `uniswap-v3`, ...).
    fn name(&self) -> &str;

    /// Settles what a previous run left between signing and an outcome, never executing anything twice;
    /// returns the outcomes it settled (they are journaled).
    fn recover(&mut self, journal: &Journal) -> Result<Vec<Fill>, VenueError>;

    /// Brings the venue's view of the market up to date (prices read, nothing traded).
    fn refresh(&mut self) -> Result<(), VenueError>;

    /// The latest market price the venue knows for a token, (event time, price), to mark the live book; None
    /// when it keeps none (the book then marks at the last fill).
    fn last_price(&self, _token: &str) -> Option<(crate::model::Millis, rust_decimal::Decimal)> {
        None
    }

    /// Carries out one claimed intent; the returned fill or refusal is journaled when this returns.
    fn execute(&mut self, intent: &OrderIntent, journal: &Journal) -> Result<Fill, VenueError>;
}
