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
}

pub fn run(
    cfg: Arc<PipelineConfig>,
    table: Arc<TokenTable>,
    loaded: Loaded,
    workers: usize,
    show_progress: bool,
) -> Result<RunOutput, RunError> {
    let workers = workers.max(1);
    let bar_interval = loaded.bar_interval;
    let quantum = cfg.epoch_ms(bar_interval);
    let total = loaded.events.len() as u64;
    let first_time = loaded
        .events
        .first()
        .map(|e| e.time())
        .or(loaded.first_time);
    // Round-robin shares keep each worker's slice in global event-time order.
    let mut shares: Vec<Vec<InputEvent>> = (0..workers)
        .map(|_| Vec::with_capacity(loaded.events.len() / workers + 1))
        .collect();
    for (i, ev) in loaded.events.into_iter().enumerate() {
        shares[i % workers].push(ev);
    }
    let shares: Arc<Mutex<Vec<Option<Vec<InputEvent>>>>> =
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
    };
    let (c2, f2, b2) = (collected.clone(), fed.clone(), bar.clone());
    let guards = timely::execute(timely::Config::process(workers), move |worker| {
        let index = worker.index();
        let mine = shares
            .lock()
            .ok()
            .and_then(|mut s| s.get_mut(index).and_then(Option::take))
            .unwrap_or_default();
        let mut ticks: InputHandle<u64, CapacityContainerBuilder<Vec<TickRec>>> =
            InputHandle::new();
        let mut bars: InputHandle<u64, CapacityContainerBuilder<Vec<BarRec>>> = InputHandle::new();
        let mut tweets: InputHandle<u64, CapacityContainerBuilder<Vec<TweetRec>>> =
            InputHandle::new();
        let probe = ProbeHandle::new();
        let sink = c2.clone();
        worker.dataflow::<u64, _, _>(|scope| {
            let events = assemble(
                ticks.to_stream(scope),
                bars.to_stream(scope),
                tweets.to_stream(scope),
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
        for ev in mine {
            let e = epoch(ev.time(), quantum);
            if e > current {
                let previous = current;
                current = e;
                ticks.advance_to(e);
                bars.advance_to(e);
                tweets.advance_to(e);
                // Keep at most about one epoch in flight: memory stays bounded by the windows, not history.
                worker.step_while(|| probe.less_than(&previous));
            }
            match ev {
                InputEvent::Tick(t) => ticks.send(t),
                InputEvent::Bar(b) => bars.send(b),
                InputEvent::Tweet(t) => tweets.send(t),
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
