//! The deployment file of `hypeflow up --config FILE`: which stages run, each a hypeflow command line. Keys
//! come from the environment the stages inherit, never from this file.
//!
//! ```toml
//! [deployment]
//! name = "live"
//! brokers = "kafka-1:9092"    # absent: an embedded dev-broker, which keeps nothing across restarts
//!
//! [[stage]]
//! name = "prices"
//! args = ["ingest", "prices", "--feeds", "feeds/prices.toml", "--out", "kafka:{brokers}"]
//! metrics_port = 9465         # optional: the stage serves --metrics-addr 127.0.0.1:9465
//!
//! [[stage]]
//! name = "run"
//! args = ["run", "--brokers", "{brokers}"]
//! processes = 2               # optional: members run-0 and run-1, one timely cluster, restarted together
//! ```

use serde::Deserialize;

/// The commands a stage may run: the long-running ones.
const STAGE_COMMANDS: &[&str] = &["ingest", "score", "run", "execute", "sample"];
pub const MAX_STAGES: usize = 32;
const MAX_ARGS: usize = 128;

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("deployment file {origin}: {message}")]
pub struct ConfigError {
    pub origin: String,
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    deployment: RawDeployment,
    #[serde(default)]
    stage: Vec<RawStage>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeployment {
    name: String,
    brokers: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    name: String,
    args: Vec<String>,
    metrics_port: Option<u16>,
    /// A `run` stage as a timely cluster of this many processes on this machine (`-n N -p I -h HOSTFILE`).
    processes: Option<usize>,
    /// The first of the group's consecutive cluster ports on 127.0.0.1 (default 2101).
    cluster_port: Option<u16>,
}

/// A cluster group's size: one process is not a group; past 16 a deployment belongs on several machines.
pub const MAX_GROUP_PROCESSES: usize = 16;
const DEFAULT_CLUSTER_PORT: u16 = 2101;
/// In a group member's args, replaced by the path of the group's hostfile (which `up` writes).
pub const HOSTFILE_PLACEHOLDER: &str = "{hostfile}";

/// One supervised process: `hypeflow ARGS`.
#[derive(Debug, Clone, PartialEq)]
pub struct StageSpec {
    pub name: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Restarted even after a clean exit (a stage meant to run forever).
    pub restart_on_success: bool,
    /// Its death stops the whole deployment (with this reason) instead of a restart.
    pub essential: bool,
    pub essential_why: String,
    /// A member of a cluster group: when one member dies every member is stopped and the group restarts
    /// together (a timely cluster cannot take a process back).
    pub group: Option<String>,
    /// The group's hostfile (one host:port per line), for the member args' `{hostfile}`.
    pub hostfile: Option<String>,
}

impl StageSpec {
    pub fn new(name: &str, args: &[&str]) -> StageSpec {
        StageSpec {
            name: name.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: Vec::new(),
            restart_on_success: false,
            essential: false,
            essential_why: String::new(),
            group: None,
            hostfile: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentConfig {
    pub name: String,
    /// None: the deployment runs on an embedded dev-broker.
    pub brokers: Option<String>,
    /// The stages with `{brokers}` still in their arguments (see [`DeploymentConfig::stages_for`]).
    pub stages: Vec<StageSpec>,
}

impl DeploymentConfig {
    pub fn parse(text: &str, origin: &str) -> Result<DeploymentConfig, ConfigError> {
        let err = |message: String| ConfigError {
            origin: origin.into(),
            message,
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        let name = raw.deployment.name.trim().to_string();
        let ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if name.is_empty() || name.len() > 64 || !name.chars().all(ok) {
            return Err(err(
                "[deployment] name must have 1 to 64 letters, digits, - or _ (it names a temp folder)"
                    .into(),
            ));
        }
        if raw.stage.is_empty() || raw.stage.len() > MAX_STAGES {
            return Err(err(format!("give 1 to {MAX_STAGES} [[stage]] tables")));
        }
        let mut stages: Vec<StageSpec> = Vec::new();
        for s in raw.stage {
            let made = check_stage(s, &stages).map_err(err)?;
            stages.extend(made);
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = stages.iter().find(|s| !seen.insert(s.name.as_str())) {
            return Err(err(format!("two stages are named {}", dup.name)));
        }
        if stages.len() > MAX_STAGES {
            return Err(err(format!(
                "{} processes in all: at most {MAX_STAGES}",
                stages.len()
            )));
        }
        Ok(DeploymentConfig {
            name,
            brokers: raw.deployment.brokers.filter(|b| !b.trim().is_empty()),
            stages,
        })
    }

    /// The stages with `{brokers}` replaced by the bootstrap servers the deployment uses.
    pub fn stages_for(&self, brokers: &str) -> Vec<StageSpec> {
        self.stages
            .iter()
            .map(|s| StageSpec {
                args: s
                    .args
                    .iter()
                    .map(|a| a.replace("{brokers}", brokers))
                    .collect(),
                ..s.clone()
            })
            .collect()
    }
}

fn check_stage(s: RawStage, earlier: &[StageSpec]) -> Result<Vec<StageSpec>, String> {
    let name = s.name.trim();
    let ok_name = !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok_name {
        return Err(format!(
            "stage name {:?}: use 1 to 32 letters, digits, - or _",
            s.name
        ));
    }
    if earlier
        .iter()
        .any(|e| e.name == name || e.group.as_deref() == Some(name))
    {
        return Err(format!("two stages are named {name}"));
    }
    match s.args.first() {
        Some(c) if STAGE_COMMANDS.contains(&c.as_str()) => {}
        Some(c) => {
            return Err(format!(
                "stage {name} runs `{c}`: a stage runs one of {}",
                STAGE_COMMANDS.join(", ")
            ))
        }
        None => return Err(format!("stage {name} has no args")),
    }
    if s.args.len() > MAX_ARGS {
        return Err(format!("stage {name} has over {MAX_ARGS} args"));
    }
    if s.metrics_port == Some(0) {
        return Err(format!("stage {name}: metrics_port must be 1 to 65535"));
    }
    let with_metrics = |mut args: Vec<String>, offset: u16| {
        if let Some(port) = s.metrics_port {
            args.push("--metrics-addr".into());
            args.push(format!("127.0.0.1:{}", port + offset));
        }
        args
    };
    let Some(n) = s.processes else {
        if s.cluster_port.is_some() {
            return Err(format!("stage {name}: cluster_port needs processes"));
        }
        let mut spec = StageSpec::new(name, &[]);
        spec.args = with_metrics(s.args.clone(), 0);
        spec.restart_on_success = true;
        return Ok(vec![spec]);
    };
    let hosts = group_hosts(name, &s, n)?;
    Ok((0..n)
        .map(|i| {
            let mut args = s.args.clone();
            args.extend(
                [
                    "-n",
                    &n.to_string(),
                    "-p",
                    &i.to_string(),
                    "-h",
                    HOSTFILE_PLACEHOLDER,
                ]
                .map(String::from),
            );
            let mut spec = StageSpec::new(&format!("{name}-{i}"), &[]);
            spec.args = with_metrics(args, i as u16);
            spec.restart_on_success = true;
            spec.group = Some(name.to_string());
            spec.hostfile = Some(hosts.clone());
            spec
        })
        .collect())
}

/// A group's checks and its hostfile: `run` only, 2 to 16 processes, ports that fit, no cluster flags of
/// its own.
fn group_hosts(name: &str, s: &RawStage, n: usize) -> Result<String, String> {
    if s.args.first().map(String::as_str) != Some("run") {
        return Err(format!("stage {name}: only a run stage takes processes"));
    }
    if !(2..=MAX_GROUP_PROCESSES).contains(&n) {
        return Err(format!(
            "stage {name}: processes must be 2 to {MAX_GROUP_PROCESSES} (leave it out for one)"
        ));
    }
    if let Some(a) = s.args.iter().find(|a| {
        ["-n", "-p", "-h", "--processes", "--process", "--hostfile"].contains(&a.as_str())
    }) {
        return Err(format!(
            "stage {name}: {a} is set by processes = {n}; remove it from args"
        ));
    }
    let base = s.cluster_port.unwrap_or(DEFAULT_CLUSTER_PORT);
    let last = |p: u16| p.checked_add(n as u16 - 1).filter(|_| p > 0);
    if last(base).is_none() || s.metrics_port.is_some_and(|p| last(p).is_none()) {
        return Err(format!(
            "stage {name}: {n} consecutive ports from cluster_port {base} (and metrics_port) must fit in 1 to 65535"
        ));
    }
    Ok((0..n as u16)
        .map(|i| format!("127.0.0.1:{}\n", base + i))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[deployment]
name = "live"

[[stage]]
name = "run"
args = ["run", "--brokers", "{brokers}"]
metrics_port = 9464
"#;

    #[test]
    fn a_deployment_file_reads_and_fills_in_the_brokers() {
        let d = DeploymentConfig::parse(GOOD, "t").unwrap();
        assert_eq!(d.brokers, None);
        let s = d.stages_for("127.0.0.1:9092");
        assert_eq!(
            s[0].args,
            [
                "run",
                "--brokers",
                "127.0.0.1:9092",
                "--metrics-addr",
                "127.0.0.1:9464"
            ]
        );
        assert!(s[0].restart_on_success);
    }

    #[test]
    fn a_run_over_processes_becomes_a_group_with_one_hostfile() {
        let text = GOOD.replace(
            "metrics_port = 9464",
            "metrics_port = 9464\nprocesses = 2\ncluster_port = 2301",
        );
        let d = DeploymentConfig::parse(&text, "t").unwrap();
        let names: Vec<&str> = d.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["run-0", "run-1"]);
        let s = d.stages_for("b:9092");
        assert!(s.iter().all(|m| m.group.as_deref() == Some("run")));
        assert_eq!(
            s[1].hostfile.as_deref(),
            Some("127.0.0.1:2301\n127.0.0.1:2302\n")
        );
        assert_eq!(
            s[1].args,
            [
                "run",
                "--brokers",
                "b:9092",
                "-n",
                "2",
                "-p",
                "1",
                "-h",
                HOSTFILE_PLACEHOLDER,
                "--metrics-addr",
                "127.0.0.1:9465"
            ]
        );
    }

    #[test]
    fn the_shipped_example_is_a_valid_deployment() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/up.example.toml");
        let d =
            DeploymentConfig::parse(&std::fs::read_to_string(&path).unwrap(), "example").unwrap();
        let names: Vec<&str> = d.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["x", "prices", "score", "run", "execute"]);
        assert!(d
            .stages_for("b:9092")
            .iter()
            .all(|s| !s.args.iter().any(|a| a.contains("{brokers}"))));
    }

    #[test]
    fn bad_deployment_files_say_what_is_wrong() {
        let cases = [
            (
                GOOD.replace("\"run\", \"--brokers\"", "\"backtest\", \"--brokers\""),
                "a stage runs one of",
            ),
            (
                GOOD.replace("name = \"run\"", "name = \"r un\""),
                "letters, digits",
            ),
            (GOOD.replace("9464", "0"), "metrics_port"),
            (GOOD.replace("9464", "9464\nprocesses = 1"), "2 to 16"),
            (GOOD.replace("9464", "9464\nprocesses = 17"), "2 to 16"),
            (GOOD.replace("9464", "65535\nprocesses = 2"), "must fit"),
            (
                GOOD.replace("9464", "9464\ncluster_port = 3000"),
                "needs processes",
            ),
            (
                GOOD.replace("9464", "9464\nprocesses = 2")
                    .replace("\"{brokers}\"]", "\"{brokers}\", \"-n\", \"3\"]"),
                "set by processes",
            ),
            (
                GOOD.replace("9464", "9464\nprocesses = 2")
                    .replace("[\"run\", \"--brokers\"", "[\"execute\", \"--brokers\""),
                "only a run stage",
            ),
            (
                format!("{GOOD}\n[[stage]]\nname = \"run-0\"\nargs = [\"run\"]\n")
                    .replace("9464", "9464\nprocesses = 2"),
                "two stages",
            ),
            (
                GOOD.replace("name = \"live\"", "name = \"../x\""),
                "letters",
            ),
            (GOOD.replace("[[stage]]", "[[stages]]"), "unknown field"),
            (GOOD.replace("name = \"live\"", "name = \"\""), "1 to 64"),
            (
                format!("{GOOD}\n[[stage]]\nname = \"run\"\nargs = [\"run\"]\n"),
                "two stages",
            ),
        ];
        for (text, want) in cases {
            let e = DeploymentConfig::parse(&text, "t").unwrap_err();
            assert!(e.message.contains(want), "{want}: {e}");
        }
    }
}
