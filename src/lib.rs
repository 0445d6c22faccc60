//! hypeflow: trades crypto tokens on what crypto influencers say.
//!
//! Stages: `model` (events, ids, money), `config` (pipeline files), `sentiment` (lexicon, token extraction,
//! evaluation), `dataflow` (timely operators and pipeline assembly), `risk` (book, sizing, caps), `execution`
//! (venues), `backtest` (replay, metrics, report), `sample` (synthetic data), `bench` (throughput).

pub mod backtest;
pub mod bench;
pub mod chain;
pub mod config;
pub mod dataflow;
pub mod execution;
pub mod ingest;
pub mod kafka;
pub mod model;
pub mod risk;
pub mod sample;
pub mod sentiment;
