//! Throughput benchmark of the full dataflow on in-memory synthetic history (`hypeflow bench`). Loading and
//! parsing files is excluded on purpose: the figure is the dataflow's own rate.

use crate::backtest::inputs::Loaded;
use crate::backtest::run_loaded;
use crate::config::{PipelineConfig, SignalConfig};
use crate::dataflow::driver::{run_shares, Share};
use crate::dataflow::indicators::Closes;
use crate::dataflow::input::InputEvent;
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
baseline_windows = 6
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

const POST_TEXTS: [&str; 6] = [
    "$T1 breakout incoming, very bullish 🚀",
    "$T2 looks like a rug pull, dumping",
    "watching $T3 and $T4 today",
    "$T5 to the moon, wagmi!!",
    "gm, nothing to see here",
    "$T0 is bleeding, bearish",
];

/// Cheap deterministic noise in [0, 1) from an index.
fn hash01(x: u64) -> f64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

/// Synthetic history of `ticks` ticks over 8 tokens and `tweets` posts spread among them, one event every
/// 12.5 ms of event time. Event `e` is a pure function of `e`, so each worker generates exactly its own
/// share (`e % workers == index`) lazily: the benchmark's memory is the dataflow's, not the input's.
#[derive(Clone, Copy, Debug)]
pub struct Synthetic {
    pub ticks: u64,
    pub tweets: u64,
}

impl Synthetic {
    pub fn len(&self) -> u64 {
        self.ticks + self.tweets
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn stride(&self) -> u64 {
        self.len()
            .checked_div(self.tweets)
            .map(|v| v.max(1))
            .unwrap_or(u64::MAX)
    }
    pub fn event(&self, e: u64) -> InputEvent {
        // one event every 12.5 ms of event time (8 per 100 ms), whatever the mix
        let time = (e * 25 / 2) as i64;
        if self.tweets > 0 && e % self.stride() == self.stride() - 1 {
            let text =
                POST_TEXTS[(hash01(e) * POST_TEXTS.len() as f64) as usize % POST_TEXTS.len()];
            return InputEvent::Tweet(TweetRec::post(
                e,
                Tweet {
                    id: e.to_string(),
                    author_id: (e % 500).to_string(),
                    author_handle: String::new(),
                    followers: 100 + (hash01(e ^ 7) * 2_000_000.0) as u64,
                    text: text.to_string(),
                    created_at: time,
                    engagement: Engagement {
                        likes: e % 500,
                        retweets: 3,
                        replies: 1,
                        quotes: 0,
                    },
                },
            ));
        }
        let token = (e % 8) as u32;
        // a slow cycle per token plus noise: trends for momentum and SMA crosses, ranges for ATR
        let phase = time as f64 / 3_600_000.0 + token as f64;
        let p = 100.0 * (1.0 + 0.05 * phase.sin()) + hash01(e) - 0.5;
        InputEvent::Tick(TickRec {
            token,
            time,
            seq: e,
            price: Decimal::new((p * 1000.0) as i64, 3),
            volume: Decimal::new(1 + (hash01(e ^ 3) * 1000.0) as i64, 2),
        })
    }
    pub fn share(self, index: usize, workers: usize) -> Share {
        Box::new(
            (index as u64..self.len())
                .step_by(workers.max(1))
                .map(move |e| self.event(e)),
        )
    }
}

pub struct BenchResult {
    pub events: u64,
    pub seconds: f64,
    pub intents: usize,
    pub peak_rss_kib: Option<u64>,
}

pub fn run_dataflow(ticks: u64, tweets: u64, workers: usize) -> anyhow::Result<BenchResult> {
    let cfg = PipelineConfig::parse(BENCH_PIPELINE, "bench")?;
    let table = Arc::new(cfg.universe.token_table());
    let syn = Synthetic { ticks, tweets };
    let n = syn.len();
    let workers = workers.max(1);
    let shares = (0..workers).map(|i| syn.share(i, workers)).collect();
    let interval = cfg.bar_interval_ms();
    let start = Instant::now();
    let out = run_shares(Arc::new(cfg), table, interval, Some(0), shares, n, false)?;
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
    let table = Arc::new(cfg.universe.token_table());
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
    let out = run_loaded(Arc::new(cfg), table, loaded, workers, false)?;
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
