//! What time it is for the executor. Live it is the wall clock; replaying history through the executor
//! (`execute --clock event`) it is the event time of the intents it has handled, so a replayed intent is
//! neither "from the future" nor stale, and the ladder's days are the history's days.

use crate::model::Millis;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

#[derive(Clone, Debug)]
pub enum Clock {
    Wall,
    Event(Arc<AtomicI64>),
}

impl Clock {
    pub fn event() -> Clock {
        Clock::Event(Arc::new(AtomicI64::new(i64::MIN)))
    }

    pub fn is_event(&self) -> bool {
        matches!(self, Clock::Event(_))
    }

    /// Now: the wall clock, or the latest event time observed (the wall clock before any).
    pub fn now(&self) -> Millis {
        match self {
            Clock::Wall => chrono::Utc::now().timestamp_millis(),
            Clock::Event(t) => match t.load(Ordering::SeqCst) {
                i64::MIN => chrono::Utc::now().timestamp_millis(),
                t => t,
            },
        }
    }

    /// Moves an event clock up to `t` (never back); the wall clock ignores it.
    pub fn observe(&self, t: Millis) {
        if let Clock::Event(a) = self {
            a.fetch_max(t, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_clock_follows_what_it_observes_and_never_goes_back() {
        let c = Clock::event();
        c.observe(1_000);
        c.observe(500);
        assert_eq!(c.now(), 1_000);
        c.observe(2_000);
        assert_eq!(c.now(), 2_000);
        let w = Clock::Wall;
        w.observe(0);
        assert!(w.now() > 1_700_000_000_000);
    }
}
