//! The Uniswap V3 venue against a real EVM (anvil, Uniswap V3 from its published artifacts): a buy and a sell
//! land with the amounts the chain says; a minimum that cannot be met and a past deadline are caught by
//! simulation and nothing is sent; the kill switch and the limits refuse before anything is signed; every step
//! is in the journal.

use crate::common;

use alloy::primitives::U256;
use common::chain::{Market, TRADER_KEY};
use hypeflow::execution::journal::Journal;
use hypeflow::execution::onchain::units::from_base_units;
use hypeflow::execution::onchain::{UniswapV3Venue, VenueConfig};
use hypeflow::execution::venue::Venue;
use hypeflow::model::{FillStatus, OrderIntent, Protection, Side};
use rust_decimal::Decimal;
use std::str::FromStr;

fn intent(id: &str, side: Side, notional: Option<&str>, quantity: Option<Decimal>) -> OrderIntent {
    OrderIntent {
        id: id.into(),
        pipeline_id: "test".into(),
        token: "TKA".into(),
        side,
        quantity,
        notional: notional.map(|n| Decimal::from_str(n).unwrap()),
        reference_price: Decimal::from_str("2.5").unwrap(),
        max_slippage_bps: Decimal::from(50),
        protection: Protection::default(),
        reason: "test".into(),
        decision_time: chrono::Utc::now().timestamp_millis(),
        inputs_version: "v".into(),
        triggered: None,
    }
}

fn venue(m: &Market, extra: &str) -> UniswapV3Venue {
    let cfg = VenueConfig::parse(&m.venue_toml(extra), "venue").unwrap();
    UniswapV3Venue::connect(cfg, &m.anvil.url, TRADER_KEY.parse().unwrap()).unwrap()
}

fn whole(u: U256) -> Decimal {
    from_base_units(u, 18).unwrap()
}

#[test]
fn a_buy_and_a_sell_land_with_the_amounts_the_chain_moved() {
    let m = Market::start();
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("journal.sqlite")).unwrap();
    let mut v = venue(&m, "");
    let (usd0, tka0) = (m.balance(m.usd, m.trader), m.balance(m.tka, m.trader));

    let buy = intent("buy-1", Side::Buy, Some("100"), None);
    assert!(journal.claim(&buy, "t", 0).unwrap());
    let f = v.execute(&buy, &journal).unwrap();
    assert_eq!(f.status, FillStatus::Filled, "{}", f.reason);
    let (usd1, tka1) = (m.balance(m.usd, m.trader), m.balance(m.tka, m.trader));
    assert_eq!(
        whole(usd0 - usd1),
        Decimal::from(100),
        "exactly the notional left"
    );
    assert_eq!(f.quantity, whole(tka1 - tka0), "the fill is what arrived");
    // 100 USD at 2.5 less the 0.3% fee and a little price impact
    assert!(
        f.quantity > Decimal::from_str("39.8").unwrap() && f.quantity < Decimal::from(40),
        "{}",
        f.quantity
    );
    assert!(
        f.price > Decimal::from_str("2.5").unwrap() && f.price < Decimal::from_str("2.52").unwrap()
    );
    // nothing moved the pool between the router's quote and the swap: the fill is the quote
    let quoted = f
        .quoted_price
        .expect("the router's quote is kept on the fill");
    assert!(
        (f.price / quoted - Decimal::ONE).abs() < Decimal::new(1, 6),
        "{} against {quoted}",
        f.price
    );
    // gas counted once, in the quote token; the pool's fee is in the price, so `fee` is zero (it used to
    // carry the gas in USD while `gas` carried it again in ETH)
    assert_eq!(f.fee, Decimal::ZERO, "the pool fee is inside the price");
    assert!(f.gas > Decimal::ZERO, "gas paid, in USD");
    assert!(f.reason.contains("native)"), "{}", f.reason);
    assert_eq!(
        journal.state_text("buy-1").unwrap().as_deref(),
        Some("filled")
    );
    let txs = journal.txs_of("buy-1").unwrap();
    assert_eq!(txs.len(), 1);
    assert_eq!(Some(txs[0].tx_hash.clone()), f.tx_hash);
    assert_eq!(txs[0].state.as_str(), "confirmed");
    assert!(!txs[0].raw_tx.is_empty());

    let sell = intent("sell-1", Side::Sell, None, Some(f.quantity));
    journal.claim(&sell, "t", 0).unwrap();
    let s = v.execute(&sell, &journal).unwrap();
    assert_eq!(s.status, FillStatus::Filled, "{}", s.reason);
    assert_eq!(
        m.balance(m.tka, m.trader),
        tka0,
        "everything bought was sold"
    );
    let back = whole(m.balance(m.usd, m.trader) - usd1);
    assert_eq!((s.quantity * s.price).round_dp(6), back.round_dp(6));
    assert!(
        back > Decimal::from(99) && back < Decimal::from(100),
        "two fees and two impacts: {back}"
    );
}

