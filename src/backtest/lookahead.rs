//! `hypeflow lookahead-check`: runs the pipeline on copies of its input cut at several times and checks that
//! every decision made before a cut is the same, field for field, when the data after the cut is gone. A
//! decision that changes used something it could not have known then.

use super::inputs::Loaded;
use super::run_loaded;
use super::BacktestError;
use crate::config::PipelineConfig;
use crate::dataflow::PortfolioEvent;
use crate::model::time::Millis;
use crate::model::{OrderIntent, TokenTable};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A decision before a cut that the truncated run did not make the same way.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub cut: Millis,
    pub id: String,
    pub what: String,
}

/// One cut's verdict.
pub struct CutCheck {
    pub cut: Millis,
    /// Decisions before the cut in the full run.
    pub compared: usize,
    pub changes: Vec<Change>,
}

/// Decisions before `cut` in `full` against those in `truncated`: missing, different, or new.
pub fn compare(full: &[OrderIntent], truncated: &[OrderIntent], cut: Millis) -> Vec<Change> {
    let before = |v: &[OrderIntent]| -> BTreeMap<String, String> {
        v.iter()
            .filter(|i| i.decision_time < cut)
            .map(|i| (i.id.clone(), serde_json::to_string(i).unwrap_or_default()))
            .collect()
    };
    let (a, b) = (before(full), before(truncated));
    let change = |id: &String, what: String| Change {
        cut,
        id: id.clone(),
        what,
    };
    let mut out = Vec::new();
    for (id, x) in &a {
        match b.get(id) {
            None => out.push(change(
                id,
                format!("made with all the data, not without what follows the cut: {x}"),
            )),
            Some(y) if y != x => out.push(change(
                id,
                format!("differs: with all the data {x}, without {y}"),
            )),
            Some(_) => {}
        }
    }
    for (id, y) in b.iter().filter(|(id, _)| !a.contains_key(*id)) {
        out.push(change(
            id,
            format!("made only without the data after the cut: {y}"),
        ));
    }
    out
}

/// `n` cut times spread over the input, each on a multiple of `quantum` (a bar and window boundary).
pub fn cut_times(first: Millis, last: Millis, n: usize, quantum: Millis) -> Vec<Millis> {
    let q = quantum.max(1);
    let mut cuts: Vec<Millis> = (1..=n as i64)
        .map(|k| first + (last - first) / (n as i64 + 1) * k)
        .map(|t| t.div_euclid(q) * q)
        .filter(|t| *t > first && *t <= last)
        .collect();
    cuts.dedup();
    cuts
}

fn intents(
    cfg: &Arc<PipelineConfig>,
    table: &Arc<TokenTable>,
    loaded: Loaded,
) -> Result<Vec<OrderIntent>, BacktestError> {
    let out = run_loaded(cfg.clone(), table.clone(), loaded, 1, false)?;
    Ok(out
        .events
        .into_iter()
        .filter_map(|e| match e {
            PortfolioEvent::Intent(i) => Some(i),
            _ => None,
        })
        .collect())
}

/// The full run, then one run per cut on the input before it.
pub fn check(
    cfg: Arc<PipelineConfig>,
    table: Arc<TokenTable>,
    loaded: &Loaded,
    cuts: usize,
) -> Result<Vec<CutCheck>, BacktestError> {
    let (Some(first), Some(last)) = (loaded.first_time, loaded.last_time) else {
        return Ok(Vec::new());
    };
    let quantum = boundary(&cfg, loaded.bar_interval);
    let full = intents(&cfg, &table, loaded.clone())?;
    let mut out = Vec::new();
    for cut in cut_times(first, last, cuts, quantum) {
        let mut part = loaded.clone();
        part.events.retain(|e| e.time() < cut);
        part.last_time = part.events.last().map(|e| e.time());
        let truncated = intents(&cfg, &table, part)?;
        out.push(CutCheck {
            cut,
            compared: full.iter().filter(|i| i.decision_time < cut).count(),
            changes: compare(&full, &truncated, cut),
        });
    }
    Ok(out)
}

/// The step of times that are both a bar and a sentiment-window boundary: where an input can be cut without
/// splitting a bar or a window slide.
pub(super) fn boundary(cfg: &PipelineConfig, bar_interval: Millis) -> Millis {
    let bar = bar_interval.max(1);
    if cfg.uses_sentiment() {
        lcm(bar, cfg.slide_ms().max(1))
    } else {
        bar
    }
}

fn lcm(a: Millis, b: Millis) -> Millis {
    let (mut x, mut y) = (a, b);
    while y != 0 {
        (x, y) = (y, x % y);
    }
    (a / x).saturating_mul(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Side;

    fn intent(id: &str, t: Millis, reason: &str) -> OrderIntent {
        OrderIntent {
            id: id.into(),
            pipeline_id: "p".into(),
            token: "AXL".into(),
            side: Side::Buy,
            quantity: None,
            notional: Some(rust_decimal::Decimal::ONE_HUNDRED),
            reference_price: rust_decimal::Decimal::ONE,
            max_slippage_bps: rust_decimal::Decimal::TEN,
            protection: Default::default(),
            reason: reason.into(),
            decision_time: t,
            inputs_version: "1".into(),
            triggered: None,
        }
    }

    #[test]
    fn decisions_before_the_cut_must_be_the_same_and_later_ones_do_not_count() {
        let full = vec![
            intent("a", 10, "x"),
            intent("b", 20, "y"),
            intent("c", 30, "z"),
        ];
        assert!(
            compare(&full, &full[..2], 30).is_empty(),
            "c is at the cut: not compared"
        );
        let peeked = vec![intent("a", 10, "x"), intent("b", 20, "other")];
        let c = compare(&full, &peeked, 30);
        assert_eq!(c.len(), 1);
        assert!(c[0].id == "b" && c[0].what.starts_with("differs"), "{c:?}");
        let missing = compare(&full, &full[..1], 30);
        assert!(missing[0].id == "b" && missing[0].what.starts_with("made with all the data"));
        let extra = compare(&full[..1], &full[..2], 30);
        assert!(extra[0].id == "b" && extra[0].what.starts_with("made only without"));
    }

    #[test]
    fn cuts_fall_on_boundaries_inside_the_input() {
        let cuts = cut_times(0, 1_000, 3, 100);
        assert_eq!(cuts, vec![200, 500, 700]);
        assert_eq!(lcm(300_000, 120_000), 600_000);
        assert!(
            cut_times(0, 50, 3, 100).is_empty(),
            "no boundary inside a span shorter than one"
        );
    }
}
