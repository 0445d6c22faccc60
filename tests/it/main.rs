//! The integration tests, as one binary so alloy, rdkafka and SQLite are linked once: each module is one area
//! (the backtest CLI, Kafka, the chain, the live-data clients), `common` holds the helpers they share, and
//! `layers` checks that the library's modules import only downwards.

mod alerts;
mod backtest_cli;
mod capital_ladder;
mod cluster;
mod common;
mod conditions;
mod control;
mod hostile;
mod kafka_execute;
mod kafka_faults;
mod kafka_positions;
mod kafka_replay;
mod kafka_run;
mod keystore;
mod layers;
mod llm_scoring;
mod lockstep;
mod metrics;
mod onchain_execute;
mod onchain_oneinch;
mod onchain_price;
mod onchain_venue;
mod price_feeds;
mod rebalance;
mod report_browser;
mod scored_sentiment;
mod sweep;
mod tansu_smoke;
mod up;
mod wallet_browser;
mod x_influencers;
mod x_ingest_cli;
mod x_stream;
