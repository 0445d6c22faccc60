//! Scale-out: `replay` and `run` as a timely cluster of two processes (`-n 2 -p I -h HOSTFILE`, one worker
//! each) give what one process with two workers and the file backtest give; under `hypeflow up` a group whose
//! member is SIGKILLed stops cleanly and restarts whole, resuming from its committed watermarks with the same
//! intent ids.

use crate::common;

use common::{bin, dev_broker, free_port, publish_file, read, run_ok, split_sample, topic_data};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A hostfile for a two-process cluster on free local ports.
fn hostfile(dir: &Path) -> PathBuf {
    let path = dir.join("hosts");
    let text = format!("127.0.0.1:{}\n127.0.0.1:{}\n", free_port(), free_port());
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `args` as both processes of a two-process cluster; returns process 0's and 1's stdout.
fn on_two_processes(args: &[&str], hosts: &Path) -> [String; 2] {
    on_two_processes_logged(args, hosts).map(|(out, _)| out)
}

/// As [`on_two_processes`], each process's stdout with its stderr (info logs: where each partition starts).
fn on_two_processes_logged(args: &[&str], hosts: &Path) -> [(String, String); 2] {
    let spawn = |p: &str| {
        bin()
            .args(args)
            .args(["-n", "2", "-p", p, "-h", hosts.to_str().unwrap()])
            .env("HYPEFLOW_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let children = [spawn("0"), spawn("1")];
    children.map(|c| {
        let o = c.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "hypeflow {args:?} in a cluster failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    })
}

fn sorted_by_id(mut v: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    v.sort_by_key(|i| i["id"].as_str().unwrap_or_default().to_string());
    v
}

#[test]
fn replay_over_two_processes_equals_two_workers_and_the_file_backtest() {
    let broker = dev_broker(4);
    let b = broker.bootstrap.as_str();
    run_ok(&["publish", "--brokers", b, "--sample"]);
    let dir = tempfile::tempdir().unwrap();
    let out = |name: &str| dir.path().join(name).display().to_string();
    let file = run_ok(&["backtest", "--out", &out("file")]);
    let w2 = run_ok(&["replay", "--brokers", b, "-w", "2", "--out", &out("w2")]);
    let hosts = hostfile(dir.path());
    let [first, _] = on_two_processes(&["replay", "--brokers", b, "--out", &out("n2")], &hosts);
    assert!(first.contains("dead-lettered          0"), "{first}");
    for f in ["intents.jsonl", "trades.csv", "equity.csv"] {
        let want = read(&dir.path().join("file").join(f));
        assert!(want.lines().count() > 5, "{f} should not be trivial");
        for (variant, printed) in [("w2", &w2), ("n2", &first)] {
            let got = read(&dir.path().join(variant).join(f));
            // on a failure (seen now and then under full-suite load) both summaries and the first difference
            let first_diff = got.lines().zip(want.lines()).find(|(g, w)| g != w);
            assert!(
                got == want,
                "{f}: replay {variant} differs from the file backtest ({} lines vs {}); first difference \
                 {first_diff:?}\n--- replay {variant}:\n{printed}\n--- file backtest:\n{file}",
                got.lines().count(),
                want.lines().count()
            );
        }
    }
}

#[test]
fn live_run_over_two_processes_publishes_the_backtests_intents() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    run_ok(&["backtest", "--quiet", "--out", file.to_str().unwrap()]);
    let want = sorted_by_id(common::read_jsonl(&file.join("intents.jsonl")));
    assert!(want.len() > 10);
    let hosts = hostfile(dir.path());
    let live = ["run", "--positions", "model", "--exit-when-idle", "3"];
    for variant in ["w2", "n2"] {
        // a broker each, so each variant's topic holds only its own intents
        let broker = dev_broker(4);
        let b = broker.bootstrap.as_str();
        run_ok(&["publish", "--brokers", b, "--sample"]);
        let args: Vec<&str> = live.iter().copied().chain(["--brokers", b]).collect();
        let printed = if variant == "w2" {
            run_ok(&[args.as_slice(), &["-w", "2"]].concat())
        } else {
            let [(first, log0), (second, log1)] = on_two_processes_logged(&args, &hosts);
            assert!(
                second.contains("intents published 0"),
                "only process 0 decides: {second}"
            );
            // on a failure, both processes' counts and logs (this test has failed now and then on a loaded
            // machine with process 0 publishing fewer intents; the logs say where each partition started)
            format!("{first}\n--- process 1: {second}\n--- process 0 log:\n{log0}\n--- process 1 log:\n{log1}")
        };
        assert!(
            printed.contains(&format!("intents published {}", want.len())),
            "{variant}: {printed}"
        );
        assert_eq!(
            sorted_by_id(topic_data(b, "orders.intents")),
            want,
            "{variant}: the live run's intents differ from the file backtest's"
        );
    }
}

/// The pid of the live process whose command line has every one of `parts` (as whole arguments).
fn pid_with_args(parts: &[&str]) -> Option<i32> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let has = |want: &[&str]| args.windows(want.len()).any(|w| w == want);
        if parts.iter().all(|p| has(&p.split(' ').collect::<Vec<_>>())) {
            return Some(pid);
        }
    }
    None
}

fn wait_until(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    wait_or_tell(what, secs, &mut ok, String::new)
}

/// As [`wait_until`], with `tell()` in the failure.
fn wait_or_tell(what: &str, secs: u64, ok: &mut dyn FnMut() -> bool, tell: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(
            Instant::now() < deadline,
            "{what} within {secs} s\n{}",
            tell()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `up` with its output in a file the test can read while it runs.
fn start_up(config: &Path, log: &Path) -> Child {
    let f = std::fs::File::create(log).unwrap();
    bin()
        .args(["up", "--config", config.to_str().unwrap()])
        .env("HYPEFLOW_LOG", "info")
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .spawn()
        .unwrap()
}

#[test]
fn up_restarts_a_cluster_group_whole_after_a_sigkill_and_it_resumes() {
    // Two partitions and no idleness: each process's one worker owns one partition per topic and the
    // watermark always waits for both, so the result cannot depend on when the second half arrives.
    // Positions follow fills (the live default) and no executor runs, so nothing fills and the decisions
    // depend on the data alone: the reference is one uninterrupted run over the whole sample.
    let reference = dev_broker(2);
    let rb = reference.bootstrap.clone();
    run_ok(&["publish", "--brokers", &rb, "--sample"]);
    run_ok(&[
        "run",
        "--brokers",
        &rb,
        "--idle-ms",
        "600000",
        "--exit-when-idle",
        "3",
    ]);
    let want = sorted_by_id(topic_data(&rb, "orders.intents"));
    drop(reference);

    let broker = dev_broker(2);
    let b = broker.bootstrap.clone();
    let dir = tempfile::tempdir().unwrap();
    // cut the history where half the decisions are made, so the restarted group has decisions left
    let mut times: Vec<&str> = want
        .iter()
        .map(|i| i["decision_time"].as_str().unwrap())
        .collect();
    times.sort();
    let cut = times[times.len() / 2];
    let (ticks_a, ticks_b) = split_sample("ticks.jsonl", "event_time", cut, dir.path());
    let (posts_a, posts_b) = split_sample("tweets.jsonl", "created_at", cut, dir.path());
    publish_file(&b, "market.ticks", &ticks_a);
    publish_file(&b, "social.tweets", &posts_a);

    let name = format!("it-cluster-{}", std::process::id());
    let port = loop {
        let p = free_port();
        if p < 65000 && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            break p;
        }
    };
    let config = dir.path().join("up.toml");
    std::fs::write(
        &config,
        format!(
            "[deployment]\nname = \"{name}\"\nbrokers = \"{b}\"\n\n[[stage]]\nname = \"run\"\n\
             args = [\"run\", \"--brokers\", \"{{brokers}}\", \"--idle-ms\", \"600000\"]\n\
             processes = 2\ncluster_port = {port}\n"
        ),
    )
    .unwrap();
    let log = dir.path().join("up.log");
    let mut up = StopOnDrop(start_up(&config, &log));
    let intents = || topic_data(&b, "orders.intents");
    wait_until("the group's first intents", 90, || !intents().is_empty());
    // let the first half finish: the intents stop coming
    let mut seen = 0;
    wait_until("the first half decided", 60, || {
        std::thread::sleep(Duration::from_secs(2));
        let n = intents().len();
        std::mem::replace(&mut seen, n) == n
    });

    let hostfile = std::env::temp_dir().join(format!("hypeflow-up-{name}/run.hosts"));
    let h = hostfile.display().to_string();
    let victim = pid_with_args(&["-p 1", &format!("-h {h}")]).expect("the group's process 1");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(victim).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    wait_until("the group restarted", 60, || {
        read(&log).contains("restarting the group run (2 processes)")
            && pid_with_args(&["-p 1", &format!("-h {h}")]).is_some_and(|p| p != victim)
    });
    // both processes pick up from what the group committed, not from the beginning
    let mut resumed = || {
        let told = read(&log);
        let after = &told[told.find("restarting the group").unwrap_or(0)..];
        ["[run-0]", "[run-1]"].iter().all(|m| {
            after
                .lines()
                .any(|l| l.starts_with(m) && l.contains("resuming from the committed watermark"))
        })
    };
    wait_or_tell("the restarted processes resuming", 30, &mut resumed, || {
        read(&log)
    });
    let told = read(&log);
    assert!(
        told.lines().any(|l| l.starts_with("[run-0]")
            && l.contains("ERROR")
            && l.contains("process 0 of the cluster lost its connection to a peer process")),
        "process 0 must stop with a clear message: {told}"
    );
    assert!(
        !told.contains("panicked"),
        "no panic on a peer's death: {told}"
    );

    publish_file(&b, "market.ticks", &ticks_b);
    publish_file(&b, "social.tweets", &posts_b);
    assert!(want.len() > seen, "the second half decides more");
    let distinct = |v: &[serde_json::Value]| {
        let mut d = sorted_by_id(v.to_vec());
        d.dedup();
        d
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while distinct(&intents()) != want {
        if Instant::now() > deadline {
            let got = distinct(&intents());
            let ids = |v: &[serde_json::Value]| -> Vec<String> {
                v.iter()
                    .map(|i| i["id"].as_str().unwrap_or_default().to_string())
                    .collect()
            };
            let (g, w) = (ids(&got), ids(&want));
            let missing: Vec<_> = w.iter().filter(|i| !g.contains(i)).collect();
            let extra: Vec<&serde_json::Value> = got.iter().filter(|i| !want.contains(i)).collect();
            panic!(
                "the group must decide every intent of both halves: {} of {} in, missing {missing:?}, \
                 not in the reference {extra:#?}\n{}",
                got.len(),
                want.len(),
                read(&log)
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    up.terminate();
    let status = up.0.wait().unwrap();
    assert!(status.success(), "up stops cleanly: {}", read(&log));
}

/// `up`, stopped (with its stages) when the test ends, failed or not.
struct StopOnDrop(Child);

impl StopOnDrop {
    fn terminate(&self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.0.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
    }
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.terminate();
        let _ = self.0.wait();
    }
}
