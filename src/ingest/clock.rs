//! The waits of an ingester (reconnect backoff, polling intervals) go through a clock so a test can check the
//! schedule against the documented one without spending minutes asleep.

use std::sync::{Arc, Mutex};
use std::time::Duration;

pub trait Clock: Send + Sync {
    fn sleep(&self, d: Duration);
}

/// Sleeps for real.
pub struct SystemClock;

impl Clock for SystemClock {
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// Writes down every wait and returns at once: for tests of a backoff schedule.
#[derive(Clone, Default)]
pub struct RecordingClock {
    waits: Arc<Mutex<Vec<Duration>>>,
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
}
