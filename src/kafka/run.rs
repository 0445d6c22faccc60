//! `hypeflow run`: the live dataflow. The same operators as a backtest, fed by the live Kafka source, with
//! intents produced to `orders.intents` (keyed by token, the decision time as the Kafka timestamp). A restart
//! rewinds each partition by the longest window plus warm-up from its committed watermark; the decisions it
//! replays get the same intent ids, are suppressed here within a process and deduplicated by the executor's
//! journal across processes and restarts.
//!
//! By default the portfolio follows the executor: positions move only by the fills read back from
//! `orders.fills`, and pending intents by `orders.intents`/`orders.rejects` (read from their start on every
//! start, so a restart knows what is held and in flight however short its rewind). `--positions model` keeps
//! the backtest's fill model instead, which makes the run's intents equal `replay`'s record for record.

use super::envelope;
use super::publish::{PublishError, Publisher};
use super::source::{
    live_source, Advance, DeadLetters, LiveOptions, SourceError, SourceSpec, TopicKind,
};
use super::topics;
use crate::config::PipelineConfig;
use crate::dataflow::driver::{execute, ClusterSpec, RunError};
use crate::dataflow::input::split_events;
use crate::dataflow::records::Counters;
use crate::dataflow::{assemble, PipelineContext, PortfolioEvent, Positions};
use crate::model::{OrderIntent, TokenTable};
use crate::telemetry::names;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Probe;
use timely::dataflow::ProbeHandle;

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("pipeline: {0}")]
    Pipeline(String),
    #[error(transparent)]
    Dataflow(#[from] RunError),
}

