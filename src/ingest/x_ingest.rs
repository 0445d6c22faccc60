//! `hypeflow ingest x`: influencer posts from X into `social.tweets` (or a JSONL file), by the filtered stream
//! or, for accounts without stream access, by polling recent search. The stream is read line by line with a
//! bounded silence, reconnected by X's documented schedule (see `reconnect`), deduplicated by post id, and after
//! an outage the gap is filled from recent search (`since_id` = the newest post seen), since backfill and
//! recovery are Enterprise-only. Anything unreadable goes to the dead-letter path with its reason.

use super::clock::Clock;
use super::reconnect::{Failure, Reconnect, ReconnectError};
use super::x_api::{header, hint, XApi, XError};
use super::x_stream::{later_id, parse_line, parse_search_page, Dedupe, StreamLine};
use crate::kafka::sink::{Sink, SinkError};
use crate::model::Tweet;
use std::io::BufRead;
use std::time::Duration;

const TWEET_FIELDS: &str = "created_at,author_id,public_metrics,lang,entities";
const USER_FIELDS: &str = "username,public_metrics";
/// The docs: keep-alives come at least every 20 s; a little slack for the network.
pub const DEFAULT_SILENCE: Duration = Duration::from_secs(25);
const DEDUPE_WINDOW: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    X(#[from] XError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("gave up after {0} connection attempts in a row failed (--max-failures)")]
    GaveUp(u32),
}

#[derive(Clone, Debug)]
pub struct StreamOptions {
    /// The longest read without data or a keep-alive before the connection is treated as dead.
    pub silence: Duration,
    /// Stop after this many new posts (smoke runs, tests); none = run until killed.
    pub max_posts: Option<u64>,
    /// Stop after this many failed attempts in a row; none = retry forever, as a live ingester should.
    pub max_failures: Option<u32>,
    /// Recent-search queries covering the same accounts, for filling the gap after an outage (empty = none).
    pub gap_queries: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct IngestStats {
    pub posts: u64,
    pub duplicates: u64,
    pub dead_lettered: u64,
    pub keep_alives: u64,
    pub connections: u64,
    pub stream_errors: u64,
    pub gap_filled: u64,
    /// Searches tried again after a transient failure (a gap search after an outage, or a poll).
    pub gap_retries: u64,
    pub waits: Vec<Duration>,
    pub newest_id: Option<String>,
}

struct State<'a> {
    sink: &'a mut Sink,
    /// Called after each new post is written (and, on Kafka, acknowledged): benchmarks time it.
    on_post: &'a mut dyn FnMut(&Tweet),
    dedupe: Dedupe,
    stats: IngestStats,
    max_posts: Option<u64>,
    lines: u64,
}

impl<'a> State<'a> {
    fn new(sink: &'a mut Sink, max_posts: Option<u64>, on_post: &'a mut dyn FnMut(&Tweet)) -> Self {
        State {
            sink,
            on_post,
            dedupe: Dedupe::new(DEDUPE_WINDOW),
            stats: IngestStats::default(),
            max_posts,
            lines: 0,
        }
    }

    fn done(&self) -> bool {
        self.max_posts.is_some_and(|m| self.stats.posts >= m)
    }

    fn post(&mut self, t: Tweet) -> Result<(), SinkError> {
        if !self.dedupe.first(&t.id) {
            self.stats.duplicates += 1;
            return Ok(());
        }
        self.stats.newest_id = Some(match &self.stats.newest_id {
            Some(n) => later_id(n, &t.id).to_string(),
            None => t.id.clone(),
        });
        self.sink.write("tweet", &t.author_id, t.created_at, &t)?;
        self.stats.posts += 1;
        (self.on_post)(&t);
        Ok(())
    }

    fn dead(&mut self, raw: &[u8], reason: &str) -> Result<(), SinkError> {
        self.stats.dead_lettered += 1;
        self.sink.dead_letter("", raw, reason)
    }
}

/// How a connection that was up ended.
enum Ended {
    Failed(Failure),
    Enough,
}

