//! The Uniswap V3 venue (PancakeSwap V3 is the same with its own address table and fee tiers): an intent
//! becomes one `exactInputSingle` on SwapRouter02 inside `multicall(deadline, ...)`, and only after
//! - every fee tier is quoted on QuoterV2 (an `eth_call`) and the best output chosen;
//! - `amountOutMinimum` is set from that quote and the intent's slippage, and the deadline from the later of
//!   the chain head's timestamp and the clock (an idle chain's head can be hours old), both inside the
//!   transaction;
//! - the pool holds the liquidity floor and the trade's price impact is within its slippage bound;
//! - before a token's first buy, a simulated round trip (buy, transfer, sell) measures its taxes.
//!
//! Everything after (the executor's checks, simulation, signing, journal, confirmation) is the shared path
//! in `swap.rs`. Approvals are bounded to the trade's amount (reset to zero first when an allowance is left).

use super::account::{contract_reason, parse_addr, rpc, Account, Signing};
use super::config::VenueConfig;
use super::swap::{OnchainVenue, Plan, Prepared, Router};
use super::units::{from_base_units, to_base_units};
use crate::chain::contracts::{IQuoterV2, ISwapRouter02, IUniswapV3Factory, IERC20};
use crate::execution::venue::Refused;
use crate::execution::venue::VenueError;
use alloy::network::TransactionBuilder;
use alloy::primitives::{aliases::U24, Address, Bytes, U160, U256};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use rust_decimal::Decimal;
use std::collections::HashSet;

/// Uniswap V3's (or PancakeSwap V3's) factory and QuoterV2 with the fee tiers to try: the best quote over the
/// tiers, and the native coin's price in the quote token. The 1inch venue prices gas with it too.
pub struct Quoter {
    pub factory: Address,
    pub quoter: Address,
    pub tiers: Vec<u32>,
}

impl Quoter {
    pub fn from_config(cfg: &VenueConfig) -> Result<Self, VenueError> {
        Ok(Quoter {
            factory: parse_addr(&cfg.contracts.factory, "factory")?,
            quoter: parse_addr(&cfg.contracts.quoter, "quoter")?,
            tiers: cfg.fee_tiers(),
        })
    }

    /// Quotes every configured fee tier whose pool exists; the best output and its tier.
    pub fn best(
        &self,
        acct: &Account,
        token_in: Address,
        token_out: Address,
        amount_in: U256,
    ) -> Result<(u32, U256), Refused> {
        acct.rt.block_on(async {
            let f = IUniswapV3Factory::new(self.factory, &acct.provider);
            let q = IQuoterV2::new(self.quoter, &acct.provider);
            let mut best: Option<(u32, U256)> = None;
            let mut tried = Vec::new();
            for fee in self.tiers.iter().copied() {
                let pool = f
                    .getPool(token_in, token_out, U24::from(fee))
                    .call()
                    .await
                    .map_err(|e| Refused(format!("factory.getPool: {e}")))?;
                if pool.is_zero() {
                    continue;
                }
                let params = IQuoterV2::QuoteExactInputSingleParams {
                    tokenIn: token_in,
                    tokenOut: token_out,
                    amountIn: amount_in,
                    fee: U24::from(fee),
                    sqrtPriceLimitX96: U160::ZERO,
                };
                match q.quoteExactInputSingle(params).call().await {
                    Ok(r) => {
                        tried.push(format!("{fee}: {}", r.amountOut));
                        if best.is_none_or(|(_, b)| r.amountOut > b) {
                            best = Some((fee, r.amountOut));
                        }
                    }
                    Err(e) => tried.push(format!("{fee}: {}", contract_reason(&e))),
                }
            }
            tracing::debug!("quotes by fee tier: {}", tried.join(", "));
            best.filter(|(_, out)| !out.is_zero()).ok_or_else(|| {
                Refused(format!(
                    "no pool quotes {token_in} -> {token_out} (tiers tried: {})",
                    if tried.is_empty() {
                        "none exists".to_string()
                    } else {
                        tried.join(", ")
                    }
                ))
            })
        })
    }

