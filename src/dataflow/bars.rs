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
        // each volume is at most 10^15 (model::limits); a bar summing 10^13 of them saturates, never panics
        self.volume = self.volume.saturating_add(t.volume);
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
            // Close time of the last emitted bar: a tick for an interval already closed is late. It is counted and
            // dropped, never turned into a second bar for the same interval.
            let mut emitted_upto: i64 = i64::MIN;
            let counters = Rc::new(counters);
            move |(input, frontier), output| {
                input.for_each_stamp(|cap, data| {
                    let Some(&t) = cap.least() else { return };
                    for batch in data {
                        Counters::add(&counters.ticks, batch.len() as u64);
                        for tick in batch.drain(..) {
                            let close = (tick.time.div_euclid(interval) + 1) * interval;
                            if close <= emitted_upto {
                                Counters::add(&counters.late_records, 1);
                                continue;
                            }
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
                    emitted_upto = emitted_upto.max(close as i64);
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

#[cfg(test)]
mod late_tests {
    use super::*;
    use std::sync::Mutex;
    use timely::dataflow::channels::pact::Pipeline;
    use timely::dataflow::operators::Probe;
    use timely::dataflow::{InputHandle, ProbeHandle};

    #[test]
    fn a_tick_for_a_closed_bar_is_counted_late_not_a_second_bar() {
        let counters = Arc::new(Counters::default());
        let bars: Arc<Mutex<Vec<BarRec>>> = Arc::new(Mutex::new(Vec::new()));
        let (c2, b2) = (counters.clone(), bars.clone());
        timely::execute_directly(move |worker| {
            let mut input: InputHandle<u64, CapacityContainerBuilder<Vec<TickRec>>> =
                InputHandle::new();
            let probe = ProbeHandle::new();
            let sink = b2.clone();
            let c3 = c2.clone();
            worker.dataflow::<u64, _, _>(|scope| {
                build_bars(input.to_stream(scope), 60, c3)
                    .probe_with(&probe)
                    .sink(Pipeline, "s", move |(i, _)| {
                        i.for_each_stamp(|_, d| {
                            for b in d {
                                sink.lock().unwrap().append(b);
                            }
                        })
                    });
            });
            let tick = |time, seq, p: i64| TickRec {
                token: 0,
                time,
                seq,
                price: Decimal::from(p),
                volume: Decimal::ONE,
            };
            input.send(tick(10, 0, 100));
            input.advance_to(200);
            while probe.less_than(&200) {
                worker.step();
            }
            // stamped at the watermark (200) but its event time falls in the bar [0, 60) already emitted
            input.send(tick(20, 1, 999));
            input.send(tick(70, 2, 101));
            input.advance_to(400);
            while probe.less_than(&400) {
                worker.step();
            }
        });
        let bars = bars.lock().unwrap();
        // [0, 60) once, without the late 999; [60, 120) had never been emitted, so its tick is on time
        assert_eq!(bars.len(), 2, "{bars:?}");
        assert_eq!((bars[0].open_time, bars[0].high), (0, Decimal::from(100)));
        assert_eq!((bars[1].open_time, bars[1].close), (60, Decimal::from(101)));
        assert_eq!(Counters::get(&counters.late_records), 1);
    }
}
