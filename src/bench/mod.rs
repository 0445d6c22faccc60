//! Benchmarks behind `hypeflow bench`, at the top of the library because each one drives a whole stage from
//! outside: the pipeline on synthetic history, the Kafka run against a bare consumer, the ingest and LLM paths,
//! the executor against a local chain. Figures go to BENCHMARKS.md with the command that made them.

pub mod execution;
pub mod ingest;
pub mod kafka;
pub mod pipeline;
