//! Throughput benchmark of the full dataflow on in-memory synthetic history (`hypeflow bench`). Loading and
//! parsing files is excluded on purpose: the figure is the dataflow's own rate.

use crate::backtest::inputs::{InputEvent, Loaded};
use crate::backtest::runner;
use crate::config::{PipelineConfig, SignalConfig, TokenTable};
use crate::dataflow::indicators::Closes;
use crate::dataflow::records::{BarRec, TickRec, TweetRec};
use crate::model::{Engagement, Tweet};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use std::sync::Arc;
use std::time::Instant;

pub const BENCH_PIPELINE: &str = r#"
[pipeline]
id = "bench"
[universe]
tokens = ["T0", "T1", "T2", "T3", "T4", "T5", "T6", "T7"]
[bars]
interval = "1m"
[sentiment]
window = "10m"
slide = "1m"
[signal]
kind = "sentiment"
entry_score = 0.2
entry_velocity_z = 1.0
min_mentions = 2
[correlation]
window_bars = 60
min_observations = 30
"#;

/// Peak resident set size of this process in KiB (Linux), if known.
pub fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `ticks` ticks over 8 tokens (about 100 per token-second of event time) and `tweets` posts.
pub fn synthetic(ticks: u64, tweets: u64, seed: u64) -> Vec<InputEvent> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let tokens = 8u32;
    let span_ms = ((ticks / tokens as u64).max(1) * 10) as i64; // one tick per token every 10 ms
    let mut events = Vec::with_capacity((ticks + tweets) as usize);
    let mut price = vec![100_000i64; tokens as usize];
    let texts = [
        "$T1 breakout incoming, very bullish 🚀",
        "$T2 looks like a rug pull, dumping",
        "watching $T3 and $T4 today",
        "$T5 to the moon, wagmi!!",
        "gm, nothing to see here",
        "$T0 is bleeding, bearish",
    ];
    let mut tw = 0u64;
    let tweet_every = ticks
        .checked_div(tweets)
        .map(|v| v.max(1))
        .unwrap_or(u64::MAX);
    for i in 0..ticks {
        let tok = (i % tokens as u64) as u32;
        let time = (i / tokens as u64) as i64 * 10;
        let p = &mut price[tok as usize];
        *p += rng.random_range(-40..=40);
        *p = (*p).max(1_000);
        events.push(InputEvent::Tick(TickRec {
            token: tok,
            time,
            seq: i,
            price: Decimal::new(*p, 3),
            volume: Decimal::new(rng.random_range(1..1000), 2),
        }));
        if tw < tweets && i % tweet_every == 0 {
            tw += 1;
            let text = texts[rng.random_range(0..texts.len())].to_string();
            events.push(InputEvent::Tweet(TweetRec {
                seq: ticks + tw,
                tweet: Tweet {
                    id: tw.to_string(),
                    author_id: (tw % 500).to_string(),
                    author_handle: String::new(),
                    followers: rng.random_range(100..2_000_000),
                    text,
                    created_at: time,
                    engagement: Engagement {
                        likes: rng.random_range(0..500),
                        retweets: 3,
                        replies: 1,
                        quotes: 0,
                    },
                },
            }));
        }
    }
    while tw < tweets {
        tw += 1;
        events.push(InputEvent::Tweet(TweetRec {
            seq: ticks + tw,
            tweet: Tweet {
                id: tw.to_string(),
                author_id: "1".into(),
                author_handle: String::new(),
                followers: 1000,
                text: texts[0].into(),
                created_at: span_ms,
                engagement: Engagement::default(),
            },
        }));
    }
    events.sort_by_key(|e| e.time());
    events
}

pub struct BenchResult {
    pub events: u64,
    pub seconds: f64,
    pub intents: usize,
    pub peak_rss_kib: Option<u64>,
}

