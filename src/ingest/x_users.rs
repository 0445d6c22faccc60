//! X API v2 user lookup (`GET /2/users/by?usernames=`, at most 100 handles a call) for `hypeflow influencers
//! sync`: resolves the seed list's handles to ids and follower counts, keeps accounts above a threshold and
//! writes them with the date they were counted. The bearer token comes from `X_BEARER_TOKEN` and never appears
//! in a log or an error.

use super::x_api::XApi;
pub use super::x_api::XError;
use crate::model::Invalid;
use serde::Deserialize;

const PER_CALL: usize = 100;

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
    api: XApi,
}

impl XUsers {
    /// `base` is the API host (`X_API_BASE_URL` or a flag; default api.x.com); the token is read from the
    /// environment. User lookup allows 300 requests per 15 minutes per app.
    pub fn from_env(base: &str) -> Result<Self, XError> {
        Ok(XUsers {
            api: XApi::from_env(base)?,
        })
    }

    /// Looks up every handle, 100 a call.
    pub fn lookup(&self, handles: &[String]) -> Result<Lookup, XError> {
        let mut out = Lookup::default();
        for chunk in handles.chunks(PER_CALL) {
            let body = self.api.get(
                "/2/users/by",
                &[
                    ("usernames", chunk.join(",")),
                    ("user.fields", "public_metrics".to_string()),
                ],
                &self.api.limits.users,
            )?;
            let page = parse_users(&body).map_err(|message| XError::Body {
                url: self.api.url("/2/users/by"),
                message: message.into(),
            })?;
            out.accounts.extend(page.accounts);
            out.missing.extend(page.missing);
        }
        Ok(out)
    }
}

fn parse_users(body: &str) -> Result<Lookup, Invalid> {
    let r: UsersResponse = serde_json::from_str(body).map_err(|e| Invalid(e.to_string()))?;
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

/// The handles of a seed list: one handle per line (the shipped `data/influencers/seed_example.txt`) or
/// `rank<TAB>handle` lines; `#` comments and blank lines skipped.
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

    #[test]
    fn the_shipped_example_seed_is_handles_only() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/influencers/seed_example.txt"
        ))
        .unwrap();
        let handles = read_seed(&text);
        assert!((30..=60).contains(&handles.len()), "{}", handles.len());
        let valid =
            |h: &String| h.len() <= 15 && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        assert!(handles.iter().all(valid), "{handles:?}");
        let unique: std::collections::BTreeSet<String> =
            handles.iter().map(|h| h.to_lowercase()).collect();
        assert_eq!(unique.len(), handles.len(), "listed twice");
    }
}
