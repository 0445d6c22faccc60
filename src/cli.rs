//! Command-line interface. Defaults run the shipped sample, so `hypeflow backtest` works on a fresh clone.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use hypeflow::backtest::{self, BacktestRequest};
use hypeflow::config::PipelineConfig;
use hypeflow::model::time::parse_duration_ms;
use hypeflow::sample::{generate, SampleSpec};
use hypeflow::sentiment::{eval, LexiconScorer};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

mod bench;
mod capital;
mod ctl;
mod file_inputs;
mod ingest;
mod lookahead;
mod ops;
mod score_lines;
mod scoring;
mod sweep;
mod up;

#[derive(Parser)]
#[command(
    name = "hypeflow",
    version,
    about = "Trade crypto tokens on what crypto influencers say: timely-dataflow pipelines, backtests and execution"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay history files through a pipeline with the paper venue and write trades, equity, intents, metrics and report.html
    Backtest(BacktestArgs),
    /// Backtest a pipeline over a grid of its keys (inputs read once) and rank the runs: results.csv and the best runs' reports
    Sweep(sweep::SweepArgs),
    /// Run a pipeline on copies of its input cut at several times; every decision before a cut must be unchanged
    LookaheadCheck(lookahead::LookaheadArgs),
    /// Synthetic sample data
    #[command(subcommand)]
    Sample(SampleCmd),
    /// Lexicon sentiment: score a text or evaluate against labels
    #[command(subcommand)]
    Sentiment(SentimentCmd),
    /// Throughput of the full dataflow on in-memory synthetic history (figures for BENCHMARKS.md)
    Bench(BenchArgs),
    /// Host librdkafka's mock Kafka cluster in this process (in memory; for tests and trying things locally;
    /// `down`/`up` on stdin simulate a broker outage)
    DevBroker(DevBrokerArgs),
    /// Create or check the topics of kafka/topics.toml
    #[command(subcommand)]
    Topics(TopicsCmd),
    /// The influencer list: resolve handles with X's user lookup and keep the widely followed
    #[command(subcommand)]
    Influencers(InfluencersCmd),
    /// Load JSONL history into a topic (keyed, event time as the Kafka timestamp, idempotent producer)
    Publish(PublishArgs),
    /// Reprocess topic history through a pipeline and write the same outputs as `backtest`
    Replay(ReplayArgs),
    /// Live data from outside services (X, ...) into the Kafka topics or JSONL files
    #[command(subcommand)]
    Ingest(ingest::IngestCmd),
    /// Score posts for sentiment with an LLM (lexicon fallback): social.tweets or a JSONL file to social.scored
    Score(scoring::ScoreArgs),
    /// Execute intents from orders.intents as a consumer-group member (journaled, at most once per intent id)
    Execute(ExecuteArgs),
    /// The live dataflow: market.ticks and social.tweets in, orders.intents out
    Run(RunArgs),
    /// The live book from the executor's journal: positions, cash, PnL, fees, gas, drawdown per pipeline
    Book(BookArgs),
    /// The capital ladder: status of the gates, promotion, resuming after a drawdown pause
    #[command(subcommand)]
    Capital(capital::CapitalCmd),
    /// A signed operator command to the running executors (pause, resume, kill, flatten, promote, status)
    Ctl(ctl::CtlArgs),
    /// The whole live system as supervised stages (restarted with backoff, logs prefixed); `--demo` runs the
    /// keyless demo with its dashboard
    Up(up::UpArgs),
}

#[derive(Args)]
struct BookArgs {
    /// The executor's journal (SQLite)
    #[arg(long, default_value = "hypeflow-journal.sqlite")]
    journal: PathBuf,
    /// Capital each pipeline's book starts from, in the quote token
    #[arg(long, default_value = "10000")]
    capital: rust_decimal::Decimal,
    /// Only this pipeline's book
    #[arg(long)]
    pipeline: Option<String>,
    /// Mark open positions to the latest market.ticks price on this broker (default: their last fill price)
    #[arg(long, env = "KAFKA_BOOTSTRAP")]
    brokers: Option<String>,
    /// JSON instead of text
    #[arg(long)]
    json: bool,
    /// Every fill against its decision price (the execution-quality report)
    #[arg(long)]
    fills: bool,
}

#[derive(Args)]
#[command(disable_help_flag = true)]
struct RunArgs {
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// Sentiment from social.scored (written by `hypeflow score`, e.g. LLM scores) instead of scoring
    /// social.tweets with the lexicon here
    #[arg(long)]
    scored: bool,
    #[arg(long, default_value = "pipelines/influencer_momentum.toml")]
    pipeline: PathBuf,
    #[arg(long, env = "KAFKA_BOOTSTRAP")]
    brokers: String,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Start at this event time instead of the committed position (minus the rewind)
    #[arg(long)]
    from: Option<String>,
    /// A partition silent this many ms stops holding back the watermark
    #[arg(long, default_value_t = 2000)]
    idle_ms: u64,
    /// Exit (closing all windows) after this many seconds with no new record; default: run until stopped
    #[arg(long)]
    exit_when_idle: Option<u64>,
    /// What decides open positions: the executor's fills read back from orders.fills (live trading), or the
    /// backtest fill model (the run then equals `replay` record for record)
    #[arg(long, value_enum, default_value = "fills")]
    positions: PositionsArg,
    /// The executor's capital ladder: with --positions fills, entries are sized from its starting capital plus
    /// the fills (the executor's live book of this pipeline) instead of [backtest] initial_equity
    #[arg(long)]
    capital: Option<PathBuf>,
    /// Replaying history through an executor: move one bar at a time, and only once the executor has
    /// answered every intent, as wall time lets it live (use with `execute --clock event`)
    #[arg(long)]
    lockstep: bool,
    /// How long a fetch waits at the broker for new records (librdkafka's fetch.wait.max.ms). Apache Kafka
    /// answers as soon as records arrive; the dev-broker holds an empty fetch this long, so against it this
    /// adds up to that much to every decision (2 is a fair setting there, at more idle fetches)
    #[arg(long, default_value_t = hypeflow::kafka::source::DEFAULT_FETCH_WAIT_MS)]
    fetch_wait_ms: u64,
    #[command(flatten)]
    metrics: ops::MetricsArgs,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum PositionsArg {
    Fills,
    Model,
}

/// The venues `execute` can trade on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum VenueArg {
    Paper,
    UniswapV3,
    PancakeswapV3,
    #[value(name = "1inch")]
    Oneinch,
}

