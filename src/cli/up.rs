//! `hypeflow up`: the whole live system as supervised stages, from a deployment file or as the keyless demo.

use super::ops::{self, MetricsArgs};
use anyhow::{bail, Context, Result};
use clap::Args;
use hypeflow::supervise::{self, DeploymentConfig, StageSpec};
use std::path::PathBuf;

#[derive(Args)]
pub struct UpArgs {
    /// The deployment file: its stages as hypeflow command lines (see deploy/up.example.toml)
    #[arg(long, required_unless_present = "demo", conflicts_with = "demo")]
    config: Option<PathBuf>,
    /// The keyless demo: an embedded broker, the synthetic market played 120 times faster than real time,
    /// pipelines/demo.toml, the paper executor and the dashboard (no keys, no network)
    #[arg(long)]
    demo: bool,
    /// Kafka bootstrap servers (over the file's); with neither, an embedded dev-broker that keeps nothing
    /// across restarts of `up`
    #[arg(long, env = "KAFKA_BOOTSTRAP")]
    brokers: Option<String>,
    /// The demo's dashboard (served by its executor stage)
    #[arg(long, default_value = "127.0.0.1:8080")]
    ui_addr: String,
    /// Where the demo keeps its executor journal; emptied at the start (the embedded broker starts empty too)
    #[arg(long, default_value = "out/demo")]
    state_dir: PathBuf,
    #[command(flatten)]
    metrics: MetricsArgs,
}

pub fn run(a: UpArgs) -> Result<()> {
    let _ops = a.metrics.start("up", false)?;
    hypeflow::alerts::init_from_env()?;
    let stop = ops::stop_flag()?;
    let file = match &a.config {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read the deployment file {}", p.display()))?;
            Some(DeploymentConfig::parse(&text, &p.display().to_string())?)
        }
        None => None,
    };
    let given = a
        .brokers
        .clone()
        .or_else(|| file.as_ref().and_then(|f| f.brokers.clone()));
    // the embedded broker lives as long as this process
    let (_embedded, brokers) = match given {
        Some(b) => (None, b),
        None => {
            let topics = hypeflow::kafka::topics::load(None)?;
            let cluster = hypeflow::kafka::dev_broker::start(1, &topics, None)?;
            let b = cluster.bootstrap_servers();
            eprintln!(
                "[up] embedded dev-broker at {b}: in memory, it keeps nothing across restarts of `up` \
                 (give --brokers for a real Kafka)"
            );
            (Some(cluster), b)
        }
    };
    let stages = match &file {
        Some(f) => with_hostfiles(f.stages_for(&brokers), &f.name)?,
        None => demo_stages(&a, &brokers)?,
    };
    let program =
        std::env::current_exe().context("cannot find the hypeflow binary to run the stages")?;
    let names: Vec<&str> = stages.iter().map(|s| s.name.as_str()).collect();
    eprintln!("[up] stages: {}", names.join(", "));
    if a.demo {
        eprintln!("[up] dashboard: http://{}/ (stop with Ctrl-C)", a.ui_addr);
    }
    let report = supervise::run(program, stages, &stop);
    hypeflow::alerts::flush(std::time::Duration::from_secs(10));
    let report = report?;
    for (stage, n) in report.restarts.iter().filter(|(_, n)| *n > 0) {
        eprintln!("[up] stage {stage} was restarted {n} times");
    }
    Ok(())
}

/// Writes each cluster group's hostfile (under the temp folder, per deployment) and names it in the members'
/// args.
fn with_hostfiles(mut stages: Vec<StageSpec>, deployment: &str) -> Result<Vec<StageSpec>> {
    let dir = std::env::temp_dir().join(format!("hypeflow-up-{deployment}"));
    for s in stages.iter_mut() {
        let (Some(group), Some(hosts)) = (&s.group, &s.hostfile) else {
            continue;
        };
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(format!("{group}.hosts"));
        std::fs::write(&path, hosts)
            .with_context(|| format!("cannot write the hostfile {}", path.display()))?;
        let path = path.display().to_string();
        for a in s.args.iter_mut() {
            if a == supervise::config::HOSTFILE_PLACEHOLDER {
                a.clone_from(&path);
            }
        }
    }
    Ok(stages)
}

/// The demo: the feed, the live run and the paper executor with the dashboard.
fn demo_stages(a: &UpArgs, brokers: &str) -> Result<Vec<StageSpec>> {
    if a.state_dir.as_os_str().is_empty() || a.state_dir == std::path::Path::new("/") {
        bail!("--state-dir must name a folder the demo may empty");
    }
    let _ = std::fs::remove_dir_all(&a.state_dir);
    std::fs::create_dir_all(&a.state_dir)
        .with_context(|| format!("cannot create {}", a.state_dir.display()))?;
    let journal = a.state_dir.join("journal.sqlite").display().to_string();
    let pipeline = super::locate(std::path::Path::new("pipelines/demo.toml"))
        .display()
        .to_string();
    let feed = StageSpec::new(
        "feed",
        &["sample", "live", "--brokers", brokers, "--speed", "120"],
    );
    let mut run = StageSpec::new(
        "run",
        &["run", "--brokers", brokers, "--pipeline", &pipeline],
    );
    run.restart_on_success = true;
    let mut execute = StageSpec::new(
        "execute",
        &[
            "execute",
            "--venue",
            "paper",
            "--brokers",
            brokers,
            "--pipeline",
            &pipeline,
            "--journal",
            &journal,
            "--ui-addr",
            &a.ui_addr,
        ],
    );
    execute.restart_on_success = true;
    Ok(vec![feed, run, execute])
}
