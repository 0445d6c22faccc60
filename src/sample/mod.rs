//! Synthetic sample data. No openly licensed history of influencer posts with matching prices exists, so the
//! shipped sample is generated: it is SYNTHETIC, and its only job is to exercise the pipeline realistically.
//! `kafka::sample_feed` plays it in real time for the keyless demo.

pub mod generate;

pub use generate::{generate, SampleSpec};
