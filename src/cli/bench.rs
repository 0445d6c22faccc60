//! `hypeflow bench`: one function per mode, each printing one `key=value` line for BENCHMARKS.md.

use super::{load_pipeline, BenchArgs, BenchMode};
use anyhow::{Context, Result};
use std::path::Path;

pub fn run(b: BenchArgs) -> Result<()> {
    match b.mode {
        BenchMode::Pipeline => pipeline(&b),
        BenchMode::SmaBars => sma_bars(&b),
        BenchMode::Kafka => kafka(&b),
        BenchMode::Executor => executor(&b),
        BenchMode::XParse => x_parse(&b),
        BenchMode::XLatency => x_latency(&b),
        BenchMode::LlmOverhead => llm_overhead(&b),
        BenchMode::KafkaLatency => kafka_latency(&b),
    }
}

fn pipeline(b: &BenchArgs) -> Result<()> {
    let r = hypeflow::bench::pipeline::run_dataflow(b.ticks, b.tweets, b.workers)?;
    println!(
        "mode=pipeline ticks={} tweets={} workers={} events={} seconds={:.3} events_per_s={:.0} events_per_s_per_core={:.0} intents={} peak_rss_mib={}",
        b.ticks,
        b.tweets,
        b.workers,
        r.events,
        r.seconds,
        r.events as f64 / r.seconds,
        r.events as f64 / r.seconds / b.workers as f64,
        r.intents,
        r.peak_rss_kib.map(|k| format!("{:.1}", k as f64 / 1024.0)).unwrap_or_else(|| "?".into())
    );
    Ok(())
}

fn sma_bars(b: &BenchArgs) -> Result<()> {
    let (r, baseline, crosses) = hypeflow::bench::pipeline::run_sma_bars(b.bars, b.workers)?;
    println!(
        "mode=sma-bars bars={} workers={} seconds={:.3} bars_per_s={:.0} baseline_loop_seconds={:.3} baseline_bars_per_s={:.0} dataflow_vs_baseline={:.3} intents={} baseline_crosses={} peak_rss_mib={}",
        r.events,
        b.workers,
        r.seconds,
        r.events as f64 / r.seconds,
        baseline,
        r.events as f64 / baseline,
        baseline / r.seconds,
        r.intents,
        crosses,
        r.peak_rss_kib.map(|k| format!("{:.1}", k as f64 / 1024.0)).unwrap_or_else(|| "?".into())
    );
    Ok(())
}

