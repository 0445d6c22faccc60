//! The shape two operators share (`token_signals`, `portfolio`): records of two inputs held by timely time, each
//! time with its capability, and released in time order once both inputs' frontiers have passed it, so a
//! decision at time t sees everything either input has for t and nothing later.

use std::collections::BTreeMap;
use timely::dataflow::operators::Capability;

/// One time's capability and what each input holds for it.
pub type Slot<A, B> = (Capability<u64>, Vec<A>, Vec<B>);

pub struct TimeStash<A, B> {
    by_time: BTreeMap<u64, Slot<A, B>>,
}

impl<A, B> Default for TimeStash<A, B> {
    fn default() -> Self {
        TimeStash {
            by_time: BTreeMap::new(),
        }
    }
}

impl<A, B> TimeStash<A, B> {
    fn slot(&mut self, cap: Capability<u64>) -> &mut Slot<A, B> {
        self.by_time
            .entry(*cap.time())
            .or_insert_with(|| (cap, Vec::new(), Vec::new()))
    }

    /// Holds the first input's batches at `cap`'s time.
    pub fn push_first<'a>(
        &mut self,
        cap: Capability<u64>,
        batches: impl IntoIterator<Item = &'a mut Vec<A>>,
    ) where
        A: 'a,
    {
        let slot = self.slot(cap);
        for b in batches {
            slot.1.append(b);
        }
    }

    /// Holds the second input's batches at `cap`'s time.
    pub fn push_second<'a>(
        &mut self,
        cap: Capability<u64>,
        batches: impl IntoIterator<Item = &'a mut Vec<B>>,
    ) where
        B: 'a,
    {
        let slot = self.slot(cap);
        for b in batches {
            slot.2.append(b);
        }
    }

    /// The earliest held time that `still_open` says no input can still send to, with its capability and both
    /// inputs' records; None while the earliest time may still grow.
    pub fn pop_ready(&mut self, still_open: impl Fn(&u64) -> bool) -> Option<Slot<A, B>> {
        let (&t, _) = self.by_time.iter().next()?;
        if still_open(&t) {
            return None;
        }
        self.by_time.remove(&t)
    }

    /// The earliest time held.
    pub fn first_time(&self) -> Option<u64> {
        self.by_time.keys().next().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.by_time.is_empty()
    }
}
