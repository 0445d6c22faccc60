//! The history-file arguments `backtest`, `sweep` and `lookahead-check` share, and their resolution into a
//! pipeline and input paths.

use super::{load_pipeline_any, locate, resolve_tokens};
use anyhow::Result;
use clap::Args;
use hypeflow::backtest::inputs::Span;
use hypeflow::config::PipelineConfig;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct FileInputs {
    /// Pipeline file (TOML)
    #[arg(long, default_value = "pipelines/influencer_momentum.toml")]
    pipeline: PathBuf,
    /// Posts as JSONL (optional; a technical pipeline needs none). Default: the sample's posts for sentiment pipelines
    #[arg(long)]
    tweets: Option<PathBuf>,
    /// Scored mentions JSONL from `hypeflow score` instead of posts: replays the recorded (LLM) scores
    #[arg(long, conflicts_with = "tweets")]
    scored: Option<PathBuf>,
    /// Price history: ticks .jsonl, bars .csv, freqtrade .json, or a folder of them
    #[arg(long, default_value = "data/sample/ticks.jsonl")]
    prices: PathBuf,
    /// Bar interval of bar files (e.g. 5m, 1h); inferred when absent
    #[arg(long)]
    bar_interval: Option<String>,
    /// Trade these tokens instead of the pipeline's [universe] tokens (comma-separated; `*` = every token
    /// in the price data)
    #[arg(long, value_delimiter = ',')]
    tokens: Option<Vec<String>>,
    /// Only the history at or after this time (RFC 3339 or YYYY-MM-DD, UTC)
    #[arg(long)]
    from: Option<String>,
    /// Only the history before this time (RFC 3339 or YYYY-MM-DD, UTC)
    #[arg(long)]
    to: Option<String>,
}

/// The pipeline (tokens resolved) and where its history comes from.
pub struct Resolved {
    pub cfg: PipelineConfig,
    pub text: String,
    pub pipeline_path: PathBuf,
    pub prices: PathBuf,
    pub tweets: Option<PathBuf>,
    pub scored: bool,
    pub bar_interval: Option<i64>,
    pub span: Span,
}

impl FileInputs {
    pub fn resolve(self) -> Result<Resolved> {
        let (cfg, text, pipeline_path) = load_pipeline_any(&self.pipeline)?;
        let prices = locate(&self.prices);
        let cfg = resolve_tokens(cfg, self.tokens, &prices, &pipeline_path)?;
        let scored = self.scored.is_some();
        let tweets = match self.tweets.or(self.scored) {
            Some(t) => Some(locate(&t)),
            None if cfg.uses_sentiment() => Some(locate(Path::new("data/sample/tweets.jsonl"))),
            None => None,
        };
        let bar_interval = self
            .bar_interval
            .as_deref()
            .map(hypeflow::model::time::parse_duration_ms)
            .transpose()
            .map_err(anyhow::Error::msg)?;
        let time = |t: Option<&str>| {
            t.map(hypeflow::model::time::parse_time)
                .transpose()
                .map_err(anyhow::Error::msg)
        };
        let span = Span {
            from: time(self.from.as_deref())?,
            to: time(self.to.as_deref())?,
        };
        if let (Some(f), Some(t)) = (span.from, span.to) {
            anyhow::ensure!(f < t, "--from must be before --to");
        }
        Ok(Resolved {
            span,
            cfg,
            text,
            pipeline_path,
            prices,
            tweets,
            scored,
            bar_interval,
        })
    }
}
