//! Filtered-stream rules for the influencer list: `(from:a OR from:b ...) -is:retweet`, packed greedily into as
//! few rules as the per-rule length allows (1,024 characters on the standard plans), within the plan's rule
//! count (1,000), and the plan to sync them with what the stream already has. Only rules tagged by hypeflow
//! are ever deleted, so rules someone else added to the project stay.

use super::x_api::{XApi, XError};
use serde::{Deserialize, Serialize};

pub const TAG_PREFIX: &str = "hypeflow:";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub value: String,
    pub tag: String,
}

/// A rule as `GET /2/tweets/search/stream/rules` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ExistingRule {
    pub id: String,
    pub value: String,
    #[serde(default)]
    pub tag: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RulesError {
    #[error("not X handles (1-15 letters, digits or _): {0}; fix the influencer list")]
    BadHandles(String),
    #[error("not cashtags (1-10 letters or digits after $): {0}")]
    BadCashtags(String),
    #[error("the cashtag filter alone ({0} characters) leaves no room for a handle within the {1}-character rule limit; track fewer tokens")]
    NoRoom(usize, usize),
    #[error("{needed} rules are needed but the plan allows {allowed}; raise the follower threshold or trim the list")]
    TooManyRules { needed: usize, allowed: usize },
}

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub rule_length: usize,
    pub rules: usize,
}

impl Default for Limits {
    /// The standard (pay-per-use and Pro) limits.
    fn default() -> Self {
        Limits {
            rule_length: 1024,
            rules: 1000,
        }
    }
}

fn valid_handle(h: &str) -> bool {
    (1..=15).contains(&h.len()) && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn valid_cashtag(t: &str) -> bool {
    (1..=10).contains(&t.len()) && t.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Trimmed, normalised, sorted and deduplicated; the invalid ones as the error.
fn normalised(
    items: &[String],
    norm: impl Fn(&str) -> String,
    valid: impl Fn(&str) -> bool,
) -> Result<Vec<String>, Vec<String>> {
    let mut v: Vec<String> = items
        .iter()
        .map(|i| norm(i.trim()))
        .filter(|i| !i.is_empty())
        .collect();
    v.sort();
    v.dedup();
    let bad: Vec<String> = v.iter().filter(|i| !valid(i)).cloned().collect();
    if bad.is_empty() {
        Ok(v)
    } else {
        Err(bad)
    }
}

/// Rules following `handles` (with or without `@`, case-insensitive, deduplicated). With `cashtags`, each rule
/// only matches posts that name one of them: `(from:a OR from:b) ($AXL OR $BOLT) -is:retweet`.
pub fn build(
    handles: &[String],
    cashtags: &[String],
    limits: Limits,
) -> Result<Vec<Rule>, RulesError> {
    let hs = normalised(
        handles,
        |h| h.trim_start_matches('@').to_ascii_lowercase(),
        valid_handle,
    )
    .map_err(|bad| RulesError::BadHandles(bad.join(", ")))?;
    let tags = normalised(
        cashtags,
        |t| t.trim_start_matches('$').to_ascii_uppercase(),
        valid_cashtag,
    )
    .map_err(|bad| RulesError::BadCashtags(bad.join(", ")))?;
    let suffix = if tags.is_empty() {
        " -is:retweet".to_string()
    } else {
        let t: Vec<String> = tags.iter().map(|t| format!("${t}")).collect();
        format!(" ({}) -is:retweet", t.join(" OR "))
    };
    // "(" + "from:" handle (" OR from:" handle)* + ")" + suffix
    let fixed = 2 + suffix.len();
    if fixed + "from:".len() + 15 > limits.rule_length {
        return Err(RulesError::NoRoom(suffix.len(), limits.rule_length));
    }
    let mut groups: Vec<Vec<&str>> = Vec::new();
    let mut len = fixed;
    for h in &hs {
        let add = "from:".len() + h.len();
        match groups.last_mut() {
            Some(g) if len + " OR ".len() + add <= limits.rule_length => {
                g.push(h);
                len += " OR ".len() + add;
            }
            _ => {
                groups.push(vec![h]);
                len = fixed + add;
            }
        }
    }
    if groups.len() > limits.rules {
        return Err(RulesError::TooManyRules {
            needed: groups.len(),
            allowed: limits.rules,
        });
    }
    Ok(groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let from: Vec<String> = g.iter().map(|h| format!("from:{h}")).collect();
            Rule {
                value: format!("({}){suffix}", from.join(" OR ")),
                tag: format!("{TAG_PREFIX}influencers-{}", i + 1),
            }
        })
        .collect())
}

