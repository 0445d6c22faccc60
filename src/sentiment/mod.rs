//! Reading sentiment out of posts: lexicon scoring, token extraction, and evaluation against labels.

pub mod eval;
pub mod lexicon;
pub mod tokens;

pub use lexicon::LexiconScorer;
pub use tokens::{extract, Extraction};
