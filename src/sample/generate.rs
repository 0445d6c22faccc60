//! A synthetic market with the properties a sentiment pipeline has to cope with:
//! - heavy-tailed minute returns (Student-t, 3 degrees of freedom) with volatility clustering;
//! - two clusters of correlated tokens (a market factor plus a cluster factor);
//! - influencer "hype episodes": bursts of posts with a common tone about one token, whose price effect is
//!   modest, noisy, lagged, and absent in a good share of episodes;
//! - background chatter, low-follower noise accounts, and posts about tokens outside the universe.

use crate::model::time::to_rfc3339;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, Normal, StudentT};
use rust_decimal::Decimal;
use std::io::Write;
use std::path::Path;

#[derive(Clone, Debug)]
pub struct SampleSpec {
    pub seed: u64,
    pub days: u32,
    pub start_ms: i64,
    /// Mean seconds between ticks of one token.
    pub tick_every_s: f64,
    /// Interval of the bar CSV written beside the ticks (minutes).
    pub bar_minutes: i64,
}

impl Default for SampleSpec {
    fn default() -> Self {
        SampleSpec {
            seed: 7,
            days: 10,
            start_ms: 1_740_787_200_000,
            tick_every_s: 180.0,
            bar_minutes: 15,
        }
    }
}

struct TokenSpec {
    symbol: &'static str,
    start_price: f64,
    cluster: usize,
    beta: f64,
    gamma: f64,
    /// per-minute idiosyncratic volatility
    idio: f64,
    /// price decimals written
    dp: u32,
}

const TOKENS: &[TokenSpec] = &[
    TokenSpec {
        symbol: "AXL",
        start_price: 42.0,
        cluster: 0,
        beta: 1.0,
        gamma: 0.9,
        idio: 0.0012,
        dp: 4,
    },
    TokenSpec {
        symbol: "BOLT",
        start_price: 3.2,
        cluster: 0,
        beta: 1.1,
        gamma: 1.0,
        idio: 0.0016,
        dp: 5,
    },
    TokenSpec {
        symbol: "CRUX",
        start_price: 118.0,
        cluster: 0,
        beta: 0.9,
        gamma: 0.8,
        idio: 0.0013,
        dp: 3,
    },
    TokenSpec {
        symbol: "DOGX",
        start_price: 0.084,
        cluster: 1,
        beta: 1.4,
        gamma: 1.2,
        idio: 0.0030,
        dp: 7,
    },
    TokenSpec {
        symbol: "PEPX",
        start_price: 0.0000123,
        cluster: 1,
        beta: 1.6,
        gamma: 1.3,
        idio: 0.0038,
        dp: 12,
    },
];

/// Tokens people talk about that the pipeline does not trade.
const OUTSIDERS: &[&str] = &["SCAMZ", "MOONC", "FROGE", "ZORK"];

const POSITIVE: &[&str] = &[
    "${T} looking super bullish here, breakout incoming 🚀",
    "Loading more ${T}. This is going to the moon",
    "${T} is the most undervalued gem in this market. wagmi",
    "Huge news for ${T}, the team keeps shipping. Extremely bullish!",
    "${T} chart is beautiful, strong uptrend and rising volume 📈",
    "Just bought a big bag of ${T}, LFG!!",
    "${T} holders are going to be very happy soon. diamond hands",
    "Massive partnership announced for ${T}. This is great",
];

const NEGATIVE: &[&str] = &[
    "${T} looks like a rug pull, be careful out there",
    "Dumping all my ${T}. Bearish, the chart is terrible 📉",
    "${T} team keeps selling, ngmi",
    "Not touching ${T} anymore, too much risk and zero utility",
    "${T} exploit rumors, get out while you can",
    "${T} is bleeding hard, support broken. Ugly.",
    "Sad to see ${T} fall apart like this. Avoid",
];