#[derive(Args)]
struct ExecuteArgs {
    /// The on-chain venues need --venue-config and a key; 1inch also ONEINCH_API_KEY
    #[arg(long, value_enum, default_value = "paper")]
    venue: VenueArg,
    /// On-chain venue file: chain, pinned contracts, quote token, allow-listed tokens, limits
    #[arg(long)]
    venue_config: Option<PathBuf>,
    /// JSON-RPC endpoint (overrides the venue file's rpc_url)
    #[arg(long, env = "RPC_URL")]
    rpc_url: Option<String>,
    /// Encrypted keystore of the trading account (password in HYPEFLOW_KEYSTORE_PASSWORD); without it the key
    /// comes from HYPEFLOW_PRIVATE_KEY
    #[arg(long)]
    keystore: Option<PathBuf>,
    #[arg(long, env = "KAFKA_BOOTSTRAP")]
    brokers: String,
    /// Consumer group; executors in one group split the intent partitions
    #[arg(long, default_value = "hypeflow-executor")]
    group: String,
    /// Journal file (SQLite); executors that may take over each other's partitions must share it
    #[arg(long, default_value = "hypeflow-journal.sqlite")]
    journal: PathBuf,
    /// Name of this executor instance in the journal (default: host name and group, the same on every start;
    /// a second live executor with the same name is refused)
    #[arg(long)]
    instance: Option<String>,
    /// Pipeline file whose [fills] section sets the paper fill model (so paper and backtest agree)
    #[arg(long, default_value = "pipelines/influencer_momentum.toml")]
    pipeline: PathBuf,
    /// Exit after this many seconds without a new intent (default: run until stopped)
    #[arg(long)]
    exit_when_idle: Option<u64>,
    /// The capital ladder (phases, caps, gates, drawdown pause) enforced on every intent; required on chain
    #[arg(long)]
    capital: Option<PathBuf>,
    /// What time it is: the wall clock (live), or the intents' event time (replaying history on paper,
    /// with `run --lockstep`)
    #[arg(long, value_enum, default_value = "wall")]
    clock: ClockArg,
    #[command(flatten)]
    metrics: ops::MetricsArgs,
    /// Serve the live dashboard (and /metrics, /healthz, /readyz) on HOST:PORT, e.g. 127.0.0.1:8080; its
    /// buttons work only with HYPEFLOW_UI_TOKEN (and HYPEFLOW_CONTROL_SECRET) set
    #[arg(long, value_name = "HOST:PORT")]
    ui_addr: Option<String>,
    /// Who signs on chain: `local` (a keystore or HYPEFLOW_PRIVATE_KEY), or `browser` (no key here: every
    /// checked transaction waits on the dashboard for the user's wallet; needs --ui-addr and --account)
    #[arg(long, value_enum, default_value = "local")]
    signer: SignerArg,
    /// With --signer browser: the account the wallet must connect (0x...); any other is refused
    #[arg(long, value_name = "0xADDRESS")]
    account: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum SignerArg {
    Local,
    Browser,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ClockArg {
    Wall,
    Event,
}

#[derive(Args)]
struct DevBrokerArgs {
    /// Partitions per topic (default: as in kafka/topics.toml)
    #[arg(long)]
    partitions: Option<i32>,
    /// Mock brokers in the cluster
    #[arg(long, default_value_t = 1)]
    brokers: i32,
    /// Topics file (default: the compiled-in kafka/topics.toml)
    #[arg(long)]
    topics: Option<PathBuf>,
}

#[derive(Subcommand)]
enum InfluencersCmd {
    /// Look up the seed handles (100 per call, X_BEARER_TOKEN from the environment), keep accounts with at least
    /// --min-followers, and write handle,user_id,followers,counted_on
    Sync {
        /// One handle per line (or rank<TAB>handle); the shipped file is a short example: write your own
        #[arg(long, default_value = "data/influencers/seed_example.txt")]
        seed: PathBuf,
        #[arg(long, default_value = "data/influencers/influencers.csv")]
        out: PathBuf,
        #[arg(long, default_value_t = 50_000)]
        min_followers: u64,
        /// X API host
        #[arg(long, env = "X_API_BASE_URL", default_value = hypeflow::ingest::x_api::DEFAULT_BASE_URL)]
        base_url: String,
    },
}

#[derive(Subcommand)]
enum TopicsCmd {
    /// Create missing topics (existing ones are left as they are)
    Create {
        #[arg(long, env = "KAFKA_BOOTSTRAP")]
        brokers: String,
        #[arg(long)]
        topics: Option<PathBuf>,
        /// Cap the replication factor (e.g. 1 for a single-broker cluster)
        #[arg(long)]
        max_replication: Option<i32>,
    },
    /// Show each topic's expected and actual partition count
    Describe {
        #[arg(long, env = "KAFKA_BOOTSTRAP")]
        brokers: String,
        #[arg(long)]
        topics: Option<PathBuf>,
    },
}

#[derive(Args)]
struct PublishArgs {
    #[arg(long, env = "KAFKA_BOOTSTRAP")]
    brokers: String,
    /// social.tweets (posts JSONL), social.scored (`hypeflow score` output), market.ticks (ticks JSONL) or
    /// orders.intents
    #[arg(long)]
    topic: Option<String>,
    /// Publish the shipped sample (posts and ticks) to their topics
    #[arg(long)]
    sample: bool,
    /// JSONL file to publish
    file: Option<PathBuf>,
}

#[derive(Args)]
#[command(disable_help_flag = true)]
struct ReplayArgs {
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// Sentiment from social.scored (written by `hypeflow score`, e.g. LLM scores) instead of scoring
    /// social.tweets with the lexicon here
    #[arg(long)]
    scored: bool,
    #[command(flatten)]
    cluster: ClusterArgs,
    #[arg(long, default_value = "pipelines/influencer_momentum.toml")]
    pipeline: PathBuf,
    #[arg(long, env = "KAFKA_BOOTSTRAP")]
    brokers: String,
    /// Start of the event-time range (RFC 3339 or ms); default: the beginning of each partition
    #[arg(long)]
    from: Option<String>,
    /// End of the event-time range (inclusive); default: everything present when the replay starts
    #[arg(long)]
    to: Option<String>,
    #[arg(long, default_value = "out/replay")]
    out: PathBuf,
}

/// Where the dataflow's workers run: threads here, optionally one process of a timely cluster over TCP.
#[derive(Args)]
struct ClusterArgs {
    /// Worker threads in this process
    #[arg(short = 'w', long = "workers", default_value_t = 1)]
    workers: usize,
    /// Timely processes in the cluster (each owns its share of the partitions)
    #[arg(short = 'n', long = "processes", default_value_t = 1)]
    processes: usize,
    /// This process's index in the cluster
    #[arg(short = 'p', long = "process", default_value_t = 0)]
    process: usize,
    /// File with one host:port per process (default: localhost:2101, 2102, ...)
    #[arg(short = 'h', long = "hostfile")]
    hostfile: Option<PathBuf>,
}

#[derive(Args)]
struct BacktestArgs {
    #[command(flatten)]
    inputs: file_inputs::FileInputs,
    /// Output folder
    #[arg(long, default_value = "out/backtest")]
    out: PathBuf,
    /// Worker threads
    #[arg(short = 'w', long = "workers", default_value_t = 1)]
    workers: usize,
    /// No progress bar
    #[arg(long)]
    quiet: bool,
}

#[derive(Subcommand)]
enum SampleCmd {
    /// Generate the synthetic market (ticks, bars, posts) into a folder
    Generate {
        #[arg(long, default_value = "data/sample")]
        out: PathBuf,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        #[arg(long, default_value_t = 10)]
        days: u32,
    },
    /// Play the synthetic market in real time, `--speed` times faster than the wall clock, into
    /// market.ticks and social.tweets (the live demo's feed; pair it with pipelines/demo.toml)
    Live {
        #[arg(long, env = "KAFKA_BOOTSTRAP")]
        brokers: String,
        /// Sample seconds per wall-clock second (1..3600; pipelines/demo.toml is built for 120)
        #[arg(long, default_value_t = 120)]
        speed: u32,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        #[arg(long, default_value_t = 10)]
        days: u32,
        /// Sample time published at once as history before the real-time part
        #[arg(long, default_value = "4h")]
        warmup: String,
    },
}

#[derive(Subcommand)]
enum SentimentCmd {
    /// Accuracy, macro-F1 and confusion matrix of a scorer (the lexicon, or the LLM) on a labeled CSV
    Eval {
        /// lexicon, or llm (needs LLM_API_KEY or DASHSCOPE_API_KEY; posts the model leaves unscored get the
        /// lexicon score, as in the scoring stage, and are counted)
        #[arg(long, value_enum, default_value = "lexicon")]
        model: ModelArg,
        #[command(flatten)]
        llm: scoring::LlmArgs,
        /// CSV with a text column and a label column (positive/negative/neutral)
        #[arg(long, default_value = "data/labeled/crypto_posts.csv")]
        labels: PathBuf,
        /// Only the rows whose `split` column holds this (the shipped set has train and test)
        #[arg(long)]
        split: Option<String>,
        #[arg(long)]
        text_column: Option<String>,
        #[arg(long)]
        label_column: Option<String>,
        /// |score| below this is neutral
        #[arg(long, default_value_t = 0.05)]
        neutral_band: f64,
    },
    /// Print the lexicon score of a text, or with --jsonl of every line of stdin
    Score {
        /// The text to score (leave out with --jsonl)
        #[arg(required_unless_present = "jsonl", conflicts_with = "jsonl")]
        text: Option<String>,
        /// Read JSON lines on stdin (posts, or {"text": ...} objects) and write one
        /// {"line", "id", "score"} line per line (an {"line", "error"} line for one that cannot be scored)
        #[arg(long)]
        jsonl: bool,
    },
}

/// The scorers `sentiment eval` can measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ModelArg {
    Lexicon,
    Llm,
}

/// What `bench` measures (see `--mode` in its help).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BenchMode {
    Pipeline,
    SmaBars,
    Kafka,
    KafkaLatency,
    XParse,
    XLatency,
    LlmOverhead,
    Executor,
}

