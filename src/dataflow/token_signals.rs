//! Per-token state at each bar close: indicators, the latest sentiment window, and the pipeline's signal rule.
//! Bars and sentiment windows meet here in event-time order: a window ending at t is applied before the bar
//! closing at t, and nothing from after t is visible.

use super::indicators::{log_return, Atr, Closes, EwmaVol};
use super::records::{BarRec, Counters, SentimentWindow, TokenUpdate};
use super::time_stash::TimeStash;
use crate::config::{PipelineConfig, SignalConfig};
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
}

/// The pipeline's signal rule, evaluated on one token's state at one bar close.
#[derive(Clone)]
pub struct SignalRule {
    signal: SignalConfig,
    slide: i64,
    atr_period: usize,
    lambda: f64,
}

impl SignalRule {
    pub fn new(cfg: &PipelineConfig) -> Self {
        SignalRule {
            signal: cfg.signal.clone(),
            slide: cfg.slide_ms(),
            atr_period: cfg.sizing.atr_period,
            lambda: cfg.sizing.ewma_lambda,
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
        }
    }

    pub fn on_window(&self, st: &mut TokenState, w: SentimentWindow) {
        st.latest_window = Some(w);
    }

    pub fn on_bar(&self, st: &mut TokenState, bar: BarRec) -> TokenUpdate {
        let atr = st.atr.update(bar.high, bar.low, bar.close);
        let ret = st.prev_close.and_then(|p| log_return(p, bar.close));
        let volatility = ret.map(|r| st.vol.update(r));
        st.prev_close = Some(bar.close);
        st.closes.push(bar.close);
        let t = bar.close_time();
        // Only a window that ended within the last slide describes "now".
        let current = st
            .latest_window
            .as_ref()
            .filter(|w| w.end <= t && w.end > t - self.slide)
            .cloned();
        let signal = match &self.signal {
            SignalConfig::SmaCross { fast, slow } => {
                let now = st.closes.sma(*fast, 0).zip(st.closes.sma(*slow, 0));
                let prev = st.closes.sma(*fast, 1).zip(st.closes.sma(*slow, 1));
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
                entry_score,
                entry_velocity_z,
                min_mentions,
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
                Some(w)
                    if w.mentions >= *min_mentions
                        && w.score >= *entry_score
                        && w.velocity_z >= *entry_velocity_z =>
                {
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