pub struct RunRequest {
    pub cfg: PipelineConfig,
    pub brokers: String,
    pub cluster: ClusterSpec,
    pub from_ms: Option<i64>,
    pub idle: Duration,
    pub exit_when_idle: Option<Duration>,
    pub positions: Positions,
    /// Read sentiment from `social.scored` (the scoring stage's output) instead of scoring `social.tweets` here.
    pub scored: bool,
    /// The consumers' `fetch.wait.max.ms` (see `source::DEFAULT_FETCH_WAIT_MS`).
    pub fetch_wait_ms: u64,
    /// Log every watermark advance with the record that caused it into [`RunStats::advances`].
    pub trace_watermarks: bool,
    /// A replay in step with its executor (`super::lockstep`); needs `Positions::Fills` and one process.
    pub lockstep: bool,
    /// Set by SIGTERM/SIGINT: every worker commits behind its acknowledged output and the run ends without
    /// closing its windows (a stop is not the end of the stream: a restart rebuilds them from the rewind).
    pub stop: Option<Arc<AtomicBool>>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunStats {
    pub intents_published: u64,
    /// Per published intent: (decision time, its acknowledgement on the wall clock minus that), in ms. Only
    /// meaningful when event time is the wall clock (a live feed); `bench --mode kafka-latency` reports it.
    pub decision_lags_ms: Vec<(i64, i64)>,
    pub repeats_suppressed: u64,
    /// Records that entered the dataflow, and those that came too late for their bar or window.
    pub ticks: u64,
    pub tweets: u64,
    pub late: u64,
    pub dead_lettered: u64,
    /// With `trace_watermarks`: every worker's watermark advances, in order.
    pub advances: Vec<Advance>,
    /// When the last worker's dataflow finished (before the final commit and closing the consumers).
    pub dataflow_done: Option<std::time::Instant>,
}

/// Event time a restart replays before the committed watermark: enough for every window, baseline and
/// indicator to be whole again when decisions resume.
pub fn rewind_ms(cfg: &PipelineConfig, bar_interval: i64) -> i64 {
    let sentiment = cfg.window_ms() * (cfg.sentiment.baseline_windows as i64 + 1);
    let slow = match cfg.signal {
        crate::config::SignalConfig::SmaCross { slow, .. } => slow,
        crate::config::SignalConfig::Sentiment { momentum_bars, .. } => momentum_bars,
    };
    let bars = (cfg
        .sizing
        .atr_period
        .max(slow)
        .max(cfg.correlation.window_bars) as i64
        + 2)
        * bar_interval;
    sentiment.max(bars)
}

/// Timestamps of records near the wall clock are whole milliseconds: a decision at a bar close can only be
/// made once the frontier passes the close's timestamp, so a coarse quantum (up to a minute for 5-minute bars)
/// would hold every live decision back by up to that much. Results do not depend on it (the operators work on
/// event time; `replay` uses the coarse quantum and gives the same intents).
pub const LIVE_QUANTUM_MS: i64 = 1;

/// The topics the run reads and how: ticks, the sentiment topic its pipeline needs, and with `--positions
/// fills` the executor's intents, fills and rejects.
fn source_spec(
    req: &RunRequest,
    table: Arc<TokenTable>,
    bar_interval: i64,
    dead: Arc<Mutex<DeadLetters>>,
) -> SourceSpec {
    let mut topics = vec![(topics::name("market.ticks"), TopicKind::Ticks)];
    if req.cfg.uses_sentiment() {
        topics.push(if req.scored {
            (topics::name("social.scored"), TopicKind::Scored)
        } else {
            (topics::name("social.tweets"), TopicKind::Tweets)
        });
    }
    if req.positions == Positions::Fills {
        topics.push((topics::name("orders.intents"), TopicKind::Intents));
        topics.push((topics::name("orders.fills"), TopicKind::Fills));
        topics.push((topics::name("orders.rejects"), TopicKind::Rejects));
    }
    SourceSpec {
        brokers: req.brokers.clone(),
        group_id: topics::name(&format!("hypeflow-run-{}", req.cfg.pipeline.id)),
        topics,
        from_ms: req.from_ms,
        to_ms: None,
        lateness_ms: req.cfg.lateness_ms(),
        quantum_ms: req.cfg.epoch_ms(bar_interval),
        fine_quantum_ms: Some(LIVE_QUANTUM_MS),
        table,
        dead,
        fetch_wait_ms: req.fetch_wait_ms,
    }
}

type EarlyPublisher = std::thread::JoinHandle<Result<Publisher, PublishError>>;

/// The intents producer, made and warmed up (leader connection, idempotent producer id: ~50 ms) while the
/// history probe runs; worker 0 takes it, so the first decision does not wait for it.
fn early_publisher(req: &RunRequest) -> Option<EarlyPublisher> {
    (req.cluster.process == 0).then(|| {
        let brokers = req.brokers.clone();
        std::thread::spawn(move || {
            Publisher::immediate(&brokers).map(|mut p| {
                p.warm_up(&topics::name("orders.intents"));
                p
            })
        })
    })
}

pub fn run_live(req: RunRequest) -> Result<RunStats, LiveError> {
    tracing::debug!("run: starting");
    let table = Arc::new(req.cfg.universe.token_table());
    let bar_interval = req.cfg.bar_interval_ms();
    let dead = Arc::new(Mutex::new(DeadLetters::default()));
    let spec = source_spec(&req, table.clone(), bar_interval, dead.clone());
    let live = LiveOptions {
        idle: req.idle,
        exit_when_idle: req.exit_when_idle,
        rewind_ms: rewind_ms(&req.cfg, bar_interval),
        commit_every: Duration::from_secs(1),
        watermark_log: req.trace_watermarks.then(Default::default),
        lockstep: req
            .lockstep
            .then(|| Arc::new(super::lockstep::Lockstep::new(bar_interval))),
    };
    if req.lockstep && (req.positions != Positions::Fills || req.cluster.addresses.len() > 1) {
        return Err(LiveError::Pipeline(
            "--lockstep follows the executor's fills within one process: use --positions fills and no -n/-h"
                .into(),
        ));
    }
    let lockstep = live.lockstep.clone();
    let watermark_log = live.watermark_log.clone();
    let early_publisher = Arc::new(Mutex::new(early_publisher(&req)));
    // The velocity baseline needs a history start all workers agree on: the earliest record in the topics.
    let history_start = super::source::history_start(&spec)?.unwrap_or(0);
    tracing::debug!("history starts at {history_start}");
    let cfg = Arc::new(req.cfg);
    let mut ctx = PipelineContext::new(cfg, table, bar_interval, history_start, req.positions);
    ctx.lockstep = req.lockstep;
    let counters = ctx.counters.clone();
    let exported = Arc::new(AtomicBool::new(false));
    let exporter = {
        let (c, p, d) = (
            counters.clone(),
            ctx.cfg.pipeline.id.clone(),
            exported.clone(),
        );
        std::thread::spawn(move || export_counters(c, p, d))
    };
    let stats = Arc::new(Mutex::new(RunStats::default()));
    let errors: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let (st2, er2, brokers) = (stats.clone(), errors.clone(), req.brokers.clone());
    let stop = req.stop.clone();
    // set when the portfolio halts (its book overflowed): every worker of this process stops as on a request
    let halted = Arc::new(AtomicBool::new(false));
    let ran = execute(&req.cluster, move |worker| {
        let halted = halted.clone();
        let halted_out = halted.clone();
        let probe = ProbeHandle::new();
        let dataflow = worker.next_dataflow_index();
        let final_commit = worker.dataflow::<u64, _, _>(|scope| {
            match live_source(scope, spec.clone(), live.clone(), probe.clone()) {
                Ok((events, final_commit)) => {
                    // Intents are only decided on worker 0; a producer that failed to start is made again (and
                    // its error reported) at the first intent.
                    let publisher = if scope.index() == 0 {
                        early_publisher
                            .lock()
                            .ok()
                            .and_then(|mut h| h.take())
                            .and_then(|h| h.join().ok())
                            .and_then(Result::ok)
                    } else {
                        None
                    };
                    let mut out = IntentsOut {
                        publisher,
                        seen: HashSet::new(),
                        topic: topics::name("orders.intents"),
                        brokers: brokers.clone(),
                        stats: st2.clone(),
                        errors: er2.clone(),
                        lockstep: lockstep.clone(),
                    };
                    // the probe after the publishing: its frontier passes a time once that time's intents are
                    // acknowledged (commits, and lockstep's step, wait for it)
                    assemble(split_events(events), &ctx)
                        .unary::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
                            Pipeline,
                            "IntentsOut",
                            move |_cap, _info| {
                                move |input, _output| {
                                    input.for_each_stamp(|_, data| {
                                        for ev in data.flat_map(|b| b.drain(..)) {
                                            match ev {
                                                PortfolioEvent::Intent(i) if !out.publish(&i) => {
                                                    return
                                                }
                                                PortfolioEvent::Halted(_, why) => {
                                                    push_error(&out.errors, why);
                                                    halted_out.store(true, Ordering::Relaxed);
                                                }
                                                _ => {}
                                            }
                                        }
                                    });
                                }
                            },
                        )
                        .probe_with(&probe);
                    Some(final_commit)
                }
                Err(e) => {
                    push_error(&er2, e.to_string());
                    None
                }
            }
        });
        let asked = || {
            stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed))
                || halted.load(Ordering::Relaxed)
        };
        while worker.step_or_park(Some(Duration::from_millis(1))) {
            if asked() {
                // behind the probe: only what was decided and acknowledged; the rest is read again
                let frontier = probe.with_frontier(|f| f.first().copied());
                if let Some(f) = final_commit {
                    f.commit_behind(frontier);
                }
                worker.drop_dataflow(dataflow);
                tracing::info!("run: stopped on request, committed behind {frontier:?}");
                return;
            }
        }
        tracing::debug!("run: dataflow finished");
        if let Ok(mut s) = st2.lock() {
            let now = std::time::Instant::now();
            s.dataflow_done = Some(s.dataflow_done.map_or(now, |d| d.max(now)));
        }
        if let Some(f) = final_commit {
            f.commit();
        }
    });
    exported.store(true, Ordering::Relaxed);
    exporter.thread().unpark();
    let _ = exporter.join();
    ran?;
    if let Some(e) = errors.lock().ok().and_then(|v| v.first().cloned()) {
        return Err(LiveError::Pipeline(e));
    }
    let mut out = stats.lock().map(|s| s.clone()).unwrap_or_default();
    out.dead_lettered = dead.lock().map(|d| d.total).unwrap_or(0);
    out.ticks = Counters::get(&counters.ticks);
    out.tweets = Counters::get(&counters.tweets);
    out.late = Counters::get(&counters.late_records);
    if let Some(log) = watermark_log {
        out.advances = std::mem::take(&mut *log.lock().map_err(|_| {
            LiveError::Dataflow(RunError::Worker(
                "a worker panicked while logging the watermark".into(),
            ))
        })?);
    }
    Ok(out)
}