#[derive(Args)]
struct BenchArgs {
    /// What to measure: "pipeline" (ticks + posts through the sentiment pipeline), "sma-bars", "kafka"
    /// (topics to orders.intents vs a bare consumer), "kafka-latency" (decision lag at a steady load),
    /// "x-parse" (--ticks stream lines parsed on one core), "x-latency" (local stream at --rate for --seconds
    /// to acknowledged social.tweets records) or "llm-overhead" (scoring stage per batch of 20 against a
    /// model that answers at once, 20 x --seconds batches) or "executor" (10 x --seconds swaps on a local anvil:
    /// intent to broadcast; journal and paper throughput); the Kafka modes need --brokers, a fresh broker each
    #[arg(long, value_enum, default_value = "pipeline")]
    mode: BenchMode,
    #[arg(long, env = "KAFKA_BOOTSTRAP")]
    brokers: Option<String>,
    /// kafka-latency: ticks per second
    #[arg(long, default_value_t = 2000)]
    rate: u64,
    /// kafka-latency: seconds of load
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    #[arg(long, default_value_t = 1_000_000)]
    ticks: u64,
    #[arg(long, default_value_t = 100_000)]
    tweets: u64,
    #[arg(long, default_value_t = 1_000_000)]
    bars: u64,
    #[arg(short = 'w', long = "workers", default_value_t = 1)]
    workers: usize,
    /// executor: dashboard pages (server-sent event streams) open on the journal during the swaps (0 to 64)
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=64))]
    ui_clients: u8,
    /// kafka-latency: the run's fetch.wait.max.ms (see `run --help`)
    #[arg(long, default_value_t = hypeflow::kafka::source::DEFAULT_FETCH_WAIT_MS)]
    fetch_wait_ms: u64,
    #[command(flatten)]
    metrics: ops::MetricsArgs,
}

