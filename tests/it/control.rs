//! Operator commands to a running paper executor through `hypeflow ctl` and a dev broker: pause stops entries,
//! resume lets them through, flatten sells what is held, kill stops everything, status reports it; a command
//! signed with another secret is dead-lettered and never obeyed.

use crate::common;

use common::{bin, dev_broker, publish_file, run_ok, topic_data};
use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "s3cret-for-tests";

/// Every sample token's last tick price.
fn last_prices() -> BTreeMap<String, String> {
    let mut last = BTreeMap::new();
    for l in common::read(&common::sample("ticks.jsonl")).lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        last.insert(
            v["token"].as_str().unwrap().to_string(),
            v["price"].as_str().unwrap().to_string(),
        );
    }
    last
}

/// Buy intents for every sample token at its last tick price, decided now.
fn buys(dir: &std::path::Path, tag: &str) -> (std::path::PathBuf, usize) {
    let last = last_prices();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let lines: Vec<String> = last
        .iter()
        .map(|(token, price)| {
            serde_json::json!({"id": format!("{tag}-{token}"), "pipeline_id": "ctl-test", "token": token,
                "side": "buy", "notional": "100", "reference_price": price, "max_slippage_bps": "100",
                "protection": {}, "reason": "test", "decision_time": now, "inputs_version": "v"})
            .to_string()
        })
        .collect();
    let p = dir.join(format!("{tag}.jsonl"));
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    (p, lines.len())
}

/// A tick for every sample token at its last price, `ahead` seconds from now: the paper venue fills an
/// intent at the first tick after its decision, and the sample's own ticks are from 2025.
fn fresh_ticks(b: &str, dir: &std::path::Path, ahead: i64) {
    let last = last_prices();
    let at = (chrono::Utc::now() + chrono::Duration::seconds(ahead))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let lines: Vec<String> = last
        .iter()
        .map(|(token, price)| {
            serde_json::json!({"token": token, "price": price, "volume": "1", "source": "test",
                "event_time": at})
            .to_string()
        })
        .collect();
    let p = dir.join(format!("ticks-{ahead}.jsonl"));
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    publish_file(b, "market.ticks", &p);
}

fn ctl(b: &str, secret: &str, args: &[&str]) -> std::process::Output {
    let wait = if args.contains(&"--wait") {
        vec![]
    } else {
        vec!["--wait", "15"]
    };
    bin()
        .args(["ctl"])
        .args(args)
        .args(["--brokers", b])
        .args(wait)
        .env(hypeflow::execution::control::SECRET_ENV, secret)
        .output()
        .unwrap()
}

fn ctl_ok(b: &str, args: &[&str]) -> String {
    let o = ctl(b, SECRET, args);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "ctl {args:?}: {out} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// Outcomes (fills and rejects) of the intents whose id starts with `tag`, once there are `n`.
fn outcomes(b: &str, tag: &str, n: usize) -> Vec<serde_json::Value> {
    let start = Instant::now();
    loop {
        let got: Vec<serde_json::Value> = ["orders.fills", "orders.rejects"]
            .iter()
            .flat_map(|t| topic_data(b, t))
            .filter(|v| v["intent_id"].as_str().unwrap().starts_with(tag))
            .collect();
        if got.len() >= n || start.elapsed() > Duration::from_secs(30) {
            return got;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

struct Running(Child);
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

#[test]
fn signed_commands_pause_resume_flatten_and_kill_a_running_executor() {
    let broker = dev_broker(2);
    let b = broker.bootstrap.as_str();
    let dir = tempfile::tempdir().unwrap();
    common::publish_sample_ticks(b);
    let journal = dir.path().join("j.sqlite");
    let jp = journal.to_str().unwrap();
    // the sample's ticks are from 2025: the stale-data breaker is off here
    let ladder = common::ladder(dir.path(), &[]);
    let _exec = Running(
        bin()
            .args([
                "execute",
                "--brokers",
                b,
                "--journal",
                jp,
                "--exit-when-idle",
                "60",
            ])
            .arg("--capital")
            .arg(&ladder)
            .env(hypeflow::execution::control::SECRET_ENV, SECRET)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // paused: the first buys are refused
    assert!(ctl_ok(b, &["pause", "--reason", "before the open"]).contains("entries paused"));
    let (a, n) = buys(dir.path(), "a");
    publish_file(b, "orders.intents", &a);
    let got = outcomes(b, "a-", n);
    assert_eq!(got.len(), n);
    assert!(
        got.iter()
            .all(|v| v["reason"].as_str().unwrap().contains("entries paused")),
        "{got:?}"
    );

    // a command under another secret: no reply, dead-lettered, not obeyed
    let forged = ctl(b, "not-the-secret", &["resume", "--wait", "4"]);
    assert!(!forged.status.success());
    assert!(String::from_utf8_lossy(&forged.stderr).contains("no executor answered"));
    let dead = topic_data(b, "deadletter.control.commands");
    assert_eq!(dead.len(), 1, "{dead:?}");

    // resumed: the next buys fill
    ctl_ok(b, &["resume", "--reason", "open"]);
    let (bb, n) = buys(dir.path(), "b");
    publish_file(b, "orders.intents", &bb);
    // the market moves on after the decisions (and once more after the flatten below is decided)
    fresh_ticks(b, dir.path(), 1);
    fresh_ticks(b, dir.path(), 120);
    let got = outcomes(b, "b-", n);
    let filled = got.iter().filter(|v| v["status"] == "filled").count();
    assert_eq!(filled, n, "{got:?}");

    // flatten: everything held is sold, and entries pause
    let out = ctl_ok(b, &["flatten", "--reason", "end of day"]);
    assert!(
        out.contains(&format!("flattened: {n} positions sold, 0 refused")),
        "{out}"
    );
    let book: Vec<serde_json::Value> =
        serde_json::from_str(&run_ok(&["book", "--journal", jp, "--json"])).unwrap();
    assert!(
        book.iter()
            .all(|p| p["positions"].as_array().unwrap().is_empty()),
        "{book:?}"
    );
    let status = ctl_ok(b, &["status"]);
    assert!(status.contains("\"paused\": {"), "{status}");

    // kill: nothing trades until a resume
    ctl_ok(b, &["resume", "--reason", "next day"]);
    ctl_ok(b, &["kill", "--reason", "incident"]);
    let (c, n) = buys(dir.path(), "c");
    publish_file(b, "orders.intents", &c);
    let got = outcomes(b, "c-", n);
    assert!(
        got.iter().all(|v| v["reason"]
            .as_str()
            .unwrap()
            .contains("killed by an operator")),
        "{got:?}"
    );
    let refused = ctl(b, SECRET, &["flatten"]);
    assert!(!refused.status.success(), "no flatten while killed");
    assert!(ctl_ok(b, &["status"]).contains("\"killed\": \""));
}
