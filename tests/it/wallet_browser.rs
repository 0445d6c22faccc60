//! `hypeflow execute --signer browser` against anvil, approved in a real browser: headless Chromium (Debian's)
//! loads the dashboard with an injected EIP-1193 wallet (tests/browser/wallet.js, driven by puppeteer-core from
//! npm) that forwards to anvil, where the test account signs. A wrong account is refused by the page and the
//! server; intent 1's allowance and swap are approved (the swap lands once and its fill is what the chain moved);
//! intent 2's swap is refused in the wallet (rejected with the wallet's reason, no swap sent); intent 3 is left
//! to expire (rejected, nothing sent, not claimable late). The executor holds no key throughout.

use crate::common;

use common::chain::Market;
use common::{bin, dev_broker, free_port, installed, publish_file, puppeteer_modules, topic_data};
use hypeflow::execution::journal::Journal;
use hypeflow::execution::onchain::units::from_base_units;
use std::path::PathBuf;

fn intent(id: &str) -> serde_json::Value {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    serde_json::json!({"id": id, "pipeline_id": "test", "token": "TKA", "side": "buy", "notional": "100",
        "reference_price": "2.5", "max_slippage_bps": "100", "protection": {}, "reason": "test",
        "decision_time": now, "inputs_version": "v"})
}

/// A market on anvil, a dev broker, a venue file (edited by `edit`) and a journal promoted to an on-chain
/// phase: what both tests start from.
struct Setup {
    m: Market,
    broker: common::Broker,
    dir: tempfile::TempDir,
    venue: PathBuf,
    journal: PathBuf,
    ladder: String,
    account: String,
}

fn setup(edit: impl Fn(String) -> String) -> Setup {
    let m = Market::start();
    let broker = dev_broker(1);
    let dir = tempfile::tempdir().unwrap();
    let venue = dir.path().join("venue.toml");
    std::fs::write(&venue, edit(m.venue_toml(""))).unwrap();
    let journal = dir.path().join("journal.sqlite");
    let ladder = common::ladder(dir.path(), &[]);
    common::run_ok(&[
        "capital",
        "promote",
        "--journal",
        journal.to_str().unwrap(),
        "--to",
        "micro",
        "--force",
        "--reason",
        "anvil test",
    ]);
    let account = format!("{:#x}", m.trader);
    Setup {
        m,
        broker,
        dir,
        venue,
        journal,
        ladder,
        account,
    }
}

