//! `hypeflow ingest prices` against fake CoinGecko and DexScreener servers speaking their documented formats:
//! CoinGecko answers, then rate-limits (429 with `retry-after` and its documented body), then fails (500), then
//! goes stale for one token; DexScreener takes over in the same round each time, from the token's most liquid
//! pair, and CoinGecko is not called again before its `retry-after` is over.

use crate::common;

use common::bin;
use common::fake_http::{FakeHttp, Reply};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const KEY: &str = "CG-fakekey-123456";
const PEPE: &str = "0x6982508145454ce325ddbe47a25d4ec3d2311933";
const WETH: &str = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2";

fn coingecko() -> FakeHttp {
    let calls = Arc::new(AtomicUsize::new(0));
    FakeHttp::start(move |req| {
        if req.path != "/api/v3/simple/price" {
            return Reply::json(404, serde_json::json!({"error": "Not found"}));
        }
        let now = chrono::Utc::now().timestamp();
        match calls.fetch_add(1, Ordering::SeqCst) {
            0 => Reply::json(200, serde_json::json!({
                "pepe": {"usd": 0.00001234, "last_updated_at": now},
                "weth": {"usd": 3012.5, "last_updated_at": now}})),
            1 => Reply::json(429, serde_json::json!({"status": {"error_code": 429,
                "error_message": "You've exceeded the Rate Limit. Please visit https://www.coingecko.com/en/api/pricing to subscribe to our API plans for higher rate limits."}}))
                .with_header("retry-after", "1"),
            2 => Reply::json(500, serde_json::json!({"error": "Internal Server Error"})),
            // WETH's quote stopped moving ten minutes ago: stale
            _ => Reply::json(200, serde_json::json!({
                "pepe": {"usd": 0.00001301, "last_updated_at": now},
                "weth": {"usd": 2999.0, "last_updated_at": now - 600}})),
        }
    })
}

fn dexscreener() -> FakeHttp {
    FakeHttp::start(|req| {
        if !req.path.starts_with("/tokens/v1/ethereum/") {
            return Reply::json(404, serde_json::json!({}));
        }
        let pair = |addr: &str, price: &str, liq: f64| {
            serde_json::json!({"chainId": "ethereum", "dexId": "uniswap", "pairAddress": "0xpair",
                "baseToken": {"address": addr, "name": "t", "symbol": "T"},
                "quoteToken": {"address": WETH, "symbol": "WETH"},
                "priceNative": "0.0000000041", "priceUsd": price, "liquidity": {"usd": liq, "base": 1, "quote": 1},
                "txns": {"m5": {"buys": 1, "sells": 2}}, "pairCreatedAt": 1681000000000u64, "unknown": true})
        };
        Reply::json(
            200,
            serde_json::json!([
                pair(
                    "0x6982508145454Ce325dDbE47a25d4ec3d2311933",
                    "0.00001111",
                    5_000.0
                ),
                pair(PEPE, "0.00001250", 9_000_000.0),
                pair(WETH, "3010.10", 50_000_000.0),
            ]),
        )
    })
}

