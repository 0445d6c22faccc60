//! The 1inch venue against a fake Classic Swap API v6.1 whose `/swap` answers with calldata for a router
//! stand-in on the local node (Uniswap's SwapRouter02, pinned as the "1inch router"): the swap lands through the
//! same journal/sign/confirm path; a route to any other address, or a spender that is not the pinned router, is
//! refused before anything is signed.

use crate::common;

use alloy::primitives::{aliases::U24, Address, Bytes, U160, U256};
use alloy::sol_types::SolCall;
use common::chain::{Market, TRADER_KEY};
use common::fake_http::{FakeHttp, Reply};
use hypeflow::chain::contracts::{IQuoterV2, ISwapRouter02};
use hypeflow::execution::journal::Journal;
use hypeflow::execution::onchain::units::from_base_units;
use hypeflow::execution::onchain::{OneInchVenue, VenueConfig};
use hypeflow::execution::venue::Venue;
use hypeflow::model::{FillStatus, OrderIntent, Protection, Side};
use rust_decimal::Decimal;
use std::sync::{Arc, Mutex};

const KEY: &str = "1inch-fake-key-31337";

/// `route_to`: where the fake's transactions go (the router, or somewhere else to test the refusal).
fn fake_1inch(m: &Market, spender: Address, route_to: Arc<Mutex<Address>>) -> FakeHttp {
    let (url, quoter) = (m.anvil.url.clone(), m.uni.quoter);
    FakeHttp::start(move |req| {
        if req.header("authorization") != Some(&format!("Bearer {KEY}")) {
            return Reply::json(
                401,
                serde_json::json!({"statusCode": 401, "description": "Unauthorized"}),
            );
        }
        if req.path == "/swap/v6.1/31337/approve/spender" {
            return Reply::json(200, serde_json::json!({"address": format!("{spender:#x}")}));
        }
        if req.path != "/swap/v6.1/31337/swap" {
            return Reply::json(404, serde_json::json!({"description": "Not found"}));
        }
        let p = |k: &str| req.param(k).unwrap_or_default().to_string();
        let (src, dst): (Address, Address) = (p("src").parse().unwrap(), p("dst").parse().unwrap());
        let amount: U256 = p("amount").parse().unwrap();
        let from: Address = p("from").parse().unwrap();
        let slippage: f64 = p("slippage").parse().unwrap();
        // the stand-in's route: the 0.3% pool, quoted on chain, minimum from the asked slippage
        let (node, rt) = hypeflow::chain::read_provider(&url).unwrap();
        let out = rt
            .block_on(async {
                IQuoterV2::new(quoter, &node)
                    .quoteExactInputSingle(IQuoterV2::QuoteExactInputSingleParams {
                        tokenIn: src,
                        tokenOut: dst,
                        amountIn: amount,
                        fee: U24::from(3000),
                        sqrtPriceLimitX96: U160::ZERO,
                    })
                    .call()
                    .await
            })
            .unwrap()
            .amountOut;
        let min = out * U256::from((10_000.0 - slippage * 100.0) as u64) / U256::from(10_000u64);
        let inner = ISwapRouter02::exactInputSingleCall {
            params: ISwapRouter02::ExactInputSingleParams {
                tokenIn: src,
                tokenOut: dst,
                fee: U24::from(3000),
                recipient: from,
                amountIn: amount,
                amountOutMinimum: min,
                sqrtPriceLimitX96: U160::ZERO,
            },
        }
        .abi_encode();
        let data = ISwapRouter02::multicallCall {
            deadline: U256::from(u64::MAX),
            data: vec![Bytes::from(inner)],
        }
        .abi_encode();
        let to = *route_to.lock().unwrap();
        Reply::json(
            200,
            serde_json::json!({
            "dstAmount": out.to_string(),
            "tx": {"from": format!("{from:#x}"), "to": format!("{to:#x}"), "data": format!("0x{}", alloy::hex::encode(data)),
                   "value": "0", "gas": 250000, "gasPrice": "1000000000"}}),
        )
    })
}

fn oneinch_toml(m: &Market, fake: &FakeHttp) -> String {
    m.venue_toml("").replace(
        "venue = \"uniswap-v3\"",
        &format!("venue = \"1inch\"\noneinch_base_url = \"{}\"", fake.url),
    )
}

fn buy(id: &str) -> OrderIntent {
    OrderIntent {
        id: id.into(),
        pipeline_id: "t".into(),
        token: "TKA".into(),
        side: Side::Buy,
        quantity: None,
        notional: Some(Decimal::from(100)),
        reference_price: Decimal::new(25, 1),
        max_slippage_bps: Decimal::from(50),
        protection: Protection::default(),
        reason: "t".into(),
        decision_time: chrono::Utc::now().timestamp_millis(),
        inputs_version: "v".into(),
        triggered: None,
    }
}

#[test]
fn a_1inch_route_to_the_pinned_router_lands_and_any_other_is_refused() {
    // this test binary has one test: nothing else reads the environment meanwhile
    std::env::set_var("ONEINCH_API_KEY", KEY);
    let m = Market::start();
    let route_to = Arc::new(Mutex::new(m.uni.router));
    let fake = fake_1inch(&m, m.uni.router, route_to.clone());
    let cfg = VenueConfig::parse(&oneinch_toml(&m, &fake), "venue").unwrap();
    let mut v = OneInchVenue::connect(cfg, &m.anvil.url, TRADER_KEY.parse().unwrap()).unwrap();
    assert_eq!(v.name(), "1inch");
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("j.sqlite")).unwrap();
    let tka0 = m.balance(m.tka, m.trader);

    let i = buy("route-ok");
    journal.claim(&i, "t", 0).unwrap();
    let f = v.execute(&i, &journal).unwrap();
    assert_eq!(f.status, FillStatus::Filled, "{}", f.reason);
    assert_eq!(f.venue, "1inch");
    assert_eq!(
        f.quantity,
        from_base_units(m.balance(m.tka, m.trader) - tka0, 18).unwrap()
    );
    assert_eq!(
        journal.txs_of("route-ok").unwrap().len(),
        1,
        "journaled like any swap"
    );
    let swap = &fake.requests_to("/swap/v6.1/31337/swap")[0];
    assert_eq!(swap.param("slippage"), Some("0.5"));
    assert_eq!(swap.param("origin"), swap.param("from"));

    // the API turns hostile: its transaction goes elsewhere
    *route_to.lock().unwrap() = m.usd;
    let nonce = m.nonce(m.trader);
    let i = buy("route-bad");
    journal.claim(&i, "t", 0).unwrap();
    let f = v.execute(&i, &journal).unwrap();
    assert_eq!(f.status, FillStatus::Rejected);
    assert!(
        f.reason.contains("not the allow-listed router"),
        "{}",
        f.reason
    );
    assert_eq!(m.nonce(m.trader), nonce, "nothing signed, nothing sent");

    // a spender that is not the pinned router stops the start
    let other = fake_1inch(&m, m.usd, Arc::new(Mutex::new(m.uni.router)));
    let cfg = VenueConfig::parse(&oneinch_toml(&m, &other), "venue").unwrap();
    let e = OneInchVenue::connect(cfg, &m.anvil.url, TRADER_KEY.parse().unwrap())
        .err()
        .unwrap();
    assert!(e.to_string().contains("spender"), "{e}");
}
