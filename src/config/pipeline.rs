//! The pipeline file format. Every field has a default so a file only states what it changes; unknown keys are
//! errors so a typo never silently falls back to a default with real money behind it.

use super::conditions::Condition;
use crate::model::money::{lenient, lenient_map, lenient_opt};
use crate::model::time::{format_duration_ms, span, Millis, Span};
use crate::model::tokens::TokenTable;
use crate::model::Invalid;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read pipeline file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("pipeline file {path} is not valid: {message}")]
    Parse { path: String, message: String },
    #[error("pipeline {path}: {message}")]
    Invalid { path: String, message: Invalid },
}

fn d(s: &str) -> Decimal {
    s.parse().expect("literal decimal")
}

fn literal_span(s: &str) -> Span {
    Span::parse(s).expect("literal duration")
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    pub pipeline: PipelineMeta,
    pub universe: Universe,
    #[serde(default)]
    pub bars: BarsConfig,
    #[serde(default)]
    pub sentiment: SentimentConfig,
    pub signal: SignalConfig,
    #[serde(default)]
    pub sizing: SizingConfig,
    #[serde(default)]
    pub risk: RiskConfig,
    #[serde(default)]
    pub correlation: CorrelationConfig,
    #[serde(default)]
    pub fills: FillConfig,
    #[serde(default)]
    pub backtest: BacktestConfig,
    /// Left out of the fingerprint when it is the default (`none`), so files without it keep their intent ids.
    #[serde(default, skip_serializing_if = "RebalanceConfig::is_default")]
    pub rebalance: RebalanceConfig,
}

/// What happens to open positions after entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RebalancePolicy {
    /// Caps are checked at entry only.
    #[default]
    None,
    /// At every bar close the position, cluster and heat caps are checked against current marks and clusters;
    /// a breach beyond the tolerance band is trimmed back to the cap.
    Caps,
    /// `caps`, and every `every_bars` bars each position is resized toward the volatility size it would get
    /// now (the risk fraction over today's ATR stop).
    VolatilityTarget,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RebalanceConfig {
    #[serde(default)]
    pub policy: RebalancePolicy,
    /// A cap counts as breached beyond cap x (1 + tolerance), and a volatility target beyond target x (1 +/-
    /// tolerance): a band, so a position on its cap is not traded at every tick of its price.
    #[serde(default = "default_rebalance_tolerance", deserialize_with = "lenient")]
    pub tolerance: Decimal,
    /// volatility_target: a position is resized at most once every this many of its bars.
    #[serde(default = "default_rebalance_every")]
    pub every_bars: u64,
    /// No rebalancing trade of less than this notional (quote units).
    #[serde(default = "default_min_notional", deserialize_with = "lenient")]
    pub min_trade: Decimal,
}

fn default_rebalance_tolerance() -> Decimal {
    d("0.1")
}
fn default_rebalance_every() -> u64 {
    12
}

impl Default for RebalanceConfig {
    fn default() -> Self {
        RebalanceConfig {
            policy: RebalancePolicy::None,
            tolerance: default_rebalance_tolerance(),
            every_bars: default_rebalance_every(),
            min_trade: default_min_notional(),
        }
    }
}