/// What to send so the stream has exactly `wanted` among hypeflow's rules: values already present are kept
/// (whatever their id), hypeflow-tagged rules no longer wanted are deleted, others' rules are left alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncPlan {
    pub add: Vec<Rule>,
    pub delete_ids: Vec<String>,
}

pub fn plan(existing: &[ExistingRule], wanted: &[Rule]) -> SyncPlan {
    let have: std::collections::HashSet<&str> = existing.iter().map(|r| r.value.as_str()).collect();
    let want: std::collections::HashSet<&str> = wanted.iter().map(|r| r.value.as_str()).collect();
    SyncPlan {
        add: wanted
            .iter()
            .filter(|r| !have.contains(r.value.as_str()))
            .cloned()
            .collect(),
        delete_ids: existing
            .iter()
            .filter(|r| {
                r.tag.as_deref().is_some_and(|t| t.starts_with(TAG_PREFIX))
                    && !want.contains(r.value.as_str())
            })
            .map(|r| r.id.clone())
            .collect(),
    }
}

/// What a sync did, and every problem X reported about the rules (invalid, duplicate, over the cap).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub kept: usize,
    pub added: usize,
    pub deleted: usize,
    pub problems: Vec<String>,
    /// Only validated (`dry_run=true`), nothing changed.
    pub dry_run: bool,
}

#[derive(Deserialize)]
struct RulesList {
    #[serde(default)]
    data: Vec<ExistingRule>,
}

#[derive(Deserialize, Default)]
struct Summary {
    created: Option<u64>,
    invalid: Option<u64>,
    deleted: Option<u64>,
}

#[derive(Deserialize, Default)]
struct Meta {
    #[serde(default)]
    summary: Summary,
}

#[derive(Deserialize)]
struct RuleProblem {
    title: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    detail: Option<String>,
    value: Option<String>,
}

#[derive(Deserialize)]
struct UpdateResponse {
    #[serde(default)]
    meta: Meta,
    #[serde(default)]
    errors: Vec<RuleProblem>,
}

impl RuleProblem {
    fn duplicate(&self) -> bool {
        let t = self.kind.as_deref().or(self.title.as_deref()).unwrap_or("");
        t.ends_with("duplicate-rules") || t.contains("DuplicateRule")
    }

    fn describe(&self) -> String {
        format!(
            "{}: {}{}",
            self.title.as_deref().unwrap_or("problem"),
            self.detail.as_deref().unwrap_or(""),
            self.value
                .as_deref()
                .map(|v| format!(" (rule `{v}`)"))
                .unwrap_or_default()
        )
    }
}

const RULES_PATH: &str = "/2/tweets/search/stream/rules";

fn update(api: &XApi, body: serde_json::Value, dry_run: bool) -> Result<UpdateResponse, XError> {
    let query = if dry_run {
        vec![("dry_run", "true".to_string())]
    } else {
        vec![]
    };
    let text = api.post(RULES_PATH, &query, &body, &api.limits.rules_write)?;
    serde_json::from_str(&text).map_err(|e| XError::Body {
        url: api.url(RULES_PATH),
        message: e.to_string(),
    })
}

