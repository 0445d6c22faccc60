//! What every client of an outside service shares: the HTTP call with its rate-limit handling, the per-provider
//! token buckets, the process-wide TLS set-up and the user agent. It sits just above `model` so that sentiment
//! (the LLM), ingest (X, prices), chain (RPC) and execution (1inch) all stand on it without importing each other.

pub mod http;
pub mod rate_limit;

pub use http::{install_tls, ClientError, ProviderError};

/// Sent with every request, so a provider's logs can tell hypeflow's traffic apart.
pub const USER_AGENT: &str = concat!("hypeflow/", env!("CARGO_PKG_VERSION"));
