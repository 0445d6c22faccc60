//! hypeflow on Kafka: topic definitions, message envelopes, the dev broker, producers and the timely source.

pub mod admin;
pub mod client;
pub mod dev_broker;
pub mod envelope;
pub mod lockstep;
pub mod publish;
pub mod run;
pub mod sample_feed;
pub mod schema_check;
pub mod scoring;
pub mod sink;
pub mod source;
pub mod topics;
