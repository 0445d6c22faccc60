//! The stronger sentiment model: an LLM behind an OpenAI-compatible chat-completions endpoint (DashScope's Qwen
//! by default). Posts go in batches with stable ids, `temperature: 0`, JSON-object output (DashScope requires the
//! word "JSON" in the messages for that) and thinking off (structured output needs non-thinking mode). The reply
//! is validated here, whatever the model promised: unknown ids are ignored, out-of-range numbers refused,
//! missing ids asked for once more, and what is still missing is left to the caller's fallback (the lexicon).

use crate::net::http::{self, Call, ProviderError};
use crate::net::rate_limit::RateLimit;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub const DEFAULT_BASE_URL: &str = "https://dashscope-intl.aliyuncs.com/compatible-mode/v1";
pub const DEFAULT_MODEL: &str = "qwen-plus";

const SYSTEM: &str = "You score crypto posts for short-term trading sentiment. Reply with JSON only: \
{\"results\":[{\"id\":string,\"sentiment\":\"bullish\"|\"bearish\"|\"neutral\",\"score\":number in [-1,1],\
\"confidence\":number in [0,1],\"assets\":[ticker strings, upper-case, no $]}]}. One result per input id, same order.";

#[derive(Clone, Debug)]
pub struct LlmConfig {
    pub base_url: String,
    pub model: String,
    /// Requests per minute allowed by the account for this model (DashScope limits per account and model).
    pub requests_per_minute: u32,
    /// The longest one request may take (the stage's latency budget usually cuts it shorter).
    pub timeout: Duration,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            base_url: DEFAULT_BASE_URL.into(),
            model: DEFAULT_MODEL.into(),
            requests_per_minute: 60,
            timeout: Duration::from_secs(30),
        }
    }
}

/// One post as the model sees it.
#[derive(Clone, Debug, Serialize)]
pub struct PostIn<'a> {
    pub id: &'a str,
    pub author: &'a str,
    pub followers: u64,
    pub text: &'a str,
}

/// A validated result for one post.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LlmScore {
    pub score: f64,
    pub confidence: f64,
    pub assets: Vec<String>,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum LlmError {
    #[error(
        "LLM_API_KEY (or DASHSCOPE_API_KEY) is not set: export the key of the endpoint's region"
    )]
    NoKey,
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error("the model's reply is not the asked JSON: {0}")]
    Reply(String),
    #[error(transparent)]
    Client(#[from] crate::net::ClientError),
    #[error("the {0:?} latency budget was spent before the call")]
    OverBudget(Duration),
    #[error("the thread asking the model panicked")]
    Panicked,
}

pub struct LlmClient {
    cfg: LlmConfig,
    key: String,
    http: reqwest::blocking::Client,
    limit: RateLimit,
}

/// What the model said, and how much of it held up.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchOutcome {
    pub scores: HashMap<String, LlmScore>,
    /// Requests made (1, or 2 with the re-ask).
    pub requests: u32,
    /// Results refused: unknown id, score or confidence out of range, not numbers.
    pub invalid: u32,
}

impl LlmClient {
    /// The key from `LLM_API_KEY`, else `DASHSCOPE_API_KEY`.
    pub fn from_env(cfg: LlmConfig) -> Result<Self, LlmError> {
        let key = ["LLM_API_KEY", "DASHSCOPE_API_KEY"]
            .iter()
            .filter_map(|k| std::env::var(k).ok())
            .find(|k| !k.trim().is_empty())
            .ok_or(LlmError::NoKey)?;
        Self::new(cfg, key)
    }

    pub fn new(cfg: LlmConfig, key: String) -> Result<Self, LlmError> {
        let http = http::client(cfg.timeout)?;
        let limit = RateLimit::new(
            "llm",
            cfg.requests_per_minute.max(1),
            Duration::from_secs(60),
            Instant::now(),
        );
        Ok(LlmClient {
            cfg,
            key,
            http,
            limit,
        })
    }

    pub fn model(&self) -> &str {
        &self.cfg.model
    }

    /// Scores a batch within `budget`: one request, and one more for the ids the first reply left out or got
    /// wrong if time is left.
    pub fn score_batch(
        &self,
        posts: &[PostIn],
        budget: Duration,
    ) -> Result<BatchOutcome, LlmError> {
        let deadline = Instant::now() + budget;
        let mut out = BatchOutcome::default();
        let first = self.ask(posts, budget)?;
        out.requests += 1;
        let mut invalid = merge(&mut out.scores, posts, first);
        let missing: Vec<PostIn> = posts
            .iter()
            .filter(|p| !out.scores.contains_key(p.id))
            .cloned()
            .collect();
        let left = deadline.saturating_duration_since(Instant::now());
        if !missing.is_empty() && left >= Duration::from_millis(50) {
            tracing::info!(
                "LLM left out {} of {} posts; asking again for those",
                missing.len(),
                posts.len()
            );
            // a failed re-ask leaves those posts to the fallback; the first answers stand
            match self.ask(&missing, left) {
                Ok(again) => invalid += merge(&mut out.scores, &missing, again),
                Err(e) => tracing::warn!("LLM re-ask failed: {e}"),
            }
            out.requests += 1;
        }
        out.invalid = invalid;
        Ok(out)
    }

