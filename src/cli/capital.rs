//! `hypeflow capital status|promote|resume`: the ladder's state from the journal, the gates with their
//! figures, promotion only on passing gates (or a recorded override), and an operator's resume of a pause.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use hypeflow::execution::capital::{self, CapitalConfig, CapitalEvent, GateResult, LadderState};
use hypeflow::execution::journal::Journal;
use hypeflow::model::time::to_rfc3339;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum CapitalCmd {
    /// The phase and its caps, the pause, and each gate with its figure, threshold, pass/fail and since when
    Status {
        #[command(flatten)]
        at: Where,
        #[arg(long)]
        json: bool,
    },
    /// Move to a phase: only when every gate of the current one passes, unless --force with --reason
    Promote {
        #[command(flatten)]
        at: Where,
        #[arg(long)]
        to: String,
        /// Override failing gates (recorded in the journal with the reason and the figures)
        #[arg(long, requires = "reason")]
        force: bool,
        #[arg(long)]
        reason: Option<String>,
    },
    /// End a drawdown pause now (new entries resume; the drawdown is measured from a new peak)
    Resume {
        #[command(flatten)]
        at: Where,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Args)]
pub struct Where {
    /// The ladder file
    #[arg(long, default_value = "capital/ladder.toml")]
    capital: PathBuf,
    /// The executor's journal
    #[arg(long, default_value = "hypeflow-journal.sqlite")]
    journal: PathBuf,
}

pub fn load_config(path: &Path) -> Result<CapitalConfig> {
    let path = super::locate(path);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the capital ladder {}", path.display()))?;
    Ok(CapitalConfig::parse(&text, &path.display().to_string())?)
}

fn open(w: &Where) -> Result<(CapitalConfig, Journal)> {
    let cfg = load_config(&w.capital)?;
    Ok((cfg, Journal::open(&w.journal)?))
}

pub fn run(c: CapitalCmd) -> Result<()> {
    let now = chrono::Utc::now().timestamp_millis();
    match c {
        CapitalCmd::Status { at, json } => status(&at, json, now),
        CapitalCmd::Promote {
            at,
            to,
            force,
            reason,
        } => promote(&at, &to, force, reason, now),
        CapitalCmd::Resume { at, reason } => {
            let (cfg, journal) = open(&at)?;
            let (_, _, state) = capital::load(&cfg, &journal, now)?;
            if state.paused.is_none() {
                bail!("not paused: nothing to resume");
            }
            journal.record_capital_event(now, &CapitalEvent::Resume { at: now, reason })?;
            println!("resumed: new entries are allowed again; the drawdown is measured from here");
            Ok(())
        }
    }
}

fn status(at: &Where, json: bool, now: i64) -> Result<()> {
    let (cfg, journal) = open(at)?;
    let (book, _, state) = capital::load(&cfg, &journal, now)?;
    let gates = capital::gates(&cfg, &book, &state, now);
    let phase = &cfg.phases[state.phase];
    let next = cfg.phases.get(state.phase + 1).map(|p| p.name.clone());
    let dd = capital::drawdown(&book, &state);
    if json {
        let v = serde_json::json!({
            "phase": phase,
            "phase_since": to_rfc3339(state.phase_since),
            "next": next,
            "paused": state.paused.map(|(s, u)| serde_json::json!({"since": to_rfc3339(s), "until": u.map(to_rfc3339)})),
            "equity": book.equity(),
            "drawdown": dd.round_dp(6),
            "gates": gates,
            "execution": book.execution(),
            "promotable": next.is_some() && gates.iter().all(|g| g.pass),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    print!("{}", render(&cfg, &state, &gates, next.as_deref()));
    println!(
        "equity {} drawdown from the peak {:.2}%",
        book.equity().round_dp(2),
        dd * rust_decimal::Decimal::from(100)
    );
    let x = book.execution();
    println!(
        "execution: {}; fees {} gas {}",
        x.render(),
        x.fees.round_dp(4),
        x.gas.round_dp(4)
    );
    Ok(())
}

fn render(
    cfg: &CapitalConfig,
    state: &LadderState,
    gates: &[GateResult],
    next: Option<&str>,
) -> String {
    let p = &cfg.phases[state.phase];
    let mut s = format!(
        "phase {} on {} since {}: max {} per position, {} a day, {} exposure\n",
        p.name,
        p.venue.as_str(),
        to_rfc3339(state.phase_since),
        p.max_position,
        p.max_notional_per_day,
        p.max_exposure
    );
    if let Some((since, until)) = state.paused {
        s.push_str(&format!(
            "PAUSED since {} until {}\n",
            to_rfc3339(since),
            until.map_or("resumed by an operator".into(), to_rfc3339)
        ));
    }
    for g in gates {
        s.push_str(&format!(
            "  {:<20} {:>10} threshold {:<8} {} {}\n",
            g.gate,
            g.figure.map_or("n/a".into(), |f| format!("{f:.4}")),
            g.threshold,
            if g.pass { "PASS" } else { "fail" },
            g.since
                .as_deref()
                .map(|t| format!("since {t}"))
                .unwrap_or_default()
        ));
    }
    match next {
        Some(n) if gates.iter().all(|g| g.pass) => s.push_str(&format!("promotable to {n}\n")),
        Some(n) => s.push_str(&format!("not promotable to {n}: a gate fails\n")),
        None => s.push_str("top of the ladder\n"),
    }
    s
}

fn promote(at: &Where, to: &str, force: bool, reason: Option<String>, now: i64) -> Result<()> {
    let (cfg, journal) = open(at)?;
    match capital::promote(&cfg, &journal, to, force, reason, now)? {
        Ok(CapitalEvent::Phase {
            from,
            phase,
            forced,
            ..
        }) => {
            let note = if forced {
                " (forced: recorded with the failing gates)"
            } else {
                ""
            };
            println!("{from} -> {phase}{note}");
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(why) => bail!("{why}"),
    }
}
