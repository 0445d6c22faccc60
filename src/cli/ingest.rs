//! `hypeflow ingest ...`: the live-data commands.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use hypeflow::ingest::{clock::SystemClock, x_api, x_ingest, x_rules, x_users};
use hypeflow::kafka::sink::Sink;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Subcommand)]
pub enum IngestCmd {
    /// Influencer posts from X's filtered stream (or recent search) into social.tweets or a JSONL file
    X(XArgs),
    /// Token prices from on-chain pools, CoinGecko and DexScreener in priority order with health tracking, into
    /// market.ticks
    /// or a JSONL file
    Prices(PricesArgs),
    /// A pool's OHLCV history from CoinGecko's on-chain API or GeckoTerminal's, as a bars CSV that `backtest --prices` reads
    Ohlcv(OhlcvArgs),
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum PlanArg {
    Demo,
    Pro,
    /// GeckoTerminal's free public API (no key, 30 calls a minute)
    Geckoterminal,
}

#[derive(Args)]
pub struct OhlcvArgs {
    /// GeckoTerminal network slug (eth, bsc, base, ...)
    #[arg(long)]
    network: String,
    /// Pool address
    #[arg(long)]
    pool: String,
    /// The symbol the bars are labelled with
    #[arg(long)]
    token: String,
    /// day, hour or minute (second on Pro)
    #[arg(long, default_value = "minute")]
    timeframe: String,
    /// Bars per candle as documented: day 1; hour 1/4/12; minute 1/5/15; second 1/15/30
    #[arg(long, default_value_t = 15)]
    aggregate: u32,
    /// Candles (at most 1000)
    #[arg(long, default_value_t = 1000)]
    limit: u32,
    /// The CoinGecko plan (must match the key in COINGECKO_API_KEY), or geckoterminal (keyless)
    #[arg(long, value_enum, default_value = "demo")]
    plan: PlanArg,
    #[arg(long)]
    out: PathBuf,
    /// CoinGecko API root (default: the plan's host)
    #[arg(long, env = "COINGECKO_BASE_URL")]
    coingecko_url: Option<String>,
}

#[derive(Args)]
pub struct PricesArgs {
    /// Providers, their priority and the tokens
    #[arg(long, default_value = "feeds/prices.toml")]
    feeds: PathBuf,
    /// jsonl:PATH or kafka:BOOTSTRAP (market.ticks, keyed by token)
    #[arg(long)]
    out: String,
    /// Stop after this many polling rounds (default: run until stopped)
    #[arg(long)]
    max_rounds: Option<u64>,
    /// CoinGecko API root (default: the plan's host)
    #[arg(long, env = "COINGECKO_BASE_URL")]
    coingecko_url: Option<String>,
    /// DexScreener API root
    #[arg(long, env = "DEXSCREENER_BASE_URL")]
    dexscreener_url: Option<String>,
    /// JSON-RPC endpoint of the chain for on-chain pool prices
    #[arg(long, env = "RPC_URL")]
    rpc_url: Option<String>,
    #[command(flatten)]
    metrics: super::ops::MetricsArgs,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum XMode {
    /// The filtered stream (pay-per-use and Pro): posts within seconds; gaps after outages filled by search
    Stream,
    /// Poll recent search (for accounts without stream access)
    Search,
}

#[derive(Args)]
pub struct XArgs {
    /// The influencer list: `handle,...` CSV from `influencers sync`, or a seed list (one handle per line or
    /// rank<TAB>handle)
    #[arg(long, default_value = "data/influencers/influencers.csv")]
    influencers: PathBuf,
    /// Only posts naming one of these cashtags (default: the pipeline's tokens with --pipeline, else any post)
    #[arg(long, value_delimiter = ',')]
    cashtags: Vec<String>,
    /// A pipeline file whose tokens become the cashtag filter
    #[arg(long)]
    pipeline: Option<PathBuf>,
    /// jsonl:PATH (appends; dead letters in PATH.deadletter.jsonl) or kafka:BOOTSTRAP (social.tweets, keyed
    /// by author; dead letters in deadletter.social.tweets)
    #[arg(long)]
    out: String,
    #[arg(long, value_enum, default_value = "stream")]
    mode: XMode,
    /// Make the stream's rules match the list first (validated with dry_run; only hypeflow-tagged rules are
    /// ever deleted)
    #[arg(long)]
    sync_rules: bool,
    /// With --sync-rules: validate and report only, change nothing, do not stream
    #[arg(long)]
    dry_run: bool,
    /// Reconnect when the stream sends neither data nor a keep-alive for this long (X sends one every 20 s)
    #[arg(long, default_value_t = x_ingest::DEFAULT_SILENCE.as_secs_f64())]
    silence_s: f64,
    /// Search mode: seconds between polls (recent search allows 450 calls per 15 minutes per app)
    #[arg(long, default_value_t = 15.0)]
    poll_s: f64,
    /// Stop after this many new posts (default: run until stopped)
    #[arg(long)]
    max_posts: Option<u64>,
    /// Stop after this many failed connection attempts in a row (default: retry forever)
    #[arg(long)]
    max_failures: Option<u32>,
    /// Search mode: stop after this many polling rounds
    #[arg(long)]
    max_rounds: Option<u64>,
    /// X API host
    #[arg(long, env = "X_API_BASE_URL", default_value = x_api::DEFAULT_BASE_URL)]
    base_url: String,
    #[command(flatten)]
    metrics: super::ops::MetricsArgs,
}

pub fn run(cmd: IngestCmd) -> Result<()> {
    match cmd {
        IngestCmd::X(a) => ingest_x(a),
        IngestCmd::Prices(a) => ingest_prices(a),
        IngestCmd::Ohlcv(a) => ingest_ohlcv(a),
    }
}

/// Handles from an `influencers sync` CSV (first column under a `handle` header) or a seed list.
fn read_handles(text: &str) -> Vec<String> {
    if text.trim_start().starts_with("handle,") {
        text.lines()
            .skip(1)
            .filter_map(|l| l.split(',').next())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .collect()
    } else {
        x_users::read_seed(text)
    }
}

fn ingest_x(a: XArgs) -> Result<()> {
    let _ops = a.metrics.start("ingest-x", false)?;
    let path = super::locate(&a.influencers);
    if !path.exists() {
        bail!(
            "no influencer list at {}: make it from a seed of the accounts to follow with `X_BEARER_TOKEN=... \
             hypeflow influencers sync --seed YOUR_SEED --out {}` (data/influencers/seed_example.txt is a short \
             example seed), or pass --influencers FILE (a synced CSV or a seed, one handle per line)",
            path.display(),
            path.display()
        );
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the influencer list {}", path.display()))?;
    let handles = read_handles(&text);
    if handles.is_empty() {
        bail!("{} holds no handles", path.display());
    }
    let mut cashtags = a.cashtags.clone();
    if let Some(p) = &a.pipeline {
        let (cfg, _, _) = super::load_pipeline(p)?;
        cashtags.extend(cfg.universe.tokens.iter().cloned());
    }
    let rules = x_rules::build(&handles, &cashtags, x_rules::Limits::default())?;
    // recent search takes queries of up to 512 characters on the standard plans
    let queries: Vec<String> = x_rules::build(
        &handles,
        &cashtags,
        x_rules::Limits {
            rule_length: 512,
            rules: usize::MAX,
        },
    )?
    .into_iter()
    .map(|r| r.value)
    .collect();
    let api = x_api::XApi::from_env(&a.base_url)?;
    if a.sync_rules {
        let r = x_rules::sync(&api, &rules, a.dry_run)?;
        for p in &r.problems {
            eprintln!("X rule problem: {p}");
        }
        println!(
            "rules wanted {} kept {} added {} deleted {}{}",
            rules.len(),
            r.kept,
            r.added,
            r.deleted,
            if r.dry_run {
                " (dry run: nothing changed)"
            } else {
                ""
            }
        );
        if a.dry_run {
            return Ok(());
        }
    }
    let mut sink = Sink::open(&a.out, "social.tweets")?;
    let stats = match a.mode {
        XMode::Stream => x_ingest::stream(
            &api,
            &x_ingest::StreamOptions {
                silence: Duration::from_secs_f64(a.silence_s.max(0.05)),
                max_posts: a.max_posts,
                max_failures: a.max_failures,
                gap_queries: queries,
            },
            &mut sink,
            &SystemClock,
        )?,
        XMode::Search => x_ingest::poll(
            &api,
            &queries,
            &x_ingest::PollOptions {
                interval: Duration::from_secs_f64(a.poll_s.max(0.0)),
                max_posts: a.max_posts,
                max_rounds: a.max_rounds,
            },
            &mut sink,
            &SystemClock,
        )?,
    };
    println!(
        "posts {} duplicates {} dead-lettered {} keep-alives {} connections {} gap-filled {} -> {}",
        stats.posts,
        stats.duplicates,
        stats.dead_lettered,
        stats.keep_alives,
        stats.connections,
        stats.gap_filled,
        sink.describe()
    );
    Ok(())
}

fn ingest_prices(a: PricesArgs) -> Result<()> {
    let _ops = a.metrics.start("ingest-prices", false)?;
    use hypeflow::ingest::{coingecko, dexscreener, price_feed, price_provider};
    let path = super::locate(&a.feeds);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the feeds file {}", path.display()))?;
    let cfg = price_feed::FeedConfig::parse(&text, &path.display().to_string())
        .map_err(anyhow::Error::msg)?;
    let mut providers: Vec<Box<dyn price_provider::PriceProvider>> = Vec::new();
    for provider in &cfg.priority {
        match provider {
            price_feed::Provider::CoinGecko => {
                let section = cfg
                    .coingecko
                    .clone()
                    .unwrap_or(price_feed::CoinGeckoSection {
                        plan: coingecko::Plan::default(),
                        base_url: None,
                    });
                let base = a
                    .coingecko_url
                    .clone()
                    .or(section.base_url)
                    .unwrap_or_else(|| section.plan.default_base().to_string());
                let key = std::env::var("COINGECKO_API_KEY").ok();
                providers.push(Box::new(
                    coingecko::CoinGecko::new(&base, section.plan, key)
                        .map_err(anyhow::Error::msg)?,
                ));
            }
            price_feed::Provider::DexScreener => {
                let base = a
                    .dexscreener_url
                    .clone()
                    .or(cfg.dexscreener_base_url.clone())
                    .unwrap_or_else(|| dexscreener::DEFAULT_BASE_URL.to_string());
                providers.push(Box::new(
                    dexscreener::DexScreener::new(&base).map_err(anyhow::Error::msg)?,
                ));
            }
            price_feed::Provider::Onchain => {
                let Some(url) = a.rpc_url.clone().or(cfg.rpc_url.clone()) else {
                    bail!("the onchain provider needs a JSON-RPC endpoint: set RPC_URL, --rpc-url or rpc_url in {}", path.display());
                };
                providers.push(Box::new(hypeflow::ingest::pool_price::OnchainPools::new(
                    &url,
                    &cfg.tokens,
                )?));
            }
        }
    }
    let interval = Duration::from_millis(cfg.interval_ms().unsigned_abs());
    let mut feed =
        price_feed::PriceFeed::new(providers, cfg.tokens.clone(), interval, cfg.stale_ms());
    let mut sink = Sink::open(&a.out, "market.ticks")?;
    let stats = feed.run(&mut sink, &SystemClock, a.max_rounds, |r| {
        for (p, why) in &r.skipped {
            tracing::info!("round: {p} skipped: {why}");
        }
    })?;
    let sources: Vec<String> = stats
        .by_source
        .iter()
        .map(|(s, n)| format!("{s}={n}"))
        .collect();
    println!(
        "rounds {} ticks {} ({}) -> {}",
        stats.rounds,
        stats.ticks,
        sources.join(" "),
        sink.describe()
    );
    Ok(())
}

fn ingest_ohlcv(a: OhlcvArgs) -> Result<()> {
    use hypeflow::ingest::coingecko::{CoinGecko, Plan};
    use hypeflow::model::time::to_rfc3339;
    let plan = match a.plan {
        PlanArg::Demo => Plan::Demo,
        PlanArg::Pro => Plan::Pro,
        PlanArg::Geckoterminal => Plan::GeckoTerminal,
    };
    let base = a
        .coingecko_url
        .clone()
        .unwrap_or_else(|| plan.default_base().to_string());
    let cg = CoinGecko::new(&base, plan, std::env::var("COINGECKO_API_KEY").ok())
        .map_err(anyhow::Error::msg)?;
    let bars = cg.pool_ohlcv(
        &a.network,
        &a.pool,
        &a.timeframe,
        a.aggregate,
        a.limit,
        &a.token,
    )?;
    let mut csv = String::from("token,timestamp,open,high,low,close,volume\n");
    for b in &bars {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            b.token,
            to_rfc3339(b.open_time),
            b.open,
            b.high,
            b.low,
            b.close,
            b.volume
        ));
    }
    std::fs::write(&a.out, csv).with_context(|| format!("cannot write {}", a.out.display()))?;
    println!("bars {} -> {}", bars.len(), a.out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn handles_come_from_either_list_format() {
        assert_eq!(
            super::read_handles("handle,user_id,followers,counted_on\nalice,1,90000,2026-11-24\nbob,2,60000,2026-11-24\n"),
            vec!["alice", "bob"]
        );
        assert_eq!(super::read_handles("1\t@carol\n"), vec!["carol"]);
    }
}
