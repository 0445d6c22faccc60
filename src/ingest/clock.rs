//! The waits of an ingester (reconnect backoff, polling intervals) go through a clock so a test can check the
//! schedule against the documented one without spending minutes asleep.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub trait Clock: Send + Sync {
    fn sleep(&self, d: Duration);
    /// Monotonic now, for deciding when a paused provider may be tried again.
    fn now(&self) -> Instant;
}

/// Sleeps for real.
pub struct SystemClock;

impl Clock for SystemClock {
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }

    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// Writes down every wait and returns at once, its `now` moving by the waits: for tests of a schedule.
#[derive(Clone)]
pub struct RecordingClock {
    waits: Arc<Mutex<Vec<Duration>>>,
    start: Instant,
}

impl Default for RecordingClock {
    fn default() -> Self {
        RecordingClock {
            waits: Default::default(),
            start: Instant::now(),
        }
    }
}

impl RecordingClock {
    pub fn waits(&self) -> Vec<Duration> {
        self.waits.lock().map(|w| w.clone()).unwrap_or_default()
    }
}

impl Clock for RecordingClock {
    fn sleep(&self, d: Duration) {
        if let Ok(mut w) = self.waits.lock() {
            w.push(d);
        }
    }

    fn now(&self) -> Instant {
        self.start + self.waits().iter().sum::<Duration>()
    }
}
