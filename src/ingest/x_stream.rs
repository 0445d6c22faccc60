//! One line of X's filtered stream (`GET /2/tweets/search/stream`, newline-delimited JSON), read the way the
//! docs ask a client to: fields in any order, unknown fields ignored, every field optional, both generations of
//! metric names (`retweet_count`/`repost_count`, `tweet_count`/`post_count`), blank keep-alive lines, in-stream
//! error objects and disconnect notices. A line that cannot be read becomes a reason for the dead-letter path.

use crate::model::time::parse_time;
use crate::model::{Engagement, Invalid, Tweet};
use serde::Deserialize;

/// What a line said.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamLine {
    /// A post, with its author's handle and followers when the `author_id` expansion carried them.
    Post(Tweet),
    /// `\r\n` alone: the stream is alive (it sends one about every 20 s).
    KeepAlive,
    /// The server is closing the stream (`disconnect_type` or `connection_issue`): reconnect by the policy.
    Disconnect { kind: String, detail: String },
    /// Errors that do not end the stream (e.g. a post that could not be delivered).
    Errors(Vec<String>),
    /// Not something this client reads; the reason is for the dead-letter record.
    Unreadable(String),
}

#[derive(Deserialize)]
struct Line {
    data: Option<Post>,
    includes: Option<Includes>,
    errors: Option<Vec<Problem>>,
    // a top-level problem object (connection errors come like this)
    title: Option<String>,
    detail: Option<String>,
    connection_issue: Option<String>,
}

#[derive(Deserialize)]
struct Post {
    id: Option<String>,
    text: Option<String>,
    author_id: Option<String>,
    created_at: Option<String>,
    public_metrics: Option<PostMetrics>,
}

#[derive(Deserialize)]
struct PostMetrics {
    #[serde(alias = "repost_count")]
    retweet_count: Option<u64>,
    reply_count: Option<u64>,
    like_count: Option<u64>,
    quote_count: Option<u64>,
}

#[derive(Deserialize)]
struct Includes {
    #[serde(default)]
    users: Vec<User>,
}

#[derive(Deserialize)]
struct User {
    id: Option<String>,
    username: Option<String>,
    public_metrics: Option<UserMetrics>,
}

#[derive(Deserialize)]
struct UserMetrics {
    // stable across the spec versions (unlike tweet_count/post_count, which this client does not need)
    followers_count: Option<u64>,
}

#[derive(Deserialize)]
struct Problem {
    title: Option<String>,
    detail: Option<String>,
    disconnect_type: Option<String>,
    connection_issue: Option<String>,
}

pub fn parse_line(line: &str) -> StreamLine {
    let line = line.trim();
    if line.is_empty() {
        return StreamLine::KeepAlive;
    }
    let l: Line = match serde_json::from_str(line) {
        Ok(l) => l,
        Err(e) => return StreamLine::Unreadable(format!("not a stream JSON object: {e}")),
    };
    if let Some(kind) = l.connection_issue {
        return StreamLine::Disconnect {
            kind,
            detail: l.detail.or(l.title).unwrap_or_default(),
        };
    }
    if let Some(post) = l.data {
        let users = l.includes.map(|i| i.users).unwrap_or_default();
        return match post_of(post, &users) {
            Ok(t) => StreamLine::Post(t),
            Err(why) => StreamLine::Unreadable(why.into()),
        };
    }
    if let Some(errors) = l.errors {
        if let Some(p) = errors
            .iter()
            .find(|p| p.disconnect_type.is_some() || p.connection_issue.is_some())
        {
            return StreamLine::Disconnect {
                kind: p
                    .disconnect_type
                    .clone()
                    .or_else(|| p.connection_issue.clone())
                    .unwrap_or_default(),
                detail: p
                    .detail
                    .clone()
                    .or_else(|| p.title.clone())
                    .unwrap_or_default(),
            };
        }
        return StreamLine::Errors(
            errors
                .into_iter()
                .map(|p| {
                    format!(
                        "{}: {}",
                        p.title.unwrap_or_default(),
                        p.detail.unwrap_or_default()
                    )
                })
                .collect(),
        );
    }
    StreamLine::Unreadable("neither data, errors nor a connection notice".into())
}

