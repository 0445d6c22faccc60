//! Alerts to the operator: Telegram (Bot API `sendMessage`) and a generic JSON webhook, configured per
//! deployment by environment (every stage of `hypeflow up` inherits it). Fills, rejects, breaker trips, phase
//! changes, a daily summary and supervised restarts are sent from a background thread through a bounded
//! queue: a slow or failing channel never blocks trading, a full queue drops the alert and counts it. The same
//! key within the dedupe window is sent once (the next one says how many were held back), and each channel
//! keeps its own rate limit and honours Telegram's `retry_after`.

pub mod channel;

use crate::telemetry::names;
use channel::{Channel, SendError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const TELEGRAM_TOKEN_ENV: &str = "HYPEFLOW_TELEGRAM_BOT_TOKEN";
pub const TELEGRAM_CHAT_ENV: &str = "HYPEFLOW_TELEGRAM_CHAT_ID";
/// Bot API root (tests point it at a fake); the token goes in the path, never in a log or an error.
pub const TELEGRAM_BASE_ENV: &str = "HYPEFLOW_TELEGRAM_API";
pub const WEBHOOK_URL_ENV: &str = "HYPEFLOW_ALERT_WEBHOOK_URL";
pub const WEBHOOK_TOKEN_ENV: &str = "HYPEFLOW_ALERT_WEBHOOK_TOKEN";
/// Which kinds to send (comma-separated; default all): fill, reject, breaker, phase, daily, restart.
pub const KINDS_ENV: &str = "HYPEFLOW_ALERTS";

/// Alerts waiting to be sent; beyond this they are dropped and counted.
const QUEUE: usize = 1_000;
/// The same key is sent at most once per window.
pub const DEDUPE_WINDOW: Duration = Duration::from_secs(300);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Fill,
    Reject,
    Breaker,
    Phase,
    Daily,
    Restart,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Fill,
        Kind::Reject,
        Kind::Breaker,
        Kind::Phase,
        Kind::Daily,
        Kind::Restart,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Fill => "fill",
            Kind::Reject => "reject",
            Kind::Breaker => "breaker",
            Kind::Phase => "phase",
            Kind::Daily => "daily",
            Kind::Restart => "restart",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub kind: Kind,
    /// What counts as "the same alert" for deduplication (e.g. a reject's reason class and token).
    pub key: String,
    pub text: String,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AlertConfigError {
    #[error(
        "{KINDS_ENV}: unknown alert kind {0:?}; use fill, reject, breaker, phase, daily, restart"
    )]
    Kind(String),
    #[error("{TELEGRAM_TOKEN_ENV} is set but {TELEGRAM_CHAT_ENV} is not: set the chat to send to")]
    NoChat,
    #[error("{WEBHOOK_URL_ENV} must be an http:// or https:// URL")]
    Webhook,
}

struct Sender {
    tx: SyncSender<Alert>,
    kinds: Vec<Kind>,
}

static SENDER: OnceLock<Sender> = OnceLock::new();
/// Alerts queued and not yet handled by the sending thread.
static PENDING: AtomicUsize = AtomicUsize::new(0);

/// Reads the channels from the environment and starts the sending thread; false when none is configured
/// (then [`notify`] does nothing).
pub fn init_from_env() -> Result<bool, AlertConfigError> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let kinds = match env(KINDS_ENV) {
        None => Kind::ALL.to_vec(),
        Some(list) => parse_kinds(&list)?,
    };
    let mut channels: Vec<Box<dyn Channel>> = Vec::new();
    if let Some(token) = env(TELEGRAM_TOKEN_ENV) {
        let chat = env(TELEGRAM_CHAT_ENV).ok_or(AlertConfigError::NoChat)?;
        let base = env(TELEGRAM_BASE_ENV).unwrap_or_else(|| channel::TELEGRAM_API.into());
        channels.push(Box::new(channel::Telegram::new(&base, &token, &chat)));
    }
    if let Some(url) = env(WEBHOOK_URL_ENV) {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(AlertConfigError::Webhook);
        }
        channels.push(Box::new(channel::Webhook::new(
            &url,
            env(WEBHOOK_TOKEN_ENV),
        )));
    }
    if channels.is_empty() {
        return Ok(false);
    }
    let (tx, rx) = sync_channel(QUEUE);
    if SENDER.set(Sender { tx, kinds }).is_err() {
        return Ok(true);
    }
    std::thread::Builder::new()
        .name("alerts".into())
        .spawn(move || send_loop(rx, channels))
        .map(|_| true)
        .or(Ok(false))
}

