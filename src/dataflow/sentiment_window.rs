//! Sliding event-time windows of per-token sentiment. Mentions are kept in panes one slide wide; a window is
//! the panes it spans, emitted when the frontier passes its end. Contributions are summed in (time, seq) order
//! so the float result does not depend on which worker delivered what first.

use super::records::{Counters, Mention, SentimentWindow};
use crate::config::SignalConfig;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::Stream;

#[derive(Clone, Copy, Debug)]
pub struct WindowSpec {
    pub window: i64,
    pub slide: i64,
    pub baseline_windows: usize,
    /// Event time the run's history starts at. Baseline windows before it are unknown, not silent. It is a
    /// property of the run, never of one worker's share, so every worker count computes the same z-scores.
    pub history_start: i64,
    /// The windows whose accounts are listed (see `SentimentWindow::authors`); none: no window's.
    pub credit: Option<EntryThresholds>,
}

/// The entry thresholds of a sentiment rule: a window below any of them cannot make an entry.
#[derive(Clone, Copy, Debug)]
pub struct EntryThresholds {
    pub min_mentions: u32,
    pub min_score: f64,
    pub min_velocity_z: f64,
}

impl EntryThresholds {
    /// The thresholds of a sentiment rule; none for a rule that does not enter on sentiment.
    pub fn of(signal: &SignalConfig) -> Option<EntryThresholds> {
        match signal {
            SignalConfig::Sentiment {
                entry_score,
                entry_velocity_z,
                min_mentions,
                ..
            } => Some(EntryThresholds {
                min_mentions: *min_mentions,
                min_score: *entry_score,
                min_velocity_z: *entry_velocity_z,
            }),
            _ => None,
        }
    }

    pub fn admits(&self, w: &SentimentWindow) -> bool {
        w.mentions >= self.min_mentions
            && w.score >= self.min_score
            && w.velocity_z >= self.min_velocity_z
    }
}

type Item = (i64, u64, f64, f64, Arc<str>);

/// Per-token window state, independent of timely so it can be tested directly.
#[derive(Default)]
pub struct TokenPanes {
    /// pane end -> (time, seq, score, weight, author), for panes still inside the current window.
    items: BTreeMap<i64, Vec<Item>>,
    /// pane end -> mention count, for the baseline horizon.
    counts: BTreeMap<i64, u32>,
}

impl TokenPanes {
    pub fn add(&mut self, pane_end: i64, m: &Mention) {
        self.items.entry(pane_end).or_default().push((
            m.time,
            m.seq,
            m.score,
            m.weight,
            m.author.clone(),
        ));
        *self.counts.entry(pane_end).or_insert(0) += 1;
    }

    fn count_between(&self, lo_excl: i64, hi_incl: i64) -> u32 {
        self.counts
            .range(lo_excl + 1..=hi_incl)
            .map(|(_, c)| *c)
            .sum()
    }

    pub fn has_items_in(&self, lo_excl: i64, hi_incl: i64) -> bool {
        self.items.range(lo_excl + 1..=hi_incl).next().is_some()
    }

