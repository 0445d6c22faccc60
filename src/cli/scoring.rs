//! `hypeflow score` and the LLM options it shares with `sentiment eval --model llm`.

use anyhow::{bail, Context, Result};
use clap::Args;
use hypeflow::kafka::sink::Sink;
use hypeflow::sentiment::llm::{self, LlmClient, LlmConfig};
use hypeflow::sentiment::scoring_stage::{Pending, ScoringStage, StageConfig};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Args, Clone)]
pub struct LlmArgs {
    /// OpenAI-compatible API root (DashScope international by default); the key comes from LLM_API_KEY or
    /// DASHSCOPE_API_KEY
    #[arg(long, env = "LLM_BASE_URL", default_value = llm::DEFAULT_BASE_URL)]
    pub llm_url: String,
    /// The model (stable aliases have higher rate limits than dated snapshots)
    #[arg(long, env = "LLM_MODEL", default_value = llm::DEFAULT_MODEL)]
    pub llm_model: String,
    /// Requests per minute the account allows for this model
    #[arg(long, default_value_t = 60)]
    pub llm_rpm: u32,
    /// Posts per request
    #[arg(long, default_value_t = 20)]
    pub batch_size: usize,
}

impl LlmArgs {
    pub fn client(&self, timeout: Duration) -> Result<LlmClient> {
        Ok(LlmClient::from_env(LlmConfig {
            base_url: self.llm_url.clone(),
            model: self.llm_model.clone(),
            requests_per_minute: self.llm_rpm,
            timeout,
        })?)
    }
}

#[derive(Args)]
pub struct ScoreArgs {
    /// The pipeline whose universe decides which tokens a post names
    #[arg(long, default_value = "pipelines/influencer_momentum.toml")]
    pipeline: PathBuf,
    /// Posts JSONL to score (offline); without it, consume social.tweets from --brokers
    #[arg(long = "in")]
    input: Option<PathBuf>,
    #[arg(long, env = "KAFKA_BOOTSTRAP")]
    brokers: Option<String>,
    /// jsonl:PATH or kafka:BOOTSTRAP (social.scored, keyed by token); default kafka:<--brokers>
    #[arg(long)]
    out: Option<String>,
    #[command(flatten)]
    llm: LlmArgs,
    /// Longest wait for a batch to fill, ms
    #[arg(long, default_value_t = 200)]
    max_wait_ms: u64,
    /// Batches in flight at once
    #[arg(long, default_value_t = 2)]
    concurrency: usize,
    /// Arrival-to-score budget per post, ms; past it the lexicon score is used
    #[arg(long, default_value_t = 2000)]
    budget_ms: u64,
    /// Score with the lexicon only (no LLM, no key needed); the records say so
    #[arg(long)]
    lexicon_only: bool,
    /// Kafka mode: stop after this long without new posts
    #[arg(long)]
    exit_when_idle_ms: Option<u64>,
    #[command(flatten)]
    metrics: super::ops::MetricsArgs,
}

pub fn run(a: ScoreArgs) -> Result<()> {
    let _ops = a.metrics.start("score", false)?;
    let (cfg, _, _) = super::load_pipeline(&a.pipeline)?;
    let table = cfg.universe.token_table();
    let stage_cfg = StageConfig {
        batch_size: a.llm.batch_size.max(1),
        max_wait: Duration::from_millis(a.max_wait_ms),
        concurrency: a.concurrency.max(1),
        budget: Duration::from_millis(a.budget_ms),
        ..StageConfig::default()
    };
    let client = if a.lexicon_only {
        None
    } else {
        Some(a.llm.client(stage_cfg.budget)?)
    };
    let mut stage = ScoringStage::new(client, table, stage_cfg);
    let out = match (&a.out, &a.brokers) {
        (Some(o), _) => o.clone(),
        (None, Some(b)) => format!("kafka:{b}"),
        (None, None) => bail!("say where scores go: --out jsonl:PATH or --brokers B"),
    };
    let mut sink = Sink::open(&out, "social.scored")?;
    let written = match (&a.input, &a.brokers) {
        (Some(path), _) => score_file(path, &mut stage, &mut sink)?,
        (None, Some(b)) => hypeflow::kafka::scoring::run(
            b,
            &mut stage,
            &mut sink,
            a.exit_when_idle_ms.map(Duration::from_millis),
        )?,
        (None, None) => bail!("give posts to score: --in FILE or --brokers B"),
    };
    let s = &stage.stats;
    println!(
        "posts {} without token {} records {} by llm {} cached {} lexicon fallback {} requests {} failed {} invalid results {} -> {}",
        s.posts, s.without_token, written, s.by_llm, s.cached, s.fallback, s.requests, s.failed_requests,
        s.invalid_results, sink.describe()
    );
    Ok(())
}

/// Offline: every post of a JSONL file, in batches as the live stage makes them (all arrive now).
fn score_file(path: &std::path::Path, stage: &mut ScoringStage, sink: &mut Sink) -> Result<u64> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut posts = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<hypeflow::model::Tweet>(line) {
            Ok(t) => posts.push(t),
            Err(e) => sink.dead_letter_to(
                Some("social.tweets"),
                "",
                line.as_bytes(),
                &format!("{} line {}: {e}", path.display(), i + 1),
            )?,
        }
    }
    let mut written = 0;
    let chunk = stage.config().batch_size * stage.config().concurrency;
    let mut it = posts.into_iter().peekable();
    while it.peek().is_some() {
        let now = Instant::now();
        let batch: Vec<Pending> = it
            .by_ref()
            .take(chunk)
            .map(|tweet| Pending {
                tweet,
                arrived: now,
            })
            .collect();
        for r in stage.score(batch) {
            sink.write("scored", &r.token, r.created_at, &r)?;
            written += 1;
        }
    }
    Ok(written)
}
