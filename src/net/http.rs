//! One HTTP call to a keyed provider (CoinGecko, DexScreener, an LLM endpoint), with its shared token bucket
//! taken first and its rate-limit answer turned into a pause of that bucket and an error the caller can route
//! around (the price feed falls back to the next provider; the LLM stage to the lexicon). Keys travel in
//! headers only and never reach an error message: errors name the URL without its query.

use super::rate_limit::{pause_from_headers, RateLimit};
use crate::telemetry::names;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ProviderError {
    #[error("{provider}: rate-limited; retry in {retry_after:?}")]
    RateLimited {
        provider: String,
        retry_after: Duration,
    },
    #[error("{provider}: HTTP {status}: {detail}")]
    Http {
        provider: String,
        status: u16,
        detail: String,
    },
    #[error("{provider}: {message}")]
    Transport { provider: String, message: String },
    #[error("{provider}: unreadable answer: {message}")]
    Body { provider: String, message: String },
    #[error("{provider}: {message}")]
    Stale { provider: String, message: String },
}

/// A request to make: URL, query, headers (keys included) and an optional JSON body (then it is a POST).
pub struct Call<'a> {
    pub url: &'a str,
    pub query: &'a [(&'a str, String)],
    pub headers: &'a [(&'a str, String)],
    pub body: Option<&'a serde_json::Value>,
    /// Shorter than the client's own timeout (a latency budget).
    pub timeout: Option<Duration>,
}

/// Makes the call; the body text on 2xx. Counted per provider and outcome, with its latency.
pub fn send(
    http: &reqwest::blocking::Client,
    limit: &RateLimit,
    call: Call,
) -> Result<String, ProviderError> {
    let started = Instant::now();
    let out = send_once(http, limit, call);
    let outcome = match &out {
        Ok(_) => "ok",
        Err(ProviderError::RateLimited { .. }) => "rate_limited",
        Err(_) => "error",
    };
    observe(limit.name(), outcome, started.elapsed());
    out
}

/// How long a response's rate-limit headers say to pause (see `pause_from_headers`), now.
pub fn response_pause(resp: &reqwest::blocking::Response) -> Option<Duration> {
    pause_from_headers(
        resp.status().as_u16(),
        |k| {
            resp.headers()
                .get(k)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        },
        chrono::Utc::now().timestamp(),
    )
}

/// One request to a provider into `hypeflow_provider_requests_total` (outcome `ok`, `error` or
/// `rate_limited`) and, when it got an answer, `hypeflow_provider_latency_seconds`.
pub fn observe(provider: &str, outcome: &'static str, took: Duration) {
    let provider = provider.to_string();
    metrics::counter!(names::PROVIDER_REQUESTS, "provider" => provider.clone(), "outcome" => outcome)
        .increment(1);
    if outcome != "rate_limited" {
        metrics::histogram!(names::PROVIDER_LATENCY, "provider" => provider)
            .record(took.as_secs_f64());
    }
}

fn send_once(
    http: &reqwest::blocking::Client,
    limit: &RateLimit,
    call: Call,
) -> Result<String, ProviderError> {
    let provider = limit.name().to_string();
    if let Err(wait) = limit.try_take(Instant::now()) {
        if wait > Duration::from_secs(1) {
            // paused by an earlier 429, or the budget is spent: the caller routes around it
            return Err(ProviderError::RateLimited {
                provider,
                retry_after: wait,
            });
        }
        metrics::counter!(names::RATE_LIMIT_WAIT, "provider" => provider.clone())
            .increment(wait.as_millis() as u64);
        std::thread::sleep(wait);
        limit.take_blocking();
    }
    let mut req = match call.body {
        Some(b) => http.post(call.url).json(b),
        None => http.get(call.url),
    };
    req = req.query(call.query);
    if let Some(t) = call.timeout {
        req = req.timeout(t);
    }
    for (k, v) in call.headers {
        req = req.header(*k, v);
    }
    let resp = req.send().map_err(|e| ProviderError::Transport {
        provider: provider.clone(),
        message: e.without_url().to_string(),
    })?;
    let status = resp.status().as_u16();
    if let Some(p) = response_pause(&resp) {
        limit.pause_until(Instant::now() + p);
        if status == 429 {
            return Err(ProviderError::RateLimited {
                provider,
                retry_after: p,
            });
        }
    }
    let text = resp.text().map_err(|e| ProviderError::Body {
        provider: provider.clone(),
        message: e.without_url().to_string(),
    })?;
    if !(200..300).contains(&status) {
        return Err(ProviderError::Http {
            provider,
            status,
            detail: text.chars().take(300).collect(),
        });
    }
    Ok(text)
}

/// Makes ring rustls's process-wide crypto provider (reqwest is built without one, to keep aws-lc's C build out);
/// every HTTP client and alloy's RPC transport call this first.
pub fn install_tls() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // an error means another provider is already installed, which serves as well
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The HTTP client could not be built (the TLS back end failed to initialise).
/// Kept as text so the errors that carry it can stay `Clone` and comparable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot build the HTTP client: {0}")]
pub struct ClientError(String);

pub fn client(timeout: Duration) -> Result<reqwest::blocking::Client, ClientError> {
    install_tls();
    reqwest::blocking::Client::builder()
        .timeout(timeout)
        .user_agent(super::USER_AGENT)
        .build()
        .map_err(|e| ClientError(e.to_string()))
}