/// Decision lags kept in [`RunStats`] (the benchmark's sample); beyond it only the histogram counts.
const MAX_KEPT_LAGS: usize = 100_000;

/// Copies the dataflow's counters into the exported metrics once a second while the run lasts (the
/// operators count with plain atomics; the exporter reads absolute values).
fn export_counters(counters: Arc<Counters>, pipeline: String, done: Arc<AtomicBool>) {
    let c = |kind: &'static str| metrics::counter!(names::PIPELINE_RECORDS, "pipeline" => pipeline.clone(), "kind" => kind);
    let (ticks, tweets, mentions, signals) = (c("ticks"), c("tweets"), c("mentions"), c("signals"));
    let late = metrics::counter!(names::LATE_RECORDS, "pipeline" => pipeline.clone());
    loop {
        ticks.absolute(Counters::get(&counters.ticks));
        tweets.absolute(Counters::get(&counters.tweets));
        mentions.absolute(Counters::get(&counters.mentions));
        signals.absolute(Counters::get(&counters.signals));
        late.absolute(Counters::get(&counters.late_records));
        if done.load(Ordering::Relaxed) {
            return;
        }
        // woken at the end, so a run does not wait out the interval to exit
        std::thread::park_timeout(Duration::from_millis(500));
    }
}

fn push_error(errors: &Mutex<Vec<String>>, e: String) {
    if let Ok(mut v) = errors.lock() {
        v.push(e);
    }
}

