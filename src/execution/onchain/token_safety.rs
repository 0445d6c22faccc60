//! Before the first buy of a token: a simulated round trip at the chain head (`eth_simulateV1`, state carried
//! from call to call, nothing sent): approve and buy at the intended size, transfer a tenth of it to a fresh
//! address, approve and sell half back. Buy, transfer and sell taxes are measured from balances and returned
//! amounts; a sell that reverts is a honeypot. A token over the tax limit or that cannot be sold is refused.

use crate::chain::contracts::{ISwapRouter02, IERC20};
use crate::execution::venue::Refused;
use alloy::primitives::{aliases::U24, Address, Bytes, U160, U256};
use alloy::sol_types::SolCall;
use rust_decimal::Decimal;

/// What the round trip measured, in basis points.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub buy_tax_bps: Decimal,
    pub transfer_tax_bps: Decimal,
    pub sell_tax_bps: Decimal,
}

/// The calls of the round trip, in order, all from `account`.
pub struct RoundTrip {
    pub calls: Vec<(Address, Bytes)>,
    /// Native value sent with the buy (call 2) when the quote is paid in the native coin.
    pub buy_value: U256,
    pub quoted_buy: U256,
    pub transfer: U256,
    pub sell: U256,
    pub quoted_sell: U256,
}

#[allow(clippy::too_many_arguments)]
pub fn round_trip(
    account: Address,
    router: Address,
    quote: Address,
    token: Address,
    fee: u32,
    amount_in: U256,
    quoted_buy: U256,
    quoted_sell_of_half: U256,
    deadline: u64,
    native_in: bool,
) -> RoundTrip {
    let probe = Address::from([0x5a; 20]);
    let swap = |tin: Address, tout: Address, amt: U256| {
        let inner = ISwapRouter02::exactInputSingleCall {
            params: ISwapRouter02::ExactInputSingleParams {
                tokenIn: tin,
                tokenOut: tout,
                fee: U24::from(fee),
                recipient: account,
                amountIn: amt,
                amountOutMinimum: U256::ZERO,
                sqrtPriceLimitX96: U160::ZERO,
            },
        }
        .abi_encode();
        Bytes::from(
            ISwapRouter02::multicallCall {
                deadline: U256::from(deadline),
                data: vec![Bytes::from(inner)],
            }
            .abi_encode(),
        )
    };
    let approve = |amt: U256| {
        Bytes::from(
            IERC20::approveCall {
                spender: router,
                amount: amt,
            }
            .abi_encode(),
        )
    };
    let balance = |who: Address| Bytes::from(IERC20::balanceOfCall { owner: who }.abi_encode());
    let transfer = quoted_buy / U256::from(10u8);
    let sell = quoted_buy / U256::from(2u8);
    RoundTrip {
        calls: vec![
            (token, balance(account)),               // 0: before
            (quote, approve(amount_in)),             // 1
            (router, swap(quote, token, amount_in)), // 2: buy
            (token, balance(account)),               // 3: after the buy
            (
                token,
                Bytes::from(
                    IERC20::transferCall {
                        to: probe,
                        amount: transfer,
                    }
                    .abi_encode(),
                ),
            ), // 4
            (token, balance(probe)),                 // 5: what arrived
            (token, approve(sell)),                  // 6
            (router, swap(token, quote, sell)),      // 7: sell
        ],
        buy_value: if native_in { amount_in } else { U256::ZERO },
        quoted_buy,
        transfer,
        sell,
        quoted_sell: quoted_sell_of_half,
    }
}

fn word(data: &str) -> Option<U256> {
    let hex = data.trim_start_matches("0x");
    let bytes = alloy::hex::decode(hex).ok()?;
    if bytes.len() < 32 {
        return None;
    }
    Some(U256::from_be_slice(&bytes[bytes.len() - 32..]))
}

fn bps_lost(expected: U256, got: U256) -> Decimal {
    if expected.is_zero() || got >= expected {
        return Decimal::ZERO;
    }
    let lost = (expected - got) * U256::from(10_000u64) / expected;
    Decimal::from(u64::try_from(lost).unwrap_or(10_000))
}

