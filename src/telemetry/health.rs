//! Readiness: each component of a process says whether it can do its work (connected to the broker, its
//! source fresh, its breakers closed); the process is ready when at least one has reported and all of them
//! can. Liveness is the server answering at all.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// One component's last word, and how long it may stay silent before it counts as stale.
struct Check {
    ok: bool,
    detail: String,
    updated: Instant,
    fresh_within: Option<Duration>,
}

/// The process's readiness checks (one registry per process: [`health`]).
#[derive(Default)]
pub struct Health {
    checks: Mutex<BTreeMap<String, Check>>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CheckView {
    pub name: String,
    pub ok: bool,
    pub detail: String,
    /// Seconds since the component last reported.
    pub age_s: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Readiness {
    pub ready: bool,
    pub checks: Vec<CheckView>,
}

/// The process-wide registry.
pub fn health() -> &'static Health {
    static H: OnceLock<Health> = OnceLock::new();
    H.get_or_init(Health::default)
}

impl Health {
    /// A component's state: ready or not, and why.
    pub fn set(&self, name: &str, ok: bool, detail: impl Into<String>) {
        self.put(name, ok, detail.into(), None);
    }

    /// A component that is ready only while it keeps reporting: not ready once `within` passes without a
    /// report (a source that stopped delivering, a loop that hangs).
    pub fn beat(&self, name: &str, within: Duration, detail: impl Into<String>) {
        self.put(name, true, detail.into(), Some(within));
    }

    fn put(&self, name: &str, ok: bool, detail: String, fresh_within: Option<Duration>) {
        if let Ok(mut c) = self.checks.lock() {
            c.insert(
                name.to_string(),
                Check {
                    ok,
                    detail,
                    updated: Instant::now(),
                    fresh_within,
                },
            );
        }
    }

    /// Forgets a component (a stage that ended on purpose).
    pub fn remove(&self, name: &str) {
        if let Ok(mut c) = self.checks.lock() {
            c.remove(name);
        }
    }

    pub fn readiness(&self) -> Readiness {
        self.readiness_at(Instant::now())
    }

    fn readiness_at(&self, now: Instant) -> Readiness {
        let Ok(c) = self.checks.lock() else {
            return Readiness {
                ready: false,
                checks: Vec::new(),
            };
        };
        let checks: Vec<CheckView> = c
            .iter()
            .map(|(name, ch)| {
                let age = now.saturating_duration_since(ch.updated);
                let stale = ch.fresh_within.is_some_and(|w| age > w);
                CheckView {
                    name: name.clone(),
                    ok: ch.ok && !stale,
                    detail: if stale {
                        format!("no report for {:.0} s ({})", age.as_secs_f64(), ch.detail)
                    } else {
                        ch.detail.clone()
                    },
                    age_s: (age.as_secs_f64() * 10.0).round() / 10.0,
                }
            })
            .collect();
        // nothing reported yet: the process is still starting its components
        Readiness {
            ready: !checks.is_empty() && checks.iter().all(|c| c.ok),
            checks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_check_is_ok_and_fresh() {
        let h = Health::default();
        assert!(!h.readiness().ready, "no checks yet: still starting");
        h.set("broker", false, "connecting");
        let r = h.readiness();
        assert!(!r.ready);
        assert_eq!(r.checks[0].detail, "connecting");
        h.set("broker", true, "connected");
        h.beat("source", Duration::from_secs(30), "reading");
        assert!(h.readiness().ready);
        let later = Instant::now() + Duration::from_secs(31);
        let r = h.readiness_at(later);
        assert!(!r.ready);
        let source = r.checks.iter().find(|c| c.name == "source").unwrap();
        assert!(
            !source.ok && source.detail.starts_with("no report for 31 s"),
            "{source:?}"
        );
        h.remove("source");
        assert!(h.readiness_at(later).ready);
    }
}
