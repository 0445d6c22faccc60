//! X API v2 user lookup (`GET /2/users/by?usernames=`, at most 100 handles a call) for `hypeflow influencers
//! sync`: resolves the seed list's handles to ids and follower counts, keeps accounts above a threshold and
//! writes them with the date they were counted. The bearer token comes from `X_BEARER_TOKEN` and never appears
//! in a log or an error.

use super::rate_limit::{pause_from_headers, RateLimit};
use serde::Deserialize;
use std::time::{Duration, Instant};

pub const DEFAULT_BASE_URL: &str = "https://api.x.com";
const PER_CALL: usize = 100;
const MAX_RATE_LIMITED_RETRIES: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum XError {
    #[error("X_BEARER_TOKEN is not set: export the app's bearer token (it is read from the environment only)")]
    NoToken,
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    #[error("GET {url} failed: {message}")]
    Transport { url: String, message: String },
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
}

/// One resolved account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub handle: String,
    pub user_id: String,
    pub followers: u64,
}

/// What a lookup found: accounts, and handles X reported as not found or suspended (with its reason).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lookup {
    pub accounts: Vec<Account>,
    pub missing: Vec<(String, String)>,
}

#[derive(Deserialize)]
struct UsersResponse {
    #[serde(default)]
    data: Vec<UserData>,
    #[serde(default)]
    errors: Vec<ProblemData>,
}

#[derive(Deserialize)]
struct UserData {
    id: Option<String>,
    username: Option<String>,
    public_metrics: Option<Metrics>,
}

#[derive(Deserialize)]
struct Metrics {
    followers_count: Option<u64>,
}

#[derive(Deserialize)]
struct ProblemData {
    value: Option<String>,
    detail: Option<String>,
    title: Option<String>,
}

pub struct XUsers {
    base: String,
    token: String,
    http: reqwest::blocking::Client,
    limit: RateLimit,
}

impl XUsers {
    /// `base` is the API host (`X_API_BASE_URL` or a flag; default api.x.com); the token is read from the
    /// environment. User lookup allows 300 requests per 15 minutes per app.
    pub fn from_env(base: &str) -> Result<Self, XError> {
        let token = std::env::var("X_BEARER_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty())
            .ok_or(XError::NoToken)?;
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("hypeflow/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| XError::Client(e.to_string()))?;
        Ok(XUsers {
            base: base.trim_end_matches('/').to_string(),
            token,
            http,
            limit: RateLimit::new("x-users", 300, Duration::from_secs(900), Instant::now()),
        })
    }

    /// Looks up every handle, 100 a call.
    pub fn lookup(&self, handles: &[String]) -> Result<Lookup, XError> {
        let mut out = Lookup::default();
        for chunk in handles.chunks(PER_CALL) {
            let page = self.lookup_chunk(chunk)?;
            out.accounts.extend(page.accounts);
            out.missing.extend(page.missing);
        }
        Ok(out)
    }

    fn lookup_chunk(&self, handles: &[String]) -> Result<Lookup, XError> {
        let url = format!("{}/2/users/by", self.base);
        let mut waits = 0;
        loop {
            self.limit.take_blocking();
            let resp = self
                .http
                .get(&url)
                .bearer_auth(&self.token)
                .query(&[
                    ("usernames", handles.join(",")),
                    ("user.fields", "public_metrics".to_string()),
                ])
                .send()
                .map_err(|e| XError::Transport {
                    url: url.clone(),
                    message: e.without_url().to_string(),
                })?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let header = |k: &str| {
                headers
                    .get(k)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            if let Some(pause) = pause_from_headers(status, header, chrono::Utc::now().timestamp())
            {
                self.limit.pause_until(Instant::now() + pause);
                if status == 429 {
                    waits += 1;
                    if waits > MAX_RATE_LIMITED_RETRIES {
                        return Err(XError::RateLimited(waits - 1));
                    }
                    tracing::warn!("X user lookup rate-limited; waiting {pause:?}");
                    continue;
                }
            }
            let body = resp.text().map_err(|e| XError::Body {
                url: url.clone(),
                message: e.without_url().to_string(),
            })?;
            if !(200..300).contains(&status) {
                return Err(XError::Status {
                    url,
                    status,
                    detail: body.chars().take(300).collect(),
                    hint: match status {
                        401 => " (check X_BEARER_TOKEN)",
                        403 => " (the app's access level does not include user lookup)",
                        _ => "",
                    },
                });
            }
            return parse_users(&body).map_err(|message| XError::Body { url, message });
        }
    }
}

fn parse_users(body: &str) -> Result<Lookup, String> {
    let r: UsersResponse = serde_json::from_str(body).map_err(|e| e.to_string())?;
    let mut out = Lookup::default();
    for u in r.data {
        match (u.id, u.username) {
            (Some(id), Some(name)) => out.accounts.push(Account {
                handle: name,
                user_id: id,
                followers: u
                    .public_metrics
                    .and_then(|m| m.followers_count)
                    .unwrap_or(0),
            }),
            _ => out
                .missing
                .push(("?".into(), "a user without id or username".into())),
        }
    }
    for e in r.errors {
        out.missing.push((
            e.value.unwrap_or_else(|| "?".into()),
            e.detail.or(e.title).unwrap_or_default(),
        ));
    }
    Ok(out)
}

/// The handles of a seed list: `rank<TAB>handle` lines (the shipped `data/influencers/seed_1000.tsv`) or one
/// handle per line; `#` comments and blank lines skipped.
pub fn read_seed(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split('\t').next_back())
        .map(|h| h.trim().trim_start_matches('@').to_string())
        .filter(|h| !h.is_empty())
        .collect()
}

/// The influencer file the pipeline reads: `handle,user_id,followers,counted_on`, most followed first.
pub fn write_influencers(accounts: &[Account], counted_on: &str) -> String {
    let mut sorted: Vec<&Account> = accounts.iter().collect();
    sorted.sort_by(|a, b| b.followers.cmp(&a.followers).then(a.handle.cmp(&b.handle)));
    let mut out = String::from("handle,user_id,followers,counted_on\n");
    for a in sorted {
        out.push_str(&format!(
            "{},{},{},{counted_on}\n",
            a.handle, a.user_id, a.followers
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_and_documented_responses_are_read() {
        assert_eq!(
            read_seed("# rank\thandle\n159\taantonop\n\n@Pentosh1\n"),
            vec!["aantonop", "Pentosh1"]
        );
        let body = r#"{"data":[{"id":"2244994945","name":"X Developers","username":"XDevelopers","verified":true,"public_metrics":{"followers_count":583423,"following_count":2048,"tweet_count":14052,"listed_count":1672}}],"errors":[{"value":"gone_user","detail":"Could not find user with usernames: [gone_user].","title":"Not Found Error","resource_type":"user","parameter":"usernames","type":"https://api.twitter.com/2/problems/resource-not-found"}]}"#;
        let l = parse_users(body).unwrap();
        assert_eq!(
            l.accounts,
            vec![Account {
                handle: "XDevelopers".into(),
                user_id: "2244994945".into(),
                followers: 583_423
            }]
        );
        assert_eq!(l.missing[0].0, "gone_user");
        assert!(parse_users("{oops").is_err());
    }
}