/// Reads `eth_simulateV1`'s answer for the round trip: the taxes, or why the token is unsellable.
pub fn judge(rt: &RoundTrip, result: &serde_json::Value) -> Result<Report, Refused> {
    let calls = result[0]["calls"].as_array().ok_or_else(|| {
        Refused(format!(
            "the node's simulation answer has no calls: {result}"
        ))
    })?;
    if calls.len() != rt.calls.len() {
        return Err(Refused(format!(
            "the simulation ran {} of {} calls",
            calls.len(),
            rt.calls.len()
        )));
    }
    let ok = |i: usize| calls[i]["status"].as_str() == Some("0x1");
    let data = |i: usize| calls[i]["returnData"].as_str().unwrap_or("0x");
    for (i, what) in [(1, "approving the buy"), (2, "the buy")] {
        if !ok(i) {
            return Err(Refused(format!(
                "{what} fails in simulation: {}",
                calls[i]["error"]
            )));
        }
    }
    let before = word(data(0)).unwrap_or_default();
    let after = word(data(3)).unwrap_or_default();
    let buy_tax_bps = bps_lost(rt.quoted_buy, after.saturating_sub(before));
    if !ok(4) {
        return Err(Refused(format!(
            "a transfer of the token reverts: {}",
            calls[4]["error"]
        )));
    }
    let transfer_tax_bps = bps_lost(rt.transfer, word(data(5)).unwrap_or_default());
    if !ok(6) || !ok(7) {
        return Err(Refused(format!(
            "honeypot: selling the token back reverts ({}); measured buy tax {buy_tax_bps} bps, transfer tax {transfer_tax_bps} bps",
            if ok(6) {
                &calls[7]["error"]
            } else {
                &calls[6]["error"]
            }
        )));
    }
    // multicall returns bytes[] holding exactInputSingle's amountOut: its last word
    let sold_for = word(data(7)).unwrap_or_default();
    let sell_tax_bps = bps_lost(rt.quoted_sell, sold_for);
    Ok(Report {
        buy_tax_bps,
        transfer_tax_bps,
        sell_tax_bps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word_hex(v: u64) -> String {
        format!("0x{:064x}", v)
    }

    fn answer(statuses: [&str; 8], data: [String; 8]) -> serde_json::Value {
        let calls: Vec<serde_json::Value> = statuses
            .iter()
            .zip(data.iter())
            .map(|(s, d)| serde_json::json!({"status": s, "returnData": d, "gasUsed": "0x1", "logs": []}))
            .collect();
        serde_json::json!([{ "calls": calls }])
    }

    fn rt() -> RoundTrip {
        round_trip(
            Address::ZERO,
            Address::ZERO,
            Address::ZERO,
            Address::ZERO,
            3000,
            U256::from(1000u64),
            U256::from(400u64),
            U256::from(500u64),
            0,
            false,
        )
    }

    #[test]
    fn taxes_and_honeypots_are_read_from_the_simulation() {
        let ok = ["0x1"; 8];
        let clean = answer(
            ok,
            [
                word_hex(0),
                word_hex(1),
                word_hex(0),
                word_hex(400),
                word_hex(1),
                word_hex(40),
                word_hex(1),
                word_hex(500),
            ],
        );
        let r = judge(&rt(), &clean).unwrap();
        assert_eq!(
            (r.buy_tax_bps, r.transfer_tax_bps, r.sell_tax_bps),
            (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO)
        );
        // 5% on buys, 10% on transfers, 20% on sells
        let taxed = answer(
            ok,
            [
                word_hex(0),
                word_hex(1),
                word_hex(0),
                word_hex(380),
                word_hex(1),
                word_hex(36),
                word_hex(1),
                word_hex(400),
            ],
        );
        let r = judge(&rt(), &taxed).unwrap();
        assert_eq!(
            (r.buy_tax_bps, r.transfer_tax_bps, r.sell_tax_bps),
            (Decimal::from(500), Decimal::from(1000), Decimal::from(2000))
        );
        let mut s = ok;
        s[7] = "0x0";
        let honeypot = answer(s, std::array::from_fn(|_| word_hex(1)));
        assert!(judge(&rt(), &honeypot).unwrap_err().0.contains("honeypot"));
    }
}
