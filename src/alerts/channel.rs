//! Where alerts go: one shape per channel (a name and `send`), each with its own rate limit.

use super::Kind;
use crate::net::rate_limit::RateLimit;
use std::time::{Duration, Instant};

pub const TELEGRAM_API: &str = "https://api.telegram.org";
const TIMEOUT: Duration = Duration::from_secs(10);
/// Longest rate-limit wait before an alert is dropped instead.
const MAX_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, PartialEq)]
pub enum SendError {
    /// The channel asked us to wait; this alert is not retried (the next one will be sent after the pause).
    RateLimited,
    Failed(String),
}

pub trait Channel: Send {
    fn name(&self) -> &'static str;
    fn send(&mut self, kind: Kind, text: &str) -> Result<(), SendError>;
}

/// The channel's HTTP client, made at its first alert (so a bad TLS set-up fails an alert, not the start).
fn client(
    slot: &mut Option<reqwest::blocking::Client>,
) -> Result<&reqwest::blocking::Client, SendError> {
    if slot.is_none() {
        let c = crate::net::http::client(TIMEOUT).map_err(|e| SendError::Failed(e.to_string()))?;
        *slot = Some(c);
    }
    slot.as_ref()
        .ok_or_else(|| SendError::Failed("no HTTP client".into()))
}

/// A POST of `body`; 2xx is sent, 429 pauses `limit` by the answer's `retry-after` (header, or Telegram's
/// `parameters.retry_after`).
fn post(
    http: &reqwest::blocking::Client,
    limit: &RateLimit,
    url: &str,
    bearer: Option<&str>,
    body: &serde_json::Value,
) -> Result<(), SendError> {
    // a short wait is waited out on this (the alerts) thread; a long one drops the alert, counted
    if let Err(wait) = limit.try_take(Instant::now()) {
        if wait > MAX_WAIT {
            return Err(SendError::RateLimited);
        }
        std::thread::sleep(wait);
        if limit.try_take(Instant::now()).is_err() {
            return Err(SendError::RateLimited);
        }
    }
    let mut req = http.post(url).json(body);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let resp = req
        .send()
        .map_err(|e| SendError::Failed(e.without_url().to_string()))?;
    let status = resp.status().as_u16();
    let header_pause = crate::net::http::response_pause(&resp);
    let text = resp.text().unwrap_or_default();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    if status == 429 {
        let pause = answer["parameters"]["retry_after"]
            .as_u64()
            .map(Duration::from_secs)
            .or(header_pause)
            .unwrap_or(Duration::from_secs(30))
            .min(Duration::from_secs(3600));
        limit.pause_until(Instant::now() + pause);
        return Err(SendError::RateLimited);
    }
    let detail = answer["description"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| text.chars().take(200).collect());
    Err(SendError::Failed(format!("HTTP {status}: {detail}")))
}

/// Telegram's Bot API `sendMessage` to one chat.
pub struct Telegram {
    url: String,
    chat: String,
    limit: RateLimit,
    http: Option<reqwest::blocking::Client>,
}

impl Telegram {
    pub fn new(base: &str, token: &str, chat: &str) -> Telegram {
        Telegram {
            url: format!("{}/bot{token}/sendMessage", base.trim_end_matches('/')),
            chat: chat.into(),
            // Telegram allows about one message a second to a chat and 20 a minute to a group
            limit: RateLimit::new("telegram", 20, Duration::from_secs(60), Instant::now()),
            http: None,
        }
    }
}

impl Channel for Telegram {
    fn name(&self) -> &'static str {
        "telegram"
    }

    fn send(&mut self, kind: Kind, text: &str) -> Result<(), SendError> {
        let http = client(&mut self.http)?;
        let body = serde_json::json!({
            "chat_id": self.chat,
            "text": format!("hypeflow {}: {text}", kind.as_str()),
            "disable_web_page_preview": true,
        });
        post(http, &self.limit, &self.url, None, &body)
    }
}

/// A JSON POST of `{"source","kind","text","at"}` to any URL, with an optional bearer token.
pub struct Webhook {
    url: String,
    token: Option<String>,
    limit: RateLimit,
    http: Option<reqwest::blocking::Client>,
}

impl Webhook {
    pub fn new(url: &str, token: Option<String>) -> Webhook {
        Webhook {
            url: url.into(),
            token,
            limit: RateLimit::new("webhook", 60, Duration::from_secs(60), Instant::now()),
            http: None,
        }
    }
}

impl Channel for Webhook {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn send(&mut self, kind: Kind, text: &str) -> Result<(), SendError> {
        let http = client(&mut self.http)?;
        let body = serde_json::json!({
            "source": "hypeflow",
            "kind": kind.as_str(),
            "text": text,
            "at": crate::model::time::to_rfc3339(chrono::Utc::now().timestamp_millis()),
        });
        post(http, &self.limit, &self.url, self.token.as_deref(), &body)
    }
}
