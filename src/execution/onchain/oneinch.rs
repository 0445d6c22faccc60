//! The 1inch venue: routes come from the Classic Swap API v6.1 (`/approve/spender`, `/swap`), bearer key from
//! `ONEINCH_API_KEY`. Nothing it returns is trusted: the spender and the transaction's `to` must be the
//! allow-listed router, no native value may ride along, and the transaction then takes the shared path
//! (simulated from our account, our own nonce and fees, journaled like any other swap). The chain's Uniswap
//! quoter prices gas.

use super::account::{Account, Signing};
use super::config::VenueConfig;
use super::swap::{OnchainVenue, Plan, Prepared, Router};
use super::uniswap_v3::Quoter;
use crate::execution::venue::Refused;
use crate::execution::venue::VenueError;
use crate::net::http::{self, Call, ProviderError};
use crate::net::rate_limit::RateLimit;
use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, U256};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use rust_decimal::Decimal;
use std::time::{Duration, Instant};

pub const DEFAULT_BASE_URL: &str = "https://api.1inch.com";

pub struct OneInch {
    base: String,
    chain_id: u64,
    key: String,
    http: reqwest::blocking::Client,
    limit: RateLimit,
}

/// What `/swap` proposes.
#[derive(Clone, Debug)]
pub struct SwapTx {
    pub to: Address,
    pub data: Bytes,
    pub value: U256,
    pub dst_amount: U256,
}

fn body_err(message: String) -> ProviderError {
    ProviderError::Body {
        provider: "1inch".into(),
        message,
    }
}

impl OneInch {
    pub fn from_env(base: &str, chain_id: u64) -> Result<Self, VenueError> {
        let key = std::env::var("ONEINCH_API_KEY")
            .ok()
            .filter(|k| !k.trim().is_empty())
            .ok_or_else(|| VenueError::Setup("ONEINCH_API_KEY is not set: export the 1inch API key (read from the environment only)".into()))?;
        Ok(OneInch {
            base: base.trim_end_matches('/').to_string(),
            chain_id,
            key,
            http: http::client(Duration::from_secs(10))
                .map_err(|e| VenueError::Setup(e.to_string()))?,
            // the developer portal's free tier allows one request a second
            limit: RateLimit::new("1inch", 1, Duration::from_secs(1), Instant::now()),
        })
    }

    fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<serde_json::Value, ProviderError> {
        let url = format!("{}/swap/v6.1/{}{path}", self.base, self.chain_id);
        let text = http::send(
            &self.http,
            &self.limit,
            Call {
                url: &url,
                query,
                headers: &[
                    ("authorization", format!("Bearer {}", self.key)),
                    ("accept", "application/json".into()),
                ],
                body: None,
                timeout: None,
            },
        )?;
        serde_json::from_str(&text).map_err(|e| body_err(e.to_string()))
    }

    /// The address 1inch asks allowances for.
    pub fn spender(&self) -> Result<Address, ProviderError> {
        let v = self.get("/approve/spender", &[])?;
        v["address"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| body_err(format!("no address in {v}")))
    }

    /// A swap of `amount` base units of `src` for `dst` from `from`, within `slippage_pct` percent.
    pub fn swap(
        &self,
        src: Address,
        dst: Address,
        amount: U256,
        from: Address,
        slippage_pct: &str,
    ) -> Result<SwapTx, ProviderError> {
        let v = self.get(
            "/swap",
            &[
                ("src", format!("{src:#x}")),
                ("dst", format!("{dst:#x}")),
                ("amount", amount.to_string()),
                ("from", format!("{from:#x}")),
                ("origin", format!("{from:#x}")),
                ("slippage", slippage_pct.to_string()),
                // our own simulation decides; the API's needs the allowance in place already
                ("disableEstimate", "true".into()),
            ],
        )?;
        let tx = &v["tx"];
        let num = |x: &serde_json::Value, what: &str| -> Result<U256, ProviderError> {
            let s = x
                .as_str()
                .map(str::to_string)
                .or_else(|| x.as_u64().map(|n| n.to_string()))
                .ok_or_else(|| body_err(format!("no {what}")))?;
            s.parse::<U256>()
                .map_err(|_| body_err(format!("{what} {s:?} is not a number")))
        };
        Ok(SwapTx {
            to: tx["to"]
                .as_str()
                .and_then(|a| a.parse().ok())
                .ok_or_else(|| body_err("no tx.to".into()))?,
            data: tx["data"]
                .as_str()
                .and_then(|d| alloy::hex::decode(d.trim_start_matches("0x")).ok())
                .map(Bytes::from)
                .ok_or_else(|| body_err("no tx.data".into()))?,
            value: num(&tx["value"], "tx.value")?,
            dst_amount: num(&v["dstAmount"], "dstAmount")?,
        })
    }
}

