//! Position book, sizing and limits used by the portfolio stage (the executor re-checks limits on its own).

pub mod book;
pub mod deflated;
pub mod metrics;
pub mod sizing;

pub use book::{Book, Position};
pub use sizing::{volatility_notional, Caps, Skip};
