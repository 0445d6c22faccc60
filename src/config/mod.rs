//! Pipeline definitions: the TOML file a user edits, backtests and deploys.

pub mod conditions;
pub mod influencers;
pub mod pipeline;

pub use influencers::InfluencerBook;

pub use pipeline::{
    ConfigError, CorrelationConfig, EndOfData, FillConfig, PipelineConfig, RebalanceConfig,
    RebalancePolicy, RiskConfig, ScaleOutLeg, SentimentConfig, SignalConfig, SizingConfig,
    SizingMode, SlippageModel, StopFill, VolatilityMeasure,
};
