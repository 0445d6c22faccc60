//! On-chain pool prices against a real EVM: anvil with Uniswap V3 deployed from Uniswap's published artifacts
//! (`scripts/evm-setup.sh` fetches both), pools created at known prices, and `ingest prices` reading `slot0` at
//! the chain head: a token against a USD stablecoin, WETH against it, and a token priced through WETH. When the
//! node goes away, the next provider in the priority takes over in the same round.

use crate::common;

use common::bin;
use common::fake_http::{FakeHttp, Reply};
use hypeflow::chain::devnet::{evm_dir, Anvil, Devnet, DEV_KEYS};
use hypeflow::model::PriceTick;
use rust_decimal::Decimal;
use std::str::FromStr;

fn ticks(path: &std::path::Path) -> Vec<PriceTick> {
    common::read_jsonl(path)
}

fn close(a: Decimal, b: &str) -> bool {
    let b = Decimal::from_str(b).unwrap();
    ((a - b) / b).abs() < Decimal::new(1, 9)
}

#[test]
fn pool_prices_are_read_from_slot0_at_the_head_and_fall_back_when_the_node_is_gone() {
    let dir = evm_dir();
    let anvil = Anvil::start(&dir).expect("anvil (run scripts/evm-setup.sh)");
    let dev = Devnet::connect(&anvil.url, DEV_KEYS[0], &dir).unwrap();
    let uni = dev.deploy_uniswap().unwrap();
    let usd = dev.deploy_token(1_000_000_000, false).unwrap();
    let tka = dev.deploy_token(1_000_000_000, false).unwrap();
    let tkb = dev.deploy_token(1_000_000_000, false).unwrap();
    dev.wrap(&uni, 100).unwrap();
    // 2.5 USD per TKA; 2,000 USD per WETH; 0.001 WETH per TKB (so 2 USD)
    let pool_a = dev
        .create_pool(&uni, tka, usd, 3000, 5, 2, 100_000)
        .unwrap();
    let pool_w = dev
        .create_pool(&uni, uni.weth, usd, 500, 2000, 1, 20)
        .unwrap();
    let pool_b = dev
        .create_pool(&uni, tkb, uni.weth, 3000, 1, 1000, 10_000)
        .unwrap();

    // the fallback: DexScreener's format, different prices so the source is visible
    let dex = FakeHttp::start(move |_| {
        Reply::json(
            200,
            serde_json::json!([
                {"chainId": "ethereum", "baseToken": {"address": format!("{tka:#x}")}, "priceUsd": "2.4", "liquidity": {"usd": 1000.0}}
            ]),
        )
    });
    let work = tempfile::tempdir().unwrap();
    let feeds = work.path().join("prices.toml");
    std::fs::write(
        &feeds,
        format!(
            r#"interval = "200ms"
stale_after = "1h"
priority = ["onchain", "dexscreener"]
[[tokens]]
symbol = "TKA"
address = "{tka:#x}"
pool = "{pool_a:#x}"
dexscreener_chain = "ethereum"
[[tokens]]
symbol = "WETH"
address = "{weth:#x}"
pool = "{pool_w:#x}"
[[tokens]]
symbol = "TKB"
address = "{tkb:#x}"
pool = "{pool_b:#x}"
pool_quote = "WETH"
"#,
            weth = uni.weth
        ),
    )
    .unwrap();
    let out = work.path().join("ticks.jsonl");
    let run = |rounds: &str, rpc: &str| {
        let o = bin()
            .args(["ingest", "prices", "--max-rounds", rounds, "--feeds"])
            .arg(&feeds)
            .args([
                "--out",
                &format!("jsonl:{}", out.display()),
                "--rpc-url",
                rpc,
            ])
            .env("DEXSCREENER_BASE_URL", &dex.url)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    run("1", &anvil.url);
    let t = ticks(&out);
    let got: Vec<(&str, &str)> = t
        .iter()
        .map(|t| (t.token.as_str(), t.source.as_str()))
        .collect();
    assert_eq!(
        got,
        [("TKA", "onchain"), ("WETH", "onchain"), ("TKB", "onchain")]
    );
    assert!(close(t[0].price, "2.5"), "{}", t[0].price);
    assert!(close(t[1].price, "2000"), "{}", t[1].price);
    assert!(close(t[2].price, "2"), "{}", t[2].price);
    // stamped with the head block's time, which is near the wall clock on a fresh anvil
    let head_ms = t[0].event_time;
    assert!((chrono::Utc::now().timestamp_millis() - head_ms).abs() < 120_000);

    // the node is gone: DexScreener prices what it can in the same round; the others are unpriced
    let url = anvil.url.clone();
    drop(anvil);
    std::fs::remove_file(&out).unwrap();
    run("1", &url);
    let t = ticks(&out);
    let got: Vec<(&str, &str, String)> = t
        .iter()
        .map(|t| (t.token.as_str(), t.source.as_str(), t.price.to_string()))
        .collect();
    assert_eq!(got, [("TKA", "dexscreener", "2.4".to_string())]);
}
