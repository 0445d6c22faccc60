//! The operations endpoint against a real Prometheus: `run` and `execute` serve /metrics, /healthz and /readyz
//! while they work, Prometheus scrapes them, and its query API sees exactly the counts the commands report.
//! `bash scripts/test.sh` installs Debian's prometheus and sets HYPEFLOW_PROMETHEUS.

use crate::common;

use common::{bin, dev_broker, free_port, installed, number_after, run_ok};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn get(url: &str) -> Option<(u16, String)> {
    hypeflow::net::install_tls();
    let c = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .ok()?;
    let r = c.get(url).send().ok()?;
    let status = r.status().as_u16();
    Some((status, r.text().unwrap_or_default()))
}

/// Polls `url` until it answers `status`, up to `within`; the last answer.
fn wait_for(url: &str, status: u16, within: Duration) -> Option<(u16, String)> {
    let t0 = Instant::now();
    let mut last = None;
    while t0.elapsed() < within {
        last = get(url);
        if last.as_ref().is_some_and(|(s, _)| *s == status) {
            return last;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    last
}

struct Prometheus {
    child: Child,
    port: u16,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn start(dir: &Path, targets: &[(&str, u16)]) -> Prometheus {
        let mut cfg =
            String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n");
        for (job, port) in targets {
            cfg.push_str(&format!(
                "  - job_name: {job}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
            ));
        }
        let file = dir.join("prometheus.yml");
        std::fs::write(&file, cfg).unwrap();
        let port = free_port();
        let child = std::process::Command::new(installed("HYPEFLOW_PROMETHEUS", "prometheus"))
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus");
        let p = Prometheus { child, port };
        let ready = wait_for(
            &format!("http://127.0.0.1:{port}/-/ready"),
            200,
            Duration::from_secs(30),
        );
        assert!(
            ready.is_some_and(|(s, _)| s == 200),
            "prometheus did not become ready"
        );
        p
    }

    /// The value of a PromQL expression that yields one sample (0 when it yields none).
    fn query(&self, promql: &str) -> f64 {
        hypeflow::net::install_tls();
        let c = reqwest::blocking::Client::new();
        let r: serde_json::Value = c
            .get(format!("http://127.0.0.1:{}/api/v1/query", self.port))
            .query(&[("query", promql)])
            .send()
            .and_then(|r| r.json())
            .unwrap_or_else(|e| panic!("query {promql}: {e}"));
        assert_eq!(r["status"], "success", "{promql}: {r}");
        r["data"]["result"][0]["value"][1]
            .as_str()
            .map_or(0.0, |v| v.parse().unwrap())
    }
}

fn spawn(args: &[&str]) -> Child {
    bin()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hypeflow")
}

fn finish(c: Child, what: &str) -> String {
    let o = c.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn prometheus_scrapes_run_and_execute_and_sees_their_counts() {
    let broker = dev_broker(2);
    let b = broker.bootstrap.as_str();
    let dir = tempfile::tempdir().unwrap();
    run_ok(&["publish", "--brokers", b, "--sample"]);
    let (p_run, p_exec) = (free_port(), free_port());
    let prom = Prometheus::start(dir.path(), &[("run", p_run), ("execute", p_exec)]);
    let run_addr = format!("127.0.0.1:{p_run}");
    let exec_addr = format!("127.0.0.1:{p_exec}");
    let journal = dir.path().join("journal.sqlite");
    let executor = spawn(&[
        "execute",
        "--venue",
        "paper",
        "--clock",
        "event",
        "--brokers",
        b,
        "--journal",
        journal.to_str().unwrap(),
        "--exit-when-idle",
        "12",
        "--metrics-addr",
        &exec_addr,
    ]);
    let run = spawn(&[
        "run",
        "--brokers",
        b,
        "--positions",
        "model",
        "--exit-when-idle",
        "12",
        "--metrics-addr",
        &run_addr,
    ]);

    // alive at once; ready once the source holds its partitions and the executor its group's
    let health = wait_for(
        &format!("http://{run_addr}/healthz"),
        200,
        Duration::from_secs(20),
    );
    assert!(health.is_some_and(|(_, body)| body.trim() == "ok"));
    for addr in [&run_addr, &exec_addr] {
        let ready = wait_for(
            &format!("http://{addr}/readyz"),
            200,
            Duration::from_secs(30),
        );
        let (_, body) = ready.unwrap_or_else(|| panic!("{addr} never became ready"));
        let r: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(r["ready"], true, "{body}");
        assert!(
            r["checks"].as_array().is_some_and(|c| !c.is_empty()),
            "{body}"
        );
    }
    let (_, text) = get(&format!("http://{exec_addr}/metrics")).unwrap();
    assert!(text.contains("# TYPE hypeflow_build_info gauge"), "{text}");

    let run_out = finish(run, "run");
    let exec_out = finish(executor, "execute");
    let intents = number_after(&run_out, "published");
    let (ticks, posts) = (
        number_after(&run_out, "ticks"),
        number_after(&run_out, "posts"),
    );
    let (filled, rejected) = (
        number_after(&exec_out, "filled"),
        number_after(&exec_out, "rejected"),
    );
    assert!(intents > 10 && filled > 0, "{run_out}\n{exec_out}");

    // the targets are gone now; their last samples are still in Prometheus
    let q = |metric: &str, matchers: &str| {
        prom.query(&format!("sum(max_over_time({metric}{{{matchers}}}[10m]))")) as u64
    };
    let run_job = "job=\"run\"";
    let exec_job = "job=\"execute\"";
    assert_eq!(q("hypeflow_intents_total", run_job), intents);
    assert_eq!(
        q(
            "hypeflow_pipeline_records_total",
            "job=\"run\",kind=\"ticks\""
        ),
        ticks
    );
    assert!(q("hypeflow_records_in_total", run_job) >= ticks + posts);
    assert_eq!(q("hypeflow_decision_lag_seconds_count", run_job), intents);
    assert_eq!(
        q("hypeflow_intents_received_total", exec_job),
        filled + rejected
    );
    assert_eq!(q("hypeflow_fills_total", exec_job), filled);
    assert_eq!(q("hypeflow_rejects_total", exec_job), rejected);
    // every refusal of this run falls in a named class
    assert_eq!(
        q("hypeflow_rejects_total", "job=\"execute\",reason=\"other\""),
        0
    );
    assert_eq!(
        q(
            "hypeflow_execution_latency_seconds_count",
            "job=\"execute\",stage=\"received_to_outcome\""
        ),
        filled + rejected
    );
}
