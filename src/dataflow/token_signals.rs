//! Per-token state at each bar close: indicators, the latest sentiment window, and the pipeline's signal rule.
//! Bars and sentiment windows meet here in event-time order: a window ending at t is applied before the bar
//! closing at t, and nothing from after t is visible.

use super::conditions::IndicatorBank;
use super::indicators::{log_return, Atr, Closes, EwmaVol};
use super::records::{BarRec, Counters, SentimentWindow, TokenUpdate};
use super::sentiment_window::EntryThresholds;
use super::time_stash::TimeStash;
use crate::config::{PipelineConfig, SignalConfig, VolatilityMeasure};
use crate::model::Signal;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::sync::Arc;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::Stream;

/// Indicator and rule state for one token.
pub struct TokenState {
    atr: Atr,
    vol: EwmaVol,
    closes: Closes,
    prev_close: Option<Decimal>,
    latest_window: Option<SentimentWindow>,
    /// The (fast, slow) SMAs of the last bar, once one was seen: this bar's "previous" pair, not summed again.
    last_smas: Option<Option<(Decimal, Decimal)>>,
    /// The indicators of the rule's `entry_when` / `exit_when` conditions; None for a rule without any, so its
    /// bars pay nothing for them.
    bank: Option<IndicatorBank>,
}

/// The pipeline's signal rule, evaluated on one token's state at one bar close.
#[derive(Clone)]
pub struct SignalRule {
    signal: SignalConfig,
    slide: i64,
    atr_period: usize,
    lambda: f64,
    measure: VolatilityMeasure,
    entry: Option<EntryThresholds>,
}

impl SignalRule {
    pub fn new(cfg: &PipelineConfig) -> Self {
        SignalRule {
            signal: cfg.signal.clone(),
            slide: cfg.slide_ms(),
            atr_period: cfg.sizing.atr_period,
            lambda: cfg.sizing.ewma_lambda,
            measure: cfg.sizing.volatility,
            entry: EntryThresholds::of(&cfg.signal),
        }
    }

    pub fn new_state(&self) -> TokenState {
        let keep = match &self.signal {
            SignalConfig::SmaCross { slow, .. } => slow + 2,
            SignalConfig::Sentiment { momentum_bars, .. } => momentum_bars + 2,
        };
        TokenState {
            atr: Atr::new(self.atr_period),
            vol: EwmaVol::new(self.lambda),
            closes: Closes::new(keep),
            prev_close: None,
            latest_window: None,
            last_smas: None,
            bank: {
                let (entry, exit) = self.signal.conditions();
                (!entry.is_empty() || !exit.is_empty())
                    .then(|| IndicatorBank::new(entry.iter().chain(exit)))
            },
        }
    }

    pub fn on_window(&self, st: &mut TokenState, w: SentimentWindow) {
        st.latest_window = Some(w);
    }

    pub fn on_bar(&self, st: &mut TokenState, bar: BarRec) -> TokenUpdate {
        let atr = st.atr.update(bar.high, bar.low, bar.close);
        let ret = st.prev_close.and_then(|p| log_return(p, bar.close));
        let volatility = ret.map(|r| st.vol.update(r));
        let atr = match self.measure {
            VolatilityMeasure::Atr => atr,
            // the same role as the ATR: a price distance
            VolatilityMeasure::Ewma => volatility
                .filter(|_| st.vol.seen >= self.atr_period)
                .and_then(Decimal::from_f64_retain)
                .and_then(|sd| sd.checked_mul(bar.close))
                .map(|d| d.round_dp(12))
                .filter(|d| *d > Decimal::ZERO),
        };
        st.prev_close = Some(bar.close);
        st.closes.push(bar.close);
        if let Some(bank) = st.bank.as_mut() {
            bank.on_bar(&bar);
        }
        let t = bar.close_time();
        // Only a window that ended within the last slide describes "now".
        let current = st
            .latest_window
            .as_ref()
            .filter(|w| w.end <= t && w.end > t - self.slide)
            .cloned();
        let signal = match &self.signal {
            SignalConfig::SmaCross { fast, slow, .. } => {
                let now = st.closes.sma(*fast, 0).zip(st.closes.sma(*slow, 0));
                let prev = match st.last_smas.replace(now) {
                    Some(last) => last,
                    None => st.closes.sma(*fast, 1).zip(st.closes.sma(*slow, 1)),
                };
                match (now, prev) {
                    (Some((f, s)), Some((pf, ps))) if f > s && pf <= ps => Some(Signal::Enter {
                        strength: ((f - s) / s).to_f64().unwrap_or(0.0),
                        reason: format!("sma_cross_up fast={f:.6} slow={s:.6}"),
                    }),
                    (Some((f, s)), Some((pf, ps))) if f < s && pf >= ps => Some(Signal::Exit {
                        reason: "sma_cross_down".into(),
                    }),
                    _ => None,
                }
            }
            SignalConfig::Sentiment {
                momentum_bars,
                min_momentum,
                exit_score,
                exit_min_mentions,
                ..
            } => match &current {
                Some(w) if w.score <= *exit_score && w.mentions >= *exit_min_mentions => {
                    Some(Signal::Exit {
                        reason: format!(
                            "sentiment_reversal score={:.3} mentions={}",
                            w.score, w.mentions
                        ),
                    })
                }
                Some(w) if self.entry.is_some_and(|e| e.admits(w)) => {
                    match st.closes.momentum(*momentum_bars) {
                        Some(m) if m >= *min_momentum => Some(Signal::Enter {
                            strength: w.score * w.velocity_z,
                            reason: format!(
                                "sentiment score={:.3} velocity_z={:.2} mentions={} momentum={:.4}",
                                w.score, w.velocity_z, w.mentions, m
                            ),
                        }),
                        _ => None,
                    }
                }
                _ => None,
            },
        };
        let signal = match &st.bank {
            Some(bank) => self.apply_conditions(bank, signal),
            None => signal,
        };
        TokenUpdate {
            bar,
            atr,
            volatility,
            log_return: ret,
            sentiment: current,
            signal,
        }
    }
}

