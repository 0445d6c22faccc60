//! Replays loaded history through the dataflow on W worker threads, in event-time order, and collects what the
//! portfolio stage emits. Each worker feeds a deterministic share of the records; the dataflow's exchanges and
//! canonical ordering make the result independent of W.

use super::inputs::{InputEvent, Loaded};
use crate::config::{PipelineConfig, TokenTable};
use crate::dataflow::records::{epoch, BarRec, Counters, TickRec, TweetRec};
use crate::dataflow::{assemble, PipelineContext, PortfolioEvent};
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

/// One worker's share of the replay, in event-time order.
pub type Share = Box<dyn Iterator<Item = InputEvent> + Send>;

/// Replays loaded files: round-robin shares keep each worker's slice in global event-time order.
pub fn run(
    cfg: Arc<PipelineConfig>,
    table: Arc<TokenTable>,
    loaded: Loaded,
    workers: usize,
    show_progress: bool,
) -> Result<RunOutput, RunError> {
    let workers = workers.max(1);
    let total = loaded.events.len() as u64;
    let first_time = loaded
        .events
        .first()
        .map(|e| e.time())
        .or(loaded.first_time);
    let mut shares: Vec<Vec<InputEvent>> = (0..workers)
        .map(|_| Vec::with_capacity(loaded.events.len() / workers + 1))
        .collect();
    for (i, ev) in loaded.events.into_iter().enumerate() {
        shares[i % workers].push(ev);
    }
    let shares: Vec<Share> = shares
        .into_iter()
        .map(|v| Box::new(v.into_iter()) as Share)
        .collect();
    run_shares(
        cfg,
        table,
        loaded.bar_interval,
        first_time,
        shares,
        total,
        show_progress,
    )
}

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
    let quantum = cfg.epoch_ms(bar_interval);
    let shares: Arc<Mutex<Vec<Option<Share>>>> =
        Arc::new(Mutex::new(shares.into_iter().map(Some).collect()));
    let collected: Arc<Mutex<Vec<PortfolioEvent>>> = Arc::new(Mutex::new(Vec::new()));
    let counters = Arc::new(Counters::default());
    let fed = Arc::new(AtomicU64::new(0));
    let bar = if show_progress && total > 200_000 {
        let pb = indicatif::ProgressBar::new(total);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} replay {bar:40} {pos}/{len} events ({per_sec}, eta {eta})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(pb)
    } else {
        None
    };
    let bar = Arc::new(bar);

    let ctx = PipelineContext {
        cfg,
        table,
        bar_interval,
        counters: counters.clone(),
        history_start: first_time.unwrap_or(0),
        positions: crate::dataflow::Positions::Model,
    };
    let (c2, f2, b2) = (collected.clone(), fed.clone(), bar.clone());
    let guards = timely::execute(timely::Config::process(workers), move |worker| {
        let index = worker.index();
        let mine: Share = shares
            .lock()
            .ok()
            .and_then(|mut s| s.get_mut(index).and_then(Option::take))
            .unwrap_or_else(|| Box::new(std::iter::empty()));
        let mut ticks: InputHandle<u64, CapacityContainerBuilder<Vec<TickRec>>> =
            InputHandle::new();
        let mut bars: InputHandle<u64, CapacityContainerBuilder<Vec<BarRec>>> = InputHandle::new();
        let mut tweets: InputHandle<u64, CapacityContainerBuilder<Vec<TweetRec>>> =
            InputHandle::new();
        let probe = ProbeHandle::new();
        let sink = c2.clone();
        worker.dataflow::<u64, _, _>(|scope| {
            let events = assemble(
                crate::dataflow::Inputs {
                    ticks: ticks.to_stream(scope),
                    bars: bars.to_stream(scope),
                    tweets: tweets.to_stream(scope),
                    orders: None,
                },
                &ctx,
            );
            events
                .probe_with(&probe)
                .sink(Pipeline, "Collect", move |(input, _frontier)| {
                    input.for_each_stamp(|_cap, data| {
                        if let Ok(mut out) = sink.lock() {
                            for batch in data {
                                out.append(batch);
                            }
                        }
                    });
                });
        });

        let mut current = 0u64;
        let mut since_report = 0u64;
        let mut in_flight = 0u64;
        let mut epochs_in_flight = 0u32;
        for ev in mine {
            let e = epoch(ev.time(), quantum);
            if e > current {
                let previous = current;
                current = e;
                ticks.advance_to(e);
                bars.advance_to(e);
                tweets.advance_to(e);
                epochs_in_flight += 1;
                // Bounded lag: a few epochs and at most MAX_IN_FLIGHT records may be ahead of the output, so
                // memory is bounded by the windows and this budget, never by the history's length.
                if in_flight >= MAX_IN_FLIGHT || epochs_in_flight >= MAX_EPOCHS_IN_FLIGHT {
                    worker.step_while(|| probe.less_than(&previous));
                    in_flight = 0;
                    epochs_in_flight = 0;
                } else {
                    worker.step();
                }
            }
            in_flight += 1;
            match ev {
                InputEvent::Tick(t) => ticks.send(t),
                InputEvent::Bar(b) => bars.send(b),
                InputEvent::Tweet(t) => tweets.send(t),
                // file histories carry no order lifecycle; the fill model decides positions
                InputEvent::Order(_) => {}
            }
            since_report += 1;
            if since_report == 65_536 {
                let done = f2.fetch_add(since_report, Ordering::Relaxed) + since_report;
                since_report = 0;
                if let Some(pb) = b2.as_ref() {
                    if index == 0 {
                        pb.set_position(done);
                    }
                }
            }
        }
        f2.fetch_add(since_report, Ordering::Relaxed);
        drop((ticks, bars, tweets));
        while worker.step_or_park(None) {}
    })
    .map_err(RunError::Timely)?;
    for r in guards.join() {
        r.map_err(RunError::Worker)?;
    }
    if let Some(pb) = bar.as_ref() {
        pb.finish_and_clear();
    }
    let events = std::mem::take(
        &mut *collected
            .lock()
            .map_err(|e| RunError::Worker(e.to_string()))?,
    );
    Ok(RunOutput {
        events,
        counters,
        fed: fed.load(Ordering::Relaxed),
    })
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
pub fn run_source<F>(
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
        ) -> Result<timely::dataflow::Stream<'s, u64, Vec<InputEvent>>, String>
        + Send
        + Sync
        + 'static,
{
    let collected: Arc<Mutex<Vec<PortfolioEvent>>> = Arc::new(Mutex::new(Vec::new()));
    let counters = Arc::new(Counters::default());
    let errors: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let ctx = PipelineContext {
        cfg,
        table,
        bar_interval,
        counters: counters.clone(),
        history_start,
        positions: crate::dataflow::Positions::Model,
    };
    let (c2, e2) = (collected.clone(), errors.clone());
    let guards = timely::execute(cluster.timely_config(), move |worker| {
        let sink = c2.clone();
        let errs = e2.clone();
        worker.dataflow::<u64, _, _>(|scope| match make_source(scope) {
            Ok(events) => {
                assemble(crate::dataflow::split_events(events), &ctx).sink(
                    Pipeline,
                    "Collect",
                    move |(input, _)| {
                        input.for_each_stamp(|_, data| {
                            if let Ok(mut out) = sink.lock() {
                                for batch in data {
                                    out.append(batch);
                                }
                            }
                        });
                    },
                );
            }
            Err(e) => {
                if let Ok(mut v) = errs.lock() {
                    v.push(e);
                }
            }
        });
        while worker.step_or_park(Some(std::time::Duration::from_millis(10))) {}
    })
    .map_err(RunError::Timely)?;
    for r in guards.join() {
        r.map_err(RunError::Worker)?;
    }
    if let Some(e) = errors.lock().ok().and_then(|v| v.first().cloned()) {
        return Err(RunError::Source(e));
    }
    let events = std::mem::take(
        &mut *collected
            .lock()
            .map_err(|e| RunError::Worker(e.to_string()))?,
    );
    let fed = Counters::get(&counters.ticks) + Counters::get(&counters.tweets);
    Ok(RunOutput {
        events,
        counters,
        fed,
    })
}