impl Setup {
    /// `hypeflow execute --signer browser` for the configured account, its dashboard on `ui`.
    fn executor(&self, ui: &str) -> std::process::Command {
        let mut c = bin();
        c.args([
            "execute",
            "--venue",
            "uniswap-v3",
            "--brokers",
            &self.broker.bootstrap,
        ])
        .arg("--venue-config")
        .arg(&self.venue)
        .arg("--journal")
        .arg(&self.journal)
        .args(["--instance", "exec-browser", "--capital", &self.ladder])
        .args([
            "--signer",
            "browser",
            "--account",
            &self.account,
            "--ui-addr",
            ui,
        ])
        .env_remove("HYPEFLOW_PRIVATE_KEY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
        c
    }

    fn publish(&self, ids: &[&str]) {
        let intents = self.dir.path().join("intents.jsonl");
        let lines: Vec<String> = ids.iter().map(|i| intent(i).to_string()).collect();
        std::fs::write(&intents, lines.join("\n") + "\n").unwrap();
        publish_file(&self.broker.bootstrap, "orders.intents", &intents);
    }
}

#[test]
fn a_browser_wallet_approves_refuses_and_lets_expire_and_a_wrong_account_is_refused() {
    let modules = puppeteer_modules();
    let st = setup(|t| {
        t.replace(
            "receipt_timeout_s = 30",
            "receipt_timeout_s = 30\napproval_timeout_s = 12",
        )
    });
    let (m, b, account) = (&st.m, st.broker.bootstrap.as_str(), st.account.clone());
    st.publish(&["buy-1", "buy-2", "buy-3"]);
    let (tka0, nonce0) = (m.balance(m.tka, m.trader), m.nonce(m.trader));
    let wrong = "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc";
    let ui = format!("127.0.0.1:{}", free_port());
    let child = st.executor(&ui).spawn().unwrap();

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/wallet.js");
    let page = std::process::Command::new("node")
        .arg(script)
        .env("NODE_PATH", &modules)
        .env("CHROMIUM", installed("HYPEFLOW_CHROMIUM", "chromium"))
        .env("URL", format!("http://{ui}/"))
        .env("RPC", &m.anvil.url)
        .env("ACCOUNT", &account)
        .env("WRONG", wrong)
        .output()
        .unwrap();
    // the executor runs until stopped, as in production: SIGTERM once the page is done
    let (status, out, err) = common::stop(child);
    let mut fills = topic_data(b, "orders.fills");
    fills.extend(topic_data(b, "orders.rejects"));
    let log = format!(
        "executor:\n{out}{err}\npage:\n{}\noutcomes: {fills:?}",
        String::from_utf8_lossy(&page.stderr)
    );
    assert!(page.status.success(), "{log}");
    assert!(status.success(), "{log}");
    assert!(out.contains("filled 1 rejected 2"), "{log}");
    let seen: serde_json::Value = serde_json::from_slice(&page.stdout).unwrap();
    let text = |k: &str| seen[k].as_str().unwrap_or_default().to_string();

    // the wrong account: refused by the page, naming both accounts, and by the server
    let refusal = text("wrong_account_message");
    assert!(
        refusal.contains(wrong) && refusal.contains(&account),
        "{refusal}"
    );
    assert_eq!(text("connected_with_wrong"), "not connected");
    assert_eq!(seen["server_wrong_account"]["status"], 409, "{seen}");
    assert!(seen["server_wrong_account"]["text"]
        .as_str()
        .unwrap()
        .contains("is not the configured account"));
    // what the wallet signs is on the page before the click
    let shown = text("swap_shown");
    for s in [
        "Buy TKA with 100 USD",
        "minimum receive",
        "deadline",
        "gas limit",
        &format!("{:#x}", m.uni.router),
    ] {
        assert!(shown.contains(s), "{s:?} not shown: {shown}");
    }
    assert!(text("allowance_shown").contains("allowance"), "{seen}");
    // the page had to move the wallet from chain 1 to anvil's
    let calls = seen["wallet_calls"].to_string();
    assert!(calls.contains("wallet_switchEthereumChain"), "{calls}");

    // intent 1 landed once, as the chain says (each intent has exactly one outcome)
    let by = |id: &str| {
        let f: Vec<&serde_json::Value> = fills.iter().filter(|f| f["intent_id"] == id).collect();
        assert_eq!(f.len(), 1, "{id}: {fills:?}");
        f[0].clone()
    };
    let f1 = by("buy-1");
    assert_eq!(f1["status"], "filled", "{f1}");
    assert_eq!(f1["tx_hash"].as_str(), Some(text("swap_hash").as_str()));
    let got = from_base_units(m.balance(m.tka, m.trader) - tka0, 18).unwrap();
    assert_eq!(f1["quantity"].as_str().unwrap(), got.to_string());
    // intent 2: refused in the wallet, with its reason; intent 3: expired
    let f2 = by("buy-2");
    assert_eq!(f2["status"], "rejected");
    assert!(
        f2["reason"]
            .as_str()
            .unwrap()
            .contains("User rejected the request"),
        "{f2}"
    );
    let f3 = by("buy-3");
    assert_eq!(f3["status"], "rejected");
    assert!(f3["reason"].as_str().unwrap().contains("expired"), "{f3}");
    assert_eq!(
        seen["intent3_had_allowance_offer"], false,
        "intent 2's allowance covers intent 3"
    );
    assert_eq!(seen["late_claim"]["status"], 404, "{seen}");
    // two allowances and one swap: nothing for the refused and the expired swaps
    assert_eq!(m.nonce(m.trader), nonce0 + 3);

    let j = Journal::open(&st.journal).unwrap();
    assert_eq!(j.state_text("buy-1").unwrap().as_deref(), Some("filled"));
    let txs = j.txs_of("buy-1").unwrap();
    assert_eq!(txs.len(), 1);
    assert_eq!(
        (txs[0].state.as_str(), txs[0].tx_hash.as_str()),
        ("confirmed", text("swap_hash").as_str())
    );
    for id in ["buy-2", "buy-3"] {
        assert_eq!(j.state_text(id).unwrap().as_deref(), Some("rejected"));
        assert!(j.txs_of(id).unwrap().is_empty(), "{id} has a transaction");
    }
}

fn json_rpc(url: &str, method: &str, params: serde_json::Value) -> serde_json::Value {
    let r: serde_json::Value = reqwest::blocking::Client::new()
        .post(url)
        .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(r["error"].is_null(), "{method}: {r}");
    r["result"].clone()
}

/// The open approvals' ids, polled until `want` is among them (panics after a minute).
fn await_offer(ui: &str, want: &str, never: &str) -> serde_json::Value {
    let t0 = std::time::Instant::now();
    loop {
        let open = reqwest::blocking::get(format!("http://{ui}/api/approvals"))
            .and_then(|r| r.json::<serde_json::Value>())
            .map(|v| v["open"].as_array().cloned().unwrap_or_default())
            .unwrap_or_default();
        assert!(
            !open.iter().any(|o| o["id"] == never),
            "{never} was offered again: {open:?}"
        );
        if let Some(o) = open.iter().find(|o| o["id"] == want) {
            return o.clone();
        }
        assert!(t0.elapsed().as_secs() < 60, "{want} never offered");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// SIGKILL while a wallet holds an offer: the wallet sends it after the executor died, and the restarted
/// executor finds it on chain by its call and confirms it, without offering it again; an offer never sent is
/// rejected once its deadline has passed. One swap in all.
#[test]
fn an_offer_outlives_a_killed_executor_and_is_settled_from_the_chain() {
    use alloy::sol_types::SolCall;
    use hypeflow::chain::contracts::IERC20;
    use std::os::unix::process::ExitStatusExt;
    let st = setup(|t| {
        t.replace("deadline_s = 120", "deadline_s = 20").replace(
            "receipt_timeout_s = 30",
            "receipt_timeout_s = 5\napproval_timeout_s = 15",
        )
    });
    let (m, b, account, journal) = (
        &st.m,
        st.broker.bootstrap.as_str(),
        st.account.clone(),
        &st.journal,
    );
    // the allowance given beforehand in the wallet: the executor offers swaps only
    let approve = IERC20::approveCall {
        spender: m.uni.router,
        amount: alloy::primitives::U256::MAX,
    };
    json_rpc(
        &m.anvil.url,
        "eth_sendTransaction",
        serde_json::json!([{"from": account,
        "to": format!("{:#x}", m.usd), "data": format!("0x{}", alloy::hex::encode(approve.abi_encode()))}]),
    );
    st.publish(&["buy-1", "buy-2"]);
    let (tka0, nonce0) = (m.balance(m.tka, m.trader), m.nonce(m.trader));
    let start = |ui: &str, idle: Option<&str>| {
        let mut c = st.executor(ui);
        if let Some(s) = idle {
            c.args(["--exit-when-idle", s]);
        }
        c.spawn().unwrap()
    };
    let kill = |mut c: std::process::Child| {
        c.kill().unwrap();
        assert_eq!(c.wait().unwrap().signal(), Some(9));
    };

    // 1. buy-1 is offered and claimed by a page; the executor dies; the wallet sends it anyway
    let ui = format!("127.0.0.1:{}", free_port());
    let first = start(&ui, None);
    let offer = await_offer(&ui, "buy-1", "");
    let tx: serde_json::Value = reqwest::blocking::Client::new()
        .post(format!("http://{ui}/api/approvals/buy-1/claim"))
        .body(serde_json::json!({"account": account}).to_string())
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(tx["data"], offer["tx"]["data"]);
    kill(first);
    assert_eq!(
        Journal::open(journal)
            .unwrap()
            .state_text("buy-1")
            .unwrap()
            .as_deref(),
        Some("offered")
    );
    let sent = json_rpc(&m.anvil.url, "eth_sendTransaction", serde_json::json!([tx]));

    // 2. restarted: buy-1 is settled from the chain, never offered again; buy-2 is offered, then the
    //    executor dies again with no wallet answer
    let ui = format!("127.0.0.1:{}", free_port());
    let second = start(&ui, None);
    await_offer(&ui, "buy-2", "buy-1");
    let j = Journal::open(journal).unwrap();
    assert_eq!(j.state_text("buy-1").unwrap().as_deref(), Some("filled"));
    kill(second);

    // 3. restarted: buy-2's deadline passes with nothing on chain, so it is rejected, not offered again
    let ui = format!("127.0.0.1:{}", free_port());
    let third = start(&ui, Some("3"));
    let o = third.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("recovered 1"), "{out}");
    assert_eq!(j.state_text("buy-2").unwrap().as_deref(), Some("rejected"));
    assert!(j.txs_of("buy-2").unwrap().is_empty());

    let txs = j.txs_of("buy-1").unwrap();
    assert_eq!(txs.len(), 1);
    assert_eq!(
        (txs[0].tx_hash.as_str(), txs[0].state.as_str()),
        (sent.as_str().unwrap(), "confirmed")
    );
    assert_eq!(m.nonce(m.trader), nonce0 + 1, "one swap, nothing more");
    let fills = topic_data(b, "orders.fills");
    assert_eq!(fills.len(), 1, "{fills:?}");
    let got = from_base_units(m.balance(m.tka, m.trader) - tka0, 18).unwrap();
    assert_eq!(fills[0]["quantity"].as_str().unwrap(), got.to_string());
    let rejects = topic_data(b, "orders.rejects");
    let r2: Vec<_> = rejects
        .iter()
        .filter(|r| r["intent_id"] == "buy-2")
        .collect();
    assert_eq!(r2.len(), 1, "{rejects:?}");
    assert!(
        r2[0]["reason"]
            .as_str()
            .unwrap()
            .contains("not sent by its deadline"),
        "{r2:?}"
    );
}
