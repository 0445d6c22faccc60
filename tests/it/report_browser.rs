//! The backtest report read in a real browser (Debian's headless Chromium, driven by puppeteer-core from npm
//! through tests/browser/report.js): the hover shows the equity and buy-and-hold values of the point under the
//! pointer, and the per-token picture carries one entry and one exit marker per trade of the token, with the
//! trade's own prices and its stop, and the token's sentiment on the same time axis.

use crate::common::{installed, puppeteer_modules};

/// A Decimal's text as the report writes it: at most 8 decimals, no trailing zeros.
fn shown(v: &str) -> String {
    let d: rust_decimal::Decimal = v.parse().unwrap();
    d.round_dp(8).normalize().to_string()
}

#[test]
fn the_report_shows_hover_values_and_each_trade_on_its_token_picture_in_a_browser() {
    let modules = puppeteer_modules();
    let dir = tempfile::tempdir().unwrap();
    let st = std::process::Command::new(env!("CARGO_BIN_EXE_hypeflow"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["backtest", "--quiet", "--out", dir.path().to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success());
    let page = std::process::Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/browser/report.js"
        ))
        .env("NODE_PATH", &modules)
        .env("CHROMIUM", installed("HYPEFLOW_CHROMIUM", "chromium"))
        .env("REPORT", dir.path().join("report.html"))
        .output()
        .unwrap();
    assert!(
        page.status.success(),
        "{}",
        String::from_utf8_lossy(&page.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&page.stdout).unwrap();
    let text = |k: &str| seen[k].as_str().unwrap_or_default().to_string();
    assert_eq!(seen["errors"], serde_json::json!([]), "{seen}");
    assert!(seen["charts"].as_u64().unwrap() >= 8, "{seen}");

    // the equity hover: the time of the nearest point and its value, as equity.csv has it
    let hover = text("equity_hover");
    let (when, rest) = hover
        .split_once("  ·  ")
        .unwrap_or_else(|| panic!("{seen}"));
    let stamp = format!("{}:00.000Z", when.replace(' ', "T"));
    let equity = std::fs::read_to_string(dir.path().join("equity.csv")).unwrap();
    let value = equity
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{stamp},")))
        .unwrap_or_else(|| panic!("{stamp} is not a point of the curve: {hover}"));
    let v: f64 = value.parse().unwrap();
    assert!(
        rest.starts_with(&format!("strategy {v:.1}  ·  buy and hold (equal weight) ")),
        "{hover} vs {value}"
    );
    assert_eq!(text("hidden_after"), "none");

    // the token picture: a marker pair per trade of the token, with the trade's prices, and its stops
    let token = text("token");
    let trades = std::fs::read_to_string(dir.path().join("trades.csv")).unwrap();
    let own: Vec<Vec<&str>> = trades
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|c| c[0] == token)
        .collect();
    assert_eq!(
        text("token_heading"),
        format!("{token}: {} trades", own.len())
    );
    let entries = seen["entries"].as_array().unwrap();
    let exits = seen["exits"].as_array().unwrap();
    assert_eq!(
        (entries.len(), exits.len()),
        (own.len(), own.len()),
        "{seen}"
    );
    let mut expected: Vec<String> = own
        .iter()
        .map(|c| format!("entry {} at {}, stop ", c[2], shown(c[3])))
        .collect();
    let mut titles: Vec<String> = entries
        .iter()
        .map(|t| {
            let t = t.as_str().unwrap();
            t[..t.find(", stop ").map_or(t.len(), |i| i + 7)].to_string()
        })
        .collect();
    expected.sort();
    titles.sort();
    assert_eq!(
        titles, expected,
        "every entry marker names its trade and stop"
    );
    assert_eq!(seen["stops"].as_u64().unwrap() as usize, own.len());
    for c in &own {
        let exit = format!("exit {} at {} ({})", c[4], shown(c[5]), c[10]);
        assert!(
            exits.iter().any(|t| t.as_str().unwrap().starts_with(&exit)),
            "{exit} not among {exits:?}"
        );
    }
    assert!(text("price_hover").contains("  ·  close "), "{seen}");
    assert!(
        text("sentiment_hover").contains("  ·  sentiment "),
        "{seen}"
    );
}