/// A relative default path is looked up in the working directory, then in the source checkout.
fn locate(p: &Path) -> PathBuf {
    if p.is_absolute() || p.exists() {
        return p.to_path_buf();
    }
    let in_repo = Path::new(env!("CARGO_MANIFEST_DIR")).join(p);
    if in_repo.exists() {
        in_repo
    } else {
        p.to_path_buf()
    }
}

pub fn run() -> Result<()> {
    let cli = Cli::parse();
    // the subcommand only: arguments may hold paths or addresses a log need not carry
    let command = std::env::args().nth(1).unwrap_or_default();
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        command = command.as_str(),
        "hypeflow starting"
    );
    match cli.command {
        Command::Backtest(a) => backtest_cmd(a),
        Command::Sweep(a) => sweep::sweep_cmd(a),
        Command::LookaheadCheck(a) => lookahead::lookahead_cmd(a),
        Command::Sample(SampleCmd::Generate { out, seed, days }) => sample_cmd(&out, seed, days),
        Command::Sample(SampleCmd::Live {
            brokers,
            speed,
            seed,
            days,
            warmup,
        }) => {
            let spec = hypeflow::kafka::sample_feed::FeedSpec {
                brokers,
                speed,
                seed,
                days,
                warmup_ms: parse_duration_ms(&warmup)?,
            };
            let stop = ops::stop_flag()?;
            let s = hypeflow::kafka::sample_feed::play(&spec, &stop)?;
            println!(
                "ticks {} posts {} (of which {} as warm-up history)",
                s.ticks, s.posts, s.backlog
            );
            Ok(())
        }
        Command::Sentiment(SentimentCmd::Eval {
            model,
            llm,
            labels,
            split,
            text_column,
            label_column,
            neutral_band,
        }) => {
            let columns = eval::Columns {
                text: text_column.as_deref(),
                label: label_column.as_deref(),
                split: split.as_deref(),
            };
            sentiment_eval_cmd(model, llm, &labels, columns, neutral_band)
        }
        Command::Sentiment(SentimentCmd::Score { text, jsonl }) => match text {
            Some(text) if !jsonl => {
                println!("{:.4}", LexiconScorer::shared().score(&text));
                Ok(())
            }
            _ => score_lines::run(
                std::io::stdin().lock(),
                std::io::stdout().lock(),
                std::io::stderr(),
            ),
        },
        Command::Bench(b) => bench::run(b),
        Command::Ingest(c) => ingest::run(c),
        Command::Score(a) => scoring::run(a),
        Command::DevBroker(a) => dev_broker_cmd(a),
        Command::Influencers(c) => influencers_cmd(c),
        Command::Topics(c) => topics_cmd(c),
        Command::Publish(a) => publish_cmd(a),
        Command::Replay(a) => replay_cmd(a),
        Command::Execute(a) => execute_cmd(a),
        Command::Run(a) => run_cmd(a),
        Command::Book(a) => book_cmd(a),
        Command::Capital(c) => capital::run(c),
        Command::Ctl(a) => ctl::run(a),
        Command::Up(a) => up::run(a),
    }
}

fn sample_cmd(out: &Path, seed: u64, days: u32) -> Result<()> {
    let spec = SampleSpec {
        seed,
        days,
        ..Default::default()
    };
    let s = generate(&spec, out)
        .with_context(|| format!("writing sample data to {}", out.display()))?;
    println!(
            "wrote {}: {} ticks, {} bars, {} posts ({} hype episodes, {} with a price effect). SYNTHETIC data.",
            out.display(),
            s.ticks,
            s.bars,
            s.tweets,
            s.episodes,
            s.effective_episodes
        );
    Ok(())
}

