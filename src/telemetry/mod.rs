//! Operations: Prometheus metrics, liveness and readiness over HTTP for every long-running command.
//!
//! Components record through the `metrics` facade (a no-op until [`server::serve`] installs the recorder, so
//! tests, backtests and commands without `--metrics-addr` pay nothing beyond an atomic load) and report their
//! readiness to [`health`]; the server renders both. Names and units live in [`names`], one place, so the
//! README's list and the dashboards match what is exported.

pub mod health;
pub mod names;
pub mod server;

pub use health::{health, Readiness};
pub use server::{serve, Telemetry, TelemetryError};
