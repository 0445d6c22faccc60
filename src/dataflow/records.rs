//! Records that travel between dataflow operators. Tokens are dense ids (see `model::TokenTable`); the exact
//! event time rides in every record while the timely timestamp is a coarsened copy (`epoch`).

use crate::model::{Fill, FillStatus, Millis, OrderIntent, Signal};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Timely timestamps are event time rounded down to a quantum that divides every bar and slide boundary, so
/// a boundary is complete exactly when the frontier reaches it, without per-millisecond progress traffic.
pub fn epoch(ms: Millis, quantum: Millis) -> u64 {
    (ms.div_euclid(quantum) * quantum).max(0) as u64
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TickRec {
    pub token: u32,
    pub time: Millis,
    /// Position in the replay's total order; breaks ties between equal event times.
    pub seq: u64,
    pub price: Decimal,
    pub volume: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BarRec {
    pub token: u32,
    pub open_time: Millis,
    pub interval: Millis,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
    pub volume: Decimal,
}

impl BarRec {
    pub fn close_time(&self) -> Millis {
        self.open_time + self.interval
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TweetRec {
    pub seq: u64,
    pub tweet: crate::model::Tweet,
    /// Scored upstream (`social.scored`): the token and score to use instead of extraction and the lexicon.
    #[serde(default)]
    pub scored: Option<(String, f64)>,
}

impl TweetRec {
    /// A post to extract tokens from and score here.
    pub fn post(seq: u64, tweet: crate::model::Tweet) -> Self {
        TweetRec {
            seq,
            tweet,
            scored: None,
        }
    }

    /// One scored mention: the post's reach and time (its text stays upstream) with its token and score.
    pub fn scored(seq: u64, m: crate::model::ScoredMention) -> Self {
        TweetRec {
            seq,
            tweet: crate::model::Tweet {
                id: m.tweet_id,
                author_id: m.author_id,
                author_handle: String::new(),
                followers: m.followers,
                text: String::new(),
                created_at: m.created_at,
                engagement: m.engagement,
            },
            scored: Some((m.token, m.score)),
        }
    }
}

/// One (post, token) pair with its score and influence weight.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mention {
    pub token: u32,
    pub time: Millis,
    pub seq: u64,
    pub score: f64,
    pub weight: f64,
    /// Who posted it (see `Authors`): the report's influencer attribution reads it off the window.
    pub author: Arc<str>,
}

/// The accounts posts are credited to, `@handle` when known, else `id:N` (scored mentions carry only the id):
/// one allocation per account, shared by all its mentions. Forgets everything past `MAX_AUTHORS` accounts
/// (a live run meets new accounts for months), which only costs allocations again.
#[derive(Default)]
pub struct Authors {
    by_handle: std::collections::HashMap<String, Arc<str>>,
    by_id: std::collections::HashMap<String, Arc<str>>,
}

const MAX_AUTHORS: usize = 200_000;

impl Authors {
    pub fn label(&mut self, t: &crate::model::Tweet) -> Arc<str> {
        let handle = t.author_handle.trim_start_matches('@');
        let (map, key, prefix) = if handle.is_empty() {
            (&mut self.by_id, t.author_id.as_str(), "id:")
        } else {
            (&mut self.by_handle, handle, "@")
        };
        if let Some(a) = map.get(key) {
            return a.clone();
        }
        if map.len() >= MAX_AUTHORS {
            map.clear();
        }
        let label: Arc<str> = Arc::from(format!("{prefix}{key}"));
        map.insert(key.to_string(), label.clone());
        label
    }
}

/// Per-token sentiment over `[end - window, end)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SentimentWindow {
    pub token: u32,
    pub end: Millis,
    pub mentions: u32,
    /// Influence-weighted mean score in [-1, 1] (0 with no mentions).
    pub score: f64,
    /// Mention count's z-score against the token's own recent windows.
    pub velocity_z: f64,
    /// The accounts whose posts are in the window, each once, sorted; only on a window that meets the
    /// pipeline's entry thresholds (the only kind an entry can come from), empty on the others.
    pub authors: Vec<Arc<str>>,
}

/// Everything the portfolio needs to know about one token at one bar close.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenUpdate {
    pub bar: BarRec,
    pub atr: Option<Decimal>,
    pub volatility: Option<f64>,
    pub log_return: Option<f64>,
    pub sentiment: Option<SentimentWindow>,
    pub signal: Option<Signal>,
}

/// Counters every stage bumps; shared by all workers of a process.
#[derive(Debug, Default)]
pub struct Counters {
    pub ticks: AtomicU64,
    pub bars_in: AtomicU64,
    pub bars_built: AtomicU64,
    pub tweets: AtomicU64,
    pub tweets_without_token: AtomicU64,
    pub tweets_below_followers: AtomicU64,
    pub tweets_not_influencer: AtomicU64,
    pub mentions: AtomicU64,
    pub unknown_token_mentions: AtomicU64,
    pub late_records: AtomicU64,
    pub windows: AtomicU64,
    pub signals: AtomicU64,
}

impl Counters {
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn epoch_rounds_down() {
        assert_eq!(super::epoch(61_999, 60_000), 60_000);
        assert_eq!(super::epoch(60_000, 60_000), 60_000);
    }
}

/// The order lifecycle read back from `orders.intents`, `orders.fills` and `orders.rejects`: what a live
/// portfolio that trusts the executor (not a fill model) builds its positions from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum OrderState {
    Intent(OrderIntent),
    Outcome(Fill),
}

impl OrderState {
    /// When it applies in event time: an intent at its decision, a fill when it happened. A reject only frees a
    /// reservation, so it applies as soon as it is read (`None`).
    pub fn time(&self) -> Option<Millis> {
        match self {
            OrderState::Intent(i) => Some(i.decision_time),
            OrderState::Outcome(f) if f.status == FillStatus::Filled => Some(f.fill_time),
            OrderState::Outcome(_) => None,
        }
    }
}
