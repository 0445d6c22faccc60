//! Figures for BENCHMARKS.md (`hypeflow bench --mode x-parse|x-latency|llm-overhead`): how fast stream lines
//! are read, how long a post takes from the stream's socket to an acknowledged Kafka record, and what the
//! scoring stage adds per batch around the model. The servers here are local stand-ins that answer at once, so
//! what is measured is ours.

use super::{failed, BenchError};
use crate::ingest::clock::SystemClock;
use crate::ingest::x_api::XApi;
use crate::ingest::x_ingest::{self, StreamOptions};
use crate::ingest::x_stream::{parse_line, Dedupe, StreamLine};
use crate::kafka::sink::Sink;
use crate::model::TokenTable;
use crate::model::Tweet;
use crate::sentiment::llm::{LlmClient, LlmConfig};
use crate::sentiment::scoring_stage::{Pending, ScoringStage, StageConfig};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TEXTS: [&str; 6] = [
    "$AXL breaking out here, loading up before the weekend 🚀",
    "Not touching $BOLT anymore, too much risk and zero utility",
    "$CRUX and $PEPX both looking heavy, careful",
    "gm. $DOGX community is the strongest in the space",
    "Rotating out of $AXL into stables, this looks like a top",
    "anyone else watching $BOLT volume? something is brewing",
];

/// A stream line shaped like X's documented sample, different for each `i`.
pub fn sample_line(i: u64, created_at: &str) -> String {
    serde_json::json!({
        "data": {"id": (1_893_412_345_678_901_234u64 + i).to_string(), "text": TEXTS[(i % 6) as usize],
            "author_id": (44_196_397 + i % 1000).to_string(), "created_at": created_at, "lang": "en",
            "edit_history_tweet_ids": [(1_893_412_345_678_901_234u64 + i).to_string()],
            "public_metrics": {"retweet_count": i % 1250, "reply_count": 3, "like_count": i % 52_000, "quote_count": 4,
                "bookmark_count": 3, "impression_count": 9_100_000},
            "entities": {"cashtags": [{"start": 0, "end": 4, "tag": "AXL"}]}},
        "includes": {"users": [{"id": (44_196_397 + i % 1000).to_string(), "name": "Trader", "username": format!("trader_{}", i % 1000),
            "verified": true, "public_metrics": {"followers_count": 224_000 + i % 1000, "following_count": 1100,
            "tweet_count": 78_000, "listed_count": 160, "like_count": 150, "media_count": 4}}]},
        "matching_rules": [{"id": "1273026480692322304", "tag": "hypeflow:influencers-1"}]
    })
    .to_string()
}

#[derive(Debug)]
pub struct ParseFigures {
    pub lines: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub posts: u64,
}

/// Parses (and dedupes) `n` distinct lines on one thread.
pub fn parse(n: u64) -> ParseFigures {
    let lines: Vec<String> = (0..n.min(100_000))
        .map(|i| sample_line(i, "2026-08-21T14:03:11.000Z") + "\r\n")
        .collect();
    let bytes: u64 = lines.iter().map(|l| l.len() as u64).sum::<u64>() * n / lines.len() as u64;
    let mut dedupe = Dedupe::new(1_000_000);
    let mut posts = 0;
    let start = Instant::now();
    for i in 0..n {
        if let StreamLine::Post(t) = parse_line(&lines[(i % lines.len() as u64) as usize]) {
            // later rounds repeat ids: the dedupe drops them, as on a reconnect
            if dedupe.first(&t.id) {
                posts += 1;
            }
        }
    }
    ParseFigures {
        lines: n,
        bytes,
        seconds: start.elapsed().as_secs_f64(),
        posts,
    }
}

fn read_request(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut r = BufReader::new(s.try_clone().ok()?);
    let mut len = 0usize;
    loop {
        let mut l = String::new();
        if r.read_line(&mut l).ok()? == 0 {
            return None;
        }
        let l = l.trim_end().to_ascii_lowercase();
        if l.is_empty() {
            break;
        }
        if let Some(v) = l.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(body)
}

#[derive(Debug)]
pub struct LatencyFigures {
    pub posts: u64,
    pub rate: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// The same after the first second (the producer's start: metadata, idempotent producer id).
    pub steady_p50_us: u64,
    pub steady_p99_us: u64,
    pub steady_max_us: u64,
}

fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// A local stream sends `posts` lines at `rate` per second; each is timed from its write to the socket to its
/// acknowledgement by the broker (through `ingest x`'s reader, parser, dedupe and Kafka sink).
pub fn stream_to_kafka(brokers: &str, posts: u64, rate: u64) -> Result<LatencyFigures, BenchError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(failed)?;
    let url = format!("http://{}", listener.local_addr().map_err(failed)?);
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let sent_w = sent.clone();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        let _ = s.set_nodelay(true);
        if read_request(&mut s).is_none() {
            return;
        }
        let _ = s.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
        );
        let start = Instant::now();
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        for i in 0..posts {
            let due = start + Duration::from_secs_f64(i as f64 / rate.max(1) as f64);
            if let Some(d) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
            let line = sample_line(i, &now) + "\r\n";
            let id = (1_893_412_345_678_901_234u64 + i).to_string();
            if let Ok(mut m) = sent_w.lock() {
                m.insert(id, Instant::now());
            }
            let chunk = format!("{:x}\r\n{line}\r\n", line.len());
            if s.write_all(chunk.as_bytes()).is_err() {
                return;
            }
        }
        // keep the connection open until the reader has what it wanted
        std::thread::sleep(Duration::from_secs(30));
    });
    let api = XApi::new(&url, "bench-token".into()).map_err(failed)?;
    let mut sink = Sink::open(&format!("kafka:{brokers}"), "social.tweets").map_err(failed)?;
    let mut lat: Vec<u64> = Vec::with_capacity(posts as usize);
    x_ingest::stream_observed(
        &api,
        &StreamOptions {
            silence: Duration::from_secs(25),
            max_posts: Some(posts),
            max_failures: Some(1),
            gap_queries: vec![],
        },
        &mut sink,
        &SystemClock,
        &mut |t: &Tweet| {
            if let Some(at) = sent.lock().ok().and_then(|m| m.get(&t.id).copied()) {
                lat.push(at.elapsed().as_micros() as u64);
            }
        },
    )
    .map_err(failed)?;
    let mut steady: Vec<u64> = lat.iter().skip(rate as usize).copied().collect();
    lat.sort_unstable();
    steady.sort_unstable();
    Ok(LatencyFigures {
        posts: lat.len() as u64,
        rate,
        p50_us: percentile(&lat, 0.5),
        p99_us: percentile(&lat, 0.99),
        max_us: lat.last().copied().unwrap_or(0),
        steady_p50_us: percentile(&steady, 0.5),
        steady_p99_us: percentile(&steady, 0.99),
        steady_max_us: steady.last().copied().unwrap_or(0),
    })
}

