//! Turning intents into fills. This issue ships the paper venue; on-chain venues plug in beside it.

pub mod paper;

pub use paper::PaperExecutor;