fn post_of(p: Post, users: &[User]) -> Result<Tweet, Invalid> {
    let (Some(id), Some(author_id), Some(text)) = (p.id, p.author_id, p.text) else {
        return Err(Invalid("a post without id, author_id or text".into()));
    };
    if id.is_empty() || author_id.is_empty() {
        return Err(Invalid("a post with an empty id or author_id".into()));
    }
    let Some(created) = p.created_at else {
        return Err(Invalid(format!(
            "post {id} has no created_at: request tweet.fields=created_at"
        )));
    };
    let created_at = parse_time(&created).map_err(|e| Invalid(format!("post {id}: {e}")))?;
    let author = users
        .iter()
        .find(|u| u.id.as_deref() == Some(author_id.as_str()));
    let m = p.public_metrics;
    Ok(Tweet {
        id,
        author_handle: author
            .as_ref()
            .and_then(|u| u.username.clone())
            .unwrap_or_default(),
        followers: author
            .as_ref()
            .and_then(|u| u.public_metrics.as_ref())
            .and_then(|m| m.followers_count)
            .unwrap_or(0),
        author_id,
        text,
        created_at,
        engagement: Engagement {
            likes: m.as_ref().and_then(|m| m.like_count).unwrap_or(0),
            retweets: m.as_ref().and_then(|m| m.retweet_count).unwrap_or(0),
            replies: m.as_ref().and_then(|m| m.reply_count).unwrap_or(0),
            quotes: m.as_ref().and_then(|m| m.quote_count).unwrap_or(0),
        },
    })
}

/// One page of `GET /2/tweets/search/recent`: each post read on its own (a bad one goes to the dead-letter
/// path with its raw JSON and reason, the rest of the page still counts), and the paging fields.
#[derive(Debug, Default)]
pub struct SearchPage {
    pub posts: Vec<Result<Tweet, (String, String)>>,
    pub newest_id: Option<String>,
    pub next_token: Option<String>,
}

#[derive(Deserialize)]
struct RawPage {
    #[serde(default)]
    data: Vec<serde_json::Value>,
    includes: Option<Includes>,
    #[serde(default)]
    meta: PageMeta,
}

#[derive(Deserialize, Default)]
struct PageMeta {
    newest_id: Option<String>,
    next_token: Option<String>,
}

pub fn parse_search_page(body: &str) -> Result<SearchPage, Invalid> {
    let page: RawPage =
        serde_json::from_str(body).map_err(|e| Invalid(format!("not a search response: {e}")))?;
    let users = page.includes.map(|i| i.users).unwrap_or_default();
    let posts = page
        .data
        .into_iter()
        .map(|v| {
            let raw = v.to_string();
            serde_json::from_value::<Post>(v)
                .map_err(|e| Invalid(e.to_string()))
                .and_then(|p| post_of(p, &users))
                .map_err(|why| (raw, why.into()))
        })
        .collect();
    Ok(SearchPage {
        posts,
        newest_id: page.meta.newest_id,
        next_token: page.meta.next_token,
    })
}

/// Orders X ids (decimal snowflakes, growing with time) without parsing them: longer is later.
pub fn later_id<'a>(a: &'a str, b: &'a str) -> &'a str {
    if (a.len(), a) >= (b.len(), b) {
        a
    } else {
        b
    }
}

/// Drops posts already seen (the stream may repeat them, e.g. after a reconnect with backfill), remembering the
/// last `capacity` ids.
pub struct Dedupe {
    seen: std::collections::HashSet<String>,
    order: std::collections::VecDeque<String>,
    capacity: usize,
}

impl Dedupe {
    pub fn new(capacity: usize) -> Self {
        Dedupe {
            seen: Default::default(),
            order: Default::default(),
            capacity: capacity.max(1),
        }
    }

