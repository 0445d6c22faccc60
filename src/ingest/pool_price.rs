//! The freshest DEX price there is: a Uniswap V3 / PancakeSwap V3 pool's `slot0` read over JSON-RPC at the chain
//! head, stamped with that block's time. `sqrtPriceX96` is sqrt(token1/token0 in raw units) * 2^96; the price is
//! computed exactly in 512-bit integers and only then made a decimal, so no float ever touches it.

use super::price_provider::{PriceProvider, Quote, TokenFeed};
use crate::chain::contracts::{IUniswapV3Pool, IERC20};
use crate::chain::{read_provider, ChainError};
use crate::net::http::ProviderError;
use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{Address, U256, U512};
use alloy::providers::{DynProvider, Provider};
use rust_decimal::Decimal;
use std::cell::RefCell;
use std::collections::HashMap;

/// The price of one whole `base` token in whole other-side tokens, from `sqrtPriceX96` and the decimals.
pub fn price_from_sqrt(
    sqrt_price_x96: U256,
    dec0: u8,
    dec1: u8,
    base_is_token0: bool,
) -> Option<Decimal> {
    if sqrt_price_x96.is_zero() {
        return None;
    }
    let sq = U512::from(sqrt_price_x96) * U512::from(sqrt_price_x96);
    let q192 = U512::from(1u8) << 192;
    let ten = |e: u32| U512::from(10u8).pow(U512::from(e));
    // try the finest scale that still fits a Decimal (96-bit mantissa)
    for scale in (0..=18u32).rev() {
        let (num, den) = if base_is_token0 {
            (
                sq * ten(u32::from(dec0) + scale),
                q192 * ten(u32::from(dec1)),
            )
        } else {
            (
                q192 * ten(u32::from(dec1) + scale),
                sq * ten(u32::from(dec0)),
            )
        };
        let q = num / den;
        if q < (U512::from(1u8) << 95) {
            let m = i128::try_from(q).ok()?;
            return Some(Decimal::from_i128_with_scale(m, scale).normalize());
        }
    }
    None
}

#[derive(Clone, Debug)]
struct PoolInfo {
    base_is_token0: bool,
    dec0: u8,
    dec1: u8,
}

/// Prices tokens from their pools (`pool` in the feeds file). A pool's other side is either a USD stablecoin
/// (`pool_quote = "USD"`, the default) or another token of the feed whose own pool prices it.
pub struct OnchainPools {
    provider: DynProvider,
    rt: tokio::runtime::Runtime,
    info: RefCell<HashMap<Address, PoolInfo>>,
    by_symbol: HashMap<String, TokenFeed>,
}

fn rpc_err(e: impl std::fmt::Display) -> ProviderError {
    ProviderError::Transport {
        provider: "onchain".into(),
        message: e.to_string(),
    }
}

fn addr(s: &str, what: &str) -> Result<Address, ProviderError> {
    s.parse().map_err(|_| ProviderError::Body {
        provider: "onchain".into(),
        message: format!("{what} {s:?} is not an address"),
    })
}

impl OnchainPools {
    pub fn new(rpc_url: &str, tokens: &[TokenFeed]) -> Result<Self, ChainError> {
        let (provider, rt) = read_provider(rpc_url)?;
        Ok(OnchainPools {
            provider,
            rt,
            info: RefCell::new(HashMap::new()),
            by_symbol: tokens
                .iter()
                .map(|t| (t.symbol.clone(), t.clone()))
                .collect(),
        })
    }

    fn pool_info(&self, pool: Address, token: Address) -> Result<PoolInfo, ProviderError> {
        if let Some(i) = self.info.borrow().get(&pool) {
            return Ok(i.clone());
        }
        let p = IUniswapV3Pool::new(pool, &self.provider);
        let info = self.rt.block_on(async {
            let t0 = p.token0().call().await.map_err(rpc_err)?;
            let t1 = p.token1().call().await.map_err(rpc_err)?;
            let base_is_token0 = if t0 == token {
                true
            } else if t1 == token {
                false
            } else {
                return Err(ProviderError::Body {
                    provider: "onchain".into(),
                    message: format!(
                        "pool {pool} does not hold token {token} (it holds {t0} and {t1})"
                    ),
                });
            };
            let dec0 = IERC20::new(t0, &self.provider)
                .decimals()
                .call()
                .await
                .map_err(rpc_err)?;
            let dec1 = IERC20::new(t1, &self.provider)
                .decimals()
                .call()
                .await
                .map_err(rpc_err)?;
            Ok(PoolInfo {
                base_is_token0,
                dec0,
                dec1,
            })
        })?;
        self.info.borrow_mut().insert(pool, info.clone());
        Ok(info)
    }