pub fn stream(
    api: &XApi,
    opts: &StreamOptions,
    sink: &mut Sink,
    clock: &dyn Clock,
) -> Result<IngestStats, IngestError> {
    stream_observed(api, opts, sink, clock, &mut |_| {})
}

/// `stream`, calling `on_post` after each new post is written.
pub fn stream_observed(
    api: &XApi,
    opts: &StreamOptions,
    sink: &mut Sink,
    clock: &dyn Clock,
    on_post: &mut dyn FnMut(&Tweet),
) -> Result<IngestStats, IngestError> {
    let query = [
        ("tweet.fields", TWEET_FIELDS.to_string()),
        ("expansions", "author_id".to_string()),
        ("user.fields", USER_FIELDS.to_string()),
    ];
    let mut st = State::new(sink, opts.max_posts, on_post);
    let mut policy = Reconnect::new();
    let mut failures = 0u32;
    let mut outage = false;
    // the newest post seen before an outage whose gap is not filled yet
    let mut gap_from: Option<String> = None;
    while !st.done() {
        api.limits.stream_connect.take_blocking();
        st.stats.connections += 1;
        let lines_before = st.lines;
        let failure = match api.open_stream(&query, opts.silence) {
            Err(e) => {
                tracing::warn!("X stream: cannot connect: {}", e.without_url());
                Failure::Network
            }
            Ok(resp) if resp.status().is_success() => {
                if outage && gap_from.is_none() {
                    gap_from = st.stats.newest_id.clone();
                }
                if let Some(since) = gap_from.take() {
                    // kept for the next connection while the search keeps failing
                    gap_from = fill_gap(api, &opts.gap_queries, &since, &mut st, clock)?;
                }
                match read(resp, opts.silence, &mut st, &mut policy)? {
                    Ended::Enough => break,
                    Ended::Failed(f) => f,
                }
            }
            Ok(resp) => {
                let status = resp.status().as_u16();
                let reset = header(resp.headers(), "x-rate-limit-reset")
                    .and_then(|r| r.trim().parse::<i64>().ok())
                    .map(|r| {
                        Duration::from_secs((r - chrono::Utc::now().timestamp()).max(0) as u64)
                    });
                let detail: String = resp.text().unwrap_or_default().chars().take(300).collect();
                tracing::warn!("X stream: HTTP {status}: {detail}{}", hint(status));
                match status {
                    429 => Failure::RateLimited { reset_in: reset },
                    s => Failure::Http(s),
                }
            }
        };
        outage = true;
        // a connection that delivered anything starts the count of failures in a row over
        failures = if st.lines > lines_before {
            1
        } else {
            failures + 1
        };
        if opts.max_failures.is_some_and(|m| failures >= m) {
            return Err(IngestError::GaveUp(failures));
        }
        let wait = policy.next(failure).map_err(|e| match e {
            ReconnectError::NoRules => XError::NoRules,
        })?;
        if wait.at_max {
            tracing::error!(
                "X stream: reconnect backoff is at its maximum ({:?}); the stream has been failing for a while ({failure:?})",
                wait.delay
            );
        } else {
            tracing::info!(
                "X stream: reconnecting in {:?} after {failure:?}",
                wait.delay
            );
        }
        st.stats.waits.push(wait.delay);
        clock.sleep(wait.delay);
    }
    Ok(st.stats)
}

