//! The EVM side: contract interfaces, reading pool prices, and a local development chain (anvil with Uniswap V3
//! deployed from its published artifacts) for tests, benchmarks and trying things out. alloy is async; hypeflow's
//! callers are threads, so each client owns a small tokio runtime and blocks on it.

pub mod contracts;
pub mod devnet;

use alloy::providers::{DynProvider, Provider, ProviderBuilder};

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("RPC URL {0:?} is not a URL; set RPC_URL (or --rpc-url) to the node's HTTP endpoint")]
    Url(String),
    #[error("cannot start the async runtime: {0}")]
    Runtime(String),
    #[error("{0}")]
    Rpc(String),
    #[error("{0}")]
    Setup(String),
}

/// A read-only provider for `url` and the runtime its calls run on.
pub fn read_provider(url: &str) -> Result<(DynProvider, tokio::runtime::Runtime), ChainError> {
    crate::net::http::install_tls();
    let parsed = url.parse().map_err(|_| ChainError::Url(url.into()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ChainError::Runtime(e.to_string()))?;
    let p = ProviderBuilder::new().connect_http(parsed).erased();
    Ok((p, rt))
}
