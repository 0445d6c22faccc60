//! Synthetic sample data. No openly licensed history of influencer posts with matching prices exists, so the
//! shipped sample is generated: it is SYNTHETIC, and its only job is to exercise the pipeline realistically.

pub mod generate;

pub use generate::{generate, SampleSpec};