/// Reads lines until the connection ends or enough posts came. The first line of any kind proves the
/// connection healthy, which resets the backoff.
fn read(
    resp: reqwest::blocking::Response,
    silence: Duration,
    st: &mut State,
    policy: &mut Reconnect,
) -> Result<Ended, SinkError> {
    let mut r = std::io::BufReader::with_capacity(64 * 1024, resp);
    let mut buf = Vec::with_capacity(4096);
    let mut healthy = false;
    loop {
        buf.clear();
        let ended = match r.read_until(b'\n', &mut buf) {
            Ok(0) => Some("the server closed the stream".to_string()),
            Ok(_) if buf.last() != Some(&b'\n') => Some("the server closed the stream".into()),
            Ok(_) => None,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut || is_timeout(&e) => {
                Some(format!("no data and no keep-alive for {silence:?}"))
            }
            Err(e) => Some(format!("the connection broke: {e}")),
        };
        if let Some(why) = ended {
            tracing::warn!("X stream: {why}");
            if !buf.is_empty() {
                st.dead(&buf, &format!("a line cut off when {why}"))?;
            }
            return Ok(Ended::Failed(Failure::Network));
        }
        st.lines += 1;
        if !healthy {
            healthy = true;
            policy.connected();
        }
        let line = String::from_utf8_lossy(&buf);
        match parse_line(&line) {
            StreamLine::Post(t) => {
                st.post(t)?;
                if st.done() {
                    return Ok(Ended::Enough);
                }
            }
            StreamLine::KeepAlive => st.stats.keep_alives += 1,
            StreamLine::Errors(errors) => {
                st.stats.stream_errors += 1;
                tracing::warn!("X stream reported: {}", errors.join("; "));
            }
            StreamLine::Disconnect { kind, detail } => {
                tracing::warn!("X stream: disconnected by X ({kind}): {detail}");
                return Ok(Ended::Failed(if kind == "TooManyConnections" {
                    Failure::RateLimited { reset_in: None }
                } else {
                    Failure::Network
                }));
            }
            StreamLine::Unreadable(why) => {
                let raw = buf.strip_suffix(b"\r\n").unwrap_or(&buf).to_vec();
                st.dead(&raw, &why)?;
            }
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    let mut src: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|r| r as _);
    while let Some(s) = src {
        if s.to_string().contains("timed out") {
            return true;
        }
        src = s.source();
    }
    false
}

/// Waits before the gap search is tried again after a transient failure (X's backoff for HTTP errors starts
/// at 5 s and doubles); after the last the gap is left for the next connection.
const GAP_RETRY_WAITS: [Duration; 3] = [
    Duration::from_secs(5),
    Duration::from_secs(10),
    Duration::from_secs(20),
];

/// After an outage: every post newer than `since` (the newest seen before it), from recent search, all
/// pages. A transient failure (network, 5xx, rate limit) is retried with backoff and never stops the
/// stream: when it persists the gap is returned, to be filled at the next connection. Only errors of
/// configuration (401, 403: the token or its access) stop the ingester.
fn fill_gap(
    api: &XApi,
    queries: &[String],
    since: &str,
    st: &mut State,
    clock: &dyn Clock,
) -> Result<Option<String>, IngestError> {
    let before = st.stats.posts;
    let mut waits = GAP_RETRY_WAITS.iter();
    let mut pending: Vec<&String> = queries.iter().collect();
    while let Some(q) = pending.first() {
        match search(api, q, Some(since), true, st) {
            Ok(_) => {
                pending.remove(0);
            }
            Err(IngestError::X(e)) if !is_configuration(&e) => match waits.next() {
                Some(w) => {
                    tracing::warn!("X stream: the gap search failed ({e}); trying again in {w:?}");
                    st.stats.gap_retries += 1;
                    clock.sleep(*w);
                }
                None => {
                    tracing::warn!(
                        "X stream: the gap search keeps failing ({e}); posts since {since} may be missing \
                         until the next connection tries again"
                    );
                    return Ok(Some(since.to_string()));
                }
            },
            Err(e) => return Err(e),
        }
    }
    st.stats.gap_filled += st.stats.posts - before;
    if st.stats.posts > before {
        tracing::info!(
            "X stream: {} posts from the outage recovered by recent search",
            st.stats.posts - before
        );
    }
    Ok(None)
}

/// An answer that no retry changes: the token, its access level, the app's setup.
fn is_configuration(e: &XError) -> bool {
    matches!(
        e,
        XError::NoToken
            | XError::Status {
                status: 401 | 403 | 409,
                ..
            }
    )
}

/// One recent-search pass for `query`: posts newer than `since_id` (all pages when `page_all`, else the newest
/// 100), written through the dedupe. Returns the newest id the search reported.
fn search(
    api: &XApi,
    query: &str,
    since_id: Option<&str>,
    page_all: bool,
    st: &mut State,
) -> Result<Option<String>, IngestError> {
    let mut newest: Option<String> = None;
    let mut next: Option<String> = None;
    loop {
        let mut q = vec![
            ("query", query.to_string()),
            ("max_results", "100".to_string()),
            ("tweet.fields", TWEET_FIELDS.to_string()),
            ("expansions", "author_id".to_string()),
            ("user.fields", USER_FIELDS.to_string()),
        ];
        if let Some(s) = since_id {
            q.push(("since_id", s.to_string()));
        }
        if let Some(t) = &next {
            q.push(("next_token", t.clone()));
        }
        let body = api.get("/2/tweets/search/recent", &q, &api.limits.search)?;
        let page = match parse_search_page(&body) {
            Ok(p) => p,
            Err(why) => {
                st.dead(body.as_bytes(), &why.0)?;
                return Ok(newest);
            }
        };
        if newest.is_none() {
            newest = page.newest_id.clone();
        }
        // pages come newest first; write oldest first so the output is in time order
        for p in page.posts.into_iter().rev() {
            match p {
                Ok(t) => st.post(t)?,
                Err((raw, why)) => st.dead(raw.as_bytes(), &why)?,
            }
        }
        match page.next_token {
            Some(t) if page_all && !st.done() => next = Some(t),
            _ => return Ok(newest),
        }
    }
}

#[derive(Clone, Debug)]
pub struct PollOptions {
    pub interval: Duration,
    pub max_posts: Option<u64>,
    /// Stop after this many polling rounds (tests); none = run until killed.
    pub max_rounds: Option<u64>,
}

/// The polling fallback: every `interval`, each query for posts newer than the newest it has seen. The first
/// round takes the newest page only (recent search reaches back 7 days; history comes from `publish`). A
/// transient failure (network, 5xx, rate limit) never stops it: the query keeps its `since_id`, so the next
/// round asks for everything since, after a backoff of 5 s doubling to 320 s while failures continue (reset
/// by a success). Only errors of configuration (401, 403, 409) stop the ingester.
pub fn poll(
    api: &XApi,
    queries: &[String],
    opts: &PollOptions,
    sink: &mut Sink,
    clock: &dyn Clock,
) -> Result<IngestStats, IngestError> {
    let mut ignore = |_: &Tweet| {};
    let mut st = State::new(sink, opts.max_posts, &mut ignore);
    let mut since: Vec<Option<String>> = vec![None; queries.len()];
    let mut rounds = 0u64;
    let mut failing = 0u32;
    loop {
        let mut failed = false;
        for (q, s) in queries.iter().zip(since.iter_mut()) {
            let first = s.is_none();
            match search(api, q, s.as_deref(), !first, &mut st) {
                Ok(Some(n)) => {
                    *s = Some(match s.as_deref() {
                        Some(old) => later_id(old, &n).to_string(),
                        None => n,
                    });
                }
                Ok(None) => {}
                Err(IngestError::X(e)) if !is_configuration(&e) => {
                    tracing::warn!("X search: a poll failed ({e}); the next round asks again from the same post");
                    st.stats.gap_retries += 1;
                    failed = true;
                }
                Err(e) => return Err(e),
            }
            if st.done() {
                return Ok(st.stats);
            }
        }
        rounds += 1;
        if opts.max_rounds.is_some_and(|m| rounds >= m) {
            return Ok(st.stats);
        }
        failing = if failed { failing.saturating_add(1) } else { 0 };
        let wait = match failing {
            0 => opts.interval,
            n => opts
                .interval
                .max(Duration::from_secs(5u64 << (n - 1).min(6))),
        };
        st.stats.waits.push(wait);
        clock.sleep(wait);
    }
}