fn kafka(b: &BenchArgs) -> Result<()> {
    let brokers = b.brokers.clone().context("--mode kafka needs --brokers")?;
    // with --metrics-addr the run records every metric and a scraper reads /metrics every second, as
    // Prometheus would: the cost of metrics is this line's run_vs_raw against one without
    let scraping = b
        .metrics
        .start("bench", false)?
        .map(|t| scrape_every_second(t.addr));
    let r = hypeflow::bench::kafka::throughput(&brokers, b.ticks, b.workers)?;
    if let Some(stop) = scraping {
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    println!(
        "mode=kafka metrics={} workers={} records={} raw_consume_seconds={:.3} raw_records_per_s={:.0} run_seconds={:.3} run_records_per_s={:.0} run_vs_raw={:.3} intents={}",
        if b.metrics.metrics_addr.is_some() { "on" } else { "off" },
        b.workers,
        r.records,
        r.raw_seconds,
        r.records as f64 / r.raw_seconds,
        r.pipeline_seconds,
        r.records as f64 / r.pipeline_seconds,
        r.raw_seconds / r.pipeline_seconds,
        r.intents
    );
    Ok(())
}

fn executor(b: &BenchArgs) -> Result<()> {
    let f = hypeflow::bench::execution::run(b.seconds.max(1) * 10, 2_000, b.ui_clients.into())
        .map_err(anyhow::Error::msg)?;
    println!(
        "mode=executor swaps={} ui_clients={} ui_bytes={} intent_to_broadcast_us_p50={} p99={} max={} journal_intents_per_s={:.0} paper_intents_per_s={:.0}",
        f.swaps, b.ui_clients, f.ui_bytes, f.broadcast_p50_us, f.broadcast_p99_us, f.broadcast_max_us, f.journal_per_s, f.paper_per_s
    );
    Ok(())
}

fn x_parse(b: &BenchArgs) -> Result<()> {
    let f = hypeflow::bench::ingest::parse(b.ticks);
    println!(
        "mode=x-parse lines={} posts={} seconds={:.3} lines_per_s_per_core={:.0} mib_per_s={:.1}",
        f.lines,
        f.posts,
        f.seconds,
        f.lines as f64 / f.seconds,
        f.bytes as f64 / f.seconds / 1_048_576.0
    );
    Ok(())
}

fn x_latency(b: &BenchArgs) -> Result<()> {
    let brokers = b
        .brokers
        .clone()
        .context("--mode x-latency needs --brokers")?;
    let f = hypeflow::bench::ingest::stream_to_kafka(&brokers, b.rate * b.seconds, b.rate)
        .map_err(anyhow::Error::msg)?;
    println!(
        "mode=x-latency posts={} posts_per_s={} arrival_to_ack_us_p50={} p99={} max={} after_first_second_p50={} p99={} max={}",
        f.posts, f.rate, f.p50_us, f.p99_us, f.max_us, f.steady_p50_us, f.steady_p99_us, f.steady_max_us
    );
    Ok(())
}

fn llm_overhead(b: &BenchArgs) -> Result<()> {
    let (cfg, _, _) = load_pipeline(Path::new("pipelines/influencer_momentum.toml"))?;
    let table = cfg.universe.token_table();
    let f = hypeflow::bench::ingest::llm_overhead(b.seconds.max(1) * 20, 20, table)
        .map_err(anyhow::Error::msg)?;
    println!(
        "mode=llm-overhead batches={} batch_size={} stage_us_per_batch_p50={} p99={} bare_round_trip_us_p50={} stage_minus_bare_us_p50={}",
        f.batches,
        f.batch_size,
        f.p50_us,
        f.p99_us,
        f.bare_p50_us,
        f.p50_us.saturating_sub(f.bare_p50_us)
    );
    Ok(())
}

fn kafka_latency(b: &BenchArgs) -> Result<()> {
    let brokers = b
        .brokers
        .clone()
        .context("--mode kafka-latency needs --brokers")?;
    let r = hypeflow::bench::kafka::latency(&brokers, b.rate, b.seconds, b.fetch_wait_ms)?;
    let pct = |v: &[i64], q| {
        hypeflow::bench::kafka::percentile(v, q).map_or("?".into(), |v: i64| v.to_string())
    };
    println!(
        "mode=kafka-latency ticks={} seconds={:.1} ticks_per_s={:.0} fetch_wait_ms={} intents={} excluded_edge_intents={} trigger_to_ack_ms_p50={} p99={} max={} close_to_ack_ms_p50={} p99={} max={}",
        r.ticks,
        r.seconds,
        r.ticks as f64 / r.seconds,
        b.fetch_wait_ms,
        r.close_lags_ms.len(),
        r.excluded,
        pct(&r.trigger_lags_ms, 0.5),
        pct(&r.trigger_lags_ms, 0.99),
        pct(&r.trigger_lags_ms, 1.0),
        pct(&r.close_lags_ms, 0.5),
        pct(&r.close_lags_ms, 0.99),
        pct(&r.close_lags_ms, 1.0)
    );
    Ok(())
}

/// GETs `/metrics` once a second until the returned flag is set.
fn scrape_every_second(
    addr: std::net::SocketAddr,
) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    std::thread::spawn(move || {
        hypeflow::net::install_tls();
        let Ok(c) = reqwest::blocking::Client::builder().build() else {
            return;
        };
        while !s.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = c
                .get(format!("http://{addr}/metrics"))
                .send()
                .and_then(|r| r.text());
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    });
    stop
}
