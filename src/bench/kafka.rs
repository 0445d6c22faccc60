//! The Kafka benchmarks (`hypeflow bench --mode kafka|kafka-latency --brokers B`), run against a broker
//! process (bench/run.sh starts a dev-broker):
//!
//! - throughput: synthetic ticks and posts are published, then read twice from the same topics: by a bare
//!   consumer that only counts records (the broker's raw consume rate, the baseline), and by the live `run`
//!   dataflow through to `orders.intents`. The ratio is what the pipeline costs over just reading.
//! - latency: a generator publishes ticks stamped with the wall clock at a steady rate while `run` follows
//!   them on 1-second bars. Each intent gets two lags, both ending at the broker's acknowledgement of the
//!   intent: from the Kafka timestamp of the record that triggered the decision (the one whose arrival moved
//!   the watermark past the bar close, as the source logs it), and from the bar close itself, which adds the
//!   wait for that record (it depends on the feed's rate, not on hypeflow).

use super::pipeline::{Synthetic, BENCH_PIPELINE};
use crate::config::PipelineConfig;
use crate::dataflow::driver::ClusterSpec;
use crate::dataflow::input::InputEvent;
use crate::dataflow::Positions;
use crate::kafka::envelope;
use crate::kafka::publish::{PublishError, Publisher};
use crate::kafka::run::{run_live, LiveError, RunRequest};
use crate::kafka::source::{
    consumer, partition_count, Advance, SourceError, DEFAULT_FETCH_WAIT_MS,
};
use crate::kafka::topics;
use crate::model::PriceTick;
use rand::{Rng, SeedableRng};
use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use rust_decimal::Decimal;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum KafkaBenchError {
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Run(#[from] LiveError),
    #[error("bench pipeline: {0}")]
    Pipeline(String),
    #[error("{read} of {expected} records were read back: the broker dropped some (librdkafka's mock cluster keeps about 5 MB per partition; use fewer --ticks)")]
    Short { read: u64, expected: u64 },
}

pub struct Throughput {
    pub records: u64,
    pub raw_seconds: f64,
    pub pipeline_seconds: f64,
    pub intents: u64,
}

/// How long the live run must see no record before it stops; subtracted from its wall time.
const IDLE_EXIT: Duration = Duration::from_millis(1500);

fn bench_config(text: &str) -> Result<PipelineConfig, KafkaBenchError> {
    PipelineConfig::parse(text, "bench").map_err(|e| KafkaBenchError::Pipeline(e.to_string()))
}

/// Publishes `ticks` ticks and `ticks / 10` posts of synthetic history, then times the raw read and the run.
pub fn throughput(
    brokers: &str,
    ticks: u64,
    workers: usize,
) -> Result<Throughput, KafkaBenchError> {
    let cfg = bench_config(BENCH_PIPELINE)?;
    let table = cfg.universe.token_table();
    let syn = Synthetic {
        ticks,
        tweets: ticks / 10,
    };
    let mut p = Publisher::new(brokers)?;
    for e in 0..syn.len() {
        match syn.event(e) {
            InputEvent::Tick(t) => {
                let tick = PriceTick {
                    token: table.symbol(t.token).to_string(),
                    price: t.price,
                    volume: t.volume,
                    source: "bench".into(),
                    event_time: t.time,
                };
                p.send(
                    &topics::name("market.ticks"),
                    &tick.token,
                    &envelope::encode("tick", &tick),
                    t.time,
                    None,
                )?;
            }
            InputEvent::Tweet(t) => p.send(
                &topics::name("social.tweets"),
                &t.tweet.author_id,
                &envelope::encode("tweet", &t.tweet),
                t.tweet.created_at,
                None,
            )?,
            InputEvent::Bar(_) | InputEvent::Order(_) => {}
        }
    }
    let records = p.finish()?;

    let (read, raw_seconds) = raw_consume(
        brokers,
        &[
            &topics::name("market.ticks"),
            &topics::name("social.tweets"),
        ],
        records,
    )?;
    if read < records {
        return Err(KafkaBenchError::Short {
            read,
            expected: records,
        });
    }

    let start = Instant::now();
    let stats = run_live(RunRequest {
        scored: false,
        cfg,
        brokers: brokers.into(),
        cluster: ClusterSpec::local(workers.max(1)),
        from_ms: None,
        idle: Duration::from_millis(200),
        exit_when_idle: Some(IDLE_EXIT),
        positions: Positions::Model,
        fetch_wait_ms: DEFAULT_FETCH_WAIT_MS,
        trace_watermarks: false,
        lockstep: false,
        stop: None,
    })?;
    // Start-up counts on both sides; closing the consumers (~100 ms in librdkafka) on neither.
    let done = stats.dataflow_done.unwrap_or_else(Instant::now);
    let pipeline_seconds = (done.duration_since(start) - IDLE_EXIT).as_secs_f64();
    if stats.ticks + stats.tweets < records {
        return Err(KafkaBenchError::Short {
            read: stats.ticks + stats.tweets,
            expected: records,
        });
    }
    Ok(Throughput {
        records,
        raw_seconds,
        pipeline_seconds,
        intents: stats.intents_published,
    })
}

/// Reads every partition of `topics` from its start until `expected` records arrived (or 60 s of nothing);
/// returns how many did and the seconds from creating the consumer to the last one.
fn raw_consume(
    brokers: &str,
    topics: &[&str],
    expected: u64,
) -> Result<(u64, f64), KafkaBenchError> {
    let start = Instant::now();
    let c = consumer(brokers, "hypeflow-bench-raw", DEFAULT_FETCH_WAIT_MS)?;
    {
        let mut tpl = TopicPartitionList::new();
        for t in topics {
            for p in 0..partition_count(&c, brokers, t)? {
                let _ = tpl.add_partition_offset(t, p, Offset::Beginning);
            }
        }
        c.assign(&tpl).map_err(|e| SourceError::Metadata {
            topic: topics.join(","),
            brokers: brokers.into(),
            message: e.to_string(),
        })?;
    }
    let mut read = 0u64;
    let mut last = Instant::now();
    while read < expected && last.elapsed() < Duration::from_secs(60) {
        if let Some(Ok(_)) = c.poll(Duration::from_millis(100)) {
            read += 1;
            last = Instant::now();
        }
    }
    Ok((read, last.duration_since(start).as_secs_f64()))
}

pub struct Latency {
    pub ticks: u64,
    pub seconds: f64,
    /// Per intent decided in the steady state, sorted, in ms: the broker's acknowledgement of the intent minus
    /// the Kafka timestamp of the record that triggered it.
    pub trigger_lags_ms: Vec<i64>,
    /// The same intents: acknowledgement minus the bar close (includes waiting for the triggering record).
    pub close_lags_ms: Vec<i64>,
    /// Intents decided during start-up or after the load stopped, left out of the figures.
    pub excluded: usize,
}

const STARTUP_MS: i64 = 3_000;
const BAR_MS: i64 = 1_000;

/// The value at quantile `q` of sorted `v` (nearest rank).
pub fn percentile(v: &[i64], q: f64) -> Option<i64> {
    if v.is_empty() {
        return None;
    }
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v.get(i).copied()
}

/// The record that released a decision at `close`: each worker's first watermark advance past it, the last
/// of those to be logged. None if any worker got there by a partition going idle rather than by a record.
fn trigger_for(advances: &[Advance], close: i64) -> Option<i64> {
    let workers: std::collections::BTreeSet<usize> = advances.iter().map(|a| a.worker).collect();
    let mut latest = None;
    for w in workers {
        let first = advances
            .iter()
            .find(|a| a.worker == w && a.epoch as i64 > close)?;
        let t = first.trigger_ms?;
        latest = Some(latest.map_or(t, |l: i64| l.max(t)));
    }
    latest
}

/// Publishes ticks for 8 tokens at `rate` per second for `seconds`, stamped with the wall clock, while a
/// live run decides SMA crosses on 1-second bars.
pub fn latency(
    brokers: &str,
    rate: u64,
    seconds: u64,
    fetch_wait_ms: u64,
) -> Result<Latency, KafkaBenchError> {
    let text = BENCH_PIPELINE
        .replace("interval = \"1m\"", "interval = \"1s\"")
        .replace("slide = \"1m\"", "slide = \"1s\"")
        .replace(
            "[signal]\nkind = \"sentiment\"\nentry_score = 0.2\nentry_velocity_z = 1.0\nmin_mentions = 2",
            "[signal]\nkind = \"sma_cross\"\nfast = 2\nslow = 5\n[sizing]\nmode = \"fixed_stake\"\nstake = 100\n[risk]\nmax_open_positions = 8\nmax_cluster_fraction = 1",
        );
    let cfg = bench_config(&text)?;
    let table = cfg.universe.token_table();
    let symbols: Vec<String> = (0..8).map(|i| table.symbol(i).to_string()).collect();
    let b = brokers.to_string();
    let runner = std::thread::spawn(move || {
        run_live(RunRequest {
            scored: false,
            cfg,
            brokers: b,
            cluster: ClusterSpec::local(1),
            from_ms: None,
            idle: Duration::from_millis(2000),
            // longer than the pause before the load starts
            exit_when_idle: Some(Duration::from_secs(5)),
            positions: Positions::Model,
            fetch_wait_ms,
            trace_watermarks: true,
            lockstep: false,
            stop: None,
        })
    });
    // let the run assign its partitions before the clock starts
    std::thread::sleep(Duration::from_secs(1));
    // The generator stands for every feed at once, so it batches as a bulk load does (5 ms, counted in the lag:
    // the Kafka timestamp is taken before). Sent one by one, as `ingest` does at a single feed's real rate, 2,000 produce requests
    // a second outran the dev-broker's single thread and the lag grew by seconds a minute; 1 ms batches still
    // let it fall behind now and then (a 1.2 s maximum in 60 s).
    let mut p = Publisher::new(brokers)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let load_start = chrono::Utc::now().timestamp_millis();
    let mut px = [100_000i64; 8];
    let start = Instant::now();
    let total = rate * seconds;
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let tok = (i % 8) as usize;
        px[tok] = (px[tok] + rng.random_range(-100..=100)).max(1_000);
        let now = chrono::Utc::now().timestamp_millis();
        let tick = PriceTick {
            token: symbols[tok].clone(),
            price: Decimal::new(px[tok], 3),
            volume: Decimal::ONE,
            source: "bench".into(),
            event_time: now,
        };
        p.send(
            &topics::name("market.ticks"),
            &tick.token,
            &envelope::encode("tick", &tick),
            now,
            None,
        )?;
        if i % 64 == 0 {
            p.poll();
        }
    }
    // The load ends with its last send; the acknowledgements of the tail come after.
    let seconds = start.elapsed().as_secs_f64();
    let load_end = chrono::Utc::now().timestamp_millis();
    p.flush()?;
    let stats = runner
        .join()
        .map_err(|_| KafkaBenchError::Pipeline("the run thread panicked".into()))??;
    // Steady state only: the first seconds wait for silent partitions to be declared idle, and the last
    // decisions wait for the run to stop (nothing comes after them to move the watermark).
    let steady = load_start + STARTUP_MS..load_end - 2 * BAR_MS;
    let (lags, edges): (Vec<_>, Vec<_>) = stats
        .decision_lags_ms
        .into_iter()
        .partition(|(t, _)| steady.contains(t));
    let mut close_lags_ms = Vec::new();
    let mut trigger_lags_ms = Vec::new();
    for (close, lag) in lags {
        close_lags_ms.push(lag);
        let trigger = trigger_for(&stats.advances, close).ok_or_else(|| {
            KafkaBenchError::Pipeline(format!(
                "the decision at {close} was released without a record (a partition went idle mid-load)"
            ))
        })?;
        trigger_lags_ms.push(close + lag - trigger);
    }
    close_lags_ms.sort_unstable();
    trigger_lags_ms.sort_unstable();
    Ok(Latency {
        ticks: total,
        seconds,
        trigger_lags_ms,
        close_lags_ms,
        excluded: edges.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adv(worker: usize, epoch: u64, trigger_ms: Option<i64>) -> Advance {
        Advance {
            worker,
            epoch,
            trigger_ms,
        }
    }

    #[test]
    fn a_decision_is_triggered_by_the_last_worker_to_pass_its_close() {
        let log = [
            adv(0, 990, Some(995)),
            adv(0, 1001, Some(1003)),
            adv(1, 999, Some(1000)),
            adv(0, 1010, Some(1012)),
            adv(1, 1002, Some(1006)),
        ];
        assert_eq!(trigger_for(&log, 1000), Some(1006));
        assert_eq!(trigger_for(&log[..2], 1000), Some(1003));
        // a worker that never passed it, or passed it by idleness, gives no trigger
        assert_eq!(trigger_for(&log, 1011), None);
        assert_eq!(trigger_for(&[adv(0, 1001, None)], 1000), None);
        assert_eq!(percentile(&[1, 2, 3, 4], 0.5), Some(3));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
