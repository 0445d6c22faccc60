//! Turning intents into fills: the `Venue` trait and its venues (paper; on chain: Uniswap V3 / PancakeSwap V3
//! and 1inch, over one shared transaction path), the journal that makes execution at-most-once per intent id,
//! and the Kafka executor loop.

pub mod approval;
pub mod book;
pub mod capital;
pub mod clock;
pub mod control;
pub mod dashboard;
pub mod executor;
pub mod guard;
pub mod journal;
pub mod market_view;
pub mod onchain;
pub mod paper;
pub mod prices;
pub mod reasons;
pub mod tape;
pub mod venue;
