//! The operations endpoint of a long-running command (`--metrics-addr HOST:PORT`): `/metrics` in the
//! Prometheus text format, `/healthz` (alive: the process answers) and `/readyz` (every readiness check ok;
//! 503 with the failing checks otherwise). It runs on its own thread and runtime, so a slow scraper never
//! touches a timely worker or the executor's loop; callers may add routes (the dashboard).

use super::health::health;
use super::names;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot listen on {addr} for metrics and health: {source}; pass a free HOST:PORT to --metrics-addr")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot install the metrics recorder: {0}")]
    Recorder(String),
    #[error("cannot start the metrics server's runtime: {0}")]
    Runtime(std::io::Error),
}

/// A running endpoint; it serves until the process exits.
#[derive(Debug, Clone, Copy)]
pub struct Telemetry {
    pub addr: SocketAddr,
}

/// The process's Prometheus recorder, installed once (a second `serve` in the same process reuses it).
fn recorder() -> Result<&'static PrometheusHandle, TelemetryError> {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    if let Some(h) = HANDLE.get() {
        return Ok(h);
    }
    let err = |e: metrics_exporter_prometheus::BuildError| TelemetryError::Recorder(e.to_string());
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), names::LATENCY_BUCKETS)
        .map_err(err)?
        .set_buckets_for_metric(
            Matcher::Full(names::SLIPPAGE.into()),
            names::SLIPPAGE_BUCKETS,
        )
        .map_err(err)?
        .install_recorder()
        .map_err(err)?;
    names::describe();
    Ok(HANDLE.get_or_init(|| handle))
}

/// Starts the endpoint for `command` (a label of `hypeflow_build_info`) at `addr`, with `extra` routes.
pub fn serve(
    addr: &str,
    command: &str,
    extra: Option<Router>,
) -> Result<Telemetry, TelemetryError> {
    let bind_err = |source| TelemetryError::Bind {
        addr: addr.to_string(),
        source,
    };
    let listener = std::net::TcpListener::bind(addr).map_err(bind_err)?;
    listener.set_nonblocking(true).map_err(bind_err)?;
    let local = listener.local_addr().map_err(bind_err)?;
    let handle = recorder()?;
    metrics::gauge!(names::BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "command" => command.to_string())
        .set(1.0);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(TelemetryError::Runtime)?;
    let app = routes(handle).merge(extra.unwrap_or_default());
    std::thread::Builder::new()
        .name("telemetry".into())
        .spawn(move || {
            runtime.block_on(async move {
                tokio::spawn(async move {
                    // histograms and idle bookkeeping are drained here, not on a scrape
                    let mut tick = tokio::time::interval(Duration::from_secs(5));
                    loop {
                        tick.tick().await;
                        handle.run_upkeep();
                    }
                });
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => {
                        if let Err(e) = axum::serve(l, app).await {
                            tracing::error!("metrics server on {local} stopped: {e}");
                        }
                    }
                    Err(e) => tracing::error!("metrics server on {local}: {e}"),
                }
            })
        })
        .map_err(TelemetryError::Runtime)?;
    tracing::info!("metrics and health on http://{local} (/metrics, /healthz, /readyz)");
    Ok(Telemetry { addr: local })
}

fn routes(handle: &'static PrometheusHandle) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || async move {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    handle.render(),
                )
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
}

async fn readyz() -> impl IntoResponse {
    let r = health().readiness();
    let code = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(r))
}