    /// The window ending at `end`; `history_start` is the first pane end the operator ever saw, so baseline
    /// windows from before the data began are not counted as silence.
    pub fn window(
        &mut self,
        token: u32,
        end: i64,
        spec: &WindowSpec,
        history_start: i64,
    ) -> Option<SentimentWindow> {
        let lo = end - spec.window;
        let mut contribs: Vec<&Item> = self
            .items
            .range(lo + 1..=end)
            .flat_map(|(_, v)| v.iter())
            .collect();
        if contribs.is_empty() {
            return None;
        }
        contribs.sort_by_key(|a| (a.0, a.1));
        let (mut sw, mut sws, mut s) = (0.0, 0.0, 0.0);
        for &&(_, _, score, w, _) in &contribs {
            sw += w;
            sws += w * score;
            s += score;
        }
        let score = if sw > 0.0 {
            sws / sw
        } else {
            s / contribs.len() as f64
        };
        let mentions = contribs.len() as u32;
        let mut base = Vec::with_capacity(spec.baseline_windows);
        for k in 1..=spec.baseline_windows as i64 {
            let hi = end - k * spec.window;
            if hi - spec.window + spec.slide < history_start {
                break;
            }
            base.push(self.count_between(hi - spec.window, hi) as f64);
        }
        let velocity_z = if base.len() >= 2 {
            let n = base.len() as f64;
            let mean = base.iter().sum::<f64>() / n;
            let var = base.iter().map(|c| (c - mean) * (c - mean)).sum::<f64>() / (n - 1.0);
            // A floor of one mention keeps a silent baseline from turning one post into an infinite z.
            (mentions as f64 - mean) / var.sqrt().max(1.0)
        } else {
            0.0
        };
        let mut w = SentimentWindow {
            token,
            end,
            mentions,
            score,
            velocity_z,
            authors: Vec::new(),
        };
        if spec.credit.is_some_and(|c| c.admits(&w)) {
            w.authors = contribs.iter().map(|c| c.4.clone()).collect();
            w.authors.sort();
            w.authors.dedup();
        }
        Some(w)
    }