fn sentiment_eval_cmd(
    model: ModelArg,
    llm: scoring::LlmArgs,
    labels: &Path,
    columns: eval::Columns<'_>,
    neutral_band: f64,
) -> Result<()> {
    let path = locate(labels);
    let (r, name) = match model {
        ModelArg::Lexicon => (
            eval::evaluate_file(&path, columns, neutral_band)?,
            LexiconScorer::shared().model_name().to_string(),
        ),
        ModelArg::Llm => {
            let rows = eval::read_labeled(&path, columns)?;
            let texts: Vec<String> = rows.iter().map(|(t, _)| t.clone()).collect();
            let client = llm.client(std::time::Duration::from_secs(60))?;
            let (scores, requests) = client.score_texts(&texts, llm.batch_size);
            let lexicon = LexiconScorer::shared();
            let fell_back = scores.iter().filter(|s| s.is_none()).count();
            let pairs: Vec<(eval::Label, eval::Label)> = rows
                .iter()
                .zip(&scores)
                .map(|((text, gold), s)| {
                    let score = s.unwrap_or_else(|| lexicon.score(text));
                    (*gold, eval::Label::from_score(score, neutral_band))
                })
                .collect();
            println!(
                "{} requests; {fell_back} of {} texts unscored by the model (lexicon used)",
                requests,
                texts.len()
            );
            (
                eval::EvalReport::from_pairs(&pairs, neutral_band),
                client.model().to_string(),
            )
        }
    };
    let split = columns
        .split
        .map(|s| format!(" (split {s})"))
        .unwrap_or_default();
    println!("model {name} on {}{split}", path.display());
    print!("{}", r.render());
    Ok(())
}

fn dev_broker_cmd(a: DevBrokerArgs) -> Result<()> {
    let topics = hypeflow::kafka::topics::load(a.topics.as_deref())?;
    hypeflow::kafka::dev_broker::serve(a.brokers, &topics, a.partitions, std::io::stdin().lock())?;
    Ok(())
}

fn influencers_cmd(c: InfluencersCmd) -> Result<()> {
    let InfluencersCmd::Sync {
        seed,
        out,
        min_followers,
        base_url,
    } = c;
    use hypeflow::ingest::x_users;
    let seed_path = locate(&seed);
    let text = std::fs::read_to_string(&seed_path)
        .with_context(|| format!("cannot read the seed list {}", seed_path.display()))?;
    let handles = x_users::read_seed(&text);
    if handles.is_empty() {
        bail!("{} holds no handles", seed_path.display());
    }
    let found = x_users::XUsers::from_env(&base_url)?.lookup(&handles)?;
    let kept: Vec<x_users::Account> = found
        .accounts
        .iter()
        .filter(|a| a.followers >= min_followers)
        .cloned()
        .collect();
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    std::fs::write(&out, x_users::write_influencers(&kept, &today))
        .with_context(|| format!("cannot write {}", out.display()))?;
    for (handle, why) in &found.missing {
        eprintln!("not found: {handle}: {why}");
    }
    println!(
        "handles {} found {} kept {} (>= {} followers) not found {} -> {}",
        handles.len(),
        found.accounts.len(),
        kept.len(),
        min_followers,
        found.missing.len(),
        out.display()
    );
    Ok(())
}

fn topics_cmd(c: TopicsCmd) -> Result<()> {
    match c {
        TopicsCmd::Create {
            brokers,
            topics,
            max_replication,
        } => {
            let specs = hypeflow::kafka::topics::load(topics.as_deref())?;
            for (t, state) in hypeflow::kafka::admin::create(&brokers, &specs, max_replication)? {
                println!("{t}: {state}");
            }
            Ok(())
        }
        TopicsCmd::Describe { brokers, topics } => {
            let specs = hypeflow::kafka::topics::load(topics.as_deref())?;
            let mut missing = 0;
            for (t, want, got) in hypeflow::kafka::admin::describe(&brokers, &specs)? {
                match got {
                    Some(g) if g == want => println!("{t}: ok ({g} partitions)"),
                    Some(g) => println!("{t}: {g} partitions, topics.toml says {want}"),
                    None => {
                        missing += 1;
                        println!("{t}: missing");
                    }
                }
            }
            if missing > 0 {
                bail!("{missing} topic(s) missing: run `hypeflow topics create --brokers ...`");
            }
            Ok(())
        }
    }
}

fn backtest_cmd(a: BacktestArgs) -> Result<()> {
    if a.workers == 0 {
        bail!("--workers must be at least 1");
    }
    let r = a.inputs.resolve()?;
    let req = BacktestRequest {
        cfg: r.cfg,
        pipeline_text: r.text,
        pipeline_path: r.pipeline_path.display().to_string(),
        tweets: r.tweets,
        scored: r.scored,
        prices: r.prices,
        bar_interval: r.bar_interval,
        span: r.span,
        workers: a.workers,
        progress: !a.quiet && std::io::stderr().is_terminal(),
    };
    let result = backtest::run_backtest(req)?;
    let writing = std::time::Instant::now();
    backtest::write_outputs(&result, &a.out)?;
    print!("{}", backtest::summary_table(&result, &a.out));
    println!(
        "outputs written in {:.2} s",
        writing.elapsed().as_secs_f64()
    );
    Ok(())
}