    /// True the first time `id` is offered.
    pub fn first(&mut self, id: &str) -> bool {
        if self.seen.contains(id) {
            return false;
        }
        if self.order.len() == self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        self.seen.insert(id.to_string());
        self.order.push_back(id.to_string());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCUMENTED: &str = r#"{"data":{"id":"1893412345678901234","text":"$DOGE looking strong into the weekend 🚀","author_id":"44196397","created_at":"2026-08-21T14:03:11.000Z","lang":"en","edit_history_tweet_ids":["1893412345678901234"],"public_metrics":{"retweet_count":1250,"reply_count":3400,"like_count":52000,"quote_count":410,"bookmark_count":300,"impression_count":9100000},"entities":{"cashtags":[{"start":0,"end":5,"tag":"DOGE"}]}},"includes":{"users":[{"id":"44196397","name":"Elon Musk","username":"elonmusk","verified":true,"public_metrics":{"followers_count":224000000,"following_count":1100,"tweet_count":78000,"listed_count":160000,"like_count":150000,"media_count":4000}}]},"matching_rules":[{"id":"1273026480692322304","tag":"influencers"}]}"#;

    #[test]
    fn the_documented_post_line_becomes_a_tweet_with_its_author() {
        let StreamLine::Post(t) = parse_line(&format!("{DOCUMENTED}\r\n")) else {
            panic!("not a post");
        };
        assert_eq!(t.id, "1893412345678901234");
        assert_eq!(t.author_handle, "elonmusk");
        assert_eq!(t.followers, 224_000_000);
        assert_eq!(t.engagement.retweets, 1250);
        assert_eq!(t.engagement.likes, 52_000);
        assert_eq!(
            t.created_at,
            parse_time("2026-08-21T14:03:11.000Z").unwrap()
        );
    }

    #[test]
    fn newer_metric_names_and_missing_optional_fields_are_read() {
        let line = DOCUMENTED
            .replace("retweet_count", "repost_count")
            .replace("\"tweet_count\"", "\"post_count\"");
        let StreamLine::Post(t) = parse_line(&line) else {
            panic!("not a post");
        };
        assert_eq!(t.engagement.retweets, 1250);
        // no includes, no metrics: still a post, with what is known
        let bare = r#"{"data":{"id":"1","author_id":"2","text":"gm","created_at":"2026-08-21T14:03:11Z","brand_new_field":{"x":1}}}"#;
        let StreamLine::Post(t) = parse_line(bare) else {
            panic!("not a post");
        };
        assert_eq!((t.followers, t.author_handle.as_str()), (0, ""));
    }

    #[test]
    fn keep_alives_disconnects_errors_and_garbage_are_told_apart() {
        assert_eq!(parse_line("\r\n"), StreamLine::KeepAlive);
        let d = r#"{"errors":[{"title":"operational-disconnect","disconnect_type":"UpstreamOperationalDisconnect","detail":"This stream has been disconnected upstream for operational reasons.","type":"https://api.x.com/2/problems/operational-disconnect"}]}"#;
        assert!(matches!(
            parse_line(d),
            StreamLine::Disconnect { kind, .. } if kind == "UpstreamOperationalDisconnect"
        ));
        let c = r#"{"title":"ConnectionException","detail":"This stream is currently at the maximum allowed connection limit.","connection_issue":"TooManyConnections","type":"https://api.x.com/2/problems/streaming-connection"}"#;
        assert!(matches!(
            parse_line(c),
            StreamLine::Disconnect { kind, .. } if kind == "TooManyConnections"
        ));
        let e = r#"{"errors":[{"title":"Not Found Error","detail":"Could not find tweet with id: [1]."}]}"#;
        assert!(
            matches!(parse_line(e), StreamLine::Errors(v) if v[0].starts_with("Not Found Error"))
        );
        // a line cut mid-way by a dropped connection, and a post missing its time
        assert!(matches!(
            parse_line(&DOCUMENTED[..120]),
            StreamLine::Unreadable(_)
        ));
        let no_time = r#"{"data":{"id":"1","author_id":"2","text":"gm"}}"#;
        assert!(
            matches!(parse_line(no_time), StreamLine::Unreadable(r) if r.contains("created_at"))
        );
    }

    #[test]
    fn a_search_page_keeps_good_posts_and_names_the_bad_one() {
        let body = r#"{"data":[{"id":"1234567890123456789","text":"Just started learning Python and loving it!","created_at":"2024-01-15T10:30:00.000Z","author_id":"9876543210","public_metrics":{"retweet_count":5,"reply_count":2,"like_count":42,"quote_count":1},"edit_history_tweet_ids":["1234567890123456789"]},{"id":7,"text":"x"}],"includes":{"users":[{"id":"9876543210","username":"pythondev","verified":false}]},"meta":{"newest_id":"1234567890123456789","oldest_id":"1234567890123456789","result_count":2,"next_token":"b26v89c19zqg8o3f"}}"#;
        let p = parse_search_page(body).unwrap();
        assert_eq!(p.posts.len(), 2);
        let t = p.posts[0].as_ref().unwrap();
        assert_eq!(
            (t.author_handle.as_str(), t.engagement.likes),
            ("pythondev", 42)
        );
        let (raw, why) = p.posts[1].as_ref().unwrap_err();
        assert!(raw.contains("\"id\":7") && why.contains("string"), "{why}");
        assert_eq!(p.next_token.as_deref(), Some("b26v89c19zqg8o3f"));
        let empty = parse_search_page(r#"{"meta":{"result_count":0}}"#).unwrap();
        assert!(empty.posts.is_empty() && empty.newest_id.is_none());
        assert_eq!(later_id("999", "1000"), "1000");
        assert_eq!(later_id("1001", "1000"), "1001");
    }

    #[test]
    fn duplicates_are_dropped_within_the_window() {
        let mut d = Dedupe::new(2);
        assert!(d.first("a"));
        assert!(!d.first("a"));
        assert!(d.first("b"));
        assert!(d.first("c")); // "a" leaves the window
        assert!(d.first("a"));
        assert!(!d.first("c"));
    }
}