#[test]
fn dexscreener_takes_over_within_the_round_and_coingecko_comes_back_after_retry_after() {
    let cg = coingecko();
    let dex = dexscreener();
    let dir = tempfile::tempdir().unwrap();
    let feeds = dir.path().join("prices.toml");
    std::fs::write(
        &feeds,
        format!(
            r#"interval = "400ms"
stale_after = "2m"
priority = ["coingecko", "dexscreener"]
[coingecko]
plan = "demo"
[[tokens]]
symbol = "PEPE"
coingecko_id = "pepe"
address = "{PEPE}"
dexscreener_chain = "ethereum"
[[tokens]]
symbol = "WETH"
coingecko_id = "weth"
address = "{WETH}"
dexscreener_chain = "ethereum"
"#
        ),
    )
    .unwrap();
    let out = dir.path().join("ticks.jsonl");
    let o = bin()
        .args(["ingest", "prices", "--max-rounds", "9", "--feeds"])
        .arg(&feeds)
        .args(["--out", &format!("jsonl:{}", out.display())])
        .env("COINGECKO_BASE_URL", format!("{}/api/v3", cg.url))
        .env("DEXSCREENER_BASE_URL", &dex.url)
        .env("COINGECKO_API_KEY", KEY)
        .env("HYPEFLOW_LOG", "debug")
        .output()
        .unwrap();
    common::assert_ok_without_secret(&o, KEY);

    let ticks: Vec<hypeflow::model::PriceTick> = common::read_jsonl(&out);
    let row = |i: usize| (ticks[i].token.as_str(), ticks[i].source.as_str());
    assert_eq!(
        [row(0), row(1)],
        [("PEPE", "coingecko"), ("WETH", "coingecko")]
    );
    assert_eq!(ticks[0].price.to_string(), "0.00001234");
    // the 429 round: DexScreener at once, from the most liquid PEPE pair
    assert_eq!(
        [row(2), row(3)],
        [("PEPE", "dexscreener"), ("WETH", "dexscreener")]
    );
    assert_eq!(ticks[2].price.to_string(), "0.00001250");
    // CoinGecko recovers for PEPE; WETH's stale quote is never used
    assert!(ticks[4..].iter().any(|t| t.token == "PEPE"
        && t.source == "coingecko"
        && t.price.to_string() == "0.00001301"));
    assert!(ticks[2..]
        .iter()
        .filter(|t| t.token == "WETH")
        .all(|t| t.source == "dexscreener"));
    for tok in ["PEPE", "WETH"] {
        let times: Vec<i64> = ticks
            .iter()
            .filter(|t| t.token == tok)
            .map(|t| t.event_time)
            .collect();
        assert!(
            times.windows(2).all(|w| w[0] < w[1]),
            "{tok} ticks go back in time: {times:?}"
        );
    }

    let calls = cg.requests_to("/api/v3/simple/price");
    assert!(calls.len() >= 4, "{} calls", calls.len());
    assert!(
        calls[2].at.duration_since(calls[1].at) >= Duration::from_millis(1000),
        "called again {:?} after a 429 that said retry-after: 1",
        calls[2].at.duration_since(calls[1].at)
    );
    assert_eq!(calls[0].header("x-cg-demo-api-key"), Some(KEY));
    assert_eq!(calls[0].param("ids"), Some("pepe,weth"));
    assert_eq!(calls[0].param("vs_currencies"), Some("usd"));
    assert!(
        calls.iter().all(|c| c.param("x_cg_demo_api_key").is_none()),
        "the key goes in a header only"
    );
}

/// The on-chain endpoints: token price by address (numbers as strings) and pool OHLCV (newest first), as
/// documented, through `ingest ohlcv` into a bars CSV that the backtest reads.
#[test]
fn onchain_token_prices_and_pool_ohlcv_are_read_as_documented() {
    let fake = FakeHttp::start(|req| {
        if req.path.ends_with("/ohlcv/minute") {
            return Reply::json(
                200,
                serde_json::json!({"data": {"id": "c2728da2", "type": "ohlcv_request_response",
                "attributes": {"ohlcv_list": [
                    [1779927300, 1.00027690571219, 1.003, 0.999, 1.001, 120.5],
                    [1779926400, 1.00208165944741, 1.00257871811779, 0.985925654401274, 1.00027690571219, 3481.679733097695]]}},
                "meta": {"base": {"symbol": "USDT"}, "quote": {"symbol": "WETH"}}}),
            );
        }
        if req
            .path
            .starts_with("/api/v3/onchain/simple/networks/eth/token_price/")
        {
            return Reply::json(
                200,
                serde_json::json!({"data": {"id": "49dd0b90", "type": "simple_token_price",
                "attributes": {"token_prices": {WETH: "2084.57379936447"},
                    "h24_price_change_percentage": {WETH: "-1.88"},
                    "last_trade_timestamp": {WETH: "1779882383"}}}}),
            );
        }
        Reply::json(404, serde_json::json!({}))
    });
    let cg = hypeflow::ingest::coingecko::CoinGecko::new(
        &format!("{}/api/v3", fake.url),
        hypeflow::ingest::coingecko::Plan::Pro,
        Some(KEY.into()),
    )
    .unwrap();
    let q = cg
        .onchain_prices("eth", &["0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"])
        .unwrap();
    let weth = &q[WETH];
    assert_eq!(weth.price.to_string(), "2084.57379936447");
    assert_eq!(weth.observed_at, 1_779_882_383_000);
    assert_eq!(
        fake.requests.lock().unwrap()[0].header("x-cg-pro-api-key"),
        Some(KEY)
    );

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("USDT.csv");
    let o = bin()
        .args([
            "ingest",
            "ohlcv",
            "--network",
            "eth",
            "--pool",
            "0xpool",
            "--token",
            "USDT",
        ])
        .args(["--timeframe", "minute", "--aggregate", "15", "--out"])
        .arg(&out)
        .env("COINGECKO_BASE_URL", format!("{}/api/v3", fake.url))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let csv = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "token,timestamp,open,high,low,close,volume");
    assert_eq!(
        lines[1],
        "USDT,2026-05-28T00:00:00.000Z,1.00208165944741,1.00257871811779,0.985925654401274,1.00027690571219,3481.679733097695"
    );
    assert!(lines[2].starts_with("USDT,2026-05-28T00:15:00.000Z,1.00027690571219,"));
    let req = &fake.requests_to("/api/v3/onchain/networks/eth/pools/0xpool/ohlcv/minute")[0];
    assert_eq!(req.param("aggregate"), Some("15"));
}