fn cluster_spec(c: &ClusterArgs) -> Result<hypeflow::dataflow::driver::ClusterSpec> {
    let (threads, processes, process, hostfile) =
        (c.workers, c.processes, c.process, c.hostfile.as_deref());
    if processes == 0 || process >= processes {
        bail!("-p {process} must be below -n {processes}");
    }
    // beyond these a cluster is a mistake, and each worker costs threads and connections up front
    if processes > 64 || threads == 0 || threads > 64 {
        bail!("-n must be 1 to 64 processes and -w 1 to 64 workers per process (got -n {processes} -w {threads})");
    }
    let addresses: Vec<String> = if processes <= 1 {
        Vec::new()
    } else if let Some(h) = hostfile {
        let text = std::fs::read_to_string(h)
            .with_context(|| format!("cannot read hostfile {}", h.display()))?;
        let hosts: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        if hosts.len() < processes {
            bail!(
                "hostfile {} lists {} hosts for -n {processes}",
                h.display(),
                hosts.len()
            );
        }
        hosts.into_iter().take(processes).collect()
    } else {
        (0..processes)
            .map(|i| format!("localhost:{}", 2101 + i))
            .collect()
    };
    Ok(hypeflow::dataflow::driver::ClusterSpec {
        threads: threads.max(1),
        process,
        addresses,
    })
}

fn book_cmd(a: BookArgs) -> Result<()> {
    use hypeflow::execution::book::LiveBook;
    use hypeflow::execution::journal::Journal;
    if a.capital <= rust_decimal::Decimal::ZERO {
        bail!("--capital must be positive");
    }
    if !a.journal.exists() {
        bail!(
            "no journal at {}: pass the executor's --journal",
            a.journal.display()
        );
    }
    let journal = Journal::open(&a.journal)?;
    let mut books = LiveBook::from_journal(&journal, a.capital)?;
    books.retain(|b| a.pipeline.as_ref().is_none_or(|p| &b.pipeline == p));
    if let Some(brokers) = &a.brokers {
        let mut prices = hypeflow::execution::prices::LatestPrices::connect(brokers, 10_000)?;
        prices.catch_up(std::time::Duration::from_secs(10));
        for b in &mut books {
            for p in b.view().positions {
                if let Some((at, price)) = prices.get(&p.token) {
                    b.mark(&p.token, price, at);
                }
            }
        }
    }
    let views: Vec<_> = books.iter().map(LiveBook::view).collect();
    if a.json && a.fills {
        let q: Vec<_> = books.iter().flat_map(|b| b.quality.iter()).collect();
        println!("{}", serde_json::to_string_pretty(&q)?);
    } else if a.fills {
        println!("fill time                 token side  decision price     quoted price       executed price     slip bps  vs quote  fee         gas");
        for b in &books {
            for q in &b.quality {
                println!(
                    "{} {:<5} {:<5} {:<18} {:<18} {:<18} {:>8} {:>9} {:<11} {}",
                    hypeflow::model::time::to_rfc3339(q.at),
                    q.token,
                    q.side.as_str(),
                    q.decision_price.round_dp(10),
                    q.quoted_price
                        .map_or("-".to_string(), |p| p.round_dp(10).to_string()),
                    q.executed_price.round_dp(10),
                    q.slippage_bps.round_dp(1),
                    q.slippage_vs_quote_bps
                        .map_or("-".to_string(), |b| b.round_dp(1).to_string()),
                    q.fee.round_dp(4),
                    q.gas.round_dp(4)
                );
            }
        }
    } else if a.json {
        println!("{}", serde_json::to_string_pretty(&views)?);
    } else if views.is_empty() {
        println!("no fills in {}", a.journal.display());
    } else {
        for v in &views {
            print!("{}", v.render());
        }
    }
    Ok(())
}

fn publish_cmd(a: PublishArgs) -> Result<()> {
    use hypeflow::kafka::publish::{publish_file, Publisher};
    let jobs: Vec<(String, PathBuf)> = if a.sample {
        vec![
            (
                "social.tweets".into(),
                locate(Path::new("data/sample/tweets.jsonl")),
            ),
            (
                "market.ticks".into(),
                locate(Path::new("data/sample/ticks.jsonl")),
            ),
        ]
    } else {
        match (a.topic, a.file) {
            (Some(t), Some(f)) => vec![(t, f)],
            _ => bail!("give --topic TOPIC FILE, or --sample"),
        }
    };
    let mut p = Publisher::new(&a.brokers)?;
    for (topic, file) in &jobs {
        let s = publish_file(&mut p, topic, file)?;
        println!(
            "{}: {} published, {} dead-lettered to deadletter.{topic}",
            file.display(),
            s.published,
            s.dead_lettered
        );
    }
    let acked = p.finish()?;
    println!("{acked} records acknowledged by {}", a.brokers);
    Ok(())
}

fn replay_cmd(a: ReplayArgs) -> Result<()> {
    let (cfg, text, pipeline_path) = load_pipeline(&a.pipeline)?;
    let from_ms = optional_time(a.from.as_deref())?;
    let to_ms = optional_time(a.to.as_deref())?;
    let result = hypeflow::backtest::replay::replay(hypeflow::backtest::replay::ReplayRequest {
        cfg,
        pipeline_text: text,
        pipeline_path: pipeline_path.display().to_string(),
        brokers: a.brokers,
        from_ms,
        to_ms,
        cluster: cluster_spec(&a.cluster)?,
        tweets_topic: hypeflow::kafka::topics::name(if a.scored {
            "social.scored"
        } else {
            "social.tweets"
        }),
        scored: a.scored,
        ticks_topic: hypeflow::kafka::topics::name("market.ticks"),
    })?;
    if a.cluster.process != 0 {
        println!(
            "process {} of {}: done; process 0 (which hosts the portfolio) writes the outputs",
            a.cluster.process, a.cluster.processes
        );
        return Ok(());
    }
    backtest::write_outputs(&result, &a.out)?;
    print!("{}", backtest::summary_table(&result, &a.out));
    Ok(())
}