    /// The token's price in its pool's other token, at `block`.
    fn pool_price(&self, t: &TokenFeed, block: u64) -> Result<Option<Decimal>, ProviderError> {
        let (Some(pool), Some(token)) = (&t.pool, &t.address) else {
            return Ok(None);
        };
        let pool = addr(pool, "pool")?;
        let info = self.pool_info(pool, addr(token, "address")?)?;
        let slot0 = self.rt.block_on(async {
            IUniswapV3Pool::new(pool, &self.provider)
                .slot0()
                .block(block.into())
                .call()
                .await
                .map_err(rpc_err)
        })?;
        Ok(price_from_sqrt(
            U256::from(slot0.sqrtPriceX96),
            info.dec0,
            info.dec1,
            info.base_is_token0,
        ))
    }

    fn usd_price(
        &self,
        t: &TokenFeed,
        block: u64,
        depth: u8,
    ) -> Result<Option<Decimal>, ProviderError> {
        let Some(in_quote) = self.pool_price(t, block)? else {
            return Ok(None);
        };
        match t.pool_quote.as_deref().unwrap_or("USD") {
            "USD" => Ok(Some(in_quote)),
            other if depth == 0 => match self.by_symbol.get(other) {
                Some(q) => Ok(self
                    .usd_price(q, block, 1)?
                    .map(|p| (in_quote * p).normalize())),
                None => Err(ProviderError::Body {
                    provider: "onchain".into(),
                    message: format!(
                        "{}: pool_quote {other} is not a token of the feed",
                        t.symbol
                    ),
                }),
            },
            _ => Ok(None),
        }
    }
}

impl PriceProvider for OnchainPools {
    fn name(&self) -> &str {
        "onchain"
    }

    fn supports(&self, t: &TokenFeed) -> bool {
        t.pool.is_some() && t.address.is_some()
    }

    fn quotes(&self, tokens: &[&TokenFeed]) -> Result<HashMap<String, Quote>, ProviderError> {
        let block = self.rt.block_on(async {
            self.provider
                .get_block_by_number(BlockNumberOrTag::Latest)
                .await
                .map_err(rpc_err)
        })?;
        let Some(block) = block else {
            return Err(rpc_err("the node has no latest block"));
        };
        let (number, at) = (block.header.number, block.header.timestamp as i64 * 1000);
        let mut out = HashMap::new();
        for t in tokens {
            if let Some(price) = self.usd_price(t, number, 0)? {
                out.insert(
                    t.symbol.clone(),
                    Quote {
                        price,
                        observed_at: at,
                    },
                );
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqrt_prices_become_exact_decimals() {
        let q96 = U256::from(1u8) << 96;
        // sqrtP = 2^96: 1 raw token1 per raw token0
        assert_eq!(price_from_sqrt(q96, 18, 18, true), Some(Decimal::ONE));
        // sqrtP = 2 * 2^96: 4 token1 per token0, so a token1 is 0.25 token0
        assert_eq!(
            price_from_sqrt(q96 * U256::from(2u8), 18, 18, true),
            Some(Decimal::from(4))
        );
        assert_eq!(
            price_from_sqrt(q96 * U256::from(2u8), 18, 18, false),
            Some(Decimal::new(25, 2))
        );
        // USDC (6 decimals) as token0, WETH (18) as token1 at 2,000 USDC per WETH: raw ratio 1e18 / 2000e6
        // = 5e8 token1 raw per token0 raw; sqrt = 22360.679..., WETH priced in USDC from the token1 side
        let sqrt = U256::from(22_360_679_774_997_896u128) * q96 / U256::from(1_000_000_000_000u64);
        let weth = price_from_sqrt(sqrt, 6, 18, false).unwrap();
        assert!(
            (weth - Decimal::from(2000)).abs() < Decimal::new(1, 6),
            "{weth}"
        );
        assert_eq!(price_from_sqrt(U256::ZERO, 18, 18, true), None);
    }
}