    /// Forgets what no future window (or baseline) can reach.
    pub fn prune(&mut self, next_end: i64, spec: &WindowSpec) {
        let keep_items = next_end - spec.window;
        while let Some((&p, _)) = self.items.iter().next() {
            if p > keep_items {
                break;
            }
            self.items.remove(&p);
        }
        let keep_counts = next_end - spec.window * (spec.baseline_windows as i64 + 1);
        while let Some((&p, _)) = self.counts.iter().next() {
            if p > keep_counts {
                break;
            }
            self.counts.remove(&p);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.counts.is_empty()
    }
}

pub fn sentiment_windows<'s>(
    mentions: Stream<'s, u64, Vec<Mention>>,
    spec: WindowSpec,
    counters: Arc<Counters>,
) -> Stream<'s, u64, Vec<SentimentWindow>> {
    mentions.unary_frontier::<CapacityContainerBuilder<Vec<SentimentWindow>>, _, _, _>(
        Exchange::new(|m: &Mention| m.token as u64),
        "SentimentWindows",
        move |_cap, _info| {
            let mut tokens: BTreeMap<u32, TokenPanes> = BTreeMap::new();
            // Capability for the next window end we owe, and that end.
            let mut emit: Option<(Capability<u64>, i64)> = None;
            let mut emitted_upto = i64::MIN;
            let history_start = spec.history_start;
            let mut late: HashMap<u32, u64> = HashMap::new();
            move |(input, frontier), output| {
                input.for_each_stamp(|cap, data| {
                    let stamp = cap.least().copied().unwrap_or(0);
                    for batch in data {
                        for m in batch.drain(..) {
                            let pane_end = (m.time.div_euclid(spec.slide) + 1) * spec.slide;
                            if pane_end <= emitted_upto {
                                *late.entry(m.token).or_default() += 1;
                                Counters::add(&counters.late_records, 1);
                                continue;
                            }
                            tokens.entry(m.token).or_default().add(pane_end, &m);
                            let owe_earlier =
                                emit.as_ref().map(|(_, e)| pane_end < *e).unwrap_or(true);
                            if owe_earlier {
                                let at = (pane_end.max(0) as u64).max(stamp);
                                emit = Some((cap.delayed(&at, output.output_index()), pane_end));
                            }
                        }
                    }
                });
                while let Some((cap, end)) = emit.as_ref() {
                    let end = *end;
                    if frontier.less_equal(&(end.max(0) as u64)) {
                        break;
                    }
                    {
                        let mut session = output.session(cap);
                        for (&tok, panes) in tokens.iter_mut() {
                            if let Some(w) = panes.window(tok, end, &spec, history_start) {
                                Counters::add(&counters.windows, 1);
                                session.give(w);
                            }
                        }
                    }
                    emitted_upto = end;
                    // Next end that has something in its window: the following slide, or a jump over silence.
                    let following = end + spec.slide;
                    let mut next: Option<i64> = None;
                    for panes in tokens.values_mut() {
                        panes.prune(following, &spec);
                        if panes.has_items_in(following - spec.window, following) {
                            next = Some(following);
                        } else if let Some((&p, _)) = panes.items.range(following + 1..).next() {
                            next = Some(next.map_or(p, |n: i64| n.min(p)));
                        }
                    }
                    tokens.retain(|_, p| !p.is_empty());
                    match next {
                        Some(n) => {
                            if let Some((cap, e)) = emit.as_mut() {
                                let target = (n.max(0) as u64).max(*cap.time());
                                cap.downgrade(&target);
                                *e = n;
                            }
                        }
                        None => emit = None,
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(time: i64, seq: u64, score: f64, weight: f64) -> Mention {
        Mention {
            token: 0,
            time,
            seq,
            score,
            weight,
            // two accounts, by the parity of the sequence number
            author: Arc::from(format!("@a{}", seq % 2)),
        }
    }

    #[test]
    fn weighted_score_and_velocity() {
        let spec = WindowSpec {
            window: 100,
            slide: 50,
            baseline_windows: 3,
            history_start: 0,
            credit: Some(EntryThresholds {
                min_mentions: 1,
                min_score: -1.0,
                min_velocity_z: f64::MIN,
            }),
        };
        let mut p = TokenPanes::default();
        // baseline: windows (0,100], (100,200], (200,300] hold 1, 2, 1 mentions
        for (t, s) in [(10, 1), (120, 2), (160, 3), (250, 4)] {
            p.add((t / 50 + 1) * 50, &m(t, s, 0.0, 1.0));
        }
        // current window (300,400]: three mentions
        p.add(350, &m(310, 10, 1.0, 3.0));
        p.add(400, &m(360, 11, -1.0, 1.0));
        p.add(400, &m(390, 12, 0.5, 2.0));
        let w = p.window(0, 400, &spec, 50).unwrap();
        assert_eq!(w.mentions, 3);
        // (3*1 - 1 + 2*0.5) / 6 = 0.5
        assert!((w.score - 0.5).abs() < 1e-12);
        // baseline counts 1,2,1: mean 4/3, sample std sqrt(1/3) < 1 -> floor 1 -> z = 3 - 4/3
        assert!((w.velocity_z - (3.0 - 4.0 / 3.0)).abs() < 1e-12);
        // only the window's posts are credited, each account once
        let names: Vec<&str> = w.authors.iter().map(|a| &**a).collect();
        assert_eq!(names, ["@a0", "@a1"]);
        p.prune(450, &spec);
        let later = p.window(0, 450, &spec, 50).unwrap();
        assert_eq!(later.mentions, 2);
        let names: Vec<&str> = later.authors.iter().map(|a| &**a).collect();
        assert_eq!(names, ["@a0", "@a1"]);
        p.add(500, &m(460, 13, 0.0, 1.0));
        let last = p.window(0, 500, &spec, 50).unwrap();
        let names: Vec<&str> = last.authors.iter().map(|a| &**a).collect();
        assert_eq!(names, ["@a1"], "the earlier posts left the window");
        // a window below the entry thresholds cannot make an entry: nobody is listed
        let strict = WindowSpec {
            credit: Some(EntryThresholds {
                min_mentions: 2,
                ..spec.credit.unwrap()
            }),
            ..spec
        };
        assert!(p.window(0, 500, &strict, 50).unwrap().authors.is_empty());
    }

    #[test]
    fn no_baseline_before_history() {
        let spec = WindowSpec {
            window: 100,
            slide: 50,
            baseline_windows: 3,
            history_start: 0,
            credit: None,
        };
        let mut p = TokenPanes::default();
        p.add(50, &m(10, 1, 0.5, 1.0));
        let w = p.window(0, 100, &spec, 50).unwrap();
        assert!(w.authors.is_empty(), "no rule to credit");
        assert_eq!(
            w.velocity_z, 0.0,
            "no baseline yet: velocity unknown, not infinite"
        );
        assert!(p.window(0, 300, &spec, 50).is_none());
    }
}