impl SignalRule {
    /// The rule's indicator conditions over its signal: an entry stands only when every `entry_when` holds
    /// and no `exit_when` does; with no signal of its own, the first `exit_when` that holds exits. A
    /// condition whose indicator is still warming up holds neither way.
    fn apply_conditions(&self, bank: &IndicatorBank, signal: Option<Signal>) -> Option<Signal> {
        let (entry, exit) = self.signal.conditions();
        let exiting = exit
            .iter()
            .find(|c| bank.check(c).is_some_and(|(holds, _, _)| holds));
        match signal {
            Some(Signal::Enter { strength, reason }) if exiting.is_none() => {
                let all = entry
                    .iter()
                    .all(|c| bank.check(c).is_some_and(|(holds, _, _)| holds));
                all.then(|| {
                    let why: Vec<String> = entry.iter().map(|c| bank.explain(c)).collect();
                    Signal::Enter {
                        strength,
                        reason: if why.is_empty() {
                            reason
                        } else {
                            format!("{reason} when {}", why.join(", "))
                        },
                    }
                })
            }
            Some(Signal::Exit { reason }) => Some(Signal::Exit { reason }),
            _ => exiting.map(|c| Signal::Exit {
                reason: format!("exit_when {}", bank.explain(c)),
            }),
        }
    }
}

