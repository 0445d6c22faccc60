//! One token bucket per provider, shared by every call of that provider in the process (clone the handle), so
//! the documented limits hold however many tasks call: e.g. X's stream rules endpoint allows 450 requests per
//! 15 minutes, CoinGecko's Demo plan 30 calls per minute. A provider's own rate-limit answer (429 with
//! `retry-after`, or `x-rate-limit-remaining: 0` with `x-rate-limit-reset`) pauses the bucket until then.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Bucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    at: Instant,
    paused_until: Option<Instant>,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * self.per_second).min(self.capacity);
        self.at = now;
    }
}

/// A shared bucket: `requests` per `window`, starting full (bursts up to `requests`).
#[derive(Clone, Debug)]
pub struct RateLimit {
    name: Arc<str>,
    bucket: Arc<Mutex<Bucket>>,
}

impl RateLimit {
    pub fn new(name: &str, requests: u32, window: Duration, now: Instant) -> Self {
        let capacity = f64::from(requests.max(1));
        RateLimit {
            name: name.into(),
            bucket: Arc::new(Mutex::new(Bucket {
                capacity,
                per_second: capacity / window.as_secs_f64().max(1e-9),
                tokens: capacity,
                at: now,
                paused_until: None,
            })),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Takes a token now, or says how long until one is available (nothing is taken then).
    pub fn try_take(&self, now: Instant) -> Result<(), Duration> {
        let Ok(mut b) = self.bucket.lock() else {
            return Err(Duration::from_secs(1));
        };
        if let Some(until) = b.paused_until {
            if now < until {
                return Err(until - now);
            }
            b.paused_until = None;
        }
        b.refill(now);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / b.per_second))
        }
    }

    /// Waits (sleeping the thread) until a token is available, then takes it.
    pub fn take_blocking(&self) {
        loop {
            match self.try_take(Instant::now()) {
                Ok(()) => return,
                Err(wait) => {
                    metrics::counter!(crate::telemetry::names::RATE_LIMIT_WAIT, "provider" => self.name.to_string())
                        .increment(wait.as_millis() as u64);
                    std::thread::sleep(wait)
                }
            }
        }
    }

    /// The provider said to stop until `until` (429 `retry-after`, or an exhausted window's reset): no token
    /// is handed out before then, and the bucket restarts empty so calls resume at the steady rate.
    pub fn pause_until(&self, until: Instant) {
        if let Ok(mut b) = self.bucket.lock() {
            if b.paused_until.is_none_or(|p| p < until) {
                b.paused_until = Some(until);
            }
            b.tokens = 0.0;
            b.at = until.max(b.at);
        }
    }
}

/// What a provider's response headers say about the rate limit, read the documented way: `retry-after` in
/// seconds (CoinGecko, DashScope, most HTTP APIs), or X's `x-rate-limit-remaining` and `x-rate-limit-reset`
/// (epoch seconds). Returns how long to pause, if at all.
pub fn pause_from_headers(
    status: u16,
    header: impl Fn(&str) -> Option<String>,
    now_epoch_s: i64,
) -> Option<Duration> {
    let retry_after = header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let reset = header("x-rate-limit-reset")
        .and_then(|v| v.trim().parse::<i64>().ok())
        .map(|t| Duration::from_secs((t - now_epoch_s).max(0) as u64));
    let exhausted = header("x-rate-limit-remaining")
        .and_then(|v| v.trim().parse::<i64>().ok())
        .is_some_and(|r| r <= 0);
    match (status == 429, retry_after, reset) {
        (_, Some(r), _) if status == 429 || status == 503 => Some(r),
        (true, None, Some(r)) => Some(r),
        (true, None, None) => Some(Duration::from_secs(60)),
        (false, _, Some(r)) if exhausted => Some(r),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_the_steady_rate_across_clones() {
        let t0 = Instant::now();
        let rl = RateLimit::new("coingecko-demo", 30, Duration::from_secs(60), t0);
        let other = rl.clone();
        for i in 0..30 {
            let who = if i % 2 == 0 { &rl } else { &other };
            assert!(who.try_take(t0).is_ok(), "call {i} of the burst");
        }
        let wait = other.try_take(t0).unwrap_err();
        assert!((wait.as_secs_f64() - 2.0).abs() < 1e-6, "{wait:?}");
        assert!(rl.try_take(t0 + Duration::from_millis(1999)).is_err());
        assert!(rl.try_take(t0 + Duration::from_secs(2)).is_ok());
        assert!(rl.try_take(t0 + Duration::from_secs(2)).is_err());
    }

    #[test]
    fn a_providers_pause_holds_every_clone_until_it_ends() {
        let t0 = Instant::now();
        let rl = RateLimit::new("x-rules", 450, Duration::from_secs(900), t0);
        rl.clone().pause_until(t0 + Duration::from_secs(30));
        assert_eq!(
            rl.try_take(t0 + Duration::from_secs(10)).unwrap_err(),
            Duration::from_secs(20)
        );
        // resumes at the steady rate (2 s per call here), not with a burst
        assert!(rl.try_take(t0 + Duration::from_secs(30)).is_err());
        assert!(rl.try_take(t0 + Duration::from_secs(32)).is_ok());
    }

    #[test]
    fn headers_are_read_the_documented_way() {
        let h = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let now = 1_700_000_000;
        assert_eq!(
            pause_from_headers(429, h(&[("retry-after", "7")]), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            pause_from_headers(429, h(&[("x-rate-limit-reset", "1700000090")]), now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            pause_from_headers(
                200,
                h(&[
                    ("x-rate-limit-remaining", "0"),
                    ("x-rate-limit-reset", "1700000030")
                ]),
                now
            ),
            Some(Duration::from_secs(30)),
            "an exhausted window pauses before the 429"
        );
        assert_eq!(
            pause_from_headers(
                200,
                h(&[
                    ("x-rate-limit-remaining", "12"),
                    ("x-rate-limit-reset", "1700000030")
                ]),
                now
            ),
            None
        );
        assert_eq!(
            pause_from_headers(429, h(&[]), now),
            Some(Duration::from_secs(60))
        );
    }
}
