//! `--metrics-addr` of the long-running commands: the Prometheus, liveness and readiness endpoint.

use anyhow::Result;
use clap::Args;
use hypeflow::telemetry::{self, Telemetry};

#[derive(Args, Clone, Debug, Default)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics at /metrics, liveness at /healthz and readiness at /readyz on HOST:PORT
    /// (e.g. 127.0.0.1:9464; port 0 picks a free one, printed on stderr)
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<String>,
}

impl MetricsArgs {
    /// Starts the endpoint when asked for; `command` labels the process in `hypeflow_build_info`. A command
    /// whose components report their own readiness (`run`'s sources, the executor) passes
    /// `reports_readiness`; for the others ready means started (their data's freshness is a metric).
    pub fn start(&self, command: &str, reports_readiness: bool) -> Result<Option<Telemetry>> {
        let Some(addr) = &self.metrics_addr else {
            return Ok(None);
        };
        let t = telemetry::serve(addr, command, None)?;
        if !reports_readiness {
            telemetry::health().set(command, true, "started");
        }
        eprintln!("metrics on http://{}/metrics", t.addr);
        Ok(Some(t))
    }
}
