//! The scoring stage between `social.tweets` and `social.scored`: posts naming universe tokens are batched
//! (up to `batch_size`, waiting at most `max_wait` for a batch to fill), scored by the LLM with up to
//! `concurrency` batches in flight, and written one record per (post, token) with the model's name. A post the
//! model leaves out, gets wrong, or does not answer within the latency budget (counted from the post's arrival)
//! gets the lexicon score instead, named as such, so nothing waits on a slow model and nothing is guessed. Scores
//! are cached by post id, so a post seen again (a restart re-reading uncommitted records) gets the same score.

use super::llm::{LlmClient, LlmError, LlmScore, PostIn};
use super::{extract, LexiconScorer};
use crate::model::TokenTable;
use crate::model::{ScoredMention, Tweet};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct StageConfig {
    pub batch_size: usize,
    pub max_wait: Duration,
    pub concurrency: usize,
    /// Arrival to scored, per post; past it the lexicon answers.
    pub budget: Duration,
    pub cache_size: usize,
}

impl Default for StageConfig {
    fn default() -> Self {
        StageConfig {
            batch_size: 20,
            max_wait: Duration::from_millis(200),
            concurrency: 2,
            budget: Duration::from_secs(2),
            cache_size: 100_000,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StageStats {
    pub posts: u64,
    pub without_token: u64,
    pub records: u64,
    pub by_llm: u64,
    pub cached: u64,
    pub fallback: u64,
    pub requests: u64,
    pub failed_requests: u64,
    pub invalid_results: u64,
}

/// A post waiting to be scored, with when it arrived (for the latency budget).
pub struct Pending {
    pub tweet: Tweet,
    pub arrived: Instant,
}

struct Cache {
    map: HashMap<String, LlmScore>,
    order: VecDeque<String>,
    capacity: usize,
}

impl Cache {
    fn insert(&mut self, id: String, s: LlmScore) {
        if self.map.insert(id.clone(), s).is_none() {
            self.order.push_back(id);
            if self.order.len() > self.capacity {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }
}

pub struct ScoringStage {
    llm: Option<LlmClient>,
    table: TokenTable,
    cfg: StageConfig,
    cache: Cache,
    pub stats: StageStats,
}

impl ScoringStage {
    /// Without an LLM client every post gets the lexicon score (the stage still writes `social.scored`).
    pub fn new(llm: Option<LlmClient>, table: TokenTable, cfg: StageConfig) -> Self {
        ScoringStage {
            llm,
            table,
            cache: Cache {
                map: HashMap::new(),
                order: VecDeque::new(),
                capacity: cfg.cache_size.max(1),
            },
            cfg,
            stats: StageStats::default(),
        }
    }

    pub fn config(&self) -> &StageConfig {
        &self.cfg
    }

    /// Scores everything pending (in batches, `concurrency` at a time) and returns the records in input order.
    pub fn score(&mut self, pending: Vec<Pending>) -> Vec<ScoredMention> {
        // which tokens each post names; posts naming none go no further
        let mut posts: Vec<(Pending, Vec<u32>)> = Vec::with_capacity(pending.len());
        for p in pending {
            self.stats.posts += 1;
            let found = extract(&p.tweet.text, &self.table);
            if found.tokens.is_empty() {
                self.stats.without_token += 1;
            } else {
                posts.push((p, found.tokens));
            }
        }
        let mut llm_scores: HashMap<String, (LlmScore, bool)> = HashMap::new();
        for (p, _) in &posts {
            if let Some(s) = self.cache.map.get(&p.tweet.id) {
                llm_scores.insert(p.tweet.id.clone(), (s.clone(), true));
            }
        }
        if let Some(llm) = &self.llm {
            let to_ask: Vec<&Pending> = posts
                .iter()
                .map(|(p, _)| p)
                .filter(|p| !llm_scores.contains_key(&p.tweet.id))
                .collect();
            let batches: Vec<&[&Pending]> = to_ask.chunks(self.cfg.batch_size.max(1)).collect();
            for group in batches.chunks(self.cfg.concurrency.max(1)) {
                let results: Vec<_> = std::thread::scope(|s| {
                    let handles: Vec<_> = group
                        .iter()
                        .map(|batch| s.spawn(|| ask(llm, batch, self.cfg.budget)))
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().unwrap_or(Err(LlmError::Panicked)))
                        .collect()
                });
                for r in results {
                    match r {
                        Ok(outcome) => {
                            self.stats.requests += u64::from(outcome.requests);
                            self.stats.invalid_results += u64::from(outcome.invalid);
                            for (id, s) in outcome.scores {
                                self.cache.insert(id.clone(), s.clone());
                                llm_scores.insert(id, (s, false));
                            }
                        }
                        Err(why) => {
                            self.stats.failed_requests += 1;
                            tracing::warn!("LLM batch fell back to the lexicon: {why}");
                        }
                    }
                }
            }
        }
        let lexicon = LexiconScorer::shared();
        let llm_model = self.llm.as_ref().map(|l| l.model().to_string());
        let mut out = Vec::new();
        for (p, tokens) in posts {
            let t = p.tweet;
            let (score, confidence, model) = match (llm_scores.get(&t.id), &llm_model) {
                (Some((s, cached)), Some(m)) => {
                    if *cached {
                        self.stats.cached += 1;
                    } else {
                        self.stats.by_llm += 1;
                    }
                    (s.score, s.confidence, m.clone())
                }
                _ => {
                    self.stats.fallback += 1;
                    let why = if llm_model.is_some() {
                        "unscored"
                    } else {
                        "lexicon_only"
                    };
                    metrics::counter!(crate::telemetry::names::LLM_FALLBACKS, "reason" => why)
                        .increment(1);
                    (
                        lexicon.score(&t.text),
                        1.0,
                        lexicon.model_name().to_string(),
                    )
                }
            };
            for tok in tokens {
                self.stats.records += 1;
                out.push(ScoredMention {
                    tweet_id: t.id.clone(),
                    token: self.table.symbol(tok).to_string(),
                    score,
                    confidence,
                    model: model.clone(),
                    created_at: t.created_at,
                    author_id: t.author_id.clone(),
                    followers: t.followers,
                    engagement: t.engagement.clone(),
                });
            }
        }
        out
    }
}

/// One batch to the model, within what is left of its oldest post's budget.
fn ask(
    llm: &LlmClient,
    batch: &[&Pending],
    budget: Duration,
) -> Result<super::llm::BatchOutcome, LlmError> {
    let oldest = batch
        .iter()
        .map(|p| p.arrived)
        .min()
        .unwrap_or_else(Instant::now);
    let left = budget.saturating_sub(oldest.elapsed());
    if left < Duration::from_millis(50) {
        return Err(LlmError::OverBudget(budget));
    }
    let posts: Vec<PostIn> = batch
        .iter()
        .map(|p| PostIn {
            id: &p.tweet.id,
            author: &p.tweet.author_handle,
            followers: p.tweet.followers,
            text: &p.tweet.text,
        })
        .collect();
    llm.score_batch(&posts, left)
}
