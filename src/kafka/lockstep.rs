//! `run --lockstep`: a replay kept in step with its executor. Live, wall time gives the executor the moments
//! between a decision and the next bar to fill it; a replay reads history as fast as it can, so without this
//! the dataflow would decide on bars whose fills the executor has not made yet. In lockstep the source moves
//! its watermark one bar at a time, and only once the dataflow has finished everything before it and every
//! intent it published has an outcome read back from `orders.fills` or `orders.rejects`.

use std::collections::HashSet;
use std::sync::Mutex;

#[derive(Debug)]
pub struct Lockstep {
    /// The bar interval: the watermark steps to the next multiple of it.
    step_ms: i64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Published, no outcome read back yet.
    awaiting: HashSet<String>,
    /// Outcomes read back (an intent published again after its outcome, as a restart does, waits for
    /// nothing).
    settled: HashSet<String>,
}

impl Lockstep {
    pub fn new(step_ms: i64) -> Lockstep {
        Lockstep {
            step_ms: step_ms.max(1),
            state: Mutex::new(State::default()),
        }
    }

    pub fn step_ms(&self) -> i64 {
        self.step_ms
    }

    /// An intent is on its way to the executor.
    pub fn sent(&self, id: &str) {
        if let Ok(mut s) = self.state.lock() {
            if !s.settled.contains(id) {
                s.awaiting.insert(id.to_string());
            }
        }
    }

    /// Its outcome was read back.
    pub fn settled(&self, id: &str) {
        if let Ok(mut s) = self.state.lock() {
            s.awaiting.remove(id);
            s.settled.insert(id.to_string());
        }
    }

    /// Whether some published intent has no outcome yet (a poisoned lock waits: it can only mean a worker
    /// died, and the run is ending).
    pub fn waiting(&self) -> bool {
        self.state.lock().map_or(true, |s| !s.awaiting.is_empty())
    }

    /// How far the source may move its capability from `cap` toward `target`, when the first record it holds
    /// at or after `cap` is stamped `first`: not at all while the dataflow is still at work before `cap` or an
    /// outcome is awaited; else past the bar boundary after that record at most (a stretch without records
    /// is skipped at once).
    pub fn limit(&self, cap: i64, first: Option<i64>, target: i64, caught_up: bool) -> i64 {
        if !caught_up || self.waiting() {
            return cap;
        }
        let base = first.unwrap_or(target).max(cap);
        let next = (base.div_euclid(self.step_ms) + 1) * self.step_ms;
        target.min(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watermark_steps_a_bar_at_a_time_and_waits_for_outcomes() {
        let l = Lockstep::new(300);
        assert_eq!(l.limit(0, Some(0), 10_000, true), 300);
        assert_eq!(l.limit(300, Some(300), 10_000, true), 600);
        assert_eq!(
            l.limit(0, Some(5_000), 10_000, true),
            5_100,
            "nothing to step through before 5000"
        );
        assert_eq!(
            l.limit(310, None, 400, true),
            400,
            "never past the watermark"
        );
        assert_eq!(
            l.limit(300, Some(300), 10_000, false),
            300,
            "the dataflow is busy"
        );
        l.sent("a");
        assert_eq!(
            l.limit(300, Some(300), 10_000, true),
            300,
            "an outcome is awaited"
        );
        l.settled("a");
        assert_eq!(l.limit(300, Some(300), 10_000, true), 600);
        // published again after its outcome (a restart): nothing to wait for
        l.sent("a");
        assert!(!l.waiting());
    }
}