#[test]
fn simulation_catches_an_unmeetable_minimum_and_a_past_deadline_without_sending() {
    let m = Market::start();
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("journal.sqlite")).unwrap();
    let mut v = venue(&m, "");
    // the approval first, through a normal buy
    let warm = intent("warm", Side::Buy, Some("10"), None);
    journal.claim(&warm, "t", 0).unwrap();
    assert_eq!(
        v.execute(&warm, &journal).unwrap().status,
        FillStatus::Filled
    );
    let amount = U256::from(10u64) * U256::from(10u64).pow(U256::from(18u8));
    // what an execution does before preparing: allow the router exactly this trade's input
    v.ensure_allowance(m.usd, amount).unwrap();
    let nonce = m.nonce(m.trader);

    let p = v
        .prepare(m.usd, m.tka, amount, Decimal::from(50), None, None)
        .unwrap();
    let too_much = v
        .prepare(
            m.usd,
            m.tka,
            amount,
            Decimal::from(50),
            None,
            Some(p.quoted_out + U256::from(1u8)),
        )
        .unwrap();
    let i = intent("min", Side::Buy, Some("10"), None);
    journal.claim(&i, "t", 0).unwrap();
    let view = hypeflow::execution::onchain::swap::PlanView {
        notional: Decimal::from(10),
        quoted_price: None,
        plan: None,
    };
    let r = v.send_prepared(&i, &view, too_much, &journal).unwrap();
    assert!(
        r.as_ref().unwrap_err().0.contains("Too little received"),
        "{r:?}"
    );

    let past = v
        .prepare(
            m.usd,
            m.tka,
            amount,
            Decimal::from(50),
            Some(p.deadline - 300),
            None,
        )
        .unwrap();
    let r = v.send_prepared(&i, &view, past, &journal).unwrap();
    assert!(
        r.as_ref().unwrap_err().0.contains("Transaction too old"),
        "{r:?}"
    );
    assert_eq!(m.nonce(m.trader), nonce, "nothing was sent");
    assert!(
        journal.txs_of("min").unwrap().is_empty(),
        "nothing was signed into the journal"
    );
}

#[test]
fn a_swap_is_simulated_as_approved_before_any_approval_is_sent() {
    use hypeflow::execution::onchain::preflight::simulate_as_approved;
    let m = Market::start();
    let v = venue(&m, "");
    let amount = U256::from(10u64) * U256::from(10u64).pow(U256::from(18u8));
    let nonce = m.nonce(m.trader);
    let p = v
        .prepare(m.usd, m.tka, amount, Decimal::from(50), None, None)
        .unwrap();
    // unapproved, the swap itself reverts; run as if approved, it passes
    assert!(v.acct.simulate(&p.tx).is_err(), "no allowance yet");
    simulate_as_approved(&v.acct, &p.tx, m.usd, amount).unwrap();
    let too_much = v
        .prepare(
            m.usd,
            m.tka,
            amount,
            Decimal::from(50),
            None,
            Some(p.quoted_out + U256::from(1u8)),
        )
        .unwrap();
    let e = simulate_as_approved(&v.acct, &too_much.tx, m.usd, amount).unwrap_err();
    assert!(e.0.contains("Too little received"), "{e}");
    let past = v
        .prepare(
            m.usd,
            m.tka,
            amount,
            Decimal::from(50),
            Some(p.deadline - 300),
            None,
        )
        .unwrap();
    let e = simulate_as_approved(&v.acct, &past.tx, m.usd, amount).unwrap_err();
    assert!(e.0.contains("Transaction too old"), "{e}");
    assert_eq!(m.nonce(m.trader), nonce, "no approval went out");
    assert!(
        !v.acct.allowance_covers(m.usd, U256::from(1u8)).unwrap(),
        "the router holds no allowance"
    );
}

