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

/// A flag set by SIGTERM or SIGINT: long-running commands check it between units of work and stop cleanly
/// (the executor after the intent in hand), as a supervisor's stop asks.
pub fn stop_flag() -> Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    Ok(stop)
}

/// `execute --ui-addr`: the dashboard over the executor's journal.
pub fn start_dashboard(
    addr: &str,
    journal: &std::path::Path,
    capital: Option<hypeflow::execution::capital::CapitalConfig>,
    pipeline: &std::path::Path,
    brokers: &str,
    approvals: Option<std::sync::Arc<hypeflow::execution::approval::ApprovalQueue>>,
) -> Result<Telemetry> {
    use hypeflow::execution::{control, dashboard};
    let (cfg, _, _) = super::load_pipeline(pipeline)?;
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let spec = dashboard::DashboardSpec {
        journal: journal.to_path_buf(),
        book_capital: capital
            .as_ref()
            .map_or(cfg.backtest.initial_equity, |c| c.starting_capital),
        capital,
        brokers: brokers.to_string(),
        control: env(dashboard::TOKEN_ENV).zip(env(control::SECRET_ENV)),
        market: match hypeflow::execution::market_view::start(brokers, &cfg) {
            Ok(v) => Some(v),
            Err(e) => {
                eprintln!("dashboard: no market view ({e})");
                None
            }
        },
        approvals: approvals.map(|q| (q, env(dashboard::TOKEN_ENV))),
    };
    let t = telemetry::serve(addr, "execute", Some(dashboard::routes(spec)))?;
    eprintln!("dashboard on http://{}/", t.addr);
    Ok(t)
}
