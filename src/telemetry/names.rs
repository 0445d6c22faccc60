//! Every metric hypeflow exports: its name (prefixed `hypeflow_`), kind and meaning. Labels are bounded sets
//! (topics, partitions, pipelines, venues, providers, reason classes), never free text or a URL.

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};

pub const RECORDS_IN: &str = "hypeflow_records_in_total";
pub const DEAD_LETTERS: &str = "hypeflow_dead_letters_total";
pub const LATE_RECORDS: &str = "hypeflow_late_records_total";
pub const PIPELINE_RECORDS: &str = "hypeflow_pipeline_records_total";
pub const WATERMARK_LAG: &str = "hypeflow_watermark_lag_seconds";
pub const DECISION_LAG: &str = "hypeflow_decision_lag_seconds";
pub const INTENTS: &str = "hypeflow_intents_total";
pub const INTENTS_RECEIVED: &str = "hypeflow_intents_received_total";
pub const FILLS: &str = "hypeflow_fills_total";
pub const REJECTS: &str = "hypeflow_rejects_total";
pub const EXECUTION_LATENCY: &str = "hypeflow_execution_latency_seconds";
pub const SLIPPAGE: &str = "hypeflow_slippage_bps";
pub const EQUITY: &str = "hypeflow_equity";
pub const DRAWDOWN: &str = "hypeflow_drawdown_ratio";
pub const OPEN_POSITIONS: &str = "hypeflow_open_positions";
pub const PHASE: &str = "hypeflow_capital_phase";
pub const ENTRIES_HELD: &str = "hypeflow_entries_held";
pub const VENUE_ERRORS: &str = "hypeflow_venue_errors_total";
pub const PROVIDER_REQUESTS: &str = "hypeflow_provider_requests_total";
pub const PROVIDER_LATENCY: &str = "hypeflow_provider_latency_seconds";
pub const RATE_LIMIT_WAIT: &str = "hypeflow_rate_limit_wait_milliseconds_total";
pub const SOURCE_RECORDS: &str = "hypeflow_source_records_total";
pub const SOURCE_LAST_EVENT: &str = "hypeflow_source_last_event_timestamp_seconds";
pub const LLM_LATENCY: &str = "hypeflow_llm_latency_seconds";
pub const LLM_FALLBACKS: &str = "hypeflow_llm_fallbacks_total";
pub const RPC_LATENCY: &str = "hypeflow_rpc_latency_seconds";
pub const BUILD_INFO: &str = "hypeflow_build_info";
pub const STAGE_UP: &str = "hypeflow_stage_up";
pub const ALERTS: &str = "hypeflow_alerts_total";
pub const STAGE_RESTARTS: &str = "hypeflow_stage_restarts_total";

/// Histogram buckets of the latencies (seconds): 1 ms to 2 minutes, so the KPIs (price data < 0.5 s,
/// sentiment < 2 s, execution < 5 s) each fall on a bucket edge.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// Buckets of the realized slippage against the quote (basis points, adverse positive).
pub const SLIPPAGE_BUCKETS: &[f64] = &[
    -100.0, -25.0, -10.0, -5.0, -1.0, 0.0, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0,
];

/// Registers every metric's description with the installed recorder (shown as `# HELP` lines).
pub fn describe() {
    describe_counter!(RECORDS_IN, "Kafka records read, per topic and partition");
    describe_counter!(
        DEAD_LETTERS,
        "Records sent to the dead-letter path, per topic and reason class"
    );
    describe_counter!(
        LATE_RECORDS,
        "Records that came too late for their bar or window, per pipeline"
    );
    describe_counter!(
        PIPELINE_RECORDS,
        "Records that entered the pipeline's dataflow, per pipeline and kind"
    );
    describe_gauge!(
        WATERMARK_LAG,
        Unit::Seconds,
        "Wall clock minus the newest event time read, per topic and partition"
    );
    describe_histogram!(
        DECISION_LAG,
        Unit::Seconds,
        "From a decision's event time to the broker's acknowledgement of its intent"
    );
    describe_counter!(INTENTS, "Order intents published, per pipeline and side");
    describe_counter!(
        INTENTS_RECEIVED,
        "Order intents the executor read, per venue"
    );
    describe_counter!(FILLS, "Fills, per venue and side");
    describe_counter!(REJECTS, "Refused intents, per venue and reason class");
    describe_histogram!(
        EXECUTION_LATENCY,
        Unit::Seconds,
        "Execution stages: decision to received, received to outcome, to broadcast, broadcast to confirmed"
    );
    describe_histogram!(
        SLIPPAGE,
        "Realized slippage of fills against the quoted price, basis points (adverse positive)"
    );
    describe_gauge!(EQUITY, "Live book equity (quote currency), per pipeline");
    describe_gauge!(
        DRAWDOWN,
        "Drawdown from the live equity peak the ladder measures from, 0..1"
    );
    describe_gauge!(OPEN_POSITIONS, "Tokens held, per pipeline");
    describe_gauge!(
        PHASE,
        "Capital phase: 1 for the phase in force (label phase), with its index in the ladder"
    );
    describe_gauge!(
        ENTRIES_HELD,
        "1 while entries are held, per cause (paused: a breaker or an operator; killed)"
    );
    describe_counter!(VENUE_ERRORS, "Venue failures (RPC, node, API), per venue");
    describe_counter!(
        PROVIDER_REQUESTS,
        "Requests to outside providers, per provider and outcome (ok, error, rate_limited)"
    );
    describe_histogram!(
        PROVIDER_LATENCY,
        Unit::Seconds,
        "Latency of requests to outside providers, per provider"
    );
    describe_counter!(
        RATE_LIMIT_WAIT,
        Unit::Milliseconds,
        "Time spent waiting for a provider's rate limit, per provider"
    );
    describe_counter!(
        SOURCE_RECORDS,
        "Records an ingest stage wrote, per schema (tick, tweet, scored)"
    );
    describe_gauge!(
        SOURCE_LAST_EVENT,
        Unit::Seconds,
        "Event time (Unix seconds) of the last record an ingest stage wrote, per schema: alert on its age"
    );
    describe_histogram!(LLM_LATENCY, Unit::Seconds, "LLM scoring request latency");
    describe_counter!(
        LLM_FALLBACKS,
        "Posts the LLM left unscored that got the lexicon score, per reason"
    );
    describe_histogram!(
        RPC_LATENCY,
        Unit::Seconds,
        "Chain RPC call latency, per endpoint host"
    );
    describe_gauge!(BUILD_INFO, "1, labeled with the version and the command");
    describe_gauge!(
        STAGE_UP,
        "1 while a supervised stage runs (hypeflow up), per stage"
    );
    describe_counter!(STAGE_RESTARTS, "Restarts of a supervised stage, per stage");
    describe_counter!(
        ALERTS,
        "Alerts per channel and outcome (sent, rate_limited, failed; queue dropped, dedupe held)"
    );
}