impl RebalanceConfig {
    fn is_default(&self) -> bool {
        *self == RebalanceConfig::default()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineMeta {
    pub id: String,
    /// Bump when the meaning of the pipeline changes; it enters every intent id.
    #[serde(default = "default_version")]
    pub version: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_quote")]
    pub quote: String,
}
fn default_version() -> String {
    "1".into()
}
fn default_quote() -> String {
    "USD".into()
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Universe {
    /// The symbols, or `"*"`: every token in the price data (a file backtest resolves it before the run).
    #[serde(deserialize_with = "tokens_or_all")]
    pub tokens: Vec<String>,
    /// Lower-case words or names that mean a token ("bitcoin" -> "BTC").
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
    /// Contract addresses (any case) that mean a token.
    #[serde(default)]
    pub addresses: BTreeMap<String, String>,
}

/// `tokens = ["A", "B"]` or `tokens = "*"` (kept as the one-element list `["*"]`).
fn tokens_or_all<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Tokens {
        List(Vec<String>),
        All(String),
    }
    match Tokens::deserialize(d)? {
        Tokens::List(v) => Ok(v),
        Tokens::All(s) if s == ALL_TOKENS => Ok(vec![s]),
        Tokens::All(s) => Err(serde::de::Error::custom(format!(
            "tokens must be a list of symbols or \"*\" (every token in the price data), not {s:?}"
        ))),
    }
}

/// `universe.tokens = "*"`.
pub const ALL_TOKENS: &str = "*";

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BarsConfig {
    /// Interval of bars built from ticks; bar files bring their own interval.
    #[serde(default = "default_bar_interval")]
    pub interval: Span,
}
fn default_bar_interval() -> Span {
    literal_span("5m")
}
impl Default for BarsConfig {
    fn default() -> Self {
        BarsConfig {
            interval: default_bar_interval(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentimentConfig {
    #[serde(default = "default_window")]
    pub window: Span,
    #[serde(default = "default_slide")]
    pub slide: Span,
    /// Number of past windows (spaced one window apart) the mention-velocity z-score compares against.
    #[serde(default = "default_baseline")]
    pub baseline_windows: usize,
    /// Posts from accounts below this follower count are ignored.
    #[serde(default)]
    pub min_followers: u64,
    /// Weight = log10(1 + followers) * (1 + engagement_weight * log10(1 + engagement)).
    #[serde(default = "default_engagement_weight")]
    pub engagement_weight: f64,
    /// How late (event time) a post may arrive and still count; later ones are counted and dropped.
    #[serde(default = "default_lateness", deserialize_with = "span::allowance")]
    pub allowed_lateness: Span,
    /// The influencer list (`hypeflow influencers sync` output): when set, only its accounts' posts count,
    /// and its follower count stands in for a post that carries none.
    #[serde(default)]
    pub influencers: Option<String>,
    /// `influencers`, read when the pipeline is loaded (`PipelineConfig::load_influencers`).
    #[serde(skip)]
    pub influencer_book: Option<std::sync::Arc<super::InfluencerBook>>,
}
fn default_window() -> Span {
    literal_span("1h")
}
fn default_slide() -> Span {
    literal_span("5m")
}
fn default_baseline() -> usize {
    24
}
fn default_engagement_weight() -> f64 {
    0.25
}
fn default_lateness() -> Span {
    Span::parse_allowance("0s").expect("literal duration")
}
impl Default for SentimentConfig {
    fn default() -> Self {
        SentimentConfig {
            window: default_window(),
            slide: default_slide(),
            baseline_windows: default_baseline(),
            min_followers: 0,
            engagement_weight: default_engagement_weight(),
            allowed_lateness: default_lateness(),
            influencers: None,
            influencer_book: None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SignalConfig {
    /// Influencer sentiment with velocity and price-momentum confirmation.
    Sentiment {
        #[serde(default = "default_entry_score")]
        entry_score: f64,
        #[serde(default = "default_entry_velocity")]
        entry_velocity_z: f64,
        #[serde(default = "default_min_mentions")]
        min_mentions: u32,
        /// Bars over which the close must have risen by at least `min_momentum` (fraction).
        #[serde(default = "default_momentum_bars")]
        momentum_bars: usize,
        #[serde(default)]
        min_momentum: f64,
        /// Exit when the windowed score falls to or below this...
        #[serde(default = "default_exit_score")]
        exit_score: f64,
        /// ...over at least this many mentions (one angry post is not a reversal).
        #[serde(default = "default_exit_mentions")]
        exit_min_mentions: u32,
        /// Close a position after this long ("" = never).
        #[serde(default, with = "span::blank_is_none")]
        time_stop: Option<Span>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        entry_when: Vec<Condition>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        exit_when: Vec<Condition>,
    },
    /// Moving-average cross on bar closes.
    SmaCross {
        #[serde(default = "default_fast")]
        fast: usize,
        #[serde(default = "default_slow")]
        slow: usize,
        /// Indicator conditions that must all hold at the bar for an entry to stand (`rsi(14) < 70`).
        /// Left out of the fingerprint when empty, as `exit_when`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        entry_when: Vec<Condition>,
        /// Indicator conditions any one of which closes a position at the bar (`close < ema(50)`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        exit_when: Vec<Condition>,
    },
}

/// More conditions than this in one list is a mistake, not a strategy.
const MAX_CONDITIONS: usize = 16;

impl SignalConfig {
    /// The rule's indicator conditions: (all needed to enter, any one exits).
    pub fn conditions(&self) -> (&[Condition], &[Condition]) {
        match self {
            SignalConfig::Sentiment {
                entry_when,
                exit_when,
                ..
            }
            | SignalConfig::SmaCross {
                entry_when,
                exit_when,
                ..
            } => (entry_when, exit_when),
        }
    }
}
fn default_entry_score() -> f64 {
    0.3
}
fn default_entry_velocity() -> f64 {
    2.0
}
fn default_min_mentions() -> u32 {
    3
}
fn default_momentum_bars() -> usize {
    3
}
fn default_exit_score() -> f64 {
    -0.1
}
fn default_exit_mentions() -> u32 {
    1
}
fn default_fast() -> usize {
    10
}
fn default_slow() -> usize {
    30
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SizingMode {
    /// Risk `risk_fraction` of equity with the stop `stop_atr_mult` ATRs away.
    #[default]
    Volatility,
    /// Spend `stake` quote units per trade.
    FixedStake,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SizingConfig {
    #[serde(default)]
    pub mode: SizingMode,
    #[serde(default = "default_risk_fraction", deserialize_with = "lenient")]
    pub risk_fraction: Decimal,
    #[serde(default = "default_stake", deserialize_with = "lenient")]
    pub stake: Decimal,
    #[serde(default = "default_atr_period")]
    pub atr_period: usize,
    #[serde(default = "default_stop_atr", deserialize_with = "lenient")]
    pub stop_atr_mult: Decimal,
    /// Fixed fractional stop-loss (0.05 = 5%); used by fixed-stake pipelines, overrides the ATR stop when set.
    #[serde(default, deserialize_with = "lenient_opt")]
    pub stop_loss: Option<Decimal>,
    /// Take profit at this many ATRs above the fill (absent = none).
    #[serde(default, deserialize_with = "lenient_opt")]
    pub take_profit_atr_mult: Option<Decimal>,
    /// Trailing stop this many ATRs below the highest high since entry (absent = none).
    #[serde(default, deserialize_with = "lenient_opt")]
    pub trailing_atr_mult: Option<Decimal>,
    /// Partial exits: each leg sells `fraction` of the entry quantity when the price reaches `atr` ATRs
    /// above the fill; what is left exits by the stops, the take-profit or the signal. Left out of the
    /// fingerprint when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scale_out: Vec<ScaleOutLeg>,
    /// EWMA decay for realized volatility of log returns (`volatility = "ewma"`).
    #[serde(default = "default_ewma_lambda")]
    pub ewma_lambda: f64,
    /// What the stop distance (and every "ATR" multiple: stop, take-profit, trailing stop, scale-out legs,
    /// volatility targeting) measures. Left out of the fingerprint when `atr`, so older files keep their ids.
    #[serde(default, skip_serializing_if = "VolatilityMeasure::is_atr")]
    pub volatility: VolatilityMeasure,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VolatilityMeasure {
    /// Wilder's average true range over `atr_period` bars.
    #[default]
    Atr,
    /// The EWMA standard deviation of per-bar log returns (decay `ewma_lambda`) times the close: a price
    /// distance like the ATR that reacts to the latest moves faster. It counts once `atr_period` returns
    /// are in.
    Ewma,
}

impl VolatilityMeasure {
    fn is_atr(&self) -> bool {
        *self == VolatilityMeasure::Atr
    }
}
fn default_risk_fraction() -> Decimal {
    d("0.02")
}
fn default_stake() -> Decimal {
    d("100")
}
fn default_atr_period() -> usize {
    14
}
fn default_stop_atr() -> Decimal {
    d("2")
}
fn default_ewma_lambda() -> f64 {
    0.94
}
/// One scale-out leg (`[[sizing.scale_out]]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleOutLeg {
    #[serde(deserialize_with = "lenient")]
    pub atr: Decimal,
    #[serde(deserialize_with = "lenient")]
    pub fraction: Decimal,
}

impl Default for SizingConfig {
    fn default() -> Self {
        SizingConfig {
            mode: SizingMode::default(),
            risk_fraction: default_risk_fraction(),
            stake: default_stake(),
            atr_period: default_atr_period(),
            stop_atr_mult: default_stop_atr(),
            stop_loss: None,
            take_profit_atr_mult: None,
            trailing_atr_mult: None,
            scale_out: Vec::new(),
            ewma_lambda: default_ewma_lambda(),
            volatility: VolatilityMeasure::Atr,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskConfig {
    #[serde(default = "default_max_open")]
    pub max_open_positions: usize,
    /// Largest notional of one position in quote units (absent = no cap beyond cash).
    #[serde(default, deserialize_with = "lenient_opt")]
    pub max_position_notional: Option<Decimal>,
    /// Largest share of equity one position may hold (1 = no cap). Left out of the fingerprint at 1.
    #[serde(
        default = "one",
        deserialize_with = "lenient",
        skip_serializing_if = "is_one"
    )]
    pub max_position_fraction: Decimal,
    /// Cap on the summed notional of open positions in one correlation cluster, as a fraction of equity.
    #[serde(default = "default_cluster_fraction", deserialize_with = "lenient")]
    pub max_cluster_fraction: Decimal,
    /// Equity this far (fraction) below its peak stops new entries for `drawdown_lock`; then the peak starts
    /// again from the equity at that moment (Freqtrade's MaxDrawdown protection), so trading always resumes.
    #[serde(default = "default_drawdown_pause", deserialize_with = "lenient")]
    pub drawdown_pause: Decimal,
    /// How long the drawdown pause lasts. Left out of the pipeline's fingerprint when it is the default, so
    /// files that do not set it keep their intent ids.
    #[serde(
        default = "default_drawdown_lock",
        skip_serializing_if = "is_default_lock"
    )]
    pub drawdown_lock: Span,
    /// Portfolio heat cap: the open positions' and pending entries' loss if every stop is hit, plus the new
    /// entry's, as a fraction of equity (a position without a stop risks all of it). Left out of the
    /// fingerprint when it is the default.
    #[serde(
        default = "default_max_heat",
        deserialize_with = "lenient",
        skip_serializing_if = "is_default_heat"
    )]
    pub max_heat: Decimal,
    /// Positions smaller than this notional are not opened.
    #[serde(default = "default_min_notional", deserialize_with = "lenient")]
    pub min_notional: Decimal,
}
fn default_max_open() -> usize {
    5
}
fn one() -> Decimal {
    Decimal::ONE
}
fn is_one(v: &Decimal) -> bool {
    *v == Decimal::ONE
}
fn default_cluster_fraction() -> Decimal {
    d("0.2")
}
fn default_drawdown_pause() -> Decimal {
    d("0.1")
}
fn default_max_heat() -> Decimal {
    d("0.06")
}
fn is_default_heat(v: &Decimal) -> bool {
    *v == default_max_heat()
}
fn default_drawdown_lock() -> Span {
    literal_span("24h")
}
fn is_default_lock(s: &Span) -> bool {
    s.ms() == default_drawdown_lock().ms()
}
fn default_min_notional() -> Decimal {
    d("10")
}
impl Default for RiskConfig {
    fn default() -> Self {
        RiskConfig {
            max_open_positions: default_max_open(),
            max_position_notional: None,
            max_position_fraction: Decimal::ONE,
            max_cluster_fraction: default_cluster_fraction(),
            drawdown_pause: default_drawdown_pause(),
            drawdown_lock: default_drawdown_lock(),
            max_heat: default_max_heat(),
            min_notional: default_min_notional(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorrelationConfig {
    /// Number of most recent bar returns the rolling correlation uses.
    #[serde(default = "default_corr_window")]
    pub window_bars: usize,
    /// Tokens whose return correlation is at least this are linked; clusters are the linked components.
    #[serde(default = "default_corr_threshold")]
    pub threshold: f64,
    /// Fewer common returns than this and the pair is not judged.
    #[serde(default = "default_corr_min")]
    pub min_observations: usize,
}
fn default_corr_window() -> usize {
    96
}
fn default_corr_threshold() -> f64 {
    0.6
}
fn default_corr_min() -> usize {
    48
}
impl Default for CorrelationConfig {
    fn default() -> Self {
        CorrelationConfig {
            window_bars: default_corr_window(),
            threshold: default_corr_threshold(),
            min_observations: default_corr_min(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlippageModel {
    /// Fixed basis points against the trader.
    Bps,
    /// Constant-product pool with `pool_liquidity` quote units on the quote side.
    Amm,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopFill {
    /// The stop fills exactly at its price when the bar's low reaches it (Freqtrade's convention).
    StopPrice,
    /// As `stop_price`, but a bar that opens below the stop fills at that open (what a real market does).
    GapAware,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndOfData {
    /// Close open positions at the last bar's open, stamped with its open time (Freqtrade's force_exit).
    LastOpen,
    /// Close open positions at the last bar's close, stamped with its close time.
    LastClose,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FillConfig {
    #[serde(default = "default_fee", deserialize_with = "lenient")]
    pub fee_rate: Decimal,
    #[serde(default = "default_slippage_model")]
    pub slippage_model: SlippageModel,
    #[serde(default, deserialize_with = "lenient")]
    pub slippage_bps: Decimal,
    /// Quote-side pool depth for the AMM model, per token (falls back to `default_pool_liquidity`).
    #[serde(default, deserialize_with = "lenient_map")]
    pub pool_liquidity: BTreeMap<String, Decimal>,
    #[serde(default = "default_pool_liquidity", deserialize_with = "lenient")]
    pub default_pool_liquidity: Decimal,
    /// Gas per fill in quote units (0 for CEX-like venues).
    #[serde(default, deserialize_with = "lenient")]
    pub gas_quote: Decimal,
    #[serde(default = "default_stop_fill")]
    pub stop_fill: StopFill,
    #[serde(default = "default_end_of_data")]
    pub end_of_data: EndOfData,
    /// Largest acceptable slippage written into each intent, in bps.
    #[serde(default = "default_max_slippage", deserialize_with = "lenient")]
    pub max_slippage_bps: Decimal,
    /// Refuse an entry whose fill is worse than its decision price by more than `max_slippage_bps`, as every
    /// venue of the executor does (the market ran away; it is not chased). Off only to compare with a tool
    /// that fills regardless (the Freqtrade reference). Outside the fingerprint when on.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub refuse_drift: bool,
}
fn yes() -> bool {
    true
}
fn is_true(v: &bool) -> bool {
    *v
}
fn default_fee() -> Decimal {
    d("0.001")
}
fn default_slippage_model() -> SlippageModel {
    SlippageModel::Bps
}
fn default_pool_liquidity() -> Decimal {
    d("5000000")
}
fn default_stop_fill() -> StopFill {
    StopFill::GapAware
}
fn default_end_of_data() -> EndOfData {
    EndOfData::LastClose
}
fn default_max_slippage() -> Decimal {
    d("50")
}
impl Default for FillConfig {
    fn default() -> Self {
        FillConfig {
            fee_rate: default_fee(),
            slippage_model: default_slippage_model(),
            slippage_bps: Decimal::ZERO,
            pool_liquidity: BTreeMap::new(),
            default_pool_liquidity: default_pool_liquidity(),
            gas_quote: Decimal::ZERO,
            stop_fill: default_stop_fill(),
            end_of_data: default_end_of_data(),
            max_slippage_bps: default_max_slippage(),
            refuse_drift: true,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BacktestConfig {
    #[serde(default = "default_equity", deserialize_with = "lenient")]
    pub initial_equity: Decimal,
    /// Annual risk-free rate for Sharpe/Sortino (fraction).
    #[serde(default)]
    pub risk_free_rate: f64,
    /// Horizons at which signal quality (hit rate of the predicted direction) is judged. Absent or empty:
    /// derived from the bar interval ([`derived_horizons`]).
    #[serde(default)]
    pub signal_horizons: Vec<Span>,
    /// The horizons were derived, not written: a file backtest derives them again from its bar files'
    /// interval, which may differ from `[bars] interval`.
    #[serde(skip)]
    pub horizons_derived: bool,
}

/// Where derived horizons land: round lengths a reader recognises.
const HORIZON_LADDER: [&str; 12] = [
    "1m", "5m", "15m", "30m", "1h", "4h", "12h", "24h", "7d", "30d", "90d", "365d",
];

/// One bar, then the first ladder length of at least 12 bars and of at least 288 bars: on 5-minute bars
/// `5m, 1h, 24h` (the horizons before they were derived, so those files keep their intent ids), on daily
/// bars `1d, 30d, 365d` (instead of three horizons shorter than or equal to one bar, all alike).
pub fn derived_horizons(bar_ms: Millis) -> Vec<Span> {
    let at_least = |ms: Millis| {
        let text = HORIZON_LADDER
            .iter()
            .find(|t| literal_span(t).ms() >= ms)
            .unwrap_or(&HORIZON_LADDER[HORIZON_LADDER.len() - 1]);
        literal_span(text)
    };
    let bar =
        Span::parse(&format_duration_ms(bar_ms.max(1))).unwrap_or_else(|_| literal_span("1m"));
    let mut out = vec![bar];
    for k in [12, 288] {
        let h = at_least(bar_ms.saturating_mul(k));
        if out.iter().all(|o| o.ms() != h.ms()) {
            out.push(h);
        }
    }
    out
}
fn default_equity() -> Decimal {
    d("10000")
}
impl Default for BacktestConfig {
    fn default() -> Self {
        BacktestConfig {
            initial_equity: default_equity(),
            risk_free_rate: 0.0,
            signal_horizons: Vec::new(),
            horizons_derived: false,
        }
    }
}

impl PipelineConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Reads the influencer list the pipeline names, `resolve` turning its path into a file to open.
    pub fn load_influencers(
        &mut self,
        resolve: impl Fn(&Path) -> std::path::PathBuf,
    ) -> Result<(), ConfigError> {
        let Some(p) = self.sentiment.influencers.clone() else {
            return Ok(());
        };
        let path = resolve(Path::new(&p));
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let book = super::InfluencerBook::parse(&text, &path.display().to_string()).map_err(
            |message| ConfigError::Invalid {
                path: p.clone(),
                message,
            },
        )?;
        self.sentiment.influencer_book = Some(std::sync::Arc::new(book));
        Ok(())
    }

    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let mut cfg: PipelineConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.into(),
            message: e.to_string(),
        })?;
        if cfg.backtest.signal_horizons.is_empty() {
            cfg.backtest.signal_horizons = derived_horizons(cfg.bar_interval_ms());
            cfg.backtest.horizons_derived = true;
        }
        cfg.validate().map_err(|message| ConfigError::Invalid {
            path: origin.into(),
            message,
        })?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), Invalid> {
        if self.pipeline.id.trim().is_empty() {
            return Err(Invalid("[pipeline] id must not be empty".into()));
        }
        if self.universe.tokens.is_empty() {
            return Err(Invalid(
                "[universe] tokens must list at least one token".into(),
            ));
        }
        if self.universe.is_all() {
            // resolved against the price data before a run (`with_tokens`), which validates again
            return self.validate_after_universe();
        }
        let mut seen = std::collections::HashSet::new();
        for t in &self.universe.tokens {
            if t.is_empty() || t.len() > 16 || !t.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(Invalid(format!(
                    "token {t:?} must be 1-16 ASCII letters or digits"
                )));
            }
            if !seen.insert(t.to_ascii_uppercase()) {
                return Err(Invalid(format!("token {t} is listed twice")));
            }
        }
        for (k, v) in self
            .universe
            .aliases
            .iter()
            .chain(self.universe.addresses.iter())
        {
            if !seen.contains(&v.to_ascii_uppercase()) {
                return Err(Invalid(format!(
                    "alias/address {k:?} points at {v}, which is not in [universe] tokens"
                )));
            }
        }
        self.validate_after_universe()
    }

    /// Replaces the universe's tokens (`--tokens`, or `"*"` resolved against the price data) and checks the
    /// whole file again with them.
    pub fn with_tokens(mut self, tokens: Vec<String>, origin: &str) -> Result<Self, ConfigError> {
        self.universe.tokens = tokens;
        self.validate().map_err(|message| ConfigError::Invalid {
            path: origin.to_string(),
            message,
        })?;
        Ok(self)
    }

    fn validate_after_universe(&self) -> Result<(), Invalid> {
        let bar = self.bar_interval_ms();
        if self.window_ms() % self.slide_ms() != 0 {
            return Err(Invalid(format!(
                "[sentiment] window {} must be a whole number of slides ({})",
                self.sentiment.window, self.sentiment.slide
            )));
        }
        if bar % self.epoch_ms(bar) != 0 {
            return Err(Invalid(
                "[bars] interval must be a whole number of milliseconds".into(),
            ));
        }
        if self.sentiment.baseline_windows < 2 {
            return Err(Invalid(
                "[sentiment] baseline_windows must be at least 2".into(),
            ));
        }
        match &self.signal {
            SignalConfig::SmaCross { fast, slow, .. } => {
                if *fast == 0 || fast >= slow {
                    return Err(Invalid(format!(
                        "[signal] sma_cross needs 0 < fast < slow, got fast {fast}, slow {slow}"
                    )));
                }
            }
            SignalConfig::Sentiment { momentum_bars, .. } => {
                if *momentum_bars == 0 {
                    return Err(Invalid("[signal] momentum_bars must be at least 1".into()));
                }
            }
        }
        let (entry, exit) = self.signal.conditions();
        if entry.len() > MAX_CONDITIONS || exit.len() > MAX_CONDITIONS {
            return Err(Invalid(format!(
                "[signal] entry_when and exit_when take at most {MAX_CONDITIONS} conditions each, got {} and {}",
                entry.len(),
                exit.len()
            )));
        }
        let unit = Decimal::ONE;
        if self.sizing.risk_fraction <= Decimal::ZERO || self.sizing.risk_fraction > unit {
            return Err(Invalid("[sizing] risk_fraction must be in (0, 1]".into()));
        }
        if self.risk.max_heat <= Decimal::ZERO || self.risk.max_heat > unit {
            return Err(Invalid("[risk] max_heat must be in (0, 1]".into()));
        }
        if self.sizing.stake <= Decimal::ZERO {
            return Err(Invalid("[sizing] stake must be positive".into()));
        }
        if let Some(s) = self.sizing.stop_loss {
            if s <= Decimal::ZERO || s >= unit {
                return Err(Invalid("[sizing] stop_loss must be in (0, 1)".into()));
            }
        }
        if self.sizing.atr_period == 0 || !(0.0..1.0).contains(&self.sizing.ewma_lambda) {
            return Err(Invalid(
                "[sizing] atr_period must be >= 1 and ewma_lambda in [0, 1)".into(),
            ));
        }
        if self.fills.fee_rate < Decimal::ZERO
            || self.fills.fee_rate >= unit
            || self.fills.slippage_bps < Decimal::ZERO
        {
            return Err(Invalid(
                "[fills] fee_rate must be in [0, 1) and slippage_bps >= 0".into(),
            ));
        }
        if self.backtest.initial_equity <= Decimal::ZERO {
            return Err(Invalid("[backtest] initial_equity must be positive".into()));
        }
        if self.correlation.window_bars < 3 || self.correlation.min_observations < 3 {
            return Err(Invalid(
                "[correlation] window_bars and min_observations must be at least 3".into(),
            ));
        }
        self.check_ranges()
    }

    /// Every number against the range that makes sense for it (the README's "Limits"): values that parse
    /// but are extreme would otherwise overflow, allocate without bound or silently invert a rule.
    fn check_ranges(&self) -> Result<(), Invalid> {
        // quote-side pool depth: the deepest pools hold about 10^9; 10^15 leaves room and keeps
        // liquidity / price inside a decimal
        const MAX_POOL: Decimal = crate::model::limits::MAX_VOLUME;
        use crate::model::ranges::{count, dec, dur, real};
        const DAY: Millis = 86_400_000;
        let one = Decimal::ONE;
        let (sn, sz, rk, co, fi, bt) = (
            &self.sentiment,
            &self.sizing,
            &self.risk,
            &self.correlation,
            &self.fills,
            &self.backtest,
        );
        if self.pipeline.quote.trim().is_empty() {
            return Err(Invalid(
                "[pipeline] quote must name the quote currency (e.g. USD)".into(),
            ));
        }
        for k in self.universe.addresses.keys() {
            let hex = k.strip_prefix("0x").unwrap_or("");
            if hex.len() != 40 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(Invalid(format!(
                    "[universe] addresses key {k:?} is not a contract address (0x and 40 hex digits)"
                )));
            }
        }
        dur("[bars] interval", self.bar_interval_ms(), 1_000, 7 * DAY)?;
        dur("[sentiment] window", self.window_ms(), 1_000, 30 * DAY)?;
        dur("[sentiment] slide", self.slide_ms(), 1_000, 30 * DAY)?;
        count(
            "[sentiment] window / slide",
            (self.window_ms() / self.slide_ms()) as u64,
            1,
            1_440,
        )?;
        count(
            "[sentiment] baseline_windows",
            sn.baseline_windows as u64,
            2,
            10_000,
        )?;
        dur("[sentiment] allowed_lateness", self.lateness_ms(), 0, DAY)?;
        real(
            "[sentiment] engagement_weight",
            sn.engagement_weight,
            0.0,
            100.0,
        )?;
        match &self.signal {
            SignalConfig::SmaCross { slow, .. } => count("[signal] slow", *slow as u64, 2, 10_000)?,
            SignalConfig::Sentiment {
                entry_score,
                entry_velocity_z,
                min_mentions,
                momentum_bars,
                min_momentum,
                exit_score,
                exit_min_mentions,
                time_stop,
                ..
            } => {
                real("[signal] entry_score", *entry_score, -1.0, 1.0)?;
                real("[signal] exit_score", *exit_score, -1.0, 1.0)?;
                real(
                    "[signal] entry_velocity_z",
                    *entry_velocity_z,
                    -100.0,
                    100.0,
                )?;
                real("[signal] min_momentum", *min_momentum, -1.0, 100.0)?;
                count(
                    "[signal] min_mentions",
                    u64::from(*min_mentions),
                    0,
                    1_000_000,
                )?;
                count(
                    "[signal] exit_min_mentions",
                    u64::from(*exit_min_mentions),
                    0,
                    1_000_000,
                )?;
                count("[signal] momentum_bars", *momentum_bars as u64, 1, 10_000)?;
                if let Some(t) = time_stop {
                    dur("[signal] time_stop", t.ms(), 1_000, 365 * DAY)?;
                }
            }
        }
        count("[sizing] atr_period", sz.atr_period as u64, 1, 10_000)?;
        let mult = Decimal::from(100);
        dec(
            "[sizing] stop_atr_mult",
            sz.stop_atr_mult,
            Decimal::ZERO,
            mult,
            false,
        )?;
        for (k, v) in [
            ("[sizing] take_profit_atr_mult", sz.take_profit_atr_mult),
            ("[sizing] trailing_atr_mult", sz.trailing_atr_mult),
        ] {
            if let Some(v) = v {
                dec(k, v, Decimal::ZERO, mult, false)?;
            }
        }
        count("[sizing] scale_out legs", sz.scale_out.len() as u64, 0, 8)?;
        let mut below = Decimal::ZERO;
        for leg in &sz.scale_out {
            dec("[sizing] scale_out atr", leg.atr, below, mult, false)
                .map_err(|e| e.context("legs go lowest first"))?;
            dec(
                "[sizing] scale_out fraction",
                leg.fraction,
                Decimal::ZERO,
                Decimal::ONE,
                false,
            )?;
            below = leg.atr;
        }
        let sold: Decimal = sz.scale_out.iter().map(|l| l.fraction).sum();
        dec(
            "[sizing] scale_out fractions together",
            sold,
            Decimal::ZERO,
            Decimal::ONE,
            true,
        )?;
        let trillion = Decimal::from(1_000_000_000_000u64);
        dec("[sizing] stake", sz.stake, Decimal::ZERO, trillion, false)?;
        count(
            "[risk] max_open_positions",
            rk.max_open_positions as u64,
            1,
            1_000,
        )?;
        if let Some(v) = rk.max_position_notional {
            dec(
                "[risk] max_position_notional",
                v,
                Decimal::ZERO,
                trillion,
                false,
            )?;
        }
        dec(
            "[risk] max_cluster_fraction",
            rk.max_cluster_fraction,
            Decimal::ZERO,
            one,
            false,
        )?;
        dec(
            "[risk] max_position_fraction",
            rk.max_position_fraction,
            Decimal::ZERO,
            one,
            false,
        )?;
        let rb = &self.rebalance;
        dec(
            "[rebalance] tolerance",
            rb.tolerance,
            Decimal::ZERO,
            one,
            true,
        )?;
        count("[rebalance] every_bars", rb.every_bars, 1, 10_000)?;
        let most = Decimal::from(1_000_000_000_000u64);
        dec(
            "[rebalance] min_trade",
            rb.min_trade,
            Decimal::ZERO,
            most,
            true,
        )?;
        if rb.policy == RebalancePolicy::VolatilityTarget
            && self.sizing.mode != SizingMode::Volatility
        {
            return Err(Invalid(
                "[rebalance] policy = \"volatility_target\" resizes toward the volatility size: it needs [sizing] mode = \"volatility\"".into(),
            ));
        }
        dec(
            "[risk] drawdown_pause",
            rk.drawdown_pause,
            Decimal::ZERO,
            one,
            false,
        )?;
        dur("[risk] drawdown_lock", rk.drawdown_lock.ms(), 0, 365 * DAY)?;
        dec(
            "[risk] min_notional",
            rk.min_notional,
            Decimal::ZERO,
            trillion,
            true,
        )?;
        count(
            "[correlation] window_bars",
            co.window_bars as u64,
            3,
            10_000,
        )?;
        count(
            "[correlation] min_observations",
            co.min_observations as u64,
            3,
            co.window_bars as u64,
        )?;
        real("[correlation] threshold", co.threshold, -1.0, 1.0)?;
        let all = Decimal::from(10_000);
        dec(
            "[fills] slippage_bps",
            fi.slippage_bps,
            Decimal::ZERO,
            all,
            true,
        )?;
        dec(
            "[fills] max_slippage_bps",
            fi.max_slippage_bps,
            Decimal::ZERO,
            all,
            true,
        )?;
        dec(
            "[fills] gas_quote",
            fi.gas_quote,
            Decimal::ZERO,
            trillion,
            true,
        )?;
        let tokens: std::collections::HashSet<String> = self
            .universe
            .tokens
            .iter()
            .map(|t| t.to_ascii_uppercase())
            .collect();
        for (t, v) in &fi.pool_liquidity {
            // with "*" the list is known only once the price data is read (then this runs again)
            if !self.universe.is_all() && !tokens.contains(&t.to_ascii_uppercase()) {
                return Err(Invalid(format!(
                    "[fills] pool_liquidity names {t}, which is not in [universe] tokens"
                )));
            }
            // a pool of less than one quote unit makes any trade move the price without bound
            dec(
                &format!("[fills] pool_liquidity.{t}"),
                *v,
                Decimal::ONE,
                MAX_POOL,
                true,
            )?;
        }
        let pools = fi.default_pool_liquidity;
        dec(
            "[fills] default_pool_liquidity",
            pools,
            Decimal::ONE,
            MAX_POOL,
            true,
        )?;
        dec(
            "[backtest] initial_equity",
            bt.initial_equity,
            Decimal::ZERO,
            trillion,
            false,
        )?;
        real("[backtest] risk_free_rate", bt.risk_free_rate, -1.0, 1.0)?;
        for h in &bt.signal_horizons {
            dur("[backtest] signal_horizons", h.ms(), 1_000, 365 * DAY)?;
        }
        Ok(())
    }

    pub fn bar_interval_ms(&self) -> Millis {
        self.bars.interval.ms()
    }
    pub fn window_ms(&self) -> Millis {
        self.sentiment.window.ms()
    }
    pub fn slide_ms(&self) -> Millis {
        self.sentiment.slide.ms()
    }
    pub fn lateness_ms(&self) -> Millis {
        self.sentiment.allowed_lateness.ms()
    }
    pub fn time_stop_ms(&self) -> Option<Millis> {
        match &self.signal {
            SignalConfig::Sentiment { time_stop, .. } => time_stop.as_ref().map(Span::ms),
            _ => None,
        }
    }
    /// Bars of another interval than `[bars] interval` (a bar file's): derived horizons follow them.
    pub fn follow_bar_interval(&mut self, bar_ms: Millis) {
        if self.backtest.horizons_derived {
            self.backtest.signal_horizons = derived_horizons(bar_ms);
        }
    }
    pub fn signal_horizons_ms(&self) -> Vec<Millis> {
        self.backtest.signal_horizons.iter().map(Span::ms).collect()
    }
    /// A cluster cap is set (`risk.max_cluster_fraction` below 1): only then are correlations and clusters
    /// computed.
    pub fn uses_clusters(&self) -> bool {
        self.risk.max_cluster_fraction < Decimal::ONE
    }
    pub fn uses_sentiment(&self) -> bool {
        matches!(self.signal, SignalConfig::Sentiment { .. })
    }

    /// Version that enters intent ids: the declared version plus a fingerprint of every parameter, so two
    /// different parameter sets can never produce colliding ids.
    pub fn inputs_version(&self) -> String {
        let canonical = serde_json::to_string(self).unwrap_or_default();
        let digest = Sha256::digest(canonical.as_bytes());
        let fp: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        format!("{}+{}", self.pipeline.version, fp)
    }

    /// Largest timestamp quantum dividing every boundary the dataflow closes on (bars and window slides).
    pub fn epoch_ms(&self, bar_interval_ms: Millis) -> Millis {
        let mut g = gcd(bar_interval_ms, self.slide_ms());
        if g > 60_000 {
            g = gcd(g, 60_000);
        }
        g.max(1)
    }

    /// The quantum of a file replay: the largest dividing every bar and slide boundary, uncapped, so a run on
    /// daily bars and day-long windows takes one timely round a day instead of one a minute with posts in it
    /// (what decides is each record's exact event time, never its timestamp, so the outputs are the same).
    /// Topic sources keep `epoch_ms`'s minute cap: a record near the wall clock is never held back longer.
    pub fn replay_quantum_ms(&self, bar_interval_ms: Millis) -> Millis {
        gcd(bar_interval_ms, self.slide_ms()).max(1)
    }

    pub fn describe_windows(&self) -> String {
        format!(
            "window {} sliding {}, baseline {} windows",
            format_duration_ms(self.window_ms()),
            format_duration_ms(self.slide_ms()),
            self.sentiment.baseline_windows
        )
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a.abs()
    } else {
        gcd(b, a % b)
    }
}

impl Universe {
    /// `tokens = "*"`, not yet resolved.
    pub fn is_all(&self) -> bool {
        self.tokens.len() == 1 && self.tokens[0] == ALL_TOKENS
    }

    /// The dense ids the dataflow's records carry for this universe's tokens.
    pub fn token_table(&self) -> TokenTable {
        TokenTable::new(&self.tokens, &self.aliases, &self.addresses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = r#"
[pipeline]
id = "t"
[universe]
tokens = ["BTC", "ETH"]
aliases = { bitcoin = "BTC" }
[signal]
kind = "sma_cross"
fast = 3
slow = 5
"#;

    #[test]
    fn signal_horizons_follow_the_bar_interval_unless_written() {
        let texts = |v: Vec<Span>| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let min = 60_000;
        assert_eq!(texts(derived_horizons(5 * min)), ["5m", "1h", "24h"]);
        assert_eq!(texts(derived_horizons(15 * min)), ["15m", "4h", "7d"]);
        assert_eq!(texts(derived_horizons(1440 * min)), ["1d", "30d", "365d"]);
        assert_eq!(
            texts(derived_horizons(7 * 1440 * min)),
            ["7d", "90d", "365d"]
        );
        assert_eq!(texts(derived_horizons(2500)), ["2500ms", "1m", "15m"]);
        let c = PipelineConfig::parse(MIN, "t").unwrap();
        assert_eq!(
            texts(c.backtest.signal_horizons.clone()),
            ["5m", "1h", "24h"]
        );
        let mut daily = c.clone();
        daily.follow_bar_interval(1440 * min);
        assert_eq!(texts(daily.backtest.signal_horizons), ["1d", "30d", "365d"]);
        let written = format!("{MIN}[backtest]\nsignal_horizons = [\"2h\"]\n");
        let mut w = PipelineConfig::parse(&written, "t").unwrap();
        w.follow_bar_interval(1440 * min);
        assert_eq!(
            texts(w.backtest.signal_horizons),
            ["2h"],
            "written horizons stay"
        );
    }

    #[test]
    fn minimal_file_gets_defaults() {
        let c = PipelineConfig::parse(MIN, "t").unwrap();
        assert_eq!(c.sizing.risk_fraction, d("0.02"));
        assert_eq!(c.risk.max_cluster_fraction, d("0.2"));
        assert_eq!(c.risk.drawdown_pause, d("0.1"));
        assert_eq!(c.bar_interval_ms(), 300_000);
        let t = c.universe.token_table();
        assert_eq!(t.alias("bitcoin"), t.id("btc"));
    }

    #[test]
    fn typos_and_bad_values_are_errors() {
        let typo = MIN.replace("fast = 3", "fats = 3");
        assert!(PipelineConfig::parse(&typo, "t")
            .unwrap_err()
            .to_string()
            .contains("fats"));
        let bad = MIN.replace("fast = 3", "fast = 7");
        assert!(PipelineConfig::parse(&bad, "t")
            .unwrap_err()
            .to_string()
            .contains("fast < slow"));
        let alias = MIN.replace("\"BTC\" }", "\"DOGE\" }");
        assert!(PipelineConfig::parse(&alias, "t")
            .unwrap_err()
            .to_string()
            .contains("DOGE"));
    }

    #[test]
    fn extreme_values_that_parse_are_refused_naming_key_value_and_range() {
        let sentiment = "[signal]\nkind = \"sentiment\"\n";
        let cases: &[(&str, &str)] = &[
            ("[bars]\ninterval = \"9223372036854775807w\"", "too long"),
            (
                "[bars]\ninterval = \"1000000w\"",
                "[bars] interval is 7000000d",
            ),
            ("[sentiment]\nwindow = \"10000w\"", "[sentiment] window"),
            (
                "[sentiment]\nwindow = \"1h\"\nslide = \"1s\"",
                "window / slide is 3600",
            ),
            (
                "[sentiment]\nbaseline_windows = 18446744073709551615",
                "baseline_windows",
            ),
            (
                "[sentiment]\nengagement_weight = nan",
                "engagement_weight is NaN",
            ),
            ("[sizing]\nstop_atr_mult = \"-2\"", "stop_atr_mult is -2"),
            (
                "[sizing]\ntrailing_atr_mult = \"0\"",
                "trailing_atr_mult is 0",
            ),
            ("[risk]\nmin_notional = \"-5\"", "min_notional is -5"),
            ("[risk]\ndrawdown_pause = \"-0.1\"", "drawdown_pause"),
            (
                "[risk]\nmax_position_notional = \"-1\"",
                "max_position_notional",
            ),
            ("[correlation]\nthreshold = nan", "threshold is NaN"),
            (
                "[correlation]\nwindow_bars = 10\nmin_observations = 20",
                "min_observations is 20",
            ),
            ("[fills]\nslippage_bps = \"20000\"", "slippage_bps is 20000"),
            ("[fills]\nmax_slippage_bps = \"-1\"", "max_slippage_bps"),
            ("[fills]\ngas_quote = \"-3\"", "gas_quote is -3"),
            (
                "[fills]\ndefault_pool_liquidity = \"0\"",
                "default_pool_liquidity is 0",
            ),
            (
                "[fills]\ndefault_pool_liquidity = \"0.0000000000000000000000000001\"",
                "it must be from 1 up to 1000000000000000",
            ),
            ("[fills]\npool_liquidity = { DOGE = \"1000\" }", "DOGE"),
            (
                "[fills]\npool_liquidity = { BTC = \"-1000\" }",
                "pool_liquidity.BTC",
            ),
            ("[backtest]\ninitial_equity = \"1e20\"", "initial_equity"),
            ("[backtest]\nrisk_free_rate = inf", "risk_free_rate is inf"),
            ("[pipeline]\nquote = \"\"", "quote"),
        ];
        for (extra, want) in cases {
            let text = merge(MIN, extra);
            let e = PipelineConfig::parse(&text, "t").unwrap_err().to_string();
            assert!(e.contains(want), "{extra}: {e}");
        }
        for (extra, want) in [
            ("entry_score = nan", "entry_score is NaN"),
            ("momentum_bars = 18446744073709551615", "momentum_bars"),
            ("time_stop = \"9223372036854775807w\"", "too long"),
            ("time_stop = \"1000w\"", "time_stop is 7000d"),
        ] {
            let text = MIN.replace(
                "[signal]\nkind = \"sma_cross\"\nfast = 3\nslow = 5\n",
                &format!("{sentiment}{extra}\n"),
            );
            let e = PipelineConfig::parse(&text, "t").unwrap_err().to_string();
            assert!(e.contains(want), "{extra}: {e}");
        }
        let bad_address = MIN.replace(
            "aliases = { bitcoin = \"BTC\" }",
            "addresses = { notanaddress = \"BTC\" }",
        );
        let e = PipelineConfig::parse(&bad_address, "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a contract address"), "{e}");
        // the shipped pipelines are inside every range
        for f in ["influencer_momentum.toml", "sma_cross.toml", "demo.toml"] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("pipelines")
                .join(f);
            if path.exists() {
                PipelineConfig::load(&path).unwrap();
            }
        }
    }

    /// `extra`'s `[section]` lines added to that section of `base` (or as a new section).
    fn merge(base: &str, extra: &str) -> String {
        let (head, body) = extra.split_once('\n').unwrap();
        match base.find(&format!("{head}\n")) {
            Some(i) => {
                let at = i + head.len() + 1;
                format!("{}{body}\n{}", &base[..at], &base[at..])
            }
            None => format!("{base}\n{extra}\n"),
        }
    }

    #[test]
    fn version_changes_with_parameters() {
        let a = PipelineConfig::parse(MIN, "t").unwrap();
        let b = PipelineConfig::parse(&MIN.replace("slow = 5", "slow = 6"), "t").unwrap();
        assert_ne!(a.inputs_version(), b.inputs_version());
        assert_eq!(
            a.inputs_version(),
            PipelineConfig::parse(MIN, "t").unwrap().inputs_version()
        );
    }
}