pub struct OneInchRouter {
    api: OneInch,
    quoter: Quoter,
}

pub type OneInchVenue = OnchainVenue<OneInchRouter>;

impl OnchainVenue<OneInchRouter> {
    /// Connects to the node and the API (`ONEINCH_BASE_URL`, else the venue file's `oneinch_base_url`, else
    /// 1inch's own), and checks that 1inch's spender is the pinned router before anything is traded.
    pub fn connect(
        cfg: VenueConfig,
        rpc_url: &str,
        signer: PrivateKeySigner,
    ) -> Result<Self, VenueError> {
        Self::connect_with(cfg, rpc_url, signer.into())
    }

    /// The same with a local key; the browser wallet is refused: a 1inch swap carries no deadline of its
    /// own, so an approval left open in a wallet could land at any later price.
    pub fn connect_with(
        cfg: VenueConfig,
        rpc_url: &str,
        signing: Signing,
    ) -> Result<Self, VenueError> {
        if matches!(signing, Signing::Browser(_)) {
            return Err(VenueError::Setup(
                "--signer browser is for uniswap-v3 and pancakeswap-v3: a 1inch swap has no deadline, so an \
                 approval left open in a wallet could land at any later price; use a local key for 1inch"
                    .into(),
            ));
        }
        let base = std::env::var("ONEINCH_BASE_URL")
            .ok()
            .or(cfg.oneinch_base_url.clone())
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
        let router = OneInchRouter {
            api: OneInch::from_env(&base, cfg.chain_id)?,
            quoter: Quoter::from_config(&cfg)?,
        };
        OnchainVenue::new(Account::connect(cfg, rpc_url, signing)?, router)
    }
}

impl Router for OneInchRouter {
    fn name(&self) -> &'static str {
        "1inch"
    }

    /// 1inch's router has no `factory()`: its spender is checked against the pin instead.
    fn verify(&mut self, acct: &Account) -> Result<(), VenueError> {
        let spender = self
            .api
            .spender()
            .map_err(|e| VenueError::Setup(e.to_string()))?;
        if spender != acct.router {
            return Err(VenueError::Setup(format!(
                "1inch names {spender} as its spender, not the pinned router {}",
                acct.router
            )));
        }
        Ok(())
    }

    /// The route for a plan, accepted only if it goes to the pinned router and sends no native value (the
    /// input is always a token here).
    fn prepare(&mut self, acct: &Account, plan: &Plan) -> Result<Prepared, Refused> {
        let pct = (plan.slippage_bps / Decimal::from(100))
            .normalize()
            .to_string();
        let s = self
            .api
            .swap(
                plan.token_in,
                plan.token_out,
                plan.amount_in,
                acct.address,
                &pct,
            )
            .map_err(|e| Refused(e.to_string()))?;
        if s.to != acct.router {
            return Err(Refused(format!(
                "1inch returned a transaction to {}, not the allow-listed router {}; refused",
                s.to, acct.router
            )));
        }
        if !s.value.is_zero() {
            return Err(Refused(format!(
                "1inch asked to send {} wei of native value with a token swap; refused",
                s.value
            )));
        }
        let tx = TransactionRequest::default()
            .with_from(acct.address)
            .with_to(acct.router)
            .with_input(s.data)
            .with_value(U256::ZERO);
        Ok(Prepared {
            tx,
            fee_tier: 0,
            quoted_out: s.dst_amount,
            min_out: U256::ZERO,
            deadline: 0,
        })
    }

    fn native_price(&self, acct: &Account) -> Option<Decimal> {
        self.quoter.native_price(acct)
    }
}
