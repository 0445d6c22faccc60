//! Signal quality, independent of trading: did the price move the way each signal said, at fixed horizons?
//! Counted on signal onsets (the first bar a token's signal of one kind appears after a bar without it), so a
//! condition that stays true for ten bars counts once. Memory is bounded by the signals within the longest
//! horizon.

use super::records::TokenUpdate;
use crate::model::Signal;
use crate::risk::metrics::SignalQuality;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One signal judged at one horizon.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignalOutcome {
    pub token: u32,
    pub signal_time: i64,
    pub horizon_ms: i64,
    /// +1 predicted up (entry), -1 predicted down (exit on a reversal or cross down)
    pub direction: i8,
    pub forward_return: f64,
}

struct Pending {
    signal_time: i64,
    target: i64,
    horizon_ms: i64,
    direction: i8,
    price: Decimal,
}

pub struct SignalTracker {
    horizons: Vec<i64>,
    pending: HashMap<u32, Vec<Pending>>,
    last_kind: HashMap<u32, i8>,
    pub onsets: u64,
}

fn direction(s: &Signal) -> Option<i8> {
    match s {
        Signal::Enter { .. } => Some(1),
        Signal::Exit { reason }
            if reason.starts_with("sentiment_reversal") || reason.starts_with("sma_cross_down") =>
        {
            Some(-1)
        }
        Signal::Exit { .. } => None,
    }
}

impl SignalTracker {
    pub fn new(horizons: Vec<i64>) -> Self {
        SignalTracker {
            horizons,
            pending: HashMap::new(),
            last_kind: HashMap::new(),
            onsets: 0,
        }
    }

    /// Judges what this bar close resolves and registers a new onset; call once per token update in time order.
    pub fn observe(&mut self, u: &TokenUpdate, out: &mut Vec<SignalOutcome>) {
        let tok = u.bar.token;
        let t = u.bar.close_time();
        let close = u.bar.close;
        if let Some(list) = self.pending.get_mut(&tok) {
            list.retain(|p| {
                if p.target > t {
                    return true;
                }
                let r = if p.price.is_zero() {
                    None
                } else {
                    (close / p.price - Decimal::ONE).to_f64()
                };
                if let Some(forward_return) = r {
                    out.push(SignalOutcome {
                        token: tok,
                        signal_time: p.signal_time,
                        horizon_ms: p.horizon_ms,
                        direction: p.direction,
                        forward_return,
                    });
                }
                false
            });
        }
        let dir = u.signal.as_ref().and_then(direction).unwrap_or(0);
        let prev = self.last_kind.insert(tok, dir).unwrap_or(0);
        if dir != 0 && dir != prev {
            self.onsets += 1;
            let list = self.pending.entry(tok).or_default();
            for &h in &self.horizons {
                list.push(Pending {
                    signal_time: t,
                    target: t + h,
                    horizon_ms: h,
                    direction: dir,
                    price: close,
                });
            }
        }
    }
}

pub fn summarize(outcomes: &[SignalOutcome], horizons: &[i64]) -> Vec<SignalQuality> {
    horizons
        .iter()
        .map(|&h| {
            let o: Vec<&SignalOutcome> = outcomes.iter().filter(|x| x.horizon_ms == h).collect();
            let hits = o
                .iter()
                .filter(|x| x.forward_return * x.direction as f64 > 0.0)
                .count();
            let ups: Vec<&&SignalOutcome> = o.iter().filter(|x| x.direction > 0).collect();
            let fp = ups.iter().filter(|x| x.forward_return <= 0.0).count();
            let n = o.len();
            SignalQuality {
                horizon: crate::model::time::format_duration_ms(h),
                evaluated: n,
                up_signals: ups.len(),
                down_signals: n - ups.len(),
                hit_rate: (n > 0).then(|| hits as f64 / n as f64),
                false_positive_rate: (!ups.is_empty()).then(|| fp as f64 / ups.len() as f64),
                mean_directional_return: (n > 0).then(|| {
                    o.iter()
                        .map(|x| x.forward_return * x.direction as f64)
                        .sum::<f64>()
                        / n as f64
                }),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataflow::records::BarRec;

    fn upd(t: i64, close: i64, signal: Option<Signal>) -> TokenUpdate {
        let c = Decimal::from(close);
        TokenUpdate {
            bar: BarRec {
                token: 0,
                open_time: t - 60,
                interval: 60,
                open: c,
                high: c,
                low: c,
                close: c,
                volume: Decimal::ONE,
            },
            atr: None,
            volatility: None,
            log_return: None,
            sentiment: None,
            signal,
        }
    }
    fn enter() -> Option<Signal> {
        Some(Signal::Enter {
            strength: 1.0,
            reason: "x".into(),
        })
    }

    #[test]
    fn onsets_are_judged_at_each_horizon() {
        let mut tr = SignalTracker::new(vec![60, 180]);
        let mut out = Vec::new();
        tr.observe(&upd(60, 100, enter()), &mut out);
        tr.observe(&upd(120, 110, enter()), &mut out); // same condition still true: not a new onset
        tr.observe(&upd(180, 90, None), &mut out);
        tr.observe(
            &upd(
                240,
                95,
                Some(Signal::Exit {
                    reason: "sentiment_reversal".into(),
                }),
            ),
            &mut out,
        );
        tr.observe(&upd(300, 80, None), &mut out);
        assert_eq!(tr.onsets, 2);
        // entry at 60 (100): +60 -> 110 (+10%), +180 -> 95 at t=240 (-5%); exit at 240 (95): +60 -> 80
        let q = summarize(&out, &[60, 180]);
        assert_eq!(q[0].evaluated, 2);
        assert_eq!(q[0].hit_rate, Some(1.0));
        assert_eq!(q[1].evaluated, 1);
        assert_eq!(q[1].false_positive_rate, Some(1.0));
        assert!(
            (q[0].mean_directional_return.unwrap() - (0.1 + (1.0 - 80.0 / 95.0)) / 2.0).abs()
                < 1e-12
        );
    }
}
