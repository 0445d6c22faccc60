//! The synthetic sample market played in real time into `market.ticks` and `social.tweets`: the keyless live
//! demo's feed. The generator's model is the shipped sample's; its clock runs `speed` times faster than the
//! wall clock (pair it with a pipeline whose durations are divided by the same factor, as
//! `pipelines/demo.toml` is for 120). The first `warmup` of sample time is published at once with event times
//! just before now, so windows and indicators are whole when the real-time part begins.

use super::envelope;
use super::publish::{PublishError, Publisher};
use super::topics;
use crate::model::{PriceTick, Tweet};
use crate::sample::{generate, SampleSpec};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Fastest and slowest clocks the feed plays at.
pub const SPEED_RANGE: std::ops::RangeInclusive<u32> = 1..=3600;

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("--speed {0} is out of range: use 1 to 3600 (the demo pipeline is built for 120)")]
    Speed(u32),
    #[error("--warmup {warmup_ms} ms is out of range: use 0 to {max_ms} ms (the sample's length)")]
    Warmup { warmup_ms: i64, max_ms: i64 },
    #[error("cannot generate the sample in {dir}: {source}")]
    Generate { dir: String, source: std::io::Error },
    #[error("generated sample line unreadable: {0}")]
    Parse(String),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

#[derive(Clone, Debug)]
pub struct FeedSpec {
    pub brokers: String,
    pub speed: u32,
    pub seed: u64,
    pub days: u32,
    /// Sample time published at once before the real-time part.
    pub warmup_ms: i64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FeedStats {
    pub ticks: u64,
    pub posts: u64,
    /// Of those, published at once as warm-up history.
    pub backlog: u64,
}

enum Record {
    Tick(PriceTick),
    Post(Tweet),
}

impl Record {
    fn time(&self) -> i64 {
        match self {
            Record::Tick(t) => t.event_time,
            Record::Post(p) => p.created_at,
        }
    }
}

/// The sample's records in event-time order (ties: ticks first, then file order).
fn sample_records(spec: &SampleSpec) -> Result<Vec<Record>, FeedError> {
    let dir = std::env::temp_dir().join(format!("hypeflow-demo-{}", std::process::id()));
    let gen_err = |source| FeedError::Generate {
        dir: dir.display().to_string(),
        source,
    };
    generate(spec, &dir).map_err(gen_err)?;
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).map_err(gen_err);
    let (ticks, posts) = (read("ticks.jsonl")?, read("tweets.jsonl")?);
    let _ = std::fs::remove_dir_all(&dir);
    let parse = |e: serde_json::Error| FeedError::Parse(e.to_string());
    let mut out = Vec::new();
    for l in ticks.lines().filter(|l| !l.trim().is_empty()) {
        out.push(Record::Tick(serde_json::from_str(l).map_err(parse)?));
    }
    for l in posts.lines().filter(|l| !l.trim().is_empty()) {
        out.push(Record::Post(serde_json::from_str(l).map_err(parse)?));
    }
    out.sort_by_key(|r| (r.time(), matches!(r, Record::Post(_))));
    Ok(out)
}

/// Plays the sample until it ends or `stop` is set; every record is acknowledged before the next wait.
pub fn play(spec: &FeedSpec, stop: &AtomicBool) -> Result<FeedStats, FeedError> {
    if !SPEED_RANGE.contains(&spec.speed) {
        return Err(FeedError::Speed(spec.speed));
    }
    let sample = SampleSpec {
        seed: spec.seed,
        days: spec.days.clamp(1, 30),
        ..SampleSpec::default()
    };
    let length = sample.days as i64 * 86_400_000;
    if !(0..length).contains(&spec.warmup_ms) {
        return Err(FeedError::Warmup {
            warmup_ms: spec.warmup_ms,
            max_ms: length,
        });
    }
    let records = sample_records(&sample)?;
    let speed = spec.speed as i64;
    let cut = sample.start_ms + spec.warmup_ms;
    let anchor = chrono::Utc::now().timestamp_millis();
    let at = |t: i64| anchor + (t - cut).div_euclid(speed);
    let (ticks_topic, posts_topic) = (topics::name("market.ticks"), topics::name("social.tweets"));
    let mut p = Publisher::immediate(&spec.brokers)?;
    let mut stats = FeedStats::default();
    for r in records {
        let t = at(r.time());
        if t > anchor && !wait_until(t, stop) {
            break;
        }
        if t <= anchor {
            stats.backlog += 1;
        }
        match r {
            Record::Tick(mut tick) => {
                tick.event_time = t;
                tick.source = "demo".into();
                p.send(
                    &ticks_topic,
                    &tick.token,
                    &envelope::encode("tick", &tick),
                    t,
                    None,
                )?;
                stats.ticks += 1;
            }
            Record::Post(mut post) => {
                post.created_at = t;
                p.send(
                    &posts_topic,
                    &post.author_id,
                    &envelope::encode("tweet", &post),
                    t,
                    None,
                )?;
                stats.posts += 1;
            }
        }
        if t > anchor {
            p.flush()?;
        }
    }
    p.finish()?;
    Ok(stats)
}

/// Sleeps until the wall clock reaches `t_ms`; false when `stop` was set meanwhile.
fn wait_until(t_ms: i64, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let left = t_ms - chrono::Utc::now().timestamp_millis();
        if left <= 0 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(left.clamp(1, 200) as u64));
    }
}