#[test]
fn the_kill_switch_limits_allow_list_and_price_drift_refuse_before_signing() {
    let m = Market::start();
    let dir = tempfile::tempdir().unwrap();
    let kill = dir.path().join("KILL");
    let journal = Journal::open(&dir.path().join("journal.sqlite")).unwrap();
    let mut v = venue(&m, &format!("kill_switch_file = \"{}\"", kill.display()));
    let nonce = m.nonce(m.trader);
    let refused = |v: &mut UniswapV3Venue, i: OrderIntent| {
        journal.claim(&i, "t", 0).unwrap();
        let f = v.execute(&i, &journal).unwrap();
        assert_eq!(f.status, FillStatus::Rejected);
        assert_eq!(
            journal.state_text(&i.id).unwrap().as_deref(),
            Some("rejected")
        );
        f.reason
    };
    std::fs::write(&kill, "stop").unwrap();
    assert!(refused(&mut v, intent("k1", Side::Buy, Some("10"), None)).contains("kill switch"));
    std::fs::remove_file(&kill).unwrap();
    assert!(refused(&mut v, intent("big", Side::Buy, Some("6000"), None)).contains("per-trade"));
    let mut stale = intent("old", Side::Buy, Some("10"), None);
    stale.decision_time -= 3_600_000;
    assert!(refused(&mut v, stale).contains("stale"));
    let mut other = intent("other", Side::Buy, Some("10"), None);
    other.token = "NOPE".into();
    assert!(refused(&mut v, other).contains("allow-list"));
    // decided at 2.0 while the pool sells at about 2.5: the market ran away, the entry is not chased
    let mut chased = intent("chase", Side::Buy, Some("10"), None);
    chased.reference_price = Decimal::from(2);
    let why = refused(&mut v, chased);
    assert!(
        why.contains("price drift") && why.contains("above the decision price 2"),
        "{why}"
    );
    assert_eq!(m.nonce(m.trader), nonce, "nothing was sent");
    // and after the switch is gone, trading resumes
    let ok = intent("ok", Side::Buy, Some("10"), None);
    journal.claim(&ok, "t", 0).unwrap();
    assert_eq!(v.execute(&ok, &journal).unwrap().status, FillStatus::Filled);
}

#[test]
fn a_misconfigured_router_is_refused_at_start() {
    let m = Market::start();
    let toml = m.venue_toml("").replace(
        &format!("weth = \"{:#x}\"", m.uni.weth),
        &format!("weth = \"{:#x}\"", m.usd),
    );
    let cfg = VenueConfig::parse(&toml, "venue").unwrap();
    let e = UniswapV3Venue::connect(cfg, &m.anvil.url, TRADER_KEY.parse().unwrap())
        .err()
        .unwrap();
    assert!(e.to_string().contains("WETH9"), "{e}");
    let wrong_chain = m.venue_toml("").replace("chain_id = 31337", "chain_id = 1");
    let e = UniswapV3Venue::connect(
        VenueConfig::parse(&wrong_chain, "venue").unwrap(),
        &m.anvil.url,
        TRADER_KEY.parse().unwrap(),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("chain 31337"), "{e}");
}

#[test]
fn thin_pools_are_refused_by_the_liquidity_floor_and_the_price_impact_bound() {
    let m = Market::start();
    // a token with a pool of 100 TKT (about 250 USD a side)
    let tkt = m.dev.deploy_token(1_000_000, false).unwrap();
    m.dev
        .create_pool(&m.uni, tkt, m.usd, 3000, 5, 2, 100)
        .unwrap();
    let with_tkt = |extra: &str| {
        m.venue_toml(extra)
            .replace("[tokens]\n", &format!("[tokens]\nTKT = \"{tkt:#x}\"\n"))
    };
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("journal.sqlite")).unwrap();
    let nonce = m.nonce(m.trader);
    let run = |toml: String, id: &str, notional: &str, slippage_bps: i64| {
        let cfg = VenueConfig::parse(&toml, "venue").unwrap();
        let mut v =
            UniswapV3Venue::connect(cfg, &m.anvil.url, TRADER_KEY.parse().unwrap()).unwrap();
        let mut i = intent(id, Side::Buy, Some(notional), None);
        i.token = "TKT".into();
        i.max_slippage_bps = Decimal::from(slippage_bps);
        journal.claim(&i, "t", 0).unwrap();
        v.execute(&i, &journal).unwrap()
    };
    let f = run(with_tkt("min_pool_liquidity = \"1000\""), "floor", "8", 50);
    assert_eq!(f.status, FillStatus::Rejected);
    assert!(f.reason.contains("under the floor of 1000"), "{}", f.reason);
    let f = run(with_tkt(""), "impact", "8", 50);
    assert_eq!(f.status, FillStatus::Rejected);
    assert!(f.reason.contains("price impact"), "{}", f.reason);
    assert_eq!(
        m.nonce(m.trader),
        nonce,
        "refused before any approval or swap"
    );
    assert!(journal.txs_of("impact").unwrap().is_empty());
    // the same trade with a wider slippage bound goes through (8 USD is about 3% of the pool)
    let small = run(with_tkt(""), "wider", "8", 500);
    assert_eq!(small.status, FillStatus::Filled, "{}", small.reason);
}

