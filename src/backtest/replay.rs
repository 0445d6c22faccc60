//! `hypeflow replay`: batch reprocessing of topic history through the same dataflow as a backtest, writing the
//! same outputs. Replaying the published sample gives the same intents and trades as the file backtest.

use super::{finish, BacktestError, BacktestResult};
use crate::config::PipelineConfig;
use crate::dataflow::driver::{run_source, ClusterSpec};
use crate::kafka::source::{
    bounded_source, history_start, DeadLetters, SourceSpec, TopicKind, DEFAULT_FETCH_WAIT_MS,
};
use crate::kafka::topics;
use std::sync::{Arc, Mutex};

pub struct ReplayRequest {
    pub cfg: PipelineConfig,
    pub pipeline_text: String,
    pub pipeline_path: String,
    pub brokers: String,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub cluster: ClusterSpec,
    /// `social.tweets`, or `social.scored` when `scored`.
    pub tweets_topic: String,
    pub scored: bool,
    pub ticks_topic: String,
}

pub fn replay(req: ReplayRequest) -> Result<BacktestResult, BacktestError> {
    let started = std::time::Instant::now();
    let table = Arc::new(req.cfg.universe.token_table());
    let bar_interval = req.cfg.bar_interval_ms();
    let mut topics = vec![(req.ticks_topic.clone(), TopicKind::Ticks)];
    if req.cfg.uses_sentiment() {
        let kind = if req.scored {
            TopicKind::Scored
        } else {
            TopicKind::Tweets
        };
        topics.push((req.tweets_topic.clone(), kind));
    }
    let dead = Arc::new(Mutex::new(DeadLetters::default()));
    let spec = SourceSpec {
        brokers: req.brokers.clone(),
        group_id: topics::name(&format!("hypeflow-replay-{}", req.cfg.pipeline.id)),
        topics,
        from_ms: req.from_ms,
        to_ms: req.to_ms,
        // a replay reads each partition in order: nothing is late by construction
        lateness_ms: 0,
        quantum_ms: req.cfg.epoch_ms(bar_interval),
        fine_quantum_ms: None,
        table: table.clone(),
        dead: dead.clone(),
        fetch_wait_ms: DEFAULT_FETCH_WAIT_MS,
    };
    let start = history_start(&spec)
        .map_err(|e| BacktestError::Option(e.to_string()))?
        .unwrap_or(0);
    let cfg = Arc::new(req.cfg);
    let s2 = spec.clone();
    let workers = req.cluster.total_workers();
    let out = run_source(
        cfg.clone(),
        table,
        bar_interval,
        start,
        req.cluster.clone(),
        move |scope| bounded_source(scope, s2.clone()),
    )?;
    let DeadLetters { kept: dead, total } = std::mem::take(
        &mut *dead
            .lock()
            .map_err(|e| BacktestError::Option(e.to_string()))?,
    );
    let mut inputs = vec![
        ("pipeline file".to_string(), req.pipeline_path),
        ("brokers".into(), req.brokers),
        (
            "topics".into(),
            spec.topics
                .iter()
                .map(|t| t.0.clone())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        ("dead-lettered".into(), dead_count(total, dead.len())),
    ];
    let twice = crate::kafka::source::REDELIVERED.load(std::sync::atomic::Ordering::Relaxed);
    if twice > 0 {
        inputs.push(("delivered twice, skipped".into(), twice.to_string()));
    }
    finish(
        cfg,
        req.pipeline_text,
        out,
        dead,
        inputs,
        bar_interval,
        workers,
        started,
    )
}

/// The count for the report: all of them, saying so when only the first were written out.
fn dead_count(total: u64, kept: usize) -> String {
    if total as usize > kept {
        format!("{total} (the first {kept} in deadletter.jsonl)")
    } else {
        total.to_string()
    }
}
