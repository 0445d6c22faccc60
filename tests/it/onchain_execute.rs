//! `hypeflow execute --venue uniswap-v3` as a consumer of `orders.intents` against a dev broker and anvil:
//! killed with SIGKILL right after journaling a signed swap and before broadcasting it, then restarted, the
//! intent is completed exactly once (one swap on chain: the account's nonce and balances say so), redeliveries
//! and a duplicate intent id are not executed again, and the fill is published once. The kill comes from a hook
//! built only with the `test-hooks` feature (the test command turns it on).
#![cfg(feature = "test-hooks")]

use crate::common;

use common::chain::{Market, TRADER_KEY};
use common::{bin, dev_broker, publish_file, topic_data};
use hypeflow::execution::journal::Journal;
use hypeflow::execution::onchain::units::from_base_units;
use std::os::unix::process::ExitStatusExt;

#[test]
fn killed_between_journal_and_broadcast_the_swap_lands_exactly_once() {
    let m = Market::start();
    let broker = dev_broker(1);
    let b = broker.bootstrap.as_str();
    let dir = tempfile::tempdir().unwrap();
    let venue = dir.path().join("venue.toml");
    std::fs::write(&venue, m.venue_toml("")).unwrap();
    let journal = dir.path().join("journal.sqlite");
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let intent = serde_json::json!({"id": "buy-once", "pipeline_id": "test", "token": "TKA", "side": "buy",
        "notional": "250", "reference_price": "2.5", "max_slippage_bps": "50", "protection": {},
        "reason": "test", "decision_time": now, "inputs_version": "v"});
    let intents = dir.path().join("intents.jsonl");
    // the same intent twice, as a replaying pipeline could send it
    std::fs::write(&intents, format!("{intent}\n{intent}\n")).unwrap();
    publish_file(b, "orders.intents", &intents);
    let tka0 = m.balance(m.tka, m.trader);

    // on chain the executor runs under the capital ladder, in an on-chain phase (forced here: no record yet)
    let jp = journal.to_str().unwrap();
    // no market.ticks for the devnet token: the stale-data breaker is off here
    let ladder = common::ladder(dir.path(), &[]);
    common::run_ok(&[
        "capital",
        "promote",
        "--journal",
        jp,
        "--to",
        "micro",
        "--force",
        "--reason",
        "anvil test",
    ]);
    let execute = |fault: bool| {
        let mut c = bin();
        c.args([
            "execute",
            "--venue",
            "uniswap-v3",
            "--brokers",
            b,
            "--exit-when-idle",
            "3",
        ])
        .arg("--venue-config")
        .arg(&venue)
        .arg("--journal")
        .arg(&journal)
        .args(["--instance", "exec-1"])
        .arg("--capital")
        .arg(&ladder)
        .env("HYPEFLOW_LOG", "debug")
        .env("HYPEFLOW_PRIVATE_KEY", TRADER_KEY);
        if fault {
            c.env("HYPEFLOW_FAULT", "after-journal");
        }
        c.output().unwrap()
    };
    let first = execute(true);
    assert_eq!(
        first.status.signal(),
        Some(9),
        "the fault hook kills with SIGKILL"
    );
    {
        let j = Journal::open(&journal).unwrap();
        assert_eq!(j.state_text("buy-once").unwrap().as_deref(), Some("signed"));
        let txs = j.txs_of("buy-once").unwrap();
        assert_eq!(txs.len(), 1);
        assert_eq!(txs[0].nonce, 1, "the approval took nonce 0");
    }
    assert_eq!(m.nonce(m.trader), 1, "only the approval went out");
    assert_eq!(m.balance(m.tka, m.trader), tka0);

    let second = execute(false);
    let out = String::from_utf8_lossy(&second.stdout);
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(out.contains("recovered 1"), "{out}");
    // the key is in no output and not in the journal (which holds signed transactions only)
    let key = TRADER_KEY.trim_start_matches("0x");
    for o in [&first, &second] {
        assert!(
            !common::printed(o).contains(key),
            "the key leaked into the output"
        );
    }
    for suffix in ["", "-wal"] {
        let bytes = std::fs::read(format!("{}{suffix}", journal.display())).unwrap_or_default();
        assert!(
            !bytes.windows(key.len()).any(|w| w == key.as_bytes()),
            "the key is in the journal{suffix}"
        );
    }
    assert!(
        out.contains("filled 0") && out.contains("duplicates 2"),
        "{out}"
    );
    assert_eq!(m.nonce(m.trader), 2, "approval + one swap, nothing more");
    let j = Journal::open(&journal).unwrap();
    assert_eq!(j.state_text("buy-once").unwrap().as_deref(), Some("filled"));
    let tx = &j.txs_of("buy-once").unwrap()[0];
    assert_eq!(tx.state.as_str(), "confirmed");

    let fills = topic_data(b, "orders.fills");
    assert_eq!(fills.len(), 1, "{fills:?}");
    assert_eq!(fills[0]["intent_id"], "buy-once");
    assert_eq!(fills[0]["tx_hash"].as_str(), Some(tx.tx_hash.as_str()));
    let got = from_base_units(m.balance(m.tka, m.trader) - tka0, 18).unwrap();
    assert_eq!(fills[0]["quantity"].as_str().unwrap(), got.to_string());
    // 250 USD at 2.5, less the pool's 0.3% and a little impact
    assert!(
        got > rust_decimal::Decimal::from(99) && got < rust_decimal::Decimal::from(100),
        "{got}"
    );
}