#[derive(Debug)]
pub struct LlmFigures {
    pub batches: u64,
    pub batch_size: usize,
    pub p50_us: u64,
    pub p99_us: u64,
    /// The bare HTTP round trip to the same server with an empty completion, for comparison.
    pub bare_p50_us: u64,
}

/// An OpenAI-compatible endpoint that answers every asked id at once.
fn instant_model() -> Result<String, BenchError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(failed)?;
    let url = format!("http://{}/v1", listener.local_addr().map_err(failed)?);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { continue };
            // answer in one segment, at once: the stand-in must not add Nagle's delay to the figure
            let _ = s.set_nodelay(true);
            std::thread::spawn(move || {
                while let Some(body) = read_request(&mut s) {
                    let req: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    let user: serde_json::Value = req["messages"][1]["content"]
                        .as_str()
                        .and_then(|c| serde_json::from_str(c).ok())
                        .unwrap_or_default();
                    let results: Vec<serde_json::Value> = user["tweets"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .map(|t| serde_json::json!({"id": t["id"], "sentiment": "bullish", "score": 0.5, "confidence": 0.8, "assets": []}))
                                .collect()
                        })
                        .unwrap_or_default();
                    let content = serde_json::json!({ "results": results }).to_string();
                    let reply = serde_json::json!({"id": "x", "object": "chat.completion",
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]})
                    .to_string();
                    let msg = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{reply}",
                        reply.len()
                    );
                    if s.write_all(msg.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(url)
}

/// The scoring stage's time per batch of `batch_size` posts against a model that answers at once.
pub fn llm_overhead(
    batches: u64,
    batch_size: usize,
    table: TokenTable,
) -> Result<LlmFigures, BenchError> {
    let url = instant_model()?;
    let cfg = LlmConfig {
        base_url: url.clone(),
        requests_per_minute: 1_000_000,
        ..LlmConfig::default()
    };
    let client = LlmClient::new(cfg.clone(), "bench-key".into()).map_err(failed)?;
    let mut stage = ScoringStage::new(
        Some(client),
        table,
        StageConfig {
            batch_size,
            concurrency: 1,
            cache_size: 1,
            ..StageConfig::default()
        },
    );
    let bare = LlmClient::new(cfg, "bench-key".into()).map_err(failed)?;
    let mut times = Vec::new();
    let mut bare_times = Vec::new();
    for b in 0..batches {
        let posts: Vec<Pending> = (0..batch_size as u64)
            .map(|i| {
                let n = b * batch_size as u64 + i;
                Pending {
                    tweet: Tweet {
                        id: n.to_string(),
                        author_id: (n % 100).to_string(),
                        author_handle: "trader".into(),
                        followers: 100_000,
                        text: TEXTS[(n % 6) as usize].into(),
                        created_at: n as i64,
                        engagement: Default::default(),
                    },
                    arrived: Instant::now(),
                }
            })
            .collect();
        let t = Instant::now();
        let out = stage.score(posts);
        times.push(t.elapsed().as_micros() as u64);
        if out.is_empty() {
            return Err(BenchError("the stage wrote nothing".into()));
        }
        let t = Instant::now();
        let _ = bare.score_batch(&[], Duration::from_secs(5));
        bare_times.push(t.elapsed().as_micros() as u64);
    }
    if stage.stats.by_llm == 0 {
        return Err(BenchError(format!(
            "no post was scored by the stand-in model: {:?}",
            stage.stats
        )));
    }
    times.sort_unstable();
    bare_times.sort_unstable();
    Ok(LlmFigures {
        batches,
        batch_size,
        p50_us: percentile(&times, 0.5),
        p99_us: percentile(&times, 0.99),
        bare_p50_us: percentile(&bare_times, 0.5),
    })
}
