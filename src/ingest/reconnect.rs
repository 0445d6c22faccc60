//! When to reconnect the X filtered stream, exactly as X's "handling disconnections" page requires: one
//! immediate retry after a drop, then linear +250 ms per attempt up to 16 s for network errors, exponential from
//! 5 s up to 320 s for HTTP errors, exponential from 60 s for 429 (never shorter than `x-rate-limit-reset`).
//! A 409 ("stream has no rules") is a configuration error, not something to retry.

use std::time::Duration;

const NETWORK_STEP: Duration = Duration::from_millis(250);
const NETWORK_MAX: Duration = Duration::from_secs(16);
const HTTP_FIRST: Duration = Duration::from_secs(5);
const HTTP_MAX: Duration = Duration::from_secs(320);
const RATE_LIMIT_FIRST: Duration = Duration::from_secs(60);

/// Why the last connection attempt (or the connection) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// TCP/TLS errors, resets, a read silent for longer than the keep-alive allows.
    Network,
    /// An HTTP error status other than 429 and 409.
    Http(u16),
    /// HTTP 429; `reset_in` is what `x-rate-limit-reset` says is left of the window, when present.
    RateLimited { reset_in: Option<Duration> },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReconnectError {
    #[error("the stream has no rules (HTTP 409): sync the influencer rules to the project before streaming")]
    NoRules,
}

/// The next wait and whether it is the policy's maximum (worth an alert).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wait {
    pub delay: Duration,
    pub at_max: bool,
}

#[derive(Debug, Default)]
pub struct Reconnect {
    network_attempts: u32,
    http_attempts: u32,
    rate_limited: u32,
    /// A drop right after a healthy connection gets one immediate retry.
    immediate_used: bool,
}

impl Reconnect {
    pub fn new() -> Self {
        Self::default()
    }

    /// The stream delivered data (or a keep-alive) after connecting: the next drop starts over.
    pub fn connected(&mut self) {
        *self = Self::default();
    }

    /// How long to wait before the next attempt after `failure`.
    pub fn next(&mut self, failure: Failure) -> Result<Wait, ReconnectError> {
        if failure == Failure::Http(409) {
            return Err(ReconnectError::NoRules);
        }
        if !self.immediate_used && !matches!(failure, Failure::RateLimited { .. }) {
            self.immediate_used = true;
            return Ok(Wait {
                delay: Duration::ZERO,
                at_max: false,
            });
        }
        Ok(match failure {
            Failure::Network => {
                self.network_attempts += 1;
                let d = NETWORK_STEP * self.network_attempts;
                Wait {
                    delay: d.min(NETWORK_MAX),
                    at_max: d >= NETWORK_MAX,
                }
            }
            Failure::Http(_) => {
                let d = HTTP_FIRST.saturating_mul(1 << self.http_attempts.min(16));
                self.http_attempts += 1;
                Wait {
                    delay: d.min(HTTP_MAX),
                    at_max: d >= HTTP_MAX,
                }
            }
            Failure::RateLimited { reset_in } => {
                let d = RATE_LIMIT_FIRST.saturating_mul(1 << self.rate_limited.min(16));
                self.rate_limited += 1;
                Wait {
                    delay: d.max(reset_in.unwrap_or_default()),
                    at_max: false,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(w: Wait) -> f64 {
        w.delay.as_secs_f64()
    }

    #[test]
    fn network_errors_retry_once_at_once_then_linearly_up_to_16_s() {
        let mut r = Reconnect::new();
        let waits: Vec<f64> = (0..70)
            .map(|_| secs(r.next(Failure::Network).unwrap()))
            .collect();
        assert_eq!(&waits[..4], &[0.0, 0.25, 0.5, 0.75]);
        assert_eq!(waits[64], 16.0);
        assert_eq!(waits[69], 16.0);
        let mut r = Reconnect::new();
        let at_max: Vec<bool> = (0..66)
            .map(|_| r.next(Failure::Network).unwrap().at_max)
            .collect();
        assert!(
            !at_max[63] && at_max[64],
            "the cap is reached at attempt 64"
        );
    }

    #[test]
    fn http_errors_back_off_exponentially_from_5_s_to_320_s() {
        let mut r = Reconnect::new();
        let waits: Vec<f64> = (0..10)
            .map(|_| secs(r.next(Failure::Http(503)).unwrap()))
            .collect();
        assert_eq!(
            waits,
            [0.0, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 320.0, 320.0]
        );
    }

    #[test]
    fn rate_limits_wait_a_minute_doubling_and_honour_the_reset_header() {
        let mut r = Reconnect::new();
        let rl = |reset| Failure::RateLimited { reset_in: reset };
        assert_eq!(
            secs(r.next(rl(None)).unwrap()),
            60.0,
            "no immediate retry on 429"
        );
        assert_eq!(secs(r.next(rl(None)).unwrap()), 120.0);
        assert_eq!(
            secs(r.next(rl(Some(Duration::from_secs(900)))).unwrap()),
            900.0,
            "the window's reset is later than the backoff"
        );
    }

    #[test]
    fn a_healthy_connection_starts_over_and_409_is_a_configuration_error() {
        let mut r = Reconnect::new();
        r.next(Failure::Http(500)).unwrap();
        r.next(Failure::Http(500)).unwrap();
        r.connected();
        assert_eq!(secs(r.next(Failure::Http(500)).unwrap()), 0.0);
        assert_eq!(secs(r.next(Failure::Http(500)).unwrap()), 5.0);
        assert_eq!(r.next(Failure::Http(409)), Err(ReconnectError::NoRules));
    }
}
