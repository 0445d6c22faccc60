//! 1inch Classic Swap API v6.1 (`/approve/spender`, `/swap`), bearer key from `ONEINCH_API_KEY`. Nothing it
//! returns is trusted: the spender and the transaction's `to` must be the allow-listed router, the value is
//! capped, and the transaction is simulated from our account, given our own nonce and fees, and journaled like
//! any other swap.

use crate::ingest::http::{self, Call, ProviderError};
use crate::ingest::rate_limit::RateLimit;
use alloy::primitives::{Address, Bytes, U256};
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
    pub fn from_env(base: &str, chain_id: u64) -> Result<Self, String> {
        let key = std::env::var("ONEINCH_API_KEY")
            .ok()
            .filter(|k| !k.trim().is_empty())
            .ok_or("ONEINCH_API_KEY is not set: export the 1inch API key (read from the environment only)")?;
        Ok(OneInch {
            base: base.trim_end_matches('/').to_string(),
            chain_id,
            key,
            http: http::client(Duration::from_secs(10))?,
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