#[test]
fn geckoterminal_is_the_same_on_chain_api_without_the_prefix_and_without_a_key() {
    let fake = FakeHttp::start(|req| {
        if req.path == "/api/v2/networks/bsc/pools/0xpool/ohlcv/hour" {
            return Reply::json(
                200,
                serde_json::json!({"data": {"id": "c2728da2", "type": "ohlcv_request_response",
                "attributes": {"ohlcv_list": [
                    [1779930000, 2.0, 2.2, 1.9, 2.1, 50.0],
                    [1779926400, 1.8, 2.05, 1.75, 2.0, 75.5]]}}}),
            );
        }
        if req
            .path
            .starts_with("/api/v2/simple/networks/eth/token_price/")
        {
            return Reply::json(
                200,
                serde_json::json!({"data": {"id": "49dd0b90", "type": "simple_token_price",
                "attributes": {"token_prices": {WETH: "2084.5"},
                    "last_trade_timestamp": {WETH: "1779882383"}}}}),
            );
        }
        Reply::json(
            404,
            serde_json::json!({"errors": [{"status": "404", "title": "Not Found"}]}),
        )
    });
    let base = format!("{}/api/v2", fake.url);
    let gt = hypeflow::ingest::coingecko::CoinGecko::new(
        &base,
        hypeflow::ingest::coingecko::Plan::GeckoTerminal,
        Some(KEY.into()),
    )
    .unwrap();
    let q = gt.onchain_prices("eth", &[WETH]).unwrap();
    assert_eq!(q[WETH].price.to_string(), "2084.5");
    // coin ids are CoinGecko's alone: a clear refusal, and nothing sent
    let e = gt.simple_prices(&["bitcoin"]).unwrap_err().to_string();
    assert!(
        e.contains("GeckoTerminal serves on-chain prices only"),
        "{e}"
    );

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("BNBX.csv");
    let o = bin()
        .args([
            "ingest",
            "ohlcv",
            "--plan",
            "geckoterminal",
            "--network",
            "bsc",
        ])
        .args(["--pool", "0xpool", "--token", "BNBX", "--timeframe", "hour"])
        .args(["--aggregate", "1", "--out"])
        .arg(&out)
        .env("COINGECKO_BASE_URL", &base)
        .env("COINGECKO_API_KEY", KEY)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let csv = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[1..],
        [
            "BNBX,2026-05-28T00:00:00.000Z,1.8,2.05,1.75,2.0,75.5",
            "BNBX,2026-05-28T01:00:00.000Z,2.0,2.2,1.9,2.1,50.0"
        ]
    );
    let requests = fake.requests.lock().unwrap();
    assert_eq!(requests.len(), 2, "the refused coin-id call sent nothing");
    for r in requests.iter() {
        assert_eq!(
            r.header("x-cg-demo-api-key"),
            None,
            "no key goes to GeckoTerminal"
        );
        assert_eq!(r.header("x-cg-pro-api-key"), None);
    }
    assert_eq!(requests[1].param("aggregate"), Some("1"));
}