/// With blocks no longer mined on every transaction, a swap stays pending past `receipt_timeout_s`: the
/// executor replaces it (same nonce and call, fees up 12.5%, journaled before broadcast) and, once a block
/// comes, records the replacement's fill; the original is marked replaced and only one swap happened.
#[test]
fn a_stuck_swap_is_replaced_with_higher_fees_and_lands_once() {
    let m = Market::start();
    let dir = tempfile::tempdir().unwrap();
    let jpath = dir.path().join("journal.sqlite");
    let journal = Journal::open(&jpath).unwrap();
    let toml = m
        .venue_toml("")
        .replace("receipt_timeout_s = 30", "receipt_timeout_s = 1");
    let cfg = VenueConfig::parse(&toml, "venue").unwrap();
    let mut v = UniswapV3Venue::connect(cfg, &m.anvil.url, TRADER_KEY.parse().unwrap()).unwrap();
    v.ensure_allowance(m.usd, U256::from(10u64).pow(U256::from(21u8)))
        .unwrap();
    let nonce = m.nonce(m.trader);
    let (node, rt) = hypeflow::chain::read_provider(&m.anvil.url).unwrap();
    use alloy::providers::Provider;
    let _: serde_json::Value = rt
        .block_on(node.raw_request("evm_setAutomine".into(), (false,)))
        .unwrap();
    // a block only once the replacement is in the journal
    let url = m.anvil.url.clone();
    let watcher = std::thread::spawn(move || {
        let j = Journal::open(&jpath).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while j.txs_of("stuck").unwrap().len() < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let (node, rt) = hypeflow::chain::read_provider(&url).unwrap();
        let _: serde_json::Value = rt
            .block_on(node.raw_request("evm_mine".into(), ()))
            .unwrap();
    });
    let i = intent("stuck", Side::Buy, Some("50"), None);
    journal.claim(&i, "t", 0).unwrap();
    let f = v.execute(&i, &journal).unwrap();
    watcher.join().unwrap();
    assert_eq!(f.status, FillStatus::Filled, "{}", f.reason);
    let txs = journal.txs_of("stuck").unwrap();
    assert!(txs.len() >= 2, "{txs:?}");
    assert_eq!(
        txs[0].nonce, txs[1].nonce,
        "a replacement takes the same nonce"
    );
    assert_eq!(txs[0].state.as_str(), "replaced");
    let mined: Vec<_> = txs
        .iter()
        .filter(|t| t.state == hypeflow::execution::journal::TxState::Confirmed)
        .collect();
    assert_eq!(mined.len(), 1);
    assert_eq!(f.tx_hash.as_deref(), Some(mined[0].tx_hash.as_str()));
    assert_ne!(
        mined[0].tx_hash, txs[0].tx_hash,
        "the higher-fee replacement is the one mined"
    );
    assert_eq!(m.nonce(m.trader), nonce + 1, "one swap");
    let _: serde_json::Value = rt
        .block_on(node.raw_request("evm_setAutomine".into(), (true,)))
        .unwrap();
}

