//! Turning intents into fills: the paper venue (shared with backtests), the on-chain venues, the journal that
//! makes execution at-most-once per intent id, and the Kafka executor loop.

pub mod bench;
pub mod executor;
pub mod journal;
pub mod onchain;
pub mod paper;

pub use paper::PaperExecutor;
