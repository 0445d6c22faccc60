//! `hypeflow up`: the keyless demo end to end (fills within two minutes, shown in a real browser as the
//! executor's journal has them), and the supervisor's restart and stop. `bash scripts/test.sh` installs
//! Debian's chromium and sets HYPEFLOW_CHROMIUM.

use crate::common;

use common::{bin, free_port, installed, stop};
use std::process::Stdio;
use std::time::{Duration, Instant};

fn state(addr: &str) -> Option<serde_json::Value> {
    hypeflow::net::install_tls();
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .ok()?
        .get(format!("http://{addr}/api/state"))
        .send()
        .ok()?
        .json()
        .ok()
}

/// The page as a headless browser renders it: (fill count, equity of the demo pipeline) as displayed.
fn page_figures(addr: &str) -> (String, String) {
    let o = std::process::Command::new(installed("HYPEFLOW_CHROMIUM", "chromium"))
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--timeout=6000",
            "--dump-dom",
        ])
        .arg(format!("http://{addr}/"))
        .stderr(Stdio::null())
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&o.stdout).into_owned();
    let after = |marker: &str| {
        dom.split(marker)
            .nth(1)
            .and_then(|s| s.split('<').next())
            .unwrap_or_default()
            .to_string()
    };
    (
        after("id=\"fill-count\">"),
        after("data-pipeline=\"demo\">"),
    )
}

#[test]
fn the_demo_fills_within_two_minutes_and_the_page_shows_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let ui = format!("127.0.0.1:{}", free_port());
    let up = bin()
        .args(["up", "--demo", "--ui-addr", &ui, "--state-dir"])
        .arg(dir.path().join("demo"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let mut filled = None;
    while t0.elapsed() < Duration::from_secs(150) {
        if let Some(s) = state(&ui).filter(|s| s["fills"].as_u64().unwrap_or(0) > 0) {
            filled = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let took = t0.elapsed();
    let Some(_) = filled else {
        let (_, out, err) = stop(up);
        panic!("no fill within 150 s\nstdout: {out}\nstderr: {err}");
    };
    assert!(took < Duration::from_secs(150), "first fill after {took:?}");
    // the page against the journal's book: read the state before and after the browser, and compare when
    // no fill came in between
    let mut compared = false;
    for _ in 0..10 {
        let before = state(&ui).unwrap();
        let (count, equity) = page_figures(&ui);
        let after = state(&ui).unwrap();
        // a busy machine may dump the page before its first state arrived ("–"): look again
        if count == "–"
            || before["fills"] != after["fills"]
            || before["pipelines"][0]["equity"] != after["pipelines"][0]["equity"]
        {
            continue;
        }
        assert_eq!(count, after["fills"].to_string(), "fill count shown");
        let want: f64 = after["pipelines"][0]["equity"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(equity, format!("{want:.2}"), "equity shown");
        compared = true;
        break;
    }
    assert!(compared, "the book kept changing while the page was read");
    let (status, out, err) = stop(up);
    assert!(status.success(), "up after SIGTERM: {status}\n{err}");
    // the executor finished cleanly and said how much it did; the journal agrees with the page
    let line = out
        .lines()
        .find(|l| l.starts_with("[execute] filled "))
        .unwrap_or_else(|| panic!("no executor summary in\n{out}\n{err}"));
    let n: u64 = line.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!(n >= 1, "{line}");
    assert!(err.contains("[up] embedded dev-broker"), "{err}");
}

#[test]
fn a_dying_stage_is_restarted_with_backoff_and_a_stop_ends_everything() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("up.toml");
    std::fs::write(
        &file,
        "[deployment]\nname = \"t\"\n\n[[stage]]\nname = \"feed\"\nargs = [\"sample\", \"live\", \"--brokers\", \"{brokers}\", \"--speed\", \"0\"]\n",
    )
    .unwrap();
    let up = bin()
        .args(["up", "--config"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // exits at once (a bad --speed) -> restarted after 1 s, 2 s, 4 s, 8 s: in 10 s at least two restarts even
    // when the machine is loaded, and at most four whatever the speed (the backoff alone takes 15 s for five)
    std::thread::sleep(Duration::from_secs(10));
    let (status, _, err) = stop(up);
    assert!(status.success(), "{err}");
    assert!(
        err.contains("[feed] error: --speed 0 is out of range"),
        "{err}"
    );
    let restarts = err.matches("ALERT: stage feed exited").count();
    assert!(
        (2..=4).contains(&restarts),
        "{restarts} restarts in 10 s:\n{err}"
    );
    assert!(
        err.contains("restarting in 1s") && err.contains("restarting in 2s"),
        "{err}"
    );
}
