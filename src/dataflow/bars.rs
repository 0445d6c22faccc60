//! Ticks -> OHLCV bars per token. A bar is emitted at its close time, once the frontier has passed it, so no
//! consumer can see a bar before every tick in it is known.

use super::records::Counters;
use super::records::{BarRec, TickRec};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Arc;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::Stream;

/// Running bar; open/close are the first/last ticks in (time, seq) order, whatever order they arrive in.
#[derive(Clone, Debug)]
pub struct BarAcc {
    first: (i64, u64, Decimal),
    last: (i64, u64, Decimal),
    high: Decimal,
    low: Decimal,
    volume: Decimal,
}

impl BarAcc {
    pub fn new(t: &TickRec) -> Self {
        BarAcc {
            first: (t.time, t.seq, t.price),
            last: (t.time, t.seq, t.price),
            high: t.price,
            low: t.price,
            volume: t.volume,
        }
    }
    pub fn add(&mut self, t: &TickRec) {
        if (t.time, t.seq) < (self.first.0, self.first.1) {
            self.first = (t.time, t.seq, t.price);
        }
        if (t.time, t.seq) > (self.last.0, self.last.1) {
            self.last = (t.time, t.seq, t.price);
        }
        if t.price > self.high {
            self.high = t.price;
        }
        if t.price < self.low {
            self.low = t.price;
        }
        self.volume += t.volume;
    }
    pub fn finish(&self, token: u32, open_time: i64, interval: i64) -> BarRec {
        BarRec {
            token,
            open_time,
            interval,
            open: self.first.2,
            high: self.high,
            low: self.low,
            close: self.last.2,
            volume: self.volume,
        }
    }
}

pub fn build_bars<'s>(
    ticks: Stream<'s, u64, Vec<TickRec>>,
    interval: i64,
    counters: Arc<Counters>,
) -> Stream<'s, u64, Vec<BarRec>> {
    ticks.unary_frontier::<CapacityContainerBuilder<Vec<BarRec>>, _, _, _>(
        Exchange::new(|t: &TickRec| t.token as u64),
        "Bars",
        move |_cap, _info| {
            // close time -> (capability at the close, per-token accumulators)
            let mut open: BTreeMap<u64, (Capability<u64>, HashMap<u32, BarAcc>)> = BTreeMap::new();
            let counters = Rc::new(counters);
            move |(input, frontier), output| {
                input.for_each_stamp(|cap, data| {
                    let Some(&t) = cap.least() else { return };
                    for batch in data {
                        for tick in batch.drain(..) {
                            let close = (tick.time.div_euclid(interval) + 1) * interval;
                            let close_t = close.max(0) as u64;
                            let entry = open.entry(close_t).or_insert_with(|| {
                                (
                                    cap.delayed(&close_t.max(t), output.output_index()),
                                    HashMap::new(),
                                )
                            });
                            entry
                                .1
                                .entry(tick.token)
                                .and_modify(|a| a.add(&tick))
                                .or_insert_with(|| BarAcc::new(&tick));
                        }
                    }
                });
                while let Some((&close, _)) = open.iter().next() {
                    if frontier.less_equal(&close) {
                        break;
                    }
                    let Some((cap, accs)) = open.remove(&close) else {
                        break;
                    };
                    let mut tokens: Vec<_> = accs.into_iter().collect();
                    tokens.sort_by_key(|(tok, _)| *tok);
                    Counters::add(&counters.bars_built, tokens.len() as u64);
                    let mut session = output.session(&cap);
                    for (tok, acc) in tokens {
                        session.give(acc.finish(tok, close as i64 - interval, interval));
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros_free::dec;

    mod rust_decimal_macros_free {
        pub fn dec(s: &str) -> rust_decimal::Decimal {
            s.parse().unwrap()
        }
    }

    #[test]
    fn open_close_follow_event_order_not_arrival() {
        let t = |time, seq, p: &str| TickRec {
            token: 0,
            time,
            seq,
            price: dec(p),
            volume: dec("1"),
        };
        let mut acc = BarAcc::new(&t(30, 3, "12"));
        acc.add(&t(10, 1, "10"));
        acc.add(&t(50, 5, "11"));
        acc.add(&t(20, 2, "15"));
        acc.add(&t(40, 4, "9"));
        let b = acc.finish(0, 0, 60);
        assert_eq!(
            (b.open, b.high, b.low, b.close, b.volume),
            (dec("10"), dec("15"), dec("9"), dec("11"), dec("5"))
        );
    }
}
