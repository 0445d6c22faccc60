//! Alerts from a running executor to a fake Telegram Bot API (which first answers 429 with `retry_after`, as
//! Telegram does) and to a webhook that always fails: fills arrive as messages to the configured chat, the
//! pause is honoured, the failing channel does not stop trading, and the bot token appears in no output.

use crate::common;

use common::fake_http::{FakeHttp, Reply};
use common::{bin, dev_broker, number_after, run_ok};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const TOKEN: &str = "123456:SECRET-bot-token";

#[test]
fn fills_reach_telegram_after_its_pause_and_a_failing_webhook_blocks_nothing() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let telegram = FakeHttp::start(move |_| {
        if c.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::json(
                429,
                serde_json::json!({"ok": false, "error_code": 429,
                    "description": "Too Many Requests: retry after 1", "parameters": {"retry_after": 1}}),
            )
        } else {
            Reply::json(
                200,
                serde_json::json!({"ok": true, "result": {"message_id": 1}}),
            )
        }
    });
    let webhook = FakeHttp::start(|_| Reply::json(500, serde_json::json!({"error": "down"})));

    let broker = dev_broker(2);
    let b = broker.bootstrap.as_str();
    let dir = tempfile::tempdir().unwrap();
    let bt = dir.path().join("bt");
    run_ok(&["backtest", "--quiet", "--out", bt.to_str().unwrap()]);
    common::publish_sample_ticks(b);
    let intents = bt.join("intents.jsonl");
    run_ok(&[
        "publish",
        "--brokers",
        b,
        "--topic",
        "orders.intents",
        intents.to_str().unwrap(),
    ]);
    let journal = dir.path().join("j.sqlite");
    let o = bin()
        .args([
            "execute",
            "--venue",
            "paper",
            "--clock",
            "event",
            "--brokers",
            b,
            "--journal",
        ])
        .arg(&journal)
        .args(["--exit-when-idle", "4"])
        .env("HYPEFLOW_TELEGRAM_BOT_TOKEN", TOKEN)
        .env("HYPEFLOW_TELEGRAM_CHAT_ID", "-100042")
        .env("HYPEFLOW_TELEGRAM_API", &telegram.url)
        .env(
            "HYPEFLOW_ALERT_WEBHOOK_URL",
            format!("{}/hook", webhook.url),
        )
        .env("HYPEFLOW_ALERTS", "fill")
        .env("HYPEFLOW_LOG", "warn")
        .output()
        .unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{err}");
    let filled = number_after(&out, "filled");
    assert!(filled > 0, "{out}");
    assert!(
        !out.contains("SECRET") && !err.contains("SECRET"),
        "the token leaked:\n{out}\n{err}"
    );

    let sent = telegram.requests_to(&format!("/bot{TOKEN}/sendMessage"));
    assert!(sent.len() >= 2, "{} requests", sent.len());
    // the first was refused with retry_after 1: the next waited it out
    assert!(sent[1].at.duration_since(sent[0].at) >= Duration::from_millis(900));
    let msg: serde_json::Value = serde_json::from_str(&sent[1].body).unwrap();
    assert_eq!(msg["chat_id"], "-100042");
    assert!(
        msg["text"].as_str().unwrap().starts_with("hypeflow fill: "),
        "{msg}"
    );
    // Telegram's budget (20 a minute) caps the messages; the fills beyond it are dropped, not queued forever
    assert!(
        sent.len() <= 21,
        "{} messages for {filled} fills",
        sent.len()
    );
    let hooked = webhook.requests_to("/hook");
    assert!(!hooked.is_empty());
    let h: serde_json::Value = serde_json::from_str(&hooked[0].body).unwrap();
    assert_eq!(
        (h["source"].as_str(), h["kind"].as_str()),
        (Some("hypeflow"), Some("fill"))
    );
    assert!(err.contains("alert to webhook not sent: HTTP 500"), "{err}");
}