/// The journal says the account holds 100 TKA; the wallet holds none (a transfer out, a lost journal, another
/// process on the key), and less of the native coin than the venue keeps for gas: at start the executor
/// reports both and pauses entries, and nothing is sent.
#[test]
fn a_wallet_that_disagrees_with_the_book_pauses_entries() {
    use hypeflow::execution::capital::CapitalEvent;
    use hypeflow::model::{Fill, FillStatus, OrderIntent, Side};
    use rust_decimal::Decimal;
    let m = Market::start();
    let broker = dev_broker(1);
    let b = broker.bootstrap.as_str();
    let dir = tempfile::tempdir().unwrap();
    let venue = dir.path().join("venue.toml");
    // anvil's accounts hold 10000 ETH: a floor above it is a wallet short of gas
    std::fs::write(&venue, m.venue_toml("min_native_balance = \"20000\"")).unwrap();
    let journal = dir.path().join("journal.sqlite");
    let jp = journal.to_str().unwrap();
    let ladder = common::ladder(dir.path(), &[]);
    common::run_ok(&[
        "capital",
        "promote",
        "--journal",
        jp,
        "--to",
        "micro",
        "--force",
        "--reason",
        "anvil test",
    ]);
    let now = chrono::Utc::now().timestamp_millis();
    {
        let j = Journal::open(&journal).unwrap();
        let old: OrderIntent = serde_json::from_value(serde_json::json!({"id": "old-buy", "pipeline_id": "test",
            "token": "TKA", "side": "buy", "notional": "250", "reference_price": "2.5", "max_slippage_bps": "50",
            "protection": {}, "reason": "test", "decision_time": now - 3_600_000, "inputs_version": "v"}))
        .unwrap();
        assert!(j.claim(&old, "someone", now).unwrap());
        let f = Fill {
            intent_id: "old-buy".into(),
            venue: "uniswap-v3".into(),
            token: "TKA".into(),
            side: Side::Buy,
            quantity: Decimal::from(100),
            price: Decimal::new(25, 1),
            fee: Decimal::ZERO,
            gas: Decimal::ZERO,
            tx_hash: None,
            status: FillStatus::Filled,
            reason: "test".into(),
            fill_time: now - 3_600_000,
            quoted_price: None,
        };
        j.record_outcome(&f, now).unwrap();
        j.mark_published("old-buy").unwrap();
    }
    let stamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let intent = serde_json::json!({"id": "after", "pipeline_id": "test", "token": "TKA", "side": "buy",
        "notional": "100", "reference_price": "2.5", "max_slippage_bps": "100", "protection": {},
        "reason": "test", "decision_time": stamp, "inputs_version": "v"});
    let intents = dir.path().join("intents.jsonl");
    std::fs::write(&intents, format!("{intent}\n")).unwrap();
    publish_file(b, "orders.intents", &intents);
    let nonce = m.nonce(m.trader);
    let o = bin()
        .args([
            "execute",
            "--venue",
            "uniswap-v3",
            "--brokers",
            b,
            "--exit-when-idle",
            "3",
            "--journal",
            jp,
        ])
        .arg("--venue-config")
        .arg(&venue)
        .arg("--capital")
        .arg(&ladder)
        .env("HYPEFLOW_PRIVATE_KEY", TRADER_KEY)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("ALERT"),
        "the mismatch is reported"
    );
    let events: Vec<CapitalEvent> = Journal::open(&journal).unwrap().capital_events().unwrap();
    assert!(
        events.iter().any(|e| matches!(e, CapitalEvent::Pause { reason, .. } if reason.contains("wallet mismatch: TKA: wallet 0, book 100") && reason.contains("native coin for gas: wallet 10000, the venue keeps at least 20000"))),
        "{events:?}"
    );
    let rejects = topic_data(b, "orders.rejects");
    assert_eq!(rejects.len(), 1);
    assert!(
        rejects[0]["reason"]
            .as_str()
            .unwrap()
            .contains("entries paused"),
        "{rejects:?}"
    );
    assert_eq!(m.nonce(m.trader), nonce, "nothing was sent");
}

