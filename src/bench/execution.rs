//! Figures for BENCHMARKS.md (`hypeflow bench --mode executor`): intent to broadcast on a local anvil (all the
//! checks, quotes, simulation, signing and the synchronous journal write included; confirmation excluded), and
//! the journal's and the paper venue's throughput on their own; with `ui_clients`, while that many dashboard
//! pages follow the journal.

use super::{failed, BenchError};
use crate::chain::devnet::{evm_dir, Anvil, Devnet, DEV_KEYS};
use crate::config::FillConfig;
use crate::dataflow::fill_model::FillModel;
use crate::execution::journal::Journal;
use crate::execution::onchain::{UniswapV3Venue, VenueConfig};
use crate::execution::venue::Venue;
use crate::model::{OrderIntent, Protection, Side};
use rust_decimal::Decimal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug)]
pub struct ExecutorFigures {
    pub swaps: u64,
    pub broadcast_p50_us: u64,
    pub broadcast_p99_us: u64,
    pub broadcast_max_us: u64,
    pub journal_per_s: f64,
    pub paper_per_s: f64,
    /// What the dashboard pages received while the swaps ran (proof they were served).
    pub ui_bytes: u64,
}

fn intent(i: u64, side: Side, notional: Option<Decimal>, quantity: Option<Decimal>) -> OrderIntent {
    OrderIntent {
        id: format!("bench-{i}"),
        pipeline_id: "bench".into(),
        token: "TKA".into(),
        side,
        quantity,
        notional,
        reference_price: Decimal::new(25, 1),
        max_slippage_bps: Decimal::from(50),
        protection: Protection::default(),
        reason: "bench".into(),
        decision_time: chrono::Utc::now().timestamp_millis(),
        inputs_version: "bench".into(),
        triggered: None,
    }
}

fn pct(sorted: &[u64], q: f64) -> u64 {
    sorted
        .get(((sorted.len().max(1) - 1) as f64 * q).round() as usize)
        .copied()
        .unwrap_or(0)
}

/// Opens `clients` dashboard pages on the journal (each holds the server-sent event stream and reads every
/// update), as an operator's browser tabs would; dropped with the returned server.
fn dashboard_pages(
    journal: &std::path::Path,
    clients: usize,
    read: Arc<AtomicU64>,
) -> Result<crate::telemetry::Telemetry, BenchError> {
    use crate::execution::dashboard;
    let spec = dashboard::DashboardSpec {
        journal: journal.to_path_buf(),
        capital: None,
        book_capital: Decimal::from(10_000),
        brokers: String::new(),
        control: None,
        market: None,
        approvals: None,
    };
    let t = crate::telemetry::serve("127.0.0.1:0", "bench", Some(dashboard::routes(spec)))
        .map_err(failed)?;
    crate::net::install_tls();
    for _ in 0..clients {
        let url = format!("http://{}/api/events", t.addr);
        let read = read.clone();
        std::thread::spawn(move || {
            use std::io::Read;
            let Ok(c) = reqwest::blocking::Client::builder().timeout(None).build() else {
                return;
            };
            let Ok(mut r) = c.get(url).send() else {
                return;
            };
            let mut buf = [0u8; 65_536];
            while let Ok(n @ 1..) = r.read(&mut buf) {
                read.fetch_add(n as u64, Ordering::Relaxed);
            }
        });
    }
    Ok(t)
}

pub fn run(swaps: u64, journal_n: u64, ui_clients: usize) -> Result<ExecutorFigures, BenchError> {
    let dir = tempfile_dir()?;
    let evm = evm_dir();
    let anvil = Anvil::start(&evm).map_err(failed)?;
    let dev = Devnet::connect(&anvil.url, DEV_KEYS[0], &evm).map_err(failed)?;
    let signer: alloy::signers::local::PrivateKeySigner = DEV_KEYS[1]
        .parse()
        .map_err(|_| BenchError("bad dev key".into()))?;
    let market = dev.demo_market(signer.address()).map_err(failed)?;
    let cfg = VenueConfig::parse(&Devnet::demo_venue_toml(&anvil.url, &market, ""), "bench")
        .map_err(failed)?;
    let mut venue = UniswapV3Venue::connect(cfg, &anvil.url, signer).map_err(failed)?;
    let journal = Journal::open(&dir.join("onchain.sqlite")).map_err(failed)?;
    let ui_bytes = Arc::new(AtomicU64::new(0));
    let _pages = match ui_clients {
        0 => None,
        n => Some(dashboard_pages(
            &dir.join("onchain.sqlite"),
            n,
            ui_bytes.clone(),
        )?),
    };
    let mut lat = Vec::new();
    for i in 0..swaps {
        // alternate buys and sells of what was bought, so the price stays put and allowances are exercised
        let it = intent(i, Side::Buy, Some(Decimal::from(20)), None);
        let start = Instant::now();
        journal.claim(&it, "bench", 0).map_err(failed)?;
        let f = venue.execute(&it, &journal).map_err(failed)?;
        if f.status != crate::model::FillStatus::Filled {
            return Err(BenchError(format!(
                "bench swap {i} was refused: {}",
                f.reason
            )));
        }
        if let Some(at) = venue.last_broadcast {
            lat.push(at.duration_since(start).as_micros() as u64);
        }
    }
    lat.sort_unstable();
    let ui_bytes = ui_bytes.load(Ordering::Relaxed);

    let j = Journal::open(&dir.join("journal.sqlite")).map_err(failed)?;
    let paper = FillModel::new(FillConfig::default());
    let t = Instant::now();
    for i in 0..journal_n {
        let it = intent(1_000_000 + i, Side::Buy, Some(Decimal::from(20)), None);
        j.claim(&it, "bench", 0).map_err(failed)?;
        let f = paper.reject(&it, "journal only".into(), 0);
        j.record_outcome(&f, 0).map_err(failed)?;
        j.mark_published(&it.id).map_err(failed)?;
    }
    let journal_per_s = journal_n as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for i in 0..journal_n {
        let it = intent(2_000_000 + i, Side::Buy, Some(Decimal::from(20)), None);
        j.claim(&it, "bench", 0).map_err(failed)?;
        let f = paper.fill_now(&it, Decimal::new(25, 1), 0);
        j.record_outcome(&f, 0).map_err(failed)?;
        j.mark_published(&it.id).map_err(failed)?;
    }
    let paper_per_s = journal_n as f64 / t.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ExecutorFigures {
        swaps: lat.len() as u64,
        broadcast_p50_us: pct(&lat, 0.5),
        broadcast_p99_us: pct(&lat, 0.99),
        broadcast_max_us: lat.last().copied().unwrap_or(0),
        journal_per_s,
        paper_per_s,
        ui_bytes,
    })
}

fn tempfile_dir() -> Result<std::path::PathBuf, BenchError> {
    let d = std::env::temp_dir().join(format!("hypeflow-exec-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d).map_err(failed)?;
    Ok(d)
}
