//! `hypeflow up`: every stage of a deployment as its own child process, supervised. A stage that dies is
//! restarted with backoff (1 s doubling to 60 s, back to 1 s once it has run a minute); a stage that ends with
//! success is done. Its output lines are prefixed with its name. A stop (SIGINT/SIGTERM) sends SIGTERM to the
//! stages in reverse order (the executor finishes the intent in hand), waits, and kills what is left. The
//! members of a cluster group (a `run` over several processes) are restarted together.

pub mod config;

pub use config::{DeploymentConfig, StageSpec};

use crate::telemetry::names;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum SuperviseError {
    #[error("cannot start stage {stage} ({program}): {source}")]
    Spawn {
        stage: String,
        program: String,
        source: std::io::Error,
    },
    #[error("stage {stage} is essential and died ({status}): {what}")]
    Essential {
        stage: String,
        status: String,
        what: String,
    },
}

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A stage up this long has its backoff reset.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);
/// How long a stopping stage gets after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(30);

enum State {
    Running { child: Child, since: Instant },
    Waiting { until: Instant },
    Done,
}

struct Stage {
    spec: StageSpec,
    state: State,
    backoff: Duration,
    restarts: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UpReport {
    /// (stage, restarts) for every stage.
    pub restarts: Vec<(String, u64)>,
}

/// Starts one stage's process with its output prefixed.
fn spawn(program: &PathBuf, spec: &StageSpec) -> Result<Child, SuperviseError> {
    let mut c = Command::new(program);
    c.args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().map_err(|source| SuperviseError::Spawn {
        stage: spec.name.clone(),
        program: program.display().to_string(),
        source,
    })?;
    if let Some(out) = child.stdout.take() {
        prefix_lines(spec.name.clone(), out, false);
    }
    if let Some(err) = child.stderr.take() {
        prefix_lines(spec.name.clone(), err, true);
    }
    metrics::gauge!(names::STAGE_UP, "stage" => spec.name.clone()).set(1.0);
    Ok(child)
}

fn prefix_lines(name: String, r: impl std::io::Read + Send + 'static, err: bool) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            if err {
                eprintln!("[{name}] {line}");
            } else {
                println!("[{name}] {line}");
            }
        }
    });
}

/// Runs the stages until every one is done or `stop` is set.
pub fn run(
    program: PathBuf,
    specs: Vec<StageSpec>,
    stop: &AtomicBool,
) -> Result<UpReport, SuperviseError> {
    let mut stages = Vec::new();
    for spec in specs {
        let child = spawn(&program, &spec)?;
        tracing::info!("stage {} started (pid {})", spec.name, child.id());
        stages.push(Stage {
            spec,
            state: State::Running {
                child,
                since: Instant::now(),
            },
            backoff: FIRST_BACKOFF,
            restarts: 0,
        });
    }
    let result = supervise(&program, &mut stages, stop);
    stop_all(&mut stages);
    result?;
    Ok(UpReport {
        restarts: stages
            .iter()
            .map(|s| (s.spec.name.clone(), s.restarts))
            .collect(),
    })
}

