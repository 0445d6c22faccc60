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
}

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
        if name.is_empty() || name.len() > 64 {
            return Err(err("[deployment] name must have 1 to 64 characters".into()));
        }
        if raw.stage.is_empty() || raw.stage.len() > MAX_STAGES {
            return Err(err(format!("give 1 to {MAX_STAGES} [[stage]] tables")));
        }
        let mut stages: Vec<StageSpec> = Vec::new();
        for s in raw.stage {
            stages.push(check_stage(s, &stages).map_err(err)?);
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

fn check_stage(s: RawStage, earlier: &[StageSpec]) -> Result<StageSpec, String> {
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
    if earlier.iter().any(|e| e.name == name) {
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
    let mut args = s.args;
    if let Some(port) = s.metrics_port {
        if port == 0 {
            return Err(format!("stage {name}: metrics_port must be 1 to 65535"));
        }
        args.push("--metrics-addr".into());
        args.push(format!("127.0.0.1:{port}"));
    }
    let mut spec = StageSpec::new(name, &[]);
    spec.args = args;
    spec.restart_on_success = true;
    Ok(spec)
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
