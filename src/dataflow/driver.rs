//! The one timely driver: backtests, topic replays and the live run all start their workers here, assemble the
//! same pipeline on them and end the same way (a worker's panic comes back with its message).
//! - `run_shares` feeds per-worker iterators of history (files, generators) in event-time order, with bounded
//!   lag; each worker feeds a deterministic share and the dataflow's exchanges and canonical ordering make the
//!   result independent of the number of workers.
//! - `run_source` drives a source operator built per worker (a topic replay) until it drains.
//! - `execute` is what both stand on, and what the live run uses with its own output operator.

use super::input::{split_events, InputEvent, Inputs};
use super::records::{epoch, BarRec, Counters, TickRec, TweetRec};
use super::{assemble, PipelineContext, PortfolioEvent, Positions};
use crate::config::PipelineConfig;
use crate::model::TokenTable;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Probe;
use timely::dataflow::{InputHandle, ProbeHandle};

/// Records fed ahead of the dataflow's output before the feeder waits.
const MAX_IN_FLIGHT: u64 = 65_536;
/// Epochs fed ahead of the dataflow's output before the feeder waits.
const MAX_EPOCHS_IN_FLIGHT: u32 = 64;
/// Records fed within one epoch between two steps of the worker.
const STEP_WITHIN_EPOCH: u64 = 4_096;

pub struct RunOutput {
    pub events: Vec<PortfolioEvent>,
    pub counters: Arc<Counters>,
    pub fed: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the dataflow failed: {0}")]
    Timely(String),
    #[error("a dataflow worker panicked: {0}")]
    Worker(String),
    #[error("{0}")]
    Source(String),
}

/// Starts the workers `cluster` describes, runs `work` on each and waits for all. A worker that panics is
/// reported with its panic message (timely itself only keeps the payload's type).
pub fn execute<T, F>(cluster: &ClusterSpec, work: F) -> Result<Vec<T>, RunError>
where
    T: Send + 'static,
    F: Fn(&mut timely::worker::Worker) -> T + Send + Sync + 'static,
{
    if cluster.addresses.len() > 1 {
        stop_on_peer_loss(cluster.process);
    }
    let panics: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let p2 = panics.clone();
    let guards =
        timely::execute(
            cluster.timely_config(),
            move |worker| match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                work(worker)
            })) {
                Ok(t) => t,
                Err(payload) => {
                    if let Ok(mut v) = p2.lock() {
                        v.push(panic_message(payload.as_ref()));
                    }
                    std::panic::resume_unwind(payload)
                }
            },
        )
        .map_err(RunError::Timely)?;
    let mut out = Vec::new();
    for r in guards.join() {
        match r {
            Ok(t) => out.push(t),
            Err(opaque) => {
                let told = panics.lock().ok().and_then(|v| v.first().cloned());
                return Err(RunError::Worker(told.unwrap_or(opaque)));
            }
        }
    }
    Ok(out)
}

/// Exit status of a cluster process that lost a peer: not a crash (nothing it owns is lost), a signal to
/// restart the whole group (`hypeflow up` does).
pub const EXIT_PEER_LOST: i32 = 75;

/// In a cluster, a peer process that dies makes timely's network threads panic ("timely communication
/// error"), and every worker after them. Nothing is gained by unwinding through that: what this process
/// decided is acknowledged and its watermarks are committed only behind acknowledged output, so it stops
/// at once with one clear line, and a restart of the group resumes from the committed watermarks.
fn stop_on_peer_loss(process: usize) {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current().name().unwrap_or("").to_string();
            let message = panic_message(info.payload());
            if is_network_failure(&thread, &message) {
                let line = format!(
                    "process {process} of the cluster lost its connection to a peer process ({message}); \
                     stopping. Everything acknowledged is kept and the watermarks are committed behind it: \
                     restart every process of the group (hypeflow up does) and it resumes from them"
                );
                tracing::error!("{line}");
                std::process::exit(EXIT_PEER_LOST);
            }
            previous(info);
        }));
    });
}

/// A panic that comes from timely's networking (its send/receive threads, or a worker reading a queue
/// those threads poisoned when they died).
fn is_network_failure(thread: &str, message: &str) -> bool {
    thread.starts_with("timely:send")
        || thread.starts_with("timely:recv")
        || message.starts_with("timely communication error")
        || message.contains("MergeQueue poisoned")
}

/// A panic payload as text: the message of `panic!("...")` and of `expect`, or its type when it is neither.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Ends a pipeline's output in `into`: the portfolio's events, in the order worker 0 emits them.
fn collect<'s>(
    events: timely::dataflow::Stream<'s, u64, Vec<PortfolioEvent>>,
    into: Arc<Mutex<Vec<PortfolioEvent>>>,
) {
    events.sink(Pipeline, "Collect", move |(input, _frontier)| {
        input.for_each_stamp(|_cap, data| {
            if let Ok(mut out) = into.lock() {
                for batch in data {
                    out.append(batch);
                }
            }
        });
    });
}

