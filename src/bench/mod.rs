//! Benchmarks behind `hypeflow bench`, at the top of the library because each one drives a whole stage from
//! outside: the pipeline on synthetic history, the Kafka run against a bare consumer, the ingest and LLM paths,
//! the executor against a local chain. Figures go to BENCHMARKS.md with the command that made them.

pub mod execution;
pub mod ingest;
pub mod kafka;
pub mod pipeline;

/// A benchmark that could not run (a node, a broker or a fake server failed to come up, a swap was refused):
/// no figure is written, and the message says which step failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BenchError(pub String);

/// For `map_err`: any failure of a step the benchmark depends on.
pub(crate) fn failed(e: impl std::fmt::Display) -> BenchError {
    BenchError(e.to_string())
}