/// The venue file, the endpoint and, with `--signer browser`, the approval queue the dashboard serves, all
/// checked before anything starts.
fn onchain_setup(
    a: &ExecuteArgs,
) -> Result<(
    hypeflow::execution::onchain::VenueConfig,
    String,
    Option<std::sync::Arc<hypeflow::execution::approval::ApprovalQueue>>,
)> {
    use hypeflow::execution::onchain::VenueConfig;
    let path = a
        .venue_config
        .as_ref()
        .context("an on-chain venue needs --venue-config FILE")?;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let vc = VenueConfig::parse(&text, &path.display().to_string()).map_err(anyhow::Error::msg)?;
    let asked = a
        .venue
        .to_possible_value()
        .map(|v| v.get_name().to_string());
    if asked.as_deref() != Some(vc.venue.name()) {
        bail!(
            "--venue {} but {} configures {}",
            asked.unwrap_or_default(),
            path.display(),
            vc.venue.name()
        );
    }
    let rpc = a
        .rpc_url
        .clone()
        .or(vc.rpc_url.clone())
        .context("no JSON-RPC endpoint: set rpc_url in the venue file, RPC_URL or --rpc-url")?;
    let queue = match a.signer {
        SignerArg::Local => {
            if a.account.is_some() {
                bail!("--account is for --signer browser; a local key is its own account");
            }
            None
        }
        SignerArg::Browser => {
            if a.ui_addr.is_none() {
                bail!("--signer browser needs --ui-addr HOST:PORT: the wallet approves on the dashboard");
            }
            if a.keystore.is_some() {
                bail!("--signer browser holds no key: drop --keystore, or use --signer local");
            }
            let account = a.account.as_deref().context(
                "--signer browser needs --account 0x...: the wallet account that must sign",
            )?;
            let account: alloy::primitives::Address = account
                .parse()
                .map_err(|_| anyhow::anyhow!("--account {account:?} is not an address"))?;
            if vc.approval_timeout_s >= vc.deadline_s {
                bail!(
                    "{}: approval_timeout_s ({}) must be under deadline_s ({}): a swap the wallet approves at the \
                     last moment needs time to be mined before the router's deadline",
                    path.display(),
                    vc.approval_timeout_s,
                    vc.deadline_s
                );
            }
            let token =
                std::env::var(hypeflow::execution::dashboard::TOKEN_ENV).unwrap_or_default();
            let addr = a.ui_addr.as_deref().unwrap_or_default();
            if token.is_empty()
                && !(addr.starts_with("127.")
                    || addr.starts_with("localhost")
                    || addr.starts_with("[::1]"))
            {
                eprintln!(
                    "warning: approvals on {addr} answer anyone who reaches it: set {} (the page asks for it)",
                    hypeflow::execution::dashboard::TOKEN_ENV
                );
            }
            Some(std::sync::Arc::new(
                hypeflow::execution::approval::ApprovalQueue::new(account, vc.chain_id),
            ))
        }
    };
    Ok((vc, rpc, queue))
}

fn execute_cmd(a: ExecuteArgs) -> Result<()> {
    let _ops = a.metrics.start("execute", true)?;
    hypeflow::alerts::init_from_env()?;
    use hypeflow::execution::clock::Clock;
    use hypeflow::execution::onchain::signer;
    use hypeflow::execution::paper::PaperVenue;
    use hypeflow::execution::venue::Venue;
    let capital = match &a.capital {
        Some(p) => Some(capital::load_config(p)?),
        None if a.venue != VenueArg::Paper => bail!(
            "an on-chain venue runs under the capital ladder: pass --capital capital/ladder.toml, and promote \
             to an on-chain phase first (hypeflow capital status / promote)"
        ),
        None => None,
    };
    let onchain = match a.venue {
        VenueArg::Paper if a.signer == SignerArg::Browser || a.account.is_some() => {
            bail!("--signer browser and --account are for the on-chain venues: paper trading signs nothing")
        }
        VenueArg::Paper => None,
        _ => Some(onchain_setup(&a)?),
    };
    let queue = onchain.as_ref().and_then(|o| o.2.clone());
    let _ui = match &a.ui_addr {
        Some(addr) => Some(ops::start_dashboard(
            addr,
            &a.journal,
            capital.clone(),
            &a.pipeline,
            &a.brokers,
            queue,
        )?),
        None => None,
    };
    let clock = match a.clock {
        ClockArg::Wall => Clock::Wall,
        ClockArg::Event => Clock::event(),
    };
    if clock.is_event() && a.venue != VenueArg::Paper {
        bail!("--clock event replays history on paper only: an on-chain venue trades now");
    }
    let mut venue: Box<dyn Venue> = match a.venue {
        VenueArg::Paper => {
            let (cfg, _, _) = load_pipeline(&a.pipeline)?;
            let cash = capital
                .as_ref()
                .map_or(cfg.backtest.initial_equity, |c| c.starting_capital);
            Box::new(PaperVenue::connect(
                &a.brokers,
                hypeflow::execution::paper::PaperConfig {
                    bar_ms: cfg.bar_interval_ms(),
                    fills: cfg.fills,
                    capital: cash,
                    clock: clock.clone(),
                },
            )?)
        }
        VenueArg::UniswapV3 | VenueArg::PancakeswapV3 | VenueArg::Oneinch => {
            let (vc, rpc, queue) = onchain.context("on-chain set-up")?;
            let signing = match queue {
                Some(q) => hypeflow::execution::onchain::Signing::Browser(q),
                None => signer::load(a.keystore.as_deref())?.into(),
            };
            hypeflow::execution::onchain::connect(vc, &rpc, signing)?
        }
    };
    let instance = a
        .instance
        .unwrap_or_else(|| hypeflow::execution::executor::default_instance(&a.group));
    let stats = hypeflow::execution::executor::run(
        &hypeflow::execution::executor::ExecutorConfig {
            brokers: a.brokers,
            group: a.group,
            journal: a.journal,
            instance,
            exit_when_idle: a.exit_when_idle.map(std::time::Duration::from_secs),
            capital,
            clock,
            stop: Some(ops::stop_flag()?),
        },
        venue.as_mut(),
    )?;
    // the last outcomes' alerts go out before the process does
    hypeflow::alerts::flush(std::time::Duration::from_secs(10));
    println!(
        "filled {} rejected {} duplicates {} dead-lettered {} republished {} commit-failures {} recovered {}",
        stats.filled,
        stats.rejected,
        stats.duplicates,
        stats.dead_lettered,
        stats.republished,
        stats.commit_failures,
        stats.recovered
    );
    Ok(())
}