const NEUTRAL: &[&str] = &[
    "What do you think about ${T}?",
    "Watching ${T} closely today",
    "${T} volume report for the week is out",
    "Anyone following the ${T} governance vote?",
    "Writing a thread on ${T} tokenomics later",
];

struct Account {
    id: String,
    handle: String,
    followers: u64,
    influencer: bool,
}

/// One hype episode: who posts about which token with what tone, and what the price does about it.
struct Episode {
    token: usize,
    start_min: i64,
    tone: f64,
    posts: usize,
    effect: f64,
    lag_min: i64,
    duration_min: i64,
}

fn fmt_price(p: f64, dp: u32) -> String {
    let d = Decimal::from_f64_retain(p)
        .unwrap_or(Decimal::ZERO)
        .round_dp(dp);
    d.normalize().to_string()
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

pub struct SampleStats {
    pub ticks: usize,
    pub bars: usize,
    pub tweets: usize,
    pub episodes: usize,
    pub effective_episodes: usize,
}

/// The random draws, in one place so every step takes them from the same stream in the same order: the sample
/// is a pure function of the seed.
struct Draws {
    rng: ChaCha8Rng,
    /// Student-t(3), scaled by `t_scale` to unit variance (it has variance 3).
    t_dist: StudentT<f64>,
    t_scale: f64,
    n01: Normal<f64>,
    vol: LogNormal<f64>,
}

impl Draws {
    fn new(seed: u64) -> std::io::Result<Draws> {
        Ok(Draws {
            rng: ChaCha8Rng::seed_from_u64(seed),
            t_dist: StudentT::new(3.0).map_err(std::io::Error::other)?,
            t_scale: 1.0 / 3f64.sqrt(),
            n01: Normal::new(0.0, 1.0).map_err(std::io::Error::other)?,
            vol: LogNormal::new(0.0, 1.0).map_err(std::io::Error::other)?,
        })
    }
    /// A heavy-tailed innovation (times `t_scale` for unit variance).
    fn t(&mut self) -> f64 {
        self.t_dist.sample(&mut self.rng)
    }
}

pub fn generate(spec: &SampleSpec, out: &Path) -> std::io::Result<SampleStats> {
    std::fs::create_dir_all(out)?;
    let mut d = Draws::new(spec.seed)?;
    let minutes = spec.days as i64 * 1440;
    let accounts = accounts(&mut d.rng);
    let episodes = episodes(&mut d.rng, minutes);
    let prices = minute_prices(&mut d, &episodes, minutes);
    let ticks = write_ticks(&mut d, spec, &prices, out)?;
    let bars = write_bars(&mut d, spec, &prices, out)?;
    let posts = write_posts(&mut d, spec, &accounts, &episodes, out)?;
    let stats = SampleStats {
        ticks,
        bars,
        tweets: posts,
        episodes: episodes.len(),
        effective_episodes: episodes.iter().filter(|e| e.effect != 0.0).count(),
    };
    write_readme(spec, out, &stats)?;
    Ok(stats)
}

/// 40 influencers (50k..3M followers) and 300 noise accounts (20..5k).
fn accounts(rng: &mut ChaCha8Rng) -> Vec<Account> {
    let mut accounts = Vec::new();
    for i in 0..40 {
        let followers = (50_000.0 * (60.0f64).powf(rng.random::<f64>())) as u64;
        accounts.push(Account {
            id: format!("{}", 1_000_000 + i),
            handle: format!("alpha_caller_{i:02}"),
            followers,
            influencer: true,
        });
    }
    for i in 0..300 {
        let followers = (20.0 * (250.0f64).powf(rng.random::<f64>())) as u64;
        accounts.push(Account {
            id: format!("{}", 9_000_000 + i),
            handle: format!("anon_{i:03}"),
            followers,
            influencer: false,
        });
    }
    accounts
}

/// About one hype episode per token per day; 60% move the price, the rest do nothing.
fn episodes(rng: &mut ChaCha8Rng, minutes: i64) -> Vec<Episode> {
    let mut episodes = Vec::new();
    for (k, _) in TOKENS.iter().enumerate() {
        let mut m = rng.random_range(120..600) as i64;
        while m < minutes - 240 {
            let tone: f64 = if rng.random::<f64>() < 0.6 {
                rng.random_range(0.5..1.0)
            } else {
                -rng.random_range(0.5..1.0)
            };
            let effective = rng.random::<f64>() < 0.6;
            episodes.push(Episode {
                token: k,
                start_min: m,
                tone,
                posts: rng.random_range(5..16),
                effect: if effective {
                    tone * rng.random_range(0.02..0.07)
                } else {
                    0.0
                },
                lag_min: rng.random_range(10..45),
                duration_min: rng.random_range(45..150),
            });
            m += rng.random_range(700..2200) as i64;
        }
    }
    episodes.sort_by_key(|e| e.start_min);

    episodes
}

/// Each token's price at every minute: factor returns with volatility clustering, plus the episodes' drift.
fn minute_prices(d: &mut Draws, episodes: &[Episode], minutes: i64) -> Vec<Vec<f64>> {
    // Drift per token per minute from episodes: spread each effect evenly over its duration after the lag.
    let mut drift = vec![vec![0.0f64; TOKENS.len()]; minutes as usize];
    for e in episodes {
        if e.effect == 0.0 {
            continue;
        }
        let per = e.effect / e.duration_min as f64;
        for mm in 0..e.duration_min {
            let idx = (e.start_min + e.lag_min + mm) as usize;
            if let Some(row) = drift.get_mut(idx) {
                row[e.token] += per;
            }
        }
    }

    let mut prices = vec![Vec::with_capacity(minutes as usize); TOKENS.len()];
    let mut p: Vec<f64> = TOKENS.iter().map(|t| t.start_price).collect();
    let mut regime = 1.0f64;
    for drift_now in &drift {
        // volatility clustering: slowly mean-reverting log-vol multiplier
        regime = (regime.ln() * 0.995 + 0.06 * d.n01.sample(&mut d.rng))
            .exp()
            .clamp(0.4, 3.0);
        let market = 0.0009 * regime * d.t_scale * d.t();
        let clusters = [
            0.0008 * regime * d.t_scale * d.t(),
            0.0014 * regime * d.t_scale * d.t(),
        ];
        for (k, t) in TOKENS.iter().enumerate() {
            let idio = t.idio * regime * d.t_scale * d.t();
            let r = t.beta * market + t.gamma * clusters[t.cluster] + idio + drift_now[k];
            p[k] *= r.clamp(-0.25, 0.25).exp();
            prices[k].push(p[k]);
        }
    }
    prices
}

/// Poisson arrivals per token, price = minute path plus a little microstructure noise; returns how many.
fn write_ticks(
    d: &mut Draws,
    spec: &SampleSpec,
    prices: &[Vec<f64>],
    out: &Path,
) -> std::io::Result<usize> {
    let minutes = spec.days as i64 * 1440;
    let mut ticks: Vec<(i64, usize, String)> = Vec::new();
    for (k, t) in TOKENS.iter().enumerate() {
        let mut at = 0.0f64;
        loop {
            at += -spec.tick_every_s * (1.0 - d.rng.random::<f64>()).ln();
            let ms = (at * 1000.0) as i64;
            if ms >= minutes * 60_000 {
                break;
            }
            let minute = (ms / 60_000) as usize;
            let price = prices[k][minute] * (1.0 + 0.0004 * d.n01.sample(&mut d.rng));
            let notional = 2_000.0 * d.vol.sample(&mut d.rng);
            let qty = notional / price;
            let time = spec.start_ms + ms;
            let line = format!(
                "{{\"token\":\"{}\",\"price\":\"{}\",\"volume\":\"{}\",\"source\":\"synthetic\",\"event_time\":\"{}\"}}",
                t.symbol,
                fmt_price(price, t.dp),
                fmt_price(qty, 4),
                to_rfc3339(time)
            );
            ticks.push((time, k, line));
        }
    }
    ticks.sort_by_key(|(t, k, _)| (*t, *k));
    let mut w = std::io::BufWriter::new(std::fs::File::create(out.join("ticks.jsonl"))?);
    for (_, _, l) in &ticks {
        writeln!(w, "{l}")?;
    }
    w.flush()?;

    Ok(ticks.len())
}

/// Bars from the minute path (open = the previous minute's close, close = the last), for bar-based pipelines.
fn write_bars(
    d: &mut Draws,
    spec: &SampleSpec,
    prices: &[Vec<f64>],
    out: &Path,
) -> std::io::Result<usize> {
    let minutes = spec.days as i64 * 1440;
    let mut w = std::io::BufWriter::new(std::fs::File::create(
        out.join(format!("bars_{}m.csv", spec.bar_minutes)),
    )?);
    writeln!(w, "token,timestamp,open,high,low,close,volume")?;
    let mut bars = 0;
    for (k, t) in TOKENS.iter().enumerate() {
        for start in (0..minutes).step_by(spec.bar_minutes as usize) {
            let seg = &prices[k][start as usize..(start + spec.bar_minutes).min(minutes) as usize];
            let open = if start == 0 {
                t.start_price
            } else {
                prices[k][start as usize - 1]
            };
            let hi = seg.iter().copied().fold(open, f64::max);
            let lo = seg.iter().copied().fold(open, f64::min);
            let close = seg[seg.len() - 1];
            let vol: f64 = (0..spec.bar_minutes)
                .map(|_| d.vol.sample(&mut d.rng) * 100.0)
                .sum::<f64>()
                / close.max(1e-12);
            writeln!(
                w,
                "{},{},{},{},{},{},{}",
                t.symbol,
                to_rfc3339(spec.start_ms + start * 60_000),
                fmt_price(open, t.dp),
                fmt_price(hi, t.dp),
                fmt_price(lo, t.dp),
                fmt_price(close, t.dp),
                fmt_price(vol, 2)
            )?;
            bars += 1;
        }
    }
    w.flush()?;

    Ok(bars)
}

/// Hype-episode posts by influencers, then background chatter by everyone; returns how many.
fn write_posts(
    d: &mut Draws,
    spec: &SampleSpec,
    accounts: &[Account],
    episodes: &[Episode],
    out: &Path,
) -> std::io::Result<usize> {
    let minutes = spec.days as i64 * 1440;
    let (rng, vol_dist) = (&mut d.rng, d.vol);
    let influencers: Vec<usize> = accounts
        .iter()
        .enumerate()
        .filter(|(_, a)| a.influencer)
        .map(|(i, _)| i)
        .collect();
    let mut posts: Vec<(i64, String)> = Vec::new();
    let mut next_id: u64 = 1_760_000_000_000_000_000;
    let mut post = |rng: &mut ChaCha8Rng,
                    posts: &mut Vec<(i64, String)>,
                    acct: &Account,
                    text: String,
                    time: i64| {
        next_id += rng.random_range(1..5_000_000u64);
        let reach = acct.followers as f64;
        let likes = (reach * 0.002 * vol_dist.sample(rng)) as u64;
        let retweets = (likes as f64 * 0.2 * rng.random::<f64>()) as u64;
        let replies = (likes as f64 * 0.1 * rng.random::<f64>()) as u64;
        let line = format!(
            "{{\"id\":\"{}\",\"author_id\":\"{}\",\"author_handle\":\"{}\",\"followers\":{},\"text\":{},\"created_at\":\"{}\",\"engagement\":{{\"likes\":{},\"retweets\":{},\"replies\":{},\"quotes\":0}}}}",
            next_id,
            acct.id,
            acct.handle,
            acct.followers,
            json_str(&text),
            to_rfc3339(time),
            likes,
            retweets,
            replies
        );
        posts.push((time, line));
    };
    let pick = |rng: &mut ChaCha8Rng, v: &[&str]| v[rng.random_range(0..v.len())].to_string();
    for e in episodes {
        let sym = TOKENS[e.token].symbol;
        for _ in 0..e.posts {
            let acct = &accounts[influencers[rng.random_range(0..influencers.len())]];
            // mostly on tone, sometimes contrarian: the crowd is never unanimous
            let on_tone = rng.random::<f64>() < 0.8;
            let positive = (e.tone > 0.0) == on_tone;
            let tpl = if rng.random::<f64>() < 0.15 {
                pick(rng, NEUTRAL)
            } else if positive {
                pick(rng, POSITIVE)
            } else {
                pick(rng, NEGATIVE)
            };
            let mut text = tpl.replace("{T}", sym);
            if sym == "BOLT" && rng.random::<f64>() < 0.3 {
                text = text.replace("$BOLT", "Boltchain");
            }
            if sym == "PEPX" && rng.random::<f64>() < 0.2 {
                text.push_str(" CA: 0x7a3f5c1e9b2d4a6c8e0f1a3b5c7d9e1f2a4b6c8d");
            }
            let time = spec.start_ms + (e.start_min * 60_000) + rng.random_range(0..(40 * 60_000));
            post(rng, &mut posts, acct, text, time);
        }
    }
    // Background chatter: everyone, any token (including outsiders), no price effect.
    let chatter = spec.days as usize * 180;
    for _ in 0..chatter {
        let acct = &accounts[rng.random_range(0..accounts.len())];
        let sym = if rng.random::<f64>() < 0.3 {
            OUTSIDERS[rng.random_range(0..OUTSIDERS.len())]
        } else {
            TOKENS[rng.random_range(0..TOKENS.len())].symbol
        };
        let r = rng.random::<f64>();
        let tpl = if r < 0.4 {
            pick(rng, NEUTRAL)
        } else if r < 0.72 {
            pick(rng, POSITIVE)
        } else {
            pick(rng, NEGATIVE)
        };
        let mut text = tpl.replace("{T}", sym);
        if rng.random::<f64>() < 0.08 {
            text = "gm frens, coffee first then charts".into();
        }
        let time = spec.start_ms + rng.random_range(0..minutes * 60_000);
        post(rng, &mut posts, acct, text, time);
    }
    // Arrival order is not event order: shuffle lightly by writing in id order (which tracks creation only roughly).
    posts.sort_by_key(|(t, _)| *t / 600_000);
    let mut w = std::io::BufWriter::new(std::fs::File::create(out.join("tweets.jsonl"))?);
    for (_, l) in &posts {
        writeln!(w, "{l}")?;
    }
    w.flush()?;

    Ok(posts.len())
}

fn write_readme(spec: &SampleSpec, out: &Path, stats: &SampleStats) -> std::io::Result<()> {
    let mut readme = std::fs::File::create(out.join("README.md"))?;
    writeln!(
        readme,
        "# Sample data: SYNTHETIC\n\nGenerated by `hypeflow sample generate --seed {} --days {} --out {}`.\n\n\
         Nothing here is real market data or real posts: token symbols ({}) and accounts are invented, prices follow a\n\
         heavy-tailed two-cluster factor model, and influencer episodes move prices only modestly, after a lag, and\n\
         in about 60% of the episodes. Use it to exercise the pipeline, never to judge a strategy.\n\n\
         - `ticks.jsonl`: {} price ticks\n- `bars_{}m.csv`: {} OHLCV bars\n- `tweets.jsonl`: {} posts ({} hype episodes)\n\n\
         Released under the project's MIT license.",
        spec.seed,
        spec.days,
        out.display(),
        TOKENS.iter().map(|t| t.symbol).collect::<Vec<_>>().join(", "),
        stats.ticks,
        spec.bar_minutes,
        stats.bars,
        stats.tweets,
        stats.episodes
    )?;
    Ok(())
}