/// Worker 0's end of the dataflow: every new intent to `orders.intents`, acknowledged.
struct IntentsOut {
    publisher: Option<Publisher>,
    /// Within one process an id goes out once; across restarts the executor's journal dedupes.
    seen: HashSet<String>,
    topic: String,
    brokers: String,
    stats: Arc<Mutex<RunStats>>,
    errors: Arc<Mutex<Vec<String>>>,
    lockstep: Option<Arc<super::lockstep::Lockstep>>,
}

impl IntentsOut {
    /// Publishes one intent (a repeat is counted and dropped); false when no producer can be made, which
    /// stops this batch and is reported as the run's error.
    fn publish(&mut self, i: &OrderIntent) -> bool {
        if !self.seen.insert(i.id.clone()) {
            if let Ok(mut s) = self.stats.lock() {
                s.repeats_suppressed += 1;
            }
            return true;
        }
        if self.publisher.is_none() {
            match Publisher::immediate(&self.brokers) {
                Ok(p) => self.publisher = Some(p),
                Err(e) => {
                    push_error(&self.errors, e.to_string());
                    return false;
                }
            }
        }
        let Some(p) = self.publisher.as_mut() else {
            return false;
        };
        if let Some(l) = &self.lockstep {
            l.sent(&i.id);
        }
        // an intent must reach the topic: retry through outages
        let sent = p.send_until_acked(
            &self.topic,
            &i.token,
            &envelope::encode("intent", i),
            i.decision_time,
        );
        match sent {
            Ok(()) => {
                let lag = chrono::Utc::now().timestamp_millis() - i.decision_time;
                let pipeline = i.pipeline_id.clone();
                metrics::counter!(names::INTENTS, "pipeline" => pipeline.clone(), "side" => i.side.as_str())
                    .increment(1);
                metrics::histogram!(names::DECISION_LAG, "pipeline" => pipeline)
                    .record(lag.max(0) as f64 / 1000.0);
                if let Ok(mut s) = self.stats.lock() {
                    s.intents_published += 1;
                    // kept for the latency benchmark; a long live run keeps the histogram, not every lag
                    if s.decision_lags_ms.len() < MAX_KEPT_LAGS {
                        s.decision_lags_ms.push((i.decision_time, lag));
                    }
                }
            }
            Err(e) => push_error(&self.errors, e.to_string()),
        }
        let (id, side, token) = (&i.id, i.side.as_str(), &i.token);
        tracing::info!("intent {id} {side} {token} at {}", i.decision_time);
        true
    }
}
