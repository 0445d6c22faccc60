//! On-chain venues: Uniswap V3 and PancakeSwap V3 through their routers, with the executor's own checks, a
//! journal entry for every signed transaction before it is broadcast, and recovery from that journal.

pub mod checks;
pub mod config;
pub mod oneinch;
pub mod signer;
pub mod token_safety;
pub mod uniswap_v3;
pub mod units;

pub use config::VenueConfig;
pub use uniswap_v3::UniswapV3Venue;