    /// The price of one whole native coin in the quote token (1 when the quote is WETH itself).
    pub fn native_price(&self, acct: &Account) -> Option<Decimal> {
        if acct.quote == acct.weth {
            return Some(Decimal::ONE);
        }
        let one = to_base_units(Decimal::ONE, acct.dec(acct.weth))?;
        let (_, out) = self.best(acct, acct.weth, acct.quote, one).ok()?;
        from_base_units(out, acct.dec(acct.quote))
    }
}

/// A deadline or minimum output to use instead of the venue's own (the on-chain tests show the router
/// enforcing both).
#[derive(Clone, Copy, Debug, Default)]
pub struct Overrides {
    pub deadline: Option<u64>,
    pub min_out: Option<U256>,
}

pub struct UniswapV3 {
    name: &'static str,
    pub quoter: Quoter,
    /// Tokens whose round trip passed in this process (checked again after a restart).
    safe_tokens: HashSet<Address>,
}

pub type UniswapV3Venue = OnchainVenue<UniswapV3>;

impl OnchainVenue<UniswapV3> {
    /// Connects and verifies the set-up before anything is traded: the chain id, code at every pinned
    /// contract, and the router's `factory()` and `WETH9()` as configured.
    pub fn connect(
        cfg: VenueConfig,
        rpc_url: &str,
        signer: PrivateKeySigner,
    ) -> Result<Self, VenueError> {
        Self::connect_with(cfg, rpc_url, signer.into())
    }

    /// The same, signing with a local key or through the browser wallet.
    pub fn connect_with(
        cfg: VenueConfig,
        rpc_url: &str,
        signing: Signing,
    ) -> Result<Self, VenueError> {
        let router = UniswapV3 {
            name: cfg.venue.name(),
            quoter: Quoter::from_config(&cfg)?,
            safe_tokens: HashSet::new(),
        };
        OnchainVenue::new(Account::connect(cfg, rpc_url, signing)?, router)
    }

    /// The swap transaction for an amount, with the deadline and minimum output the venue would set, or
    /// the ones given (the on-chain tests use them to see the router enforce both).
    pub fn prepare(
        &self,
        token_in: Address,
        token_out: Address,
        amount_in: U256,
        slippage_bps: Decimal,
        deadline_override: Option<u64>,
        min_out_override: Option<U256>,
    ) -> Result<Prepared, Refused> {
        self.router.swap_tx(
            &self.acct,
            token_in,
            token_out,
            amount_in,
            slippage_bps,
            Overrides {
                deadline: deadline_override,
                min_out: min_out_override,
            },
        )
    }

    /// The best quote over the fee tiers: (tier, output).
    pub fn best_quote(
        &self,
        token_in: Address,
        token_out: Address,
        amount_in: U256,
    ) -> Result<(u32, U256), Refused> {
        self.router
            .quoter
            .best(&self.acct, token_in, token_out, amount_in)
    }
}

/// The swap's deadline: `deadline_s` after the later of the chain head's time and ours. The next block's
/// timestamp is at least the head's, and on a chain that has been idle it is about now: a deadline from an
/// old head alone would already be past when the swap is mined.
pub fn deadline_of(head_ts: u64, now_s: u64, deadline_s: u64) -> u64 {
    head_ts.max(now_s).saturating_add(deadline_s)
}

