//! The capital ladder enforced by the paper executor against a dev broker: the phase's caps cut entries to
//! the room they leave, the drawdown pause stops entries (not exits) until an operator resumes, a promotion is refused
//! on failing gates and recorded when forced, and a phase on another venue lets this executor only sell.

use crate::common;

use common::{bin, dev_broker, ladder, run_ok, topic_data};

/// A broker with the sample's ticks and its backtest's intents on it.
fn market(dir: &std::path::Path) -> (common::Broker, usize) {
    let broker = dev_broker(2);
    let b = broker.bootstrap.clone();
    let bt = dir.join("bt");
    run_ok(&["backtest", "--quiet", "--out", bt.to_str().unwrap()]);
    run_ok(&[
        "publish",
        "--brokers",
        &b,
        "--topic",
        "market.ticks",
        "data/sample/ticks.jsonl",
    ]);
    run_ok(&[
        "publish",
        "--brokers",
        &b,
        "--topic",
        "orders.intents",
        bt.join("intents.jsonl").to_str().unwrap(),
    ]);
    let n = common::intent_ids_in(&bt.join("intents.jsonl")).len();
    (broker, n)
}

fn reasons(b: &str) -> Vec<(String, String)> {
    topic_data(b, "orders.rejects")
        .iter()
        .map(|r| {
            (
                r["side"].as_str().unwrap().to_string(),
                r["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_phase_caps_cut_entries_to_the_room_they_leave() {
    use rust_decimal::Decimal;
    let dir = tempfile::tempdir().unwrap();
    let (broker, n) = market(dir.path());
    let b = broker.bootstrap.as_str();
    // the sample's pipeline sizes its entries at about 2000: a phase that allows 50 per position
    let cap = ladder(
        dir.path(),
        &[("max_position = \"500\"", "max_position = \"50\"")],
    );
    let j = dir.path().join("j.sqlite");
    run_ok(&[
        "execute",
        "--brokers",
        b,
        "--journal",
        j.to_str().unwrap(),
        "--capital",
        &cap,
        "--exit-when-idle",
        "4",
    ]);
    let fills = topic_data(b, "orders.fills");
    let dec = |v: &serde_json::Value| v.as_str().unwrap().parse::<Decimal>().unwrap();
    let buys: Vec<Decimal> = fills
        .iter()
        .filter(|f| f["side"] == "buy")
        .map(|f| dec(&f["quantity"]) * dec(&f["price"]))
        .collect();
    assert!(!buys.is_empty(), "entries go through, cut down: {fills:?}");
    assert!(
        buys.iter().all(|v| *v <= Decimal::new(5001, 2)),
        "no position is over the 50 cap (the fee is paid on top): {buys:?}"
    );
    let r = reasons(b);
    assert_eq!(r.len() + fills.len(), n, "every intent has one outcome");
    for (side, why) in &r {
        match side.as_str() {
            // the paper venue fills these old intents at the latest price: some ran away since
            "buy" => assert!(
                why.contains("phase paper allows 50 per position") || why.contains("price drift"),
                "{why}"
            ),
            _ => assert!(why.contains("is held: a sell has nothing to sell"), "{why}"),
        }
    }
}

#[test]
fn the_drawdown_pause_stops_entries_until_an_operator_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, _) = market(dir.path());
    let b = broker.bootstrap.as_str();
    // every paper round trip here loses its fees: a 0.05% drawdown is reached within a few
    let cap = ladder(
        dir.path(),
        &[
            ("max_drawdown = \"0.10\"", "max_drawdown = \"0.0005\""),
            ("lock = \"24h\"", "lock = \"\""),
            // room for the sample's positions (about 2000 each), so the drawdown is what refuses
            ("max_position = \"500\"", "max_position = \"5000\""),
            (
                "max_notional_per_day = \"5000\"",
                "max_notional_per_day = \"1000000\"",
            ),
            ("max_exposure = \"2500\"", "max_exposure = \"1000000\""),
        ],
    );
    let j = dir.path().join("j.sqlite");
    let jp = j.to_str().unwrap();
    run_ok(&[
        "execute",
        "--brokers",
        b,
        "--journal",
        jp,
        "--capital",
        &cap,
        "--exit-when-idle",
        "4",
    ]);
    let r = reasons(b);
    let paused: Vec<&(String, String)> = r
        .iter()
        .filter(|(_, why)| why.contains("entries paused"))
        .collect();
    assert!(!paused.is_empty(), "{r:?}");
    assert!(
        paused.iter().all(|(side, _)| side == "buy"),
        "exits are never paused"
    );
    // a sell is refused only when nothing of its token is held (the guard's unit test sells through a pause)
    assert!(
        r.iter()
            .filter(|(s, _)| s == "sell")
            .all(|(_, why)| why.contains("is held")),
        "{r:?}"
    );
    let status = |extra: &[&str]| {
        let mut args = vec!["capital", "status", "--capital", &cap, "--journal", jp];
        args.extend_from_slice(extra);
        run_ok(&args)
    };
    let s: serde_json::Value = serde_json::from_str(&status(&["--json"])).unwrap();
    assert!(s["paused"]["since"].is_string(), "{s}");
    assert!(
        s["paused"]["until"].is_null(),
        "until an operator resumes: {s}"
    );
    assert!(status(&[]).contains("PAUSED since"));
    run_ok(&[
        "capital",
        "resume",
        "--capital",
        &cap,
        "--journal",
        jp,
        "--reason",
        "looked at it",
    ]);
    let s: serde_json::Value = serde_json::from_str(&status(&["--json"])).unwrap();
    assert!(s["paused"].is_null(), "{s}");
    assert_eq!(s["drawdown"], "0", "measured from a new peak: {s}");
}

#[test]
fn promotion_needs_passing_gates_and_a_phase_elsewhere_only_sells() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, _) = market(dir.path());
    let b = broker.bootstrap.as_str();
    let cap = ladder(dir.path(), &[]);
    let j = dir.path().join("j.sqlite");
    let jp = j.to_str().unwrap();
    let refused = bin()
        .args([
            "capital",
            "promote",
            "--capital",
            &cap,
            "--journal",
            jp,
            "--to",
            "micro",
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        why.contains("these gates fail: days in phase, closed trades, win rate, sharpe"),
        "{why}"
    );
    let skip = bin()
        .args([
            "capital",
            "promote",
            "--capital",
            &cap,
            "--journal",
            jp,
            "--to",
            "scaled-1",
            "--reason",
            "x",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&skip.stderr).contains("one at a time"));
    let out = run_ok(&[
        "capital",
        "promote",
        "--capital",
        &cap,
        "--journal",
        jp,
        "--to",
        "micro",
        "--force",
        "--reason",
        "test of the override",
    ]);
    assert!(out.contains("paper -> micro (forced"), "{out}");
    let s: serde_json::Value = serde_json::from_str(&run_ok(&[
        "capital",
        "status",
        "--capital",
        &cap,
        "--journal",
        jp,
        "--json",
    ]))
    .unwrap();
    assert_eq!(s["phase"]["name"], "micro");
    // micro trades on uniswap-v3: this paper executor refuses every entry
    run_ok(&[
        "execute",
        "--brokers",
        b,
        "--journal",
        jp,
        "--capital",
        &cap,
        "--exit-when-idle",
        "4",
    ]);
    assert!(topic_data(b, "orders.fills").is_empty());
    let r = reasons(b);
    assert!(
        r.iter()
            .filter(|(s, _)| s == "buy")
            .all(|(_, w)| w.contains("capital phase micro trades on uniswap-v3")),
        "{r:?}"
    );
    // and an on-chain executor without the ladder does not start
    let o = bin()
        .args([
            "execute",
            "--venue",
            "uniswap-v3",
            "--brokers",
            b,
            "--journal",
            jp,
            "--venue-config",
            "x.toml",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("runs under the capital ladder"));
}

#[test]
fn entries_stop_when_the_market_data_is_stale() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, n) = market(dir.path());
    let b = broker.bootstrap.as_str();
    // the shipped breaker: no entry on a price older than five minutes (the sample's are from 2025)
    let cap = ladder(
        dir.path(),
        &[("stale_after = \"5m\"", "stale_after = \"5m\"")],
    );
    let j = dir.path().join("j.sqlite");
    run_ok(&[
        "execute",
        "--brokers",
        b,
        "--journal",
        j.to_str().unwrap(),
        "--capital",
        &cap,
        "--exit-when-idle",
        "4",
    ]);
    assert!(topic_data(b, "orders.fills").is_empty());
    let r = reasons(b);
    assert_eq!(r.len(), n);
    let buys: Vec<&String> = r
        .iter()
        .filter(|(s, _)| s == "buy")
        .map(|(_, w)| w)
        .collect();
    assert!(!buys.is_empty());
    assert!(
        buys.iter()
            .all(|w| w.contains("s old (breaker stale_after 5m)")),
        "{buys:?}"
    );
}