    /// Scores plain texts (an evaluation set) in batches; `None` where the model gave no valid result even after
    /// the re-ask, or its batch failed. Also returns the requests made.
    pub fn score_texts(&self, texts: &[String], batch: usize) -> (Vec<Option<f64>>, u64) {
        let mut out = vec![None; texts.len()];
        let mut requests = 0;
        let ids: Vec<String> = (0..texts.len()).map(|i| i.to_string()).collect();
        for (chunk_no, chunk) in texts.chunks(batch.max(1)).enumerate() {
            let start = chunk_no * batch.max(1);
            let posts: Vec<PostIn> = chunk
                .iter()
                .enumerate()
                .map(|(i, t)| PostIn {
                    id: &ids[start + i],
                    author: "",
                    followers: 0,
                    text: t,
                })
                .collect();
            match self.score_batch(&posts, self.cfg.timeout) {
                Ok(o) => {
                    requests += u64::from(o.requests);
                    for (id, s) in o.scores {
                        if let Some(slot) = id.parse::<usize>().ok().and_then(|i| out.get_mut(i)) {
                            *slot = Some(s.score);
                        }
                    }
                }
                Err(e) => {
                    requests += 1;
                    tracing::warn!("LLM batch {chunk_no} failed: {e}");
                }
            }
        }
        (out, requests)
    }

    fn ask(&self, posts: &[PostIn], timeout: Duration) -> Result<Vec<RawResult>, LlmError> {
        let user = serde_json::json!({ "tweets": posts }).to_string();
        let body = serde_json::json!({
            "model": self.cfg.model,
            "temperature": 0,
            "enable_thinking": false,
            "response_format": {"type": "json_object"},
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": user},
            ],
        });
        let url = format!(
            "{}/chat/completions",
            self.cfg.base_url.trim_end_matches('/')
        );
        let started = std::time::Instant::now();
        let text = http::send(
            &self.http,
            &self.limit,
            Call {
                url: &url,
                query: &[],
                headers: &[("authorization", format!("Bearer {}", self.key))],
                body: Some(&body),
                timeout: Some(timeout.min(self.cfg.timeout)),
            },
        )?;
        metrics::histogram!(crate::telemetry::names::LLM_LATENCY)
            .record(started.elapsed().as_secs_f64());
        parse_reply(&text)
    }
}

#[derive(Deserialize)]
struct RawResult {
    id: Option<serde_json::Value>,
    score: Option<serde_json::Value>,
    confidence: Option<serde_json::Value>,
    #[serde(default)]
    assets: Vec<serde_json::Value>,
}

fn parse_reply(text: &str) -> Result<Vec<RawResult>, LlmError> {
    #[derive(Deserialize)]
    struct Completion {
        choices: Vec<Choice>,
    }
    #[derive(Deserialize)]
    struct Choice {
        message: Message,
    }
    #[derive(Deserialize)]
    struct Message {
        content: Option<String>,
    }
    #[derive(Deserialize)]
    struct Results {
        results: Vec<RawResult>,
    }
    let c: Completion = serde_json::from_str(text)
        .map_err(|e| LlmError::Reply(format!("not a chat completion: {e}")))?;
    let content = c
        .choices
        .into_iter()
        .next()
        .and_then(|c| c.message.content)
        .ok_or_else(|| LlmError::Reply("no choices[0].message.content".into()))?;
    // some models wrap JSON in a code fence even in JSON mode
    let trimmed = content
        .trim()
        .trim_start_matches("```json")
        .trim_start_matches("```")
        .trim_end_matches("```")
        .trim();
    let r: Results = serde_json::from_str(trimmed)
        .map_err(|e| LlmError::Reply(format!("content is not {{\"results\":[...]}}: {e}")))?;
    Ok(r.results)
}

fn as_f64(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Keeps the results that name an asked id and carry in-range numbers; returns how many were refused.
fn merge(into: &mut HashMap<String, LlmScore>, asked: &[PostIn], got: Vec<RawResult>) -> u32 {
    let mut invalid = 0;
    for r in got {
        let id = match &r.id {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => {
                invalid += 1;
                continue;
            }
        };
        let score = r.score.as_ref().and_then(as_f64);
        let confidence = r.confidence.as_ref().and_then(as_f64).unwrap_or(1.0);
        let ok = asked.iter().any(|p| p.id == id)
            && score.is_some_and(|s| (-1.0..=1.0).contains(&s))
            && (0.0..=1.0).contains(&confidence);
        if !ok {
            invalid += 1;
            continue;
        }
        into.insert(
            id,
            LlmScore {
                score: score.unwrap_or(0.0),
                confidence,
                assets: r
                    .assets
                    .iter()
                    .filter_map(|a| a.as_str())
                    .map(|a| a.trim_start_matches('$').to_ascii_uppercase())
                    .collect(),
            },
        );
    }
    invalid
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completion(content: &str) -> String {
        serde_json::json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "qwen-plus",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})
        .to_string()
    }

    #[test]
    fn replies_are_validated_result_by_result() {
        let asked = [
            PostIn {
                id: "1",
                author: "a",
                followers: 1,
                text: "x",
            },
            PostIn {
                id: "2",
                author: "b",
                followers: 1,
                text: "y",
            },
        ];
        let content = r#"{"results":[{"id":"1","sentiment":"bullish","score":0.8,"confidence":0.85,"assets":["$doge"]},{"id":"2","score":7},{"id":"99","score":0.1}]}"#;
        let got = parse_reply(&completion(content)).unwrap();
        let mut m = HashMap::new();
        assert_eq!(merge(&mut m, &asked, got), 2, "out of range and unknown id");
        assert_eq!(
            m["1"],
            LlmScore {
                score: 0.8,
                confidence: 0.85,
                assets: vec!["DOGE".into()]
            }
        );
        assert!(!m.contains_key("2"));
        assert!(parse_reply(&completion("Sure! Here is the JSON you asked for")).is_err());
        assert!(parse_reply(&completion("```json\n{\"results\":[]}\n```")).is_ok());
        assert!(parse_reply("{\"error\":{}}").is_err());
    }
}