fn take_collected(c: &Mutex<Vec<PortfolioEvent>>) -> Result<Vec<PortfolioEvent>, RunError> {
    let mut guard = c
        .lock()
        .map_err(|_| RunError::Worker("a worker panicked while collecting output".into()))?;
    Ok(std::mem::take(&mut *guard))
}

/// One worker's share of the replay, in event-time order.
pub type Share = Box<dyn Iterator<Item = InputEvent> + Send>;

/// Replays any per-worker event sources (files, generators) through the pipeline.
pub fn run_shares(
    cfg: Arc<PipelineConfig>,
    table: Arc<TokenTable>,
    bar_interval: i64,
    first_time: Option<i64>,
    shares: Vec<Share>,
    total: u64,
    show_progress: bool,
) -> Result<RunOutput, RunError> {
    let workers = shares.len().max(1);
    let quantum = cfg.replay_quantum_ms(bar_interval);
    let shares: Arc<Mutex<Vec<Option<Share>>>> =
        Arc::new(Mutex::new(shares.into_iter().map(Some).collect()));
    let collected: Arc<Mutex<Vec<PortfolioEvent>>> = Arc::new(Mutex::new(Vec::new()));
    let fed = Arc::new(AtomicU64::new(0));
    let bar = Arc::new(progress_bar(show_progress, total));
    let ctx = PipelineContext::new(
        cfg,
        table,
        bar_interval,
        first_time.unwrap_or(0),
        Positions::Model,
    );
    let counters = ctx.counters.clone();
    let (c2, f2, b2) = (collected.clone(), fed.clone(), bar.clone());
    execute(&ClusterSpec::local(workers), move |worker| {
        let index = worker.index();
        let mine: Share = shares
            .lock()
            .ok()
            .and_then(|mut s| s.get_mut(index).and_then(Option::take))
            .unwrap_or_else(|| Box::new(std::iter::empty()));
        let mut inputs = FileInputs::default();
        let probe = ProbeHandle::new();
        let sink = c2.clone();
        worker.dataflow::<u64, _, _>(|scope| {
            let events = assemble(inputs.streams(scope), &ctx);
            collect(events.probe_with(&probe), sink);
        });
        let mut pace = Pace::default();
        let mut since_report = 0u64;
        for ev in mine {
            let e = epoch(ev.time(), quantum);
            if let Some(previous) = pace.advance(e) {
                inputs.advance_to(e);
                // Bounded lag: a few epochs and at most MAX_IN_FLIGHT records may be ahead of the output, so
                // memory is bounded by the windows and this budget, never by the history's length.
                if pace.must_wait() {
                    worker.step_while(|| probe.less_than(&previous));
                    pace.caught_up();
                } else {
                    worker.step();
                }
            }
            pace.in_flight += 1;
            inputs.send(ev);
            // a long epoch (a day of ticks) is consumed as it is fed, not buffered whole
            if pace.in_flight % STEP_WITHIN_EPOCH == 0 {
                worker.step();
            }
            since_report += 1;
            if since_report == 65_536 {
                let done = f2.fetch_add(since_report, Ordering::Relaxed) + since_report;
                since_report = 0;
                if let (Some(pb), 0) = (b2.as_ref(), index) {
                    pb.set_position(done);
                }
            }
        }
        f2.fetch_add(since_report, Ordering::Relaxed);
        drop(inputs);
        while worker.step_or_park(None) {}
    })?;
    if let Some(pb) = bar.as_ref() {
        pb.finish_and_clear();
    }
    Ok(RunOutput {
        events: take_collected(&collected)?,
        counters,
        fed: fed.load(Ordering::Relaxed),
    })
}

/// A progress bar for replays long enough to want one.
fn progress_bar(show: bool, total: u64) -> Option<indicatif::ProgressBar> {
    if !show || total <= 200_000 {
        return None;
    }
    let pb = indicatif::ProgressBar::new(total);
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} replay {bar:40} {pos}/{len} events ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(pb)
}

/// The inputs a file replay feeds, one per record kind.
#[derive(Default)]
struct FileInputs {
    ticks: InputHandle<u64, CapacityContainerBuilder<Vec<TickRec>>>,
    bars: InputHandle<u64, CapacityContainerBuilder<Vec<BarRec>>>,
    tweets: InputHandle<u64, CapacityContainerBuilder<Vec<TweetRec>>>,
}