fn run_cmd(a: RunArgs) -> Result<()> {
    let _ops = a.metrics.start("run", true)?;
    let (mut cfg, _, _) = load_pipeline(&a.pipeline)?;
    if let Some(path) = &a.capital {
        if matches!(a.positions, PositionsArg::Model) {
            bail!("--capital sizes from the executor's fills: it needs --positions fills (with --positions model the run is the backtest's, from [backtest] initial_equity)");
        }
        let ladder = capital::load_config(path)?;
        // part of the fingerprint, as every input of a decision is: intents sized from another equity are
        // other intents
        cfg.backtest.initial_equity = ladder.starting_capital;
    }
    let from_ms = optional_time(a.from.as_deref())?;
    let stats = hypeflow::kafka::run::run_live(hypeflow::kafka::run::RunRequest {
        cfg,
        brokers: a.brokers,
        cluster: cluster_spec(&a.cluster)?,
        from_ms,
        idle: std::time::Duration::from_millis(a.idle_ms),
        exit_when_idle: a.exit_when_idle.map(std::time::Duration::from_secs),
        positions: match a.positions {
            PositionsArg::Fills => hypeflow::dataflow::Positions::Fills,
            PositionsArg::Model => hypeflow::dataflow::Positions::Model,
        },
        scored: a.scored,
        fetch_wait_ms: a.fetch_wait_ms,
        trace_watermarks: false,
        lockstep: a.lockstep,
        stop: Some(ops::stop_flag()?),
    })?;
    println!(
        "intents published {} repeats suppressed {} dead-lettered {} ticks {} posts {} late {}",
        stats.intents_published,
        stats.repeats_suppressed,
        stats.dead_lettered,
        stats.ticks,
        stats.tweets,
        stats.late
    );
    Ok(())
}

/// Reads and validates a pipeline file; returns it with its text and resolved path.
/// `--tokens`, else the file's list; `*` (either) becomes every token in the price data.
fn resolve_tokens(
    cfg: PipelineConfig,
    tokens: Option<Vec<String>>,
    prices: &Path,
    pipeline: &Path,
) -> Result<PipelineConfig> {
    let all = |t: &[String]| t.len() == 1 && t[0].trim() == hypeflow::config::pipeline::ALL_TOKENS;
    let wanted = match tokens {
        Some(t) if all(&t) => None,
        Some(t) => Some(t.iter().map(|s| s.trim().to_string()).collect()),
        None if cfg.universe.is_all() => None,
        None => return Ok(cfg),
    };
    let list = match wanted {
        Some(list) => list,
        None => {
            let found = hypeflow::backtest::inputs::price_symbols(prices)?;
            if found.is_empty() {
                bail!(
                    "tokens \"*\": no token symbol found in {} (ticks need a `token` field, bar CSVs a token column)",
                    prices.display()
                );
            }
            eprintln!(
                "tokens \"*\": {} tokens in the price data: {}",
                found.len(),
                found.join(", ")
            );
            found
        }
    };
    Ok(cfg.with_tokens(list, &pipeline.display().to_string())?)
}

/// Loads a pipeline whose `universe.tokens` may be `"*"` (a file backtest resolves it from the price data).
fn load_pipeline_any(path: &Path) -> Result<(PipelineConfig, String, PathBuf)> {
    let pipeline_path = locate(path);
    let text = std::fs::read_to_string(&pipeline_path).with_context(|| {
        format!(
            "cannot read pipeline file {} (pass --pipeline FILE)",
            pipeline_path.display()
        )
    })?;
    let mut cfg = PipelineConfig::parse(&text, &pipeline_path.display().to_string())?;
    cfg.load_influencers(locate)?;
    Ok((cfg, text, pipeline_path))
}

/// Loads a pipeline for a command that needs its tokens listed (every one but the file backtest).
fn load_pipeline(path: &Path) -> Result<(PipelineConfig, String, PathBuf)> {
    let loaded = load_pipeline_any(path)?;
    if loaded.0.universe.is_all() {
        bail!(
            "pipeline {}: universe.tokens = \"*\" (every token in the price data) works for a file backtest only; \
             list the tokens for this command",
            loaded.2.display()
        );
    }
    Ok(loaded)
}

/// An optional `--from`/`--to` time (RFC 3339 or ms since the epoch).
fn optional_time(t: Option<&str>) -> Result<Option<i64>> {
    t.map(hypeflow::model::time::parse_time)
        .transpose()
        .map_err(anyhow::Error::msg)
}
