//! hypeflow: trades crypto tokens on what crypto influencers say.
//!
//! Layers, bottom to top (a module imports only from its own layer or below; `tests/it/layers.rs` checks it):
//! `model`, `config` -> `net`, `telemetry` -> `sentiment`, `risk`, `alerts` -> `dataflow` -> `sample`, `chain`, `kafka`, `ingest` ->
//! `execution` -> `backtest` -> `bench`, `supervise`; the binary's `cli` on top.

pub mod alerts;
pub mod backtest;
pub mod bench;
pub mod chain;
pub mod config;
pub mod dataflow;
pub mod execution;
pub mod ingest;
pub mod kafka;
pub mod model;
pub mod net;
pub mod risk;
pub mod sample;
pub mod sentiment;
pub mod supervise;
pub mod telemetry;
