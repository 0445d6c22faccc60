//! Reading sentiment out of posts: lexicon scoring, the LLM model and the scoring stage that uses it, token
//! extraction, and evaluation against labels.

pub mod eval;
pub mod lexicon;
pub mod llm;
pub mod scoring_stage;
pub mod tokens;

pub use lexicon::LexiconScorer;
pub use tokens::{extract, Extraction};