#[test]
fn a_degraded_phase_steps_down_by_itself() {
    use hypeflow::execution::capital::CapitalEvent;
    use hypeflow::execution::journal::Journal;
    let dir = tempfile::tempdir().unwrap();
    let broker = dev_broker(2);
    let b = broker.bootstrap.as_str();
    // the sample's ticks moved to end ten minutes from now, so the paper fills (at each token's latest tick's
    // time) fall inside the phase begun below
    let text = common::read(&common::sample("ticks.jsonl"));
    let times = |l: &str| -> chrono::DateTime<chrono::Utc> {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        v["event_time"].as_str().unwrap().parse().unwrap()
    };
    let last = text.lines().map(times).max().unwrap();
    let shift = chrono::Utc::now() + chrono::Duration::seconds(600) - last;
    let moved: Vec<String> = text
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let t = times(l) + shift;
            v["event_time"] = t
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                .into();
            v.to_string()
        })
        .collect();
    let ticks = dir.path().join("ticks.jsonl");
    std::fs::write(&ticks, moved.join("\n") + "\n").unwrap();
    run_ok(&[
        "publish",
        "--brokers",
        b,
        "--topic",
        "market.ticks",
        ticks.to_str().unwrap(),
    ]);
    // a second paper phase to step down from; every round trip here loses its fees, so two of them have a
    // win rate of 0, under the 0.40 floor
    let cap = ladder(
        dir.path(),
        &[
            ("name = \"micro\"\nvenue = \"uniswap-v3\"", "name = \"micro\"\nvenue = \"paper\""),
            ("window_trades = 20", "window_trades = 2"),
            ("max_consecutive_losses = 5", "max_consecutive_losses = 0"),
            ("max_drawdown = \"0.10\"", "max_drawdown = \"0.5\""),
            ("max_heat = \"0.06\"", "max_heat = \"1\""),
            ("max_position = \"500\"\nmax_notional_per_day = \"2000\"\nmax_exposure = \"1500\"", "max_position = \"5000\"\nmax_notional_per_day = \"1000000\"\nmax_exposure = \"1000000\""),
        ],
    );
    let j = dir.path().join("j.sqlite");
    let jp = j.to_str().unwrap();
    run_ok(&[
        "capital",
        "promote",
        "--capital",
        &cap,
        "--journal",
        jp,
        "--to",
        "micro",
        "--force",
        "--reason",
        "test",
    ]);
    // round trips decided now: a buy and a sell of each token (the sell asks for more than is held, which
    // sells what is held), each filling at the first tick after now (the moved ticks run ten minutes on), so
    // each round trip pays its fees at about one price
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut last = std::collections::BTreeMap::new();
    for l in &moved {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        last.insert(v["token"].as_str().unwrap().to_string(), v["price"].clone());
    }
    let mut intents = Vec::new();
    for token in ["AXL", "BOLT", "CRUX"] {
        for (side, size) in [
            ("buy", ("notional", "500")),
            ("sell", ("quantity", "1000000000")),
        ] {
            let mut v = serde_json::json!({"id": format!("rt-{token}-{side}"), "pipeline_id": "rt",
                "token": token, "side": side, "reference_price": last[token], "max_slippage_bps": "10000",
                "protection": {}, "reason": "test", "decision_time": now, "inputs_version": "v"});
            v[size.0] = size.1.into();
            intents.push(v.to_string());
        }
    }
    let now_intents = dir.path().join("intents-now.jsonl");
    std::fs::write(&now_intents, intents.join("\n") + "\n").unwrap();
    run_ok(&[
        "publish",
        "--brokers",
        b,
        "--topic",
        "orders.intents",
        now_intents.to_str().unwrap(),
    ]);
    run_ok(&[
        "execute",
        "--brokers",
        b,
        "--journal",
        jp,
        "--capital",
        &cap,
        "--exit-when-idle",
        "4",
    ]);
    let events: Vec<CapitalEvent> = Journal::open(&j).unwrap().capital_events().unwrap();
    let down = events.iter().find_map(|e| match e {
        CapitalEvent::Phase {
            from,
            phase,
            reason,
            forced: false,
            ..
        } if from == "micro" => Some((phase.clone(), reason.clone())),
        _ => None,
    });
    let (to, why) = down.unwrap_or_else(|| {
        let fills: Vec<String> = topic_data(b, "orders.fills")
            .iter()
            .map(|f| format!("{} {} {}", f["side"], f["token"], f["fill_time"]))
            .collect();
        panic!(
            "no step down: {events:?}\nfills {fills:?}\nrejects {:?}",
            reasons(b)
        )
    });
    assert_eq!(to, "paper");
    assert!(
        why.contains("win rate 0.000 over the last 2 trades is under 0.4"),
        "{why}"
    );
    let s: serde_json::Value = serde_json::from_str(&run_ok(&[
        "capital",
        "status",
        "--capital",
        &cap,
        "--journal",
        jp,
        "--json",
    ]))
    .unwrap();
    assert_eq!(s["phase"]["name"], "paper");
}
