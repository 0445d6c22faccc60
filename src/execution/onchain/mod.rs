//! On-chain venues: each one a router file (Uniswap V3 / PancakeSwap V3, 1inch) on the shared path of `swap`
//! (the executor's own checks, simulation, a journal entry for every signed transaction before it is broadcast,
//! confirmation, and recovery from that journal), over one `Account`.

pub mod account;
pub mod browser;
pub mod checks;
pub mod config;
pub mod oneinch;
pub mod preflight;
pub mod signer;
pub mod swap;
pub mod token_safety;
pub mod uniswap_v3;
pub mod units;

pub use config::{Dex, VenueConfig};
pub use oneinch::OneInchVenue;
pub use uniswap_v3::UniswapV3Venue;

pub use account::Signing;

use crate::execution::venue::{Venue, VenueError};

/// Connects the venue the file configures, checked against the chain before anything is traded. A new venue
/// is its router file and one line here.
pub fn connect(
    cfg: VenueConfig,
    rpc_url: &str,
    signing: Signing,
) -> Result<Box<dyn Venue>, VenueError> {
    Ok(match cfg.venue {
        Dex::UniswapV3 | Dex::PancakeswapV3 => {
            Box::new(UniswapV3Venue::connect_with(cfg, rpc_url, signing)?)
        }
        Dex::Oneinch => Box::new(OneInchVenue::connect_with(cfg, rpc_url, signing)?),
    })
}
