//! Rolling correlation of bar log returns between tokens. Pairs whose correlation reaches the threshold are
//! "linked"; the operator emits the link set's changes as differential updates, and `clusters` turns links
//! into connected components. Runs on one worker: the pairs are few and every pair needs both tokens.

use crate::config::CorrelationConfig;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::Stream;

/// (token, bar close time, log return)
pub type ReturnObs = (u32, i64, f64);
/// ((token a, token b), time, +1 link appears / -1 link goes); (a, a) announces a token.
pub type LinkUpdate = ((u32, u32), u64, isize);

/// Rolling returns of every token and the current set of links; plain state so it can be tested directly.
pub struct CorrelationBook {
    cfg: CorrelationConfig,
    returns: BTreeMap<u32, VecDeque<(i64, f64)>>,
    links: BTreeSet<(u32, u32)>,
}

/// Welford's single-pass co-moments: stable for small returns and free of allocation.
#[derive(Default)]
struct CoMoments {
    n: usize,
    mx: f64,
    my: f64,
    sxx: f64,
    syy: f64,
    sxy: f64,
}

impl CoMoments {
    fn add(&mut self, x: f64, y: f64) {
        self.n += 1;
        let n = self.n as f64;
        let dx = x - self.mx;
        let dy = y - self.my;
        self.mx += dx / n;
        self.my += dy / n;
        self.sxx += dx * (x - self.mx);
        self.syy += dy * (y - self.my);
        self.sxy += dx * (y - self.my);
    }
    fn pearson(&self) -> Option<f64> {
        if self.n < 2 || self.sxx <= 0.0 || self.syy <= 0.0 {
            return None;
        }
        Some((self.sxy / (self.sxx * self.syy).sqrt()).clamp(-1.0, 1.0))
    }
}

pub fn pearson(xs: &[f64], ys: &[f64]) -> Option<f64> {
    if xs.len() != ys.len() {
        return None;
    }
    let mut m = CoMoments::default();
    for (x, y) in xs.iter().zip(ys) {
        m.add(*x, *y);
    }
    m.pearson()
}

impl CorrelationBook {
    pub fn new(cfg: CorrelationConfig) -> Self {
        CorrelationBook {
            cfg,
            returns: BTreeMap::new(),
            links: BTreeSet::new(),
        }
    }

    /// Correlation over the returns both tokens have at the same bar times, within each one's window.
    pub fn correlation(&self, a: u32, b: u32) -> Option<f64> {
        let (ra, rb) = (self.returns.get(&a)?, self.returns.get(&b)?);
        let mut m = CoMoments::default();
        let (mut i, mut j) = (0, 0);
        while i < ra.len() && j < rb.len() {
            let ((ta, xa), (tb, xb)) = (ra[i], rb[j]);
            match ta.cmp(&tb) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    m.add(xa, xb);
                    i += 1;
                    j += 1;
                }
            }
        }
        if m.n < self.cfg.min_observations {
            return None;
        }
        m.pearson()
    }

    /// Adds one time's returns (any order) and returns the link changes, new tokens included as (a, a).
    pub fn advance(&mut self, mut obs: Vec<ReturnObs>) -> Vec<((u32, u32), isize)> {
        obs.sort_by_key(|x| (x.0, x.1));
        let mut changes = Vec::new();
        let mut touched = BTreeSet::new();
        for (tok, time, r) in obs {
            let q = self.returns.entry(tok).or_insert_with(|| {
                changes.push(((tok, tok), 1));
                VecDeque::new()
            });
            q.push_back((time, r));
            while q.len() > self.cfg.window_bars {
                q.pop_front();
            }
            touched.insert(tok);
        }
        let tokens: Vec<u32> = self.returns.keys().copied().collect();
        for (i, &a) in tokens.iter().enumerate() {
            for &b in &tokens[i + 1..] {
                if !touched.contains(&a) && !touched.contains(&b) {
                    continue;
                }
                let linked = self
                    .correlation(a, b)
                    .map(|c| c >= self.cfg.threshold)
                    .unwrap_or(false);
                let was = self.links.contains(&(a, b));
                if linked && !was {
                    self.links.insert((a, b));
                    changes.push(((a, b), 1));
                    changes.push(((b, a), 1));
                } else if !linked && was {
                    self.links.remove(&(a, b));
                    changes.push(((a, b), -1));
                    changes.push(((b, a), -1));
                }
            }
        }
        changes
    }
}

pub fn correlation_links<'s>(
    returns: Stream<'s, u64, Vec<ReturnObs>>,
    cfg: CorrelationConfig,
) -> Stream<'s, u64, Vec<LinkUpdate>> {
    returns.unary_frontier::<CapacityContainerBuilder<Vec<LinkUpdate>>, _, _, _>(
        Exchange::new(|_: &ReturnObs| 0u64),
        "Correlation",
        move |_cap, _info| {
            let mut book = CorrelationBook::new(cfg);
            let mut stash: BTreeMap<u64, (Capability<u64>, Vec<ReturnObs>)> = BTreeMap::new();
            move |(input, frontier), output| {
                input.for_each_stamp(|cap, data| {
                    if let Some(c) = cap.retain_least(output.output_index()) {
                        let e = stash.entry(*c.time()).or_insert_with(|| (c, Vec::new()));
                        for batch in data {
                            e.1.append(batch);
                        }
                    }
                });
                while let Some((&t, _)) = stash.iter().next() {
                    if frontier.less_equal(&t) {
                        break;
                    }
                    let Some((cap, obs)) = stash.remove(&t) else {
                        break;
                    };
                    let changes = book.advance(obs);
                    if !changes.is_empty() {
                        let mut s = output.session(&cap);
                        for (edge, diff) in changes {
                            s.give((edge, t, diff));
                        }
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pearson_hand_values() {
        assert!((pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]).unwrap() - 1.0).abs() < 1e-12);
        assert!((pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]).unwrap() + 1.0).abs() < 1e-12);
        // x = 1,2,3,4 ; y = 1,3,2,4 : cov 2.5/ (sqrt(5)*sqrt(5)) = 0.8
        assert!(
            (pearson(&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0]).unwrap() - 0.8).abs() < 1e-12
        );
        assert!(pearson(&[1.0, 1.0], &[1.0, 2.0]).is_none());
    }

    #[test]
    fn links_appear_and_disappear() {
        let cfg = CorrelationConfig {
            window_bars: 4,
            threshold: 0.9,
            min_observations: 3,
        };
        let mut b = CorrelationBook::new(cfg);
        let mut all = Vec::new();
        for (t, (x, y)) in [(0.01, 0.02), (-0.02, -0.03), (0.03, 0.05), (0.0, 0.001)]
            .iter()
            .enumerate()
        {
            all.extend(b.advance(vec![(0, t as i64, *x), (1, t as i64, *y)]));
        }
        assert!(all.contains(&((0, 0), 1)) && all.contains(&((1, 1), 1)));
        assert!(all.contains(&((0, 1), 1)) && all.contains(&((1, 0), 1)));
        // anti-correlated moves push the link out of the 4-bar window
        let mut later = Vec::new();
        for t in 4..8 {
            let x = if t % 2 == 0 { 0.02 } else { -0.02 };
            later.extend(b.advance(vec![(0, t, x), (1, t, -x)]));
        }
        assert!(later.contains(&((0, 1), -1)));
    }
}
