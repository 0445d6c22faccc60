//! What every X API v2 call shares: the app bearer token (from `X_BEARER_TOKEN` only, never logged or put in an
//! error), the base URL (so tests and users can point at a fake), a User-Agent with our version (the docs ask for
//! one), per-endpoint token buckets and the documented 429 handling (wait for `x-rate-limit-reset`, then retry).

use crate::net::rate_limit::RateLimit;
use std::time::{Duration, Instant};

pub const DEFAULT_BASE_URL: &str = "https://api.x.com";
const MAX_RATE_LIMITED_RETRIES: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum XError {
    #[error("X_BEARER_TOKEN is not set: export the app's bearer token (it is read from the environment only)")]
    NoToken,
    #[error(transparent)]
    Client(#[from] crate::net::ClientError),
    #[error("{method} {url} failed: {message}")]
    Transport {
        method: &'static str,
        url: String,
        message: String,
    },
    #[error("X answered {status} to {url}: {detail}{hint}")]
    Status {
        url: String,
        status: u16,
        detail: String,
        hint: &'static str,
    },
    #[error("X answered {url} with a body this client cannot read: {message}")]
    Body { url: String, message: String },
    #[error("still rate-limited after {0} waits; try again later")]
    RateLimited(u32),
    #[error("the stream has no rules (HTTP 409): run `hypeflow ingest x --sync-rules` (or add rules to the project) before streaming")]
    NoRules,
    #[error("{0}")]
    Rules(String),
}

/// What to tell the user about an error status on an X endpoint.
pub fn hint(status: u16) -> &'static str {
    match status {
        401 => " (check X_BEARER_TOKEN: it must be the app's bearer token)",
        403 => " (the app's access level or project does not include this endpoint)",
        409 => " (the stream has no rules: sync them first)",
        _ => "",
    }
}

/// The documented per-app limits of the endpoints hypeflow calls, one bucket each, shared by every call.
#[derive(Clone, Debug)]
pub struct Limits {
    pub users: RateLimit,
    pub rules_read: RateLimit,
    pub rules_write: RateLimit,
    pub search: RateLimit,
    pub stream_connect: RateLimit,
}

impl Limits {
    pub fn documented() -> Self {
        let now = Instant::now();
        let w = Duration::from_secs(900);
        Limits {
            users: RateLimit::new("x-users", 300, w, now),
            rules_read: RateLimit::new("x-rules-get", 450, w, now),
            rules_write: RateLimit::new("x-rules-post", 100, w, now),
            search: RateLimit::new("x-search-recent", 450, w, now),
            stream_connect: RateLimit::new("x-stream", 50, w, now),
        }
    }
}

pub struct XApi {
    base: String,
    token: String,
    http: reqwest::blocking::Client,
    pub limits: Limits,
}

impl XApi {
    /// `base` is the API host (`X_API_BASE_URL` or a flag; default api.x.com); the token is read from the
    /// environment.
    pub fn from_env(base: &str) -> Result<Self, XError> {
        let token = std::env::var("X_BEARER_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty())
            .ok_or(XError::NoToken)?;
        Self::new(base, token)
    }

    /// With a token from elsewhere (an encrypted store, a test).
    pub fn new(base: &str, token: String) -> Result<Self, XError> {
        Ok(XApi {
            base: base.trim_end_matches('/').to_string(),
            token,
            http: client(Duration::from_secs(30))?,
            limits: Limits::documented(),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A GET of a JSON endpoint: the body on 2xx; 429 waits and retries (the bucket paused by the headers);
    /// other statuses become an error with the body's detail.
    pub fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
        limit: &RateLimit,
    ) -> Result<String, XError> {
        self.call("GET", path, query, None, limit)
    }

    pub fn post(
        &self,
        path: &str,
        query: &[(&str, String)],
        body: &serde_json::Value,
        limit: &RateLimit,
    ) -> Result<String, XError> {
        self.call("POST", path, query, Some(body), limit)
    }

    fn call(
        &self,
        method: &'static str,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
        limit: &RateLimit,
    ) -> Result<String, XError> {
        let started = Instant::now();
        let out = self.call_once(method, path, query, body, limit);
        let outcome = match &out {
            Ok(_) => "ok",
            Err(XError::RateLimited(_)) => "rate_limited",
            Err(_) => "error",
        };
        crate::net::http::observe("x", outcome, started.elapsed());
        out
    }

    fn call_once(
        &self,
        method: &'static str,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
        limit: &RateLimit,
    ) -> Result<String, XError> {
        let url = self.url(path);
        let mut waits = 0;
        loop {
            limit.take_blocking();
            let req = match body {
                Some(b) => self.http.post(&url).json(b),
                None => self.http.get(&url),
            };
            let resp = req
                .bearer_auth(&self.token)
                .query(query)
                .send()
                .map_err(|e| XError::Transport {
                    method,
                    url: url.clone(),
                    message: e.without_url().to_string(),
                })?;
            let status = resp.status().as_u16();
            if let Some(pause) = crate::net::http::response_pause(&resp) {
                limit.pause_until(Instant::now() + pause);
                if status == 429 {
                    waits += 1;
                    if waits > MAX_RATE_LIMITED_RETRIES {
                        return Err(XError::RateLimited(waits - 1));
                    }
                    tracing::warn!("{method} {path}: rate-limited by X; waiting {pause:?}");
                    continue;
                }
            }
            let text = resp.text().map_err(|e| XError::Body {
                url: url.clone(),
                message: e.without_url().to_string(),
            })?;
            if !(200..300).contains(&status) {
                return Err(XError::Status {
                    url,
                    status,
                    detail: text.chars().take(300).collect(),
                    hint: hint(status),
                });
            }
            return Ok(text);
        }
    }

    /// Opens the filtered stream. `silence` bounds every read (the docs: reconnect when neither data nor a
    /// keep-alive came for 20 s), so a dead connection is noticed without a separate watchdog.
    pub fn open_stream(
        &self,
        query: &[(&str, String)],
        silence: Duration,
    ) -> Result<reqwest::blocking::Response, reqwest::Error> {
        // a client per connection: the blocking client applies its timeout to each read of the body
        crate::net::install_tls();
        let http = reqwest::blocking::Client::builder()
            .timeout(silence)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(crate::net::USER_AGENT)
            .build()?;
        http.get(self.url("/2/tweets/search/stream"))
            .bearer_auth(&self.token)
            .query(query)
            .send()
    }
}

pub fn header(h: &reqwest::header::HeaderMap, k: &str) -> Option<String> {
    h.get(k).and_then(|v| v.to_str().ok()).map(str::to_string)
}

pub fn client(timeout: Duration) -> Result<reqwest::blocking::Client, XError> {
    Ok(crate::net::http::client(timeout)?)
}