impl FileInputs {
    fn streams<'s>(&mut self, scope: timely::dataflow::Scope<'s, u64>) -> Inputs<'s> {
        Inputs {
            ticks: self.ticks.to_stream(scope),
            bars: self.bars.to_stream(scope),
            tweets: self.tweets.to_stream(scope),
            orders: None,
        }
    }
    fn advance_to(&mut self, e: u64) {
        self.ticks.advance_to(e);
        self.bars.advance_to(e);
        self.tweets.advance_to(e);
    }
    fn send(&mut self, ev: InputEvent) {
        match ev {
            InputEvent::Tick(t) => self.ticks.send(t),
            InputEvent::Bar(b) => self.bars.send(b),
            InputEvent::Tweet(t) => self.tweets.send(t),
            // file histories carry no order lifecycle; the fill model decides positions
            InputEvent::Order(_) => {}
        }
    }
}

/// How far the replay has run ahead of the dataflow's output.
#[derive(Default)]
struct Pace {
    current: u64,
    in_flight: u64,
    epochs_in_flight: u32,
}

impl Pace {
    /// Moves to epoch `e`; the epoch left behind when `e` is a new one.
    fn advance(&mut self, e: u64) -> Option<u64> {
        if e <= self.current {
            return None;
        }
        let previous = std::mem::replace(&mut self.current, e);
        self.epochs_in_flight += 1;
        Some(previous)
    }
    fn must_wait(&self) -> bool {
        self.in_flight >= MAX_IN_FLIGHT || self.epochs_in_flight >= MAX_EPOCHS_IN_FLIGHT
    }
    fn caught_up(&mut self) {
        self.in_flight = 0;
        self.epochs_in_flight = 0;
    }
}

/// Where the workers run: threads in this process, or one process of a timely cluster over TCP.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    pub threads: usize,
    pub process: usize,
    /// `host:port` of every process; one entry (or none) means a single process.
    pub addresses: Vec<String>,
}

impl ClusterSpec {
    pub fn local(threads: usize) -> Self {
        ClusterSpec {
            threads: threads.max(1),
            process: 0,
            addresses: Vec::new(),
        }
    }
    pub fn total_workers(&self) -> usize {
        self.threads.max(1) * self.addresses.len().max(1)
    }
    pub fn timely_config(&self) -> timely::Config {
        if self.addresses.len() <= 1 {
            return timely::Config::process(self.threads.max(1));
        }
        timely::Config {
            communication: timely::CommunicationConfig::Cluster {
                threads: self.threads.max(1),
                process: self.process,
                addresses: self.addresses.clone(),
                report: false,
                zerocopy: false,
            },
            worker: timely::WorkerConfig::default(),
        }
    }
}

/// Runs the pipeline with a source operator built per worker (a topic replay), until the source drops its
/// capability and the dataflow drains. The portfolio lives on worker 0, so in a cluster only process 0 returns
/// events.
pub fn run_source<F, E>(
    cfg: Arc<PipelineConfig>,
    table: Arc<TokenTable>,
    bar_interval: i64,
    history_start: i64,
    cluster: ClusterSpec,
    make_source: F,
) -> Result<RunOutput, RunError>
where
    F: for<'s> Fn(
            timely::dataflow::Scope<'s, u64>,
        ) -> Result<timely::dataflow::Stream<'s, u64, Vec<InputEvent>>, E>
        + Send
        + Sync
        + 'static,
    E: std::fmt::Display,
{
    let collected: Arc<Mutex<Vec<PortfolioEvent>>> = Arc::new(Mutex::new(Vec::new()));
    let errors: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let ctx = PipelineContext::new(cfg, table, bar_interval, history_start, Positions::Model);
    let counters = ctx.counters.clone();
    let (c2, e2) = (collected.clone(), errors.clone());
    execute(&cluster, move |worker| {
        let sink = c2.clone();
        let errs = e2.clone();
        worker.dataflow::<u64, _, _>(|scope| match make_source(scope) {
            Ok(events) => collect(assemble(split_events(events), &ctx), sink),
            Err(e) => {
                if let Ok(mut v) = errs.lock() {
                    v.push(e.to_string());
                }
            }
        });
        while worker.step_or_park(Some(std::time::Duration::from_millis(10))) {}
    })?;
    if let Some(e) = errors.lock().ok().and_then(|v| v.first().cloned()) {
        return Err(RunError::Source(e));
    }
    let events = take_collected(&collected)?;
    let fed = Counters::get(&counters.ticks) + Counters::get(&counters.tweets);
    Ok(RunOutput {
        events,
        counters,
        fed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_panic_comes_back_with_its_message() {
        let e = execute(&ClusterSpec::local(2), |w| {
            if w.index() == 1 {
                panic!("bad record at offset 42");
            }
        })
        .unwrap_err();
        assert!(e.to_string().contains("bad record at offset 42"), "{e}");
        assert_eq!(
            execute(&ClusterSpec::local(2), |w| w.index()).unwrap(),
            vec![0, 1]
        );
    }
}