/// Quote in the native coin: buys send ETH (the router wraps exactly that), sells come back as ETH (the router
/// unwraps inside the same multicall); the account never holds WETH, and the fills are what the chain moved.
#[test]
fn native_eth_in_and_out_through_the_router() {
    let m = Market::start();
    m.dev.wrap(&m.uni, 1000).unwrap();
    m.dev
        .create_pool(&m.uni, m.tka, m.uni.weth, 3000, 1, 800, 400_000)
        .unwrap();
    let toml = m
        .venue_toml("")
        .replace(
            &format!("symbol = \"USD\"\naddress = \"{:#x}\"", m.usd),
            &format!(
                "symbol = \"ETH\"\naddress = \"{:#x}\"\nnative = true",
                m.uni.weth
            ),
        )
        .replace(
            "max_notional_per_trade = \"5000\"",
            "max_notional_per_trade = \"5\"",
        );
    let cfg = VenueConfig::parse(&toml, "venue").unwrap();
    let mut v = UniswapV3Venue::connect(cfg, &m.anvil.url, TRADER_KEY.parse().unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("journal.sqlite")).unwrap();
    let eth = |m: &Market| {
        use alloy::providers::Provider;
        m.dev
            .rt
            .block_on(async { m.dev.provider.get_balance(m.trader).await })
            .unwrap()
    };
    let (eth0, tka0) = (eth(&m), m.balance(m.tka, m.trader));
    let mut b = intent("eth-buy", Side::Buy, Some("1"), None);
    // the decision price near what the pool asks (fee included): the drift guard holds the buy to it
    b.reference_price = Decimal::new(1256, 6);
    journal.claim(&b, "t", 0).unwrap();
    let f = v.execute(&b, &journal).unwrap();
    assert_eq!(f.status, FillStatus::Filled, "{}", f.reason);
    let spent = whole(eth0 - eth(&m));
    assert_eq!(spent, Decimal::ONE + f.gas, "one ETH and the gas");
    let got = whole(m.balance(m.tka, m.trader) - tka0);
    assert_eq!(f.quantity, got);
    assert!(
        got > Decimal::from(790) && got < Decimal::from(800),
        "{got}"
    );
    assert_eq!(
        m.balance(m.uni.weth, m.trader),
        U256::ZERO,
        "never holds WETH"
    );

    // the sell's approval is a transaction of its own: done first, so the balance below is the swap's alone
    v.ensure_allowance(m.tka, m.balance(m.tka, m.trader))
        .unwrap();
    let eth1 = eth(&m);
    let mut s = intent("eth-sell", Side::Sell, None, Some(got));
    s.reference_price = Decimal::new(125, 5);
    journal.claim(&s, "t", 0).unwrap();
    let f = v.execute(&s, &journal).unwrap();
    assert_eq!(f.status, FillStatus::Filled, "{}", f.reason);
    let back = whole(eth(&m) - eth1) + f.gas;
    // the fill's price is rounded to 12 places: its product with ~800 tokens is exact to ~1e-9
    assert!(
        (f.quantity * f.price - back).abs() < Decimal::new(1, 8),
        "{back}"
    );
    assert!(back > Decimal::new(99, 2) && back < Decimal::ONE, "{back}");
    assert_eq!(m.balance(m.uni.weth, m.trader), U256::ZERO);
}

/// Tokens that are unsafe to buy (`tests/contracts/TrapToken.sol`, compiled by the test set-up): one taking a 5%
/// tax on transfers, one that holders can never move (a honeypot). The simulated round trip before the first buy
/// refuses both, and nothing is sent.
#[test]
fn taxed_and_honeypot_tokens_are_refused_by_the_round_trip() {
    use alloy::sol_types::SolValue;
    let m = Market::start();
    let supply = U256::from(1_000_000u64) * U256::from(10u64).pow(U256::from(18u8));
    let taxed = m
        .dev
        .deploy(
            "TrapToken",
            (supply, U256::from(500u64), false).abi_encode_params(),
        )
        .unwrap();
    let honeypot = m
        .dev
        .deploy("TrapToken", (supply, U256::ZERO, true).abi_encode_params())
        .unwrap();
    for t in [taxed, honeypot] {
        m.dev
            .create_pool(&m.uni, t, m.usd, 3000, 5, 2, 100_000)
            .unwrap();
    }
    let toml = m.venue_toml("").replace(
        "[tokens]\n",
        &format!("[tokens]\nTAX = \"{taxed:#x}\"\nPOT = \"{honeypot:#x}\"\n"),
    );
    let cfg = VenueConfig::parse(&toml, "venue").unwrap();
    let mut v = UniswapV3Venue::connect(cfg, &m.anvil.url, TRADER_KEY.parse().unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("journal.sqlite")).unwrap();
    let nonce = m.nonce(m.trader);
    let mut reasons = Vec::new();
    for (id, token) in [("tax", "TAX"), ("pot", "POT")] {
        let mut i = intent(id, Side::Buy, Some("100"), None);
        i.token = token.into();
        journal.claim(&i, "t", 0).unwrap();
        let f = v.execute(&i, &journal).unwrap();
        assert_eq!(f.status, FillStatus::Rejected, "{token}: {}", f.reason);
        reasons.push(f.reason);
    }
    // a taxed token cannot even be sold into a V3 pool (the pool's balance check): both show
    assert!(
        reasons[0].contains("token safety: honeypot"),
        "{}",
        reasons[0]
    );
    let buy_tax: u32 = reasons[0]
        .split("buy tax ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(
        (490..=510).contains(&buy_tax),
        "measured {buy_tax} bps of a 5% tax"
    );
    assert!(
        reasons[1].contains("token safety") && reasons[1].contains("transfer of the token reverts"),
        "{}",
        reasons[1]
    );
    assert_eq!(m.nonce(m.trader), nonce, "nothing was approved or sent");
    // the normal token next to them still trades
    let ok = intent("ok", Side::Buy, Some("100"), None);
    journal.claim(&ok, "t", 0).unwrap();
    assert_eq!(v.execute(&ok, &journal).unwrap().status, FillStatus::Filled);
}