fn supervise(
    program: &PathBuf,
    stages: &mut [Stage],
    stop: &AtomicBool,
) -> Result<(), SuperviseError> {
    while !stop.load(Ordering::Relaxed) {
        if stages.iter().all(|s| matches!(s.state, State::Done)) {
            return Ok(());
        }
        for i in 0..stages.len() {
            if let Some((status, since)) = step(program, &mut stages[i])? {
                restart_group(stages, i, &status, since);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// One look at a stage: notice an exit, schedule or make a restart. A cluster group's member that exited is
/// returned (with when it started) for [`restart_group`].
fn step(
    program: &PathBuf,
    s: &mut Stage,
) -> Result<Option<(std::process::ExitStatus, Instant)>, SuperviseError> {
    let now = Instant::now();
    match &mut s.state {
        State::Running { child, since } => {
            let Ok(Some(status)) = child.try_wait() else {
                return Ok(None);
            };
            metrics::gauge!(names::STAGE_UP, "stage" => s.spec.name.clone()).set(0.0);
            if s.spec.group.is_some() {
                return Ok(Some((status, *since)));
            }
            if status.success() && !s.spec.restart_on_success {
                println!("[up] stage {} finished", s.spec.name);
                s.state = State::Done;
                return Ok(None);
            }
            if s.spec.essential {
                return Err(SuperviseError::Essential {
                    stage: s.spec.name.clone(),
                    status: status.to_string(),
                    what: s.spec.essential_why.clone(),
                });
            }
            let backoff = backoff_for(s.backoff, *since, now);
            alert_restart(
                s.spec.name.clone(),
                format!(
                    "stage {} exited ({status}); restarting in {backoff:?}",
                    s.spec.name
                ),
            );
            wait_then_double(s, backoff, now);
        }
        State::Waiting { until } if now >= *until => {
            let child = spawn(program, &s.spec)?;
            s.restarts += 1;
            metrics::counter!(names::STAGE_RESTARTS, "stage" => s.spec.name.clone()).increment(1);
            s.state = State::Running { child, since: now };
        }
        _ => {}
    }
    Ok(None)
}

/// A member of a cluster group exited: the others cannot go on without it (and stop themselves when they
/// notice), so every member is stopped and the whole group starts again after the backoff, resuming from
/// its committed watermarks.
fn restart_group(
    stages: &mut [Stage],
    exited: usize,
    status: &std::process::ExitStatus,
    since: Instant,
) {
    let now = Instant::now();
    let group = stages[exited].spec.group.clone();
    let who = stages[exited].spec.name.clone();
    let backoff = backoff_for(stages[exited].backoff, since, now);
    let mut members = 0;
    for s in stages.iter_mut().filter(|s| s.spec.group == group) {
        if let State::Running { child, .. } = &mut s.state {
            terminate(&s.spec.name, child);
        }
        metrics::gauge!(names::STAGE_UP, "stage" => s.spec.name.clone()).set(0.0);
        wait_then_double(s, backoff, now);
        members += 1;
    }
    let group = group.unwrap_or_default();
    let what = format!(
        "stage {who} exited ({status}); restarting the group {group} ({members} processes) in {backoff:?}"
    );
    alert_restart(group, what);
}

/// The wait before a restart: the stage's backoff, back to the first once it had run a while.
fn backoff_for(backoff: Duration, since: Instant, now: Instant) -> Duration {
    if now.duration_since(since) >= HEALTHY_AFTER {
        FIRST_BACKOFF
    } else {
        backoff
    }
}

/// Schedules the restart after `backoff` and doubles the next one.
fn wait_then_double(s: &mut Stage, backoff: Duration, now: Instant) {
    s.state = State::Waiting {
        until: now + backoff,
    };
    s.backoff = (backoff * 2).min(MAX_BACKOFF);
}

/// An `ALERT` line and the alert channels, for a stage (or group) restarting.
fn alert_restart(subject: String, what: String) {
    eprintln!("[up] ALERT: {what}");
    crate::alerts::notify(crate::alerts::Kind::Restart, subject, what);
}

/// SIGTERM, then a kill if it is still running after the grace.
fn terminate(name: &str, child: &mut Child) {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    let t0 = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return,
            Ok(None) if t0.elapsed() < STOP_GRACE => std::thread::sleep(Duration::from_millis(100)),
            _ => {
                eprintln!("[up] stage {name} did not stop within {STOP_GRACE:?}: killed");
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
        }
    }
}

/// SIGTERM to every running stage, last started first; what is still running after the grace is killed.
fn stop_all(stages: &mut [Stage]) {
    for s in stages.iter_mut().rev() {
        if let State::Running { child, .. } = &mut s.state {
            terminate(&s.spec.name, child);
        }
        metrics::gauge!(names::STAGE_UP, "stage" => s.spec.name.clone()).set(0.0);
        s.state = State::Done;
    }
}