/// Makes the project's stream rules hold `wanted` among hypeflow's: validates the additions with `dry_run`
/// first (nothing changes if X finds an invalid rule), adds, then deletes the stale hypeflow rules, so the
/// stream never goes without rules in between. With `dry_run` it stops after the validation.
pub fn sync(api: &XApi, wanted: &[Rule], dry_run: bool) -> Result<SyncReport, XError> {
    let text = api.get(RULES_PATH, &[], &api.limits.rules_read)?;
    let existing: RulesList = serde_json::from_str(&text).map_err(|e| XError::Body {
        url: api.url(RULES_PATH),
        message: e.to_string(),
    })?;
    let p = plan(&existing.data, wanted);
    let mut report = SyncReport {
        kept: wanted.len() - p.add.len(),
        dry_run,
        ..SyncReport::default()
    };
    if !p.add.is_empty() {
        let body = serde_json::json!({ "add": p.add });
        let check = update(api, body.clone(), true)?;
        report
            .problems
            .extend(check.errors.iter().map(RuleProblem::describe));
        let fatal: Vec<String> = check
            .errors
            .iter()
            .filter(|e| !e.duplicate())
            .map(RuleProblem::describe)
            .collect();
        if !fatal.is_empty() || check.meta.summary.invalid.unwrap_or(0) > 0 {
            return Err(XError::Rules(format!(
                "X rejected the rules in a dry run, nothing was changed: {}",
                if fatal.is_empty() {
                    "invalid rules (no detail given)".to_string()
                } else {
                    fatal.join("; ")
                }
            )));
        }
        if !dry_run {
            let done = update(api, body, false)?;
            report.added = done.meta.summary.created.unwrap_or(0) as usize;
            report
                .problems
                .extend(done.errors.iter().map(RuleProblem::describe));
        }
    }
    if !dry_run && !p.delete_ids.is_empty() {
        let done = update(
            api,
            serde_json::json!({ "delete": { "ids": p.delete_ids } }),
            false,
        )?;
        report.deleted = done.meta.summary.deleted.unwrap_or(0) as usize;
        report
            .problems
            .extend(done.errors.iter().map(RuleProblem::describe));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handles(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("trader_{i:07}")).collect()
    }

    #[test]
    fn rules_stay_within_the_length_limit_and_cover_every_handle_once() {
        let hs = handles(1000);
        let rules = build(&hs, &[], Limits::default()).unwrap();
        assert!(rules.len() > 1);
        let mut seen = Vec::new();
        for r in &rules {
            assert!(r.value.len() <= 1024, "{} chars", r.value.len());
            assert!(r.value.starts_with("(from:") && r.value.ends_with(") -is:retweet"));
            seen.extend(
                r.value
                    .trim_start_matches('(')
                    .split(')')
                    .next()
                    .unwrap()
                    .split(" OR ")
                    .map(|f| f.trim_start_matches("from:").to_string()),
            );
        }
        seen.sort();
        let mut want = hs.clone();
        want.sort();
        assert_eq!(seen, want);
        // greedy packing: every rule but the last is too full to take one more handle
        for r in &rules[..rules.len() - 1] {
            assert!(r.value.len() + " OR from:trader_0000000".len() > 1024);
        }
    }

    #[test]
    fn handles_are_normalised_and_cashtags_filter_every_rule() {
        let rules = build(
            &[
                "@CryptoKaleo".into(),
                "cryptokaleo".into(),
                "Pentosh1".into(),
            ],
            &["$axl".into(), "BOLT".into()],
            Limits::default(),
        )
        .unwrap();
        assert_eq!(
            rules,
            vec![Rule {
                value: "(from:cryptokaleo OR from:pentosh1) ($AXL OR $BOLT) -is:retweet".into(),
                tag: "hypeflow:influencers-1".into()
            }]
        );
    }

    #[test]
    fn bad_input_and_plan_limits_are_clear_errors() {
        assert!(matches!(
            build(&["has space".into(), "ok".into()], &[], Limits::default()),
            Err(RulesError::BadHandles(h)) if h == "has space"
        ));
        assert!(matches!(
            build(&["ok".into()], &["$NOT-A-TAG".into()], Limits::default()),
            Err(RulesError::BadCashtags(_))
        ));
        let tight = Limits {
            rule_length: 100,
            rules: 2,
        };
        assert_eq!(
            build(&handles(50), &[], tight),
            Err(RulesError::TooManyRules {
                needed: 17,
                allowed: 2
            })
        );
    }

    #[test]
    fn a_sync_adds_the_missing_deletes_only_its_own_stale_rules() {
        let wanted = build(&["a".into(), "b".into()], &[], Limits::default()).unwrap();
        let existing = vec![
            ExistingRule {
                id: "1".into(),
                value: wanted[0].value.clone(),
                tag: Some("renamed elsewhere".into()),
            },
            ExistingRule {
                id: "2".into(),
                value: "(from:old) -is:retweet".into(),
                tag: Some("hypeflow:influencers-9".into()),
            },
            ExistingRule {
                id: "3".into(),
                value: "cat has:images".into(),
                tag: Some("cats".into()),
            },
        ];
        assert_eq!(
            plan(&existing, &wanted),
            SyncPlan {
                add: vec![],
                delete_ids: vec!["2".into()]
            }
        );
        let p = plan(&[], &wanted);
        assert_eq!(p.add, wanted);
        assert!(p.delete_ids.is_empty());
    }
}