impl UniswapV3 {
    /// The swap transaction for a plan: `multicall(deadline, [exactInputSingle])` with the minimum inside.
    pub fn swap_tx(
        &self,
        acct: &Account,
        token_in: Address,
        token_out: Address,
        amount_in: U256,
        slippage_bps: Decimal,
        overrides: Overrides,
    ) -> Result<Prepared, Refused> {
        let Overrides {
            deadline: deadline_override,
            min_out: min_out_override,
        } = overrides;
        let (fee, quoted) = self.quoter.best(acct, token_in, token_out, amount_in)?;
        let bps = to_base_units(
            slippage_bps.max(Decimal::ZERO).min(Decimal::from(10_000)),
            0,
        )
        .unwrap_or_default();
        let min_out = min_out_override
            .unwrap_or(quoted * (U256::from(10_000u64) - bps) / U256::from(10_000u64));
        let (_, head_ts) = acct
            .rt
            .block_on(acct.head())
            .map_err(|e| Refused(e.to_string()))?;
        let now_s = u64::try_from(super::account::now_ms() / 1000).unwrap_or(0);
        let deadline =
            deadline_override.unwrap_or(deadline_of(head_ts, now_s, acct.cfg.deadline_s));
        let native_in = acct.native_in(token_in);
        let native_out = acct.native_out(token_out);
        // native out: the router keeps the WETH (address(2) means "the router") and unwraps it to us
        let recipient = if native_out {
            Address::with_last_byte(2)
        } else {
            acct.address
        };
        let inner = ISwapRouter02::exactInputSingleCall {
            params: ISwapRouter02::ExactInputSingleParams {
                tokenIn: token_in,
                tokenOut: token_out,
                fee: U24::from(fee),
                recipient,
                amountIn: amount_in,
                amountOutMinimum: min_out,
                sqrtPriceLimitX96: U160::ZERO,
            },
        }
        .abi_encode();
        let mut calls = vec![Bytes::from(inner)];
        if native_out {
            calls.push(Bytes::from(
                ISwapRouter02::unwrapWETH9Call {
                    amountMinimum: min_out,
                    recipient: acct.address,
                }
                .abi_encode(),
            ));
        }
        let data = ISwapRouter02::multicallCall {
            deadline: U256::from(deadline),
            data: calls,
        }
        .abi_encode();
        // native in: the router wraps exactly the value it is sent, never more than the trade's input
        let value = if native_in { amount_in } else { U256::ZERO };
        let tx = TransactionRequest::default()
            .with_from(acct.address)
            .with_to(acct.router)
            .with_input(Bytes::from(data))
            .with_value(value);
        Ok(Prepared {
            tx,
            fee_tier: fee,
            quoted_out: quoted,
            min_out,
            deadline,
        })
    }

    /// The simulated round trip before a token's first buy (see `token_safety`).
    fn token_safety(
        &self,
        acct: &Account,
        plan: &Plan,
        prepared: &Prepared,
    ) -> Result<(), Refused> {
        use super::token_safety::{judge, round_trip};
        use alloy::providers::Provider;
        let half = prepared.quoted_out / U256::from(2u8);
        let (_, quoted_sell) = self
            .quoter
            .best(acct, plan.token_out, plan.token_in, half)?;
        let rt = round_trip(
            acct.address,
            acct.router,
            plan.token_in,
            plan.token_out,
            prepared.fee_tier,
            plan.amount_in,
            prepared.quoted_out,
            quoted_sell,
            prepared.deadline,
            acct.native_in(plan.token_in),
        );
        let calls: Vec<serde_json::Value> = rt
            .calls
            .iter()
            .enumerate()
            .map(|(i, (to, data))| {
                let mut c = serde_json::json!({"from": format!("{:#x}", acct.address), "to": format!("{to:#x}"), "data": data.to_string()});
                if i == 2 && !rt.buy_value.is_zero() {
                    c["value"] = format!("{:#x}", rt.buy_value).into();
                }
                c
            })
            .collect();
        let payload =
            serde_json::json!({"blockStateCalls": [{"calls": calls}], "validation": false});
        let result: serde_json::Value = acct
            .rt
            .block_on(
                acct.provider
                    .raw_request("eth_simulateV1".into(), (payload, "latest")),
            )
            .map_err(|e| {
                Refused(format!(
                    "the node cannot simulate the round trip (eth_simulateV1): {e}"
                ))
            })?;
        let r = judge(&rt, &result)?;
        let limit = acct.cfg.limits.max_token_tax_bps;
        for (what, tax) in [
            ("buy", r.buy_tax_bps),
            ("transfer", r.transfer_tax_bps),
            ("sell", r.sell_tax_bps),
        ] {
            if tax > limit {
                return Err(Refused(format!(
                    "{what} tax {tax} bps is over the limit of {limit} bps"
                )));
            }
        }
        tracing::info!(
            "token {}: round trip passed (buy tax {} bps, transfer {} bps, sell {} bps)",
            plan.token_out,
            r.buy_tax_bps,
            r.transfer_tax_bps,
            r.sell_tax_bps
        );
        Ok(())
    }