/// The node goes down under a running executor: each intent is refused as "venue unavailable" (nothing was
/// signed), the executor stays up, and the third failure within the window holds entries for the cooldown
/// without moving the drawdown's baseline.
#[test]
fn a_venue_that_keeps_failing_trips_the_error_rate_breaker() {
    use hypeflow::execution::capital::CapitalEvent;
    let mut m = Market::start();
    let broker = dev_broker(1);
    let b = broker.bootstrap.as_str();
    let dir = tempfile::tempdir().unwrap();
    let venue = dir.path().join("venue.toml");
    std::fs::write(&venue, m.venue_toml("")).unwrap();
    let journal = dir.path().join("journal.sqlite");
    let jp = journal.to_str().unwrap();
    let ladder = common::ladder(dir.path(), &[]);
    common::run_ok(&[
        "capital",
        "promote",
        "--journal",
        jp,
        "--to",
        "micro",
        "--force",
        "--reason",
        "anvil test",
    ]);
    let child = bin()
        .args([
            "execute",
            "--venue",
            "uniswap-v3",
            "--brokers",
            b,
            "--exit-when-idle",
            "4",
            "--journal",
            jp,
        ])
        .arg("--venue-config")
        .arg(&venue)
        .arg("--capital")
        .arg(&ladder)
        .env("HYPEFLOW_PRIVATE_KEY", TRADER_KEY)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // the executor has connected and reconciled; then the node goes away
    std::thread::sleep(std::time::Duration::from_secs(3));
    m.anvil.stop();
    let stamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let lines: Vec<String> = (0..4)
        .map(|n| {
            serde_json::json!({"id": format!("down-{n}"), "pipeline_id": "test", "token": "TKA", "side": "buy",
                "notional": "50", "reference_price": "2.5", "max_slippage_bps": "100", "protection": {},
                "reason": "test", "decision_time": stamp, "inputs_version": "v"})
            .to_string()
        })
        .collect();
    let intents = dir.path().join("intents.jsonl");
    std::fs::write(&intents, lines.join("\n") + "\n").unwrap();
    publish_file(b, "orders.intents", &intents);
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "the executor stays up: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("ALERT"),
        "the breaker is reported"
    );
    let rejects = topic_data(b, "orders.rejects");
    assert_eq!(rejects.len(), 4, "{rejects:?}");
    let reasons: Vec<&str> = rejects
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons[..3].iter().all(|r| r.contains("venue unavailable")),
        "{reasons:?}"
    );
    assert!(
        reasons[3].contains("entries paused") && reasons[3].contains("venue errors"),
        "{reasons:?}"
    );
    let events: Vec<CapitalEvent> = Journal::open(&journal).unwrap().capital_events().unwrap();
    let held = events.iter().find_map(|e| match e {
        CapitalEvent::Pause {
            at,
            until,
            reason,
            keep_baseline,
        } if reason.contains("venue errors: 3 within 10m") => Some((*until, *at, *keep_baseline)),
        _ => None,
    });
    let (until, at, keep) = held.unwrap_or_else(|| panic!("{events:?}"));
    assert_eq!(until, Some(at + 15 * 60_000), "held for the cooldown");
    assert!(keep, "the drawdown keeps its baseline");
}