pub fn run_dataflow(ticks: u64, tweets: u64, workers: usize) -> anyhow::Result<BenchResult> {
    let cfg = PipelineConfig::parse(BENCH_PIPELINE, "bench")?;
    let table = Arc::new(TokenTable::new(&cfg.universe));
    let events = synthetic(ticks, tweets, 1);
    let n = events.len() as u64;
    let loaded = Loaded {
        events,
        bar_interval: cfg.bar_interval_ms().map_err(anyhow::Error::msg)?,
        ..Default::default()
    };
    let start = Instant::now();
    let out = runner::run(Arc::new(cfg), table, loaded, workers, false)?;
    let seconds = start.elapsed().as_secs_f64();
    let intents = out
        .events
        .iter()
        .filter(|e| matches!(e, crate::dataflow::PortfolioEvent::Intent(_)))
        .count();
    Ok(BenchResult {
        events: n,
        seconds,
        intents,
        peak_rss_kib: peak_rss_kib(),
    })
}

/// SMA-cross replay on bars through the dataflow, and a plain loop computing the same crosses as the baseline.
pub fn run_sma_bars(bars: u64, workers: usize) -> anyhow::Result<(BenchResult, f64, u64)> {
    let text = BENCH_PIPELINE.replace(
        "[signal]\nkind = \"sentiment\"\nentry_score = 0.2\nentry_velocity_z = 1.0\nmin_mentions = 2",
        "[signal]\nkind = \"sma_cross\"\nfast = 10\nslow = 30\n[sizing]\nmode = \"fixed_stake\"\nstake = 100\nstop_loss = 0.05",
    );
    let cfg = PipelineConfig::parse(&text, "bench-sma")?;
    if !matches!(cfg.signal, SignalConfig::SmaCross { .. }) {
        anyhow::bail!("bench pipeline did not switch to sma_cross");
    }
    let table = Arc::new(TokenTable::new(&cfg.universe));
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut events = Vec::with_capacity(bars as usize);
    let mut px = [100_000i64; 8];
    for i in 0..bars {
        let tok = (i % 8) as u32;
        let p = &mut px[tok as usize];
        let o = *p;
        *p = (*p + rng.random_range(-300..=300)).max(1_000);
        let (h, l) = (o.max(*p) + 50, o.min(*p) - 50);
        events.push(InputEvent::Bar(BarRec {
            token: tok,
            open_time: (i / 8) as i64 * 60_000,
            interval: 60_000,
            open: Decimal::new(o, 3),
            high: Decimal::new(h, 3),
            low: Decimal::new(l, 3),
            close: Decimal::new(*p, 3),
            volume: Decimal::ONE,
        }));
    }
    // Baseline: the same SMA(10)/SMA(30) cross detection in a plain loop over the same bars.
    let base_start = Instant::now();
    let mut closes: Vec<Closes> = (0..8).map(|_| Closes::new(32)).collect();
    let mut crosses = 0u64;
    for e in &events {
        if let InputEvent::Bar(b) = e {
            let c = &mut closes[b.token as usize];
            c.push(b.close);
            if let (Some(f), Some(s), Some(pf), Some(ps)) =
                (c.sma(10, 0), c.sma(30, 0), c.sma(10, 1), c.sma(30, 1))
            {
                if (f > s && pf <= ps) || (f < s && pf >= ps) {
                    crosses += 1;
                }
            }
        }
    }
    let baseline = base_start.elapsed().as_secs_f64();
    let n = events.len() as u64;
    let loaded = Loaded {
        events,
        bar_interval: 60_000,
        ..Default::default()
    };
    let start = Instant::now();
    let out = runner::run(Arc::new(cfg), table, loaded, workers, false)?;
    let seconds = start.elapsed().as_secs_f64();
    let intents = out
        .events
        .iter()
        .filter(|e| matches!(e, crate::dataflow::PortfolioEvent::Intent(_)))
        .count();
    Ok((
        BenchResult {
            events: n,
            seconds,
            intents,
            peak_rss_kib: peak_rss_kib(),
        },
        baseline,
        crosses,
    ))
}