    /// The pool must hold at least the liquidity floor of the quote token, and the trade's price impact (its
    /// output per unit against a tiny trade's, the pool fee cancelling out) must stay within the slippage bound.
    fn market_check(
        &self,
        acct: &Account,
        plan: &Plan,
        prepared: &Prepared,
    ) -> Result<(), Refused> {
        let floor = acct.cfg.limits.min_pool_liquidity;
        if floor > Decimal::ZERO {
            let held = acct.rt.block_on(async {
                let pool = IUniswapV3Factory::new(self.quoter.factory, &acct.provider)
                    .getPool(plan.token_in, plan.token_out, U24::from(prepared.fee_tier))
                    .call()
                    .await
                    .map_err(|e| Refused(e.to_string()))?;
                IERC20::new(acct.quote, &acct.provider)
                    .balanceOf(pool)
                    .call()
                    .await
                    .map_err(|e| Refused(e.to_string()))
            })?;
            let held = from_base_units(held, acct.dec(acct.quote)).unwrap_or_default();
            if held < floor {
                return Err(Refused(format!(
                    "the pool holds {held} {} of liquidity, under the floor of {floor}",
                    acct.cfg.quote.symbol
                )));
            }
        }
        let tiny_in = (plan.amount_in / U256::from(10_000u64)).max(U256::from(1u8));
        let (_, tiny_out) = self
            .quoter
            .best(acct, plan.token_in, plan.token_out, tiny_in)?;
        // impact = 1 - (out / in) / (tiny_out / tiny_in), in basis points, in integers
        let lhs = prepared.quoted_out * tiny_in * U256::from(10_000u64);
        let rhs = tiny_out * plan.amount_in;
        let impact_bps = if rhs.is_zero() || lhs >= rhs * U256::from(10_000u64) {
            Decimal::ZERO
        } else {
            Decimal::from(10_000) - from_base_units(lhs / rhs, 0).unwrap_or_default()
        };
        if impact_bps > plan.slippage_bps {
            return Err(Refused(format!(
                "price impact {impact_bps} bps at this size is over the slippage bound of {} bps",
                plan.slippage_bps
            )));
        }
        Ok(())
    }
}

impl Router for UniswapV3 {
    fn name(&self) -> &'static str {
        self.name
    }

    fn verify(&mut self, acct: &Account) -> Result<(), VenueError> {
        let p = &acct.provider;
        let (router_factory, router_weth) = acct.rt.block_on(async {
            let r = ISwapRouter02::new(acct.router, p);
            Ok::<_, VenueError>((
                r.factory().call().await.map_err(rpc)?,
                r.WETH9().call().await.map_err(rpc)?,
            ))
        })?;
        if router_factory != self.quoter.factory || router_weth != acct.weth {
            return Err(VenueError::Setup(format!(
                "the router answers factory {router_factory} and WETH9 {router_weth}, configured {} and {}",
                self.quoter.factory, acct.weth
            )));
        }
        Ok(())
    }

    fn prepare(&mut self, acct: &Account, plan: &Plan) -> Result<Prepared, Refused> {
        let p = self.swap_tx(
            acct,
            plan.token_in,
            plan.token_out,
            plan.amount_in,
            plan.slippage_bps,
            Overrides::default(),
        )?;
        self.market_check(acct, plan, &p)?;
        if plan.token_out != acct.quote && !self.safe_tokens.contains(&plan.token_out) {
            self.token_safety(acct, plan, &p)
                .map_err(|e| Refused(format!("token safety: {e}")))?;
            self.safe_tokens.insert(plan.token_out);
        }
        Ok(p)
    }

    fn native_price(&self, acct: &Account) -> Option<Decimal> {
        self.quoter.native_price(acct)
    }
}

#[cfg(test)]
mod tests {
    use super::deadline_of;

    #[test]
    fn the_deadline_counts_from_the_clock_when_the_chain_head_is_old() {
        // a head an hour old: the old rule gave head + 120, an hour in the past when the swap is mined
        assert_eq!(deadline_of(1_000, 4_600, 120), 4_720);
        // a head ahead of the clock (the chain's clock runs fast) still counts from the head
        assert_eq!(deadline_of(5_000, 4_600, 120), 5_120);
        assert_eq!(deadline_of(u64::MAX, 0, 120), u64::MAX);
    }
}