pub fn token_signals<'s>(
    bars: Stream<'s, u64, Vec<BarRec>>,
    windows: Stream<'s, u64, Vec<SentimentWindow>>,
    rule: SignalRule,
    counters: Arc<Counters>,
) -> Stream<'s, u64, Vec<TokenUpdate>> {
    bars.binary_frontier::<_, CapacityContainerBuilder<Vec<TokenUpdate>>, _, _, _, _>(
        windows,
        Exchange::new(|b: &BarRec| b.token as u64),
        Exchange::new(|w: &SentimentWindow| w.token as u64),
        "TokenSignals",
        move |_cap, _info| {
            let mut states: HashMap<u32, TokenState> = HashMap::new();
            let mut stash: TimeStash<BarRec, SentimentWindow> = TimeStash::default();
            move |(bars_in, bars_frontier), (windows_in, windows_frontier), output| {
                bars_in.for_each_stamp(|cap, data| {
                    if let Some(c) = cap.retain_least(output.output_index()) {
                        stash.push_first(c, data);
                    }
                });
                windows_in.for_each_stamp(|cap, data| {
                    if let Some(c) = cap.retain_least(output.output_index()) {
                        stash.push_second(c, data);
                    }
                });
                while let Some((cap, mut bars, mut windows)) = stash
                    .pop_ready(|t| bars_frontier.less_equal(t) || windows_frontier.less_equal(t))
                {
                    windows.sort_by_key(|w| (w.token, w.end));
                    for w in windows {
                        let st = states.entry(w.token).or_insert_with(|| rule.new_state());
                        rule.on_window(st, w);
                    }
                    bars.sort_by_key(|b| (b.token, b.open_time));
                    let mut session = output.session(&cap);
                    for b in bars {
                        let st = states.entry(b.token).or_insert_with(|| rule.new_state());
                        let u = rule.on_bar(st, b);
                        if u.signal.is_some() {
                            Counters::add(&counters.signals, 1);
                        }
                        session.give(u);
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PipelineConfig;

    fn rule(extra_signal: &str, extra_sizing: &str) -> SignalRule {
        let text = format!(
            "[pipeline]\nid = \"t\"\n[universe]\ntokens = [\"AXL\"]\n[bars]\ninterval = \"1m\"\n\
             [signal]\nkind = \"sma_cross\"\nfast = 2\nslow = 4\n{extra_signal}\n\
             [sizing]\natr_period = 3\n{extra_sizing}\n"
        );
        SignalRule::new(&PipelineConfig::parse(&text, "test").unwrap())
    }

    fn bar(i: i64, close: &str) -> BarRec {
        let c: Decimal = close.parse().unwrap();
        BarRec {
            token: 0,
            open_time: i * 60_000,
            interval: 60_000,
            open: c,
            high: c + Decimal::ONE,
            low: c - Decimal::ONE,
            close: c,
            volume: Decimal::ONE,
        }
    }

    const CLOSES: [&str; 9] = ["10", "10", "10", "10", "9", "12", "13", "14", "11"];

    fn signals(r: &SignalRule) -> Vec<Option<Signal>> {
        let mut st = r.new_state();
        (0..CLOSES.len())
            .map(|i| r.on_bar(&mut st, bar(i as i64, CLOSES[i])).signal)
            .collect()
    }

    #[test]
    fn ewma_volatility_is_the_stop_distance_once_atr_period_returns_are_in() {
        let r = rule("", "volatility = \"ewma\"\newma_lambda = 0.5");
        let mut st = r.new_state();
        let mut var: Option<f64> = None;
        let closes = ["10", "11", "10.5", "12", "11", "13"];
        for (i, c) in closes.iter().enumerate() {
            let close: Decimal = c.parse().unwrap();
            let u = r.on_bar(&mut st, bar(i as i64, c));
            if i > 0 {
                let prev: f64 = closes[i - 1].parse().unwrap();
                let ret = (c.parse::<f64>().unwrap() / prev).ln();
                var = Some(var.map_or(ret * ret, |v| 0.5 * v + 0.5 * ret * ret));
            }
            match u.atr {
                None => assert!(i < 3, "bar {i}: three returns are in"),
                Some(d) => {
                    assert!(i >= 3, "bar {i}: fewer than atr_period returns");
                    let want = var.unwrap().sqrt() * close.to_f64().unwrap();
                    assert!(
                        (d.to_f64().unwrap() - want).abs() < 1e-9,
                        "bar {i}: {d} vs {want}"
                    );
                }
            }
        }
        // the default measure is the ATR (range 2 every bar here)
        let mut st = rule("", "").new_state();
        let atr = (0..4)
            .map(|i| rule("", "").on_bar(&mut st, bar(i, "10")).atr)
            .last();
        assert_eq!(atr, Some(Some(Decimal::TWO)));
    }

    #[test]
    fn entry_conditions_gate_entries_and_exit_conditions_exit() {
        let plain = signals(&rule("", ""));
        let entries = |v: &[Option<Signal>]| {
            v.iter()
                .enumerate()
                .filter(|(_, s)| matches!(s, Some(Signal::Enter { .. })))
                .map(|(i, _)| i)
                .collect::<Vec<_>>()
        };
        assert_eq!(entries(&plain), vec![5], "{plain:?}");
        // a condition that always holds keeps the entry and says why
        let kept = signals(&rule("entry_when = [\"close > 1\"]", ""));
        match &kept[5] {
            Some(Signal::Enter { reason, .. }) => {
                assert!(
                    reason.ends_with("when close > 1 (12.00000 vs 1.000000)"),
                    "{reason}"
                )
            }
            other => panic!("{other:?}"),
        }
        // one that fails (or is still warming up) drops it
        assert_eq!(
            entries(&signals(&rule(
                "entry_when = [\"close > 1\", \"close < 5\"]",
                ""
            ))),
            Vec::<usize>::new()
        );
        assert_eq!(
            entries(&signals(&rule("entry_when = [\"rsi(8) < 100\"]", ""))),
            Vec::<usize>::new()
        );
        // an exit condition exits on bars without a signal, and vetoes the entry on its bar
        let exits = signals(&rule("exit_when = [\"close < 12\"]", ""));
        assert!(plain[8].is_none());
        assert!(
            matches!(&exits[8], Some(Signal::Exit { reason }) if reason == "exit_when close < 12 (11.00000 vs 12.00000)"),
            "{exits:?}"
        );
        assert_eq!(
            entries(&exits),
            vec![5],
            "12 is not under 12: the entry stands"
        );
        let vetoed = signals(&rule("exit_when = [\"close > 11\"]", ""));
        assert!(
            matches!(&vetoed[5], Some(Signal::Exit { .. })),
            "{vetoed:?}"
        );
    }
}