fn parse_kinds(list: &str) -> Result<Vec<Kind>, AlertConfigError> {
    list.split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| {
            Kind::ALL
                .into_iter()
                .find(|c| c.as_str() == k)
                .ok_or_else(|| AlertConfigError::Kind(k.into()))
        })
        .collect()
}

/// Queues an alert when alerts are configured and its kind is wanted; never blocks.
pub fn notify(kind: Kind, key: impl Into<String>, text: impl Into<String>) {
    let Some(s) = SENDER.get() else { return };
    if !s.kinds.contains(&kind) {
        return;
    }
    let alert = Alert {
        kind,
        key: key.into(),
        text: text.into(),
    };
    PENDING.fetch_add(1, Ordering::SeqCst);
    if let Err(e) = s.tx.try_send(alert) {
        PENDING.fetch_sub(1, Ordering::SeqCst);
        if let TrySendError::Full(_) = e {
            metrics::counter!(names::ALERTS, "channel" => "queue", "outcome" => "dropped")
                .increment(1);
        }
    }
}

/// Waits up to `within` for the queued alerts to be handled (a stopping process's last fills and its
/// restart alerts are not lost to the exit); true when none is left.
pub fn flush(within: Duration) -> bool {
    let t0 = Instant::now();
    while PENDING.load(Ordering::SeqCst) > 0 {
        if t0.elapsed() >= within {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Holds back repeats of a key within the window; says how many were held back when it lets one through.
#[derive(Default)]
pub struct Dedupe {
    last: HashMap<String, (Instant, u64)>,
}

impl Dedupe {
    /// The text to send now, or None to hold this one back.
    pub fn admit(&mut self, a: &Alert, now: Instant) -> Option<String> {
        self.last
            .retain(|_, (t, _)| now.saturating_duration_since(*t) < DEDUPE_WINDOW * 2);
        let key = format!("{}:{}", a.kind.as_str(), a.key);
        match self.last.get_mut(&key) {
            Some((t, held)) if now.saturating_duration_since(*t) < DEDUPE_WINDOW => {
                *held += 1;
                None
            }
            Some((t, held)) => {
                let text = if *held > 0 {
                    format!("{} (+{} similar held back)", a.text, held)
                } else {
                    a.text.clone()
                };
                *t = now;
                *held = 0;
                Some(text)
            }
            None => {
                self.last.insert(key, (now, 0));
                Some(a.text.clone())
            }
        }
    }
}

fn send_loop(rx: Receiver<Alert>, mut channels: Vec<Box<dyn Channel>>) {
    let mut dedupe = Dedupe::default();
    for a in rx {
        send_one(&mut dedupe, &mut channels, &a);
        PENDING.fetch_sub(1, Ordering::SeqCst);
    }
}

fn send_one(dedupe: &mut Dedupe, channels: &mut [Box<dyn Channel>], a: &Alert) {
    let Some(text) = dedupe.admit(a, Instant::now()) else {
        metrics::counter!(names::ALERTS, "channel" => "dedupe", "outcome" => "held").increment(1);
        return;
    };
    for c in channels.iter_mut() {
        let outcome = match c.send(a.kind, &text) {
            Ok(()) => "sent",
            Err(SendError::RateLimited) => "rate_limited",
            Err(SendError::Failed(why)) => {
                tracing::warn!("alert to {} not sent: {why}", c.name());
                "failed"
            }
        };
        metrics::counter!(names::ALERTS, "channel" => c.name(), "outcome" => outcome).increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_held_back_within_the_window_and_counted() {
        let mut d = Dedupe::default();
        let a = Alert {
            kind: Kind::Reject,
            key: "drift AXL".into(),
            text: "refused AXL: drift".into(),
        };
        let t0 = Instant::now();
        assert_eq!(d.admit(&a, t0).as_deref(), Some("refused AXL: drift"));
        assert_eq!(d.admit(&a, t0 + Duration::from_secs(10)), None);
        assert_eq!(d.admit(&a, t0 + Duration::from_secs(20)), None);
        let other = Alert {
            key: "drift BOLT".into(),
            ..a.clone()
        };
        assert!(d.admit(&other, t0 + Duration::from_secs(30)).is_some());
        assert_eq!(
            d.admit(&a, t0 + DEDUPE_WINDOW + Duration::from_secs(1))
                .as_deref(),
            Some("refused AXL: drift (+2 similar held back)")
        );
    }

    #[test]
    fn alert_kinds_parse_and_unknown_ones_are_refused() {
        assert_eq!(
            parse_kinds("fill, breaker").unwrap(),
            vec![Kind::Fill, Kind::Breaker]
        );
        assert_eq!(
            parse_kinds("fills"),
            Err(AlertConfigError::Kind("fills".into()))
        );
    }
}
