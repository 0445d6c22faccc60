//! `hypeflow ingest x` end to end against the fake X API: rules synced from the influencer list (dry run first,
//! stale hypeflow rules deleted, others' rules kept, an invalid rule stops everything), then the stream into a
//! JSONL file or into `social.tweets` on a broker, keyed by author, with unreadable lines dead-lettered. The
//! bearer token must not appear in anything the command prints, even at debug level.

use crate::common;

use common::fake_http::{line, FakeHttp, Reply, Step};
use common::{bin, dev_broker, printed, topic_records};
use std::time::Duration;

const TOKEN: &str = "fake-bearer-77aa88bb99cc";

fn post(id: u64, author: &str) -> String {
    serde_json::json!({
        "data": {"id": id.to_string(), "text": format!("$AXL from {author}"), "author_id": format!("9{author}"),
                 "created_at": "2026-11-24T10:00:00.000Z",
                 "public_metrics": {"retweet_count": 1, "reply_count": 0, "like_count": 2, "quote_count": 0}},
        "includes": {"users": [{"id": format!("9{author}"), "username": author, "public_metrics": {"followers_count": 90000}}]}
    })
    .to_string()
}

/// The fake X: rules (one stale hypeflow rule, one foreign rule), the stream (two posts and a bad line).
fn fake_x(invalid: bool) -> FakeHttp {
    FakeHttp::start(move |req| match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/2/tweets/search/stream/rules") => Reply::json(
            200,
            serde_json::json!({"data": [
                {"id": "1001", "value": "(from:olduser) -is:retweet", "tag": "hypeflow:influencers-1"},
                {"id": "1002", "value": "from:someone has:images", "tag": "someone else's"}],
                "meta": {"sent": "2026-11-24T10:00:00.000Z", "result_count": 2}}),
        ),
        ("POST", "/2/tweets/search/stream/rules") => {
            let body: serde_json::Value = serde_json::from_str(&req.body).unwrap_or_default();
            if body.get("delete").is_some() {
                return Reply::json(
                    200,
                    serde_json::json!({"meta": {"sent": "x", "summary": {"deleted": 1, "not_deleted": 0}}}),
                );
            }
            let n = body["add"].as_array().map(Vec::len).unwrap_or(0);
            if invalid {
                return Reply::json(
                    200,
                    serde_json::json!({
                    "meta": {"sent": "x", "summary": {"created": 0, "not_created": n, "valid": 0, "invalid": n}},
                    "errors": [{"value": body["add"][0]["value"], "details": ["Reference to invalid operator"],
                                "title": "Invalid Rule", "type": "https://api.x.com/2/problems/invalid-rules"}]}),
                );
            }
            Reply::json(
                200,
                serde_json::json!({"data": body["add"],
                "meta": {"sent": "x", "summary": {"created": n, "not_created": 0, "valid": n, "invalid": 0}}}),
            )
        }
        ("GET", "/2/tweets/search/stream") => Reply::Stream(vec![
            line(""),
            line(&post(11, "alice")),
            line("not json at all"),
            line(&post(12, "bob")),
            Step::Pause(Duration::from_secs(10)),
        ]),
        _ => Reply::json(404, serde_json::json!({"title": "Not Found"})),
    })
}

fn ingest(fake: &FakeHttp, dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let list = dir.join("influencers.csv");
    std::fs::write(
        &list,
        "handle,user_id,followers,counted_on\nalice,9alice,90000,2026-11-24\nbob,9bob,80000,2026-11-24\n",
    )
    .unwrap();
    bin()
        .args([
            "ingest",
            "x",
            "--sync-rules",
            "--max-posts",
            "2",
            "--influencers",
        ])
        .arg(&list)
        .args(extra)
        .env("X_API_BASE_URL", &fake.url)
        .env("X_BEARER_TOKEN", TOKEN)
        .env("HYPEFLOW_LOG", "debug")
        .output()
        .unwrap()
}

fn ingest_to_file(
    fake: &FakeHttp,
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::process::Output) {
    let out = dir.join("posts.jsonl");
    let o = ingest(fake, dir, &["--out", &format!("jsonl:{}", out.display())]);
    (out, o)
}

#[test]
fn rules_are_synced_then_posts_stream_into_a_jsonl_file() {
    let fake = fake_x(false);
    let dir = tempfile::tempdir().unwrap();
    let (out, o) = ingest_to_file(&fake, dir.path());
    let text = printed(&o);
    assert!(o.status.success(), "{text}");
    assert!(
        !text.contains(TOKEN),
        "the bearer token leaked into the output"
    );
    assert!(
        text.contains("rules wanted 1 kept 0 added 1 deleted 1"),
        "{text}"
    );

    let posts = fake.requests_to("/2/tweets/search/stream/rules");
    let posts: Vec<_> = posts.iter().filter(|r| r.method == "POST").collect();
    assert_eq!(posts.len(), 3, "dry run, add, delete");
    assert_eq!(posts[0].param("dry_run"), Some("true"));
    let add: serde_json::Value = serde_json::from_str(&posts[1].body).unwrap();
    assert_eq!(posts[1].param("dry_run"), None);
    assert_eq!(
        add["add"][0]["value"],
        "(from:alice OR from:bob) -is:retweet"
    );
    let del: serde_json::Value = serde_json::from_str(&posts[2].body).unwrap();
    assert_eq!(
        del["delete"]["ids"],
        serde_json::json!(["1001"]),
        "only the stale hypeflow rule goes"
    );

    // the file is what `backtest --tweets` reads
    let lines: Vec<hypeflow::model::Tweet> = common::read_jsonl(&out);
    let got: Vec<(&str, &str)> = lines
        .iter()
        .map(|t| (t.id.as_str(), t.author_handle.as_str()))
        .collect();
    assert_eq!(got, [("11", "alice"), ("12", "bob")]);
    let dead = std::fs::read_to_string(format!("{}.deadletter.jsonl", out.display())).unwrap();
    assert!(dead.contains("not json at all"), "{dead}");
}

#[test]
fn an_invalid_rule_changes_nothing_and_says_why() {
    let fake = fake_x(true);
    let dir = tempfile::tempdir().unwrap();
    let (out, o) = ingest_to_file(&fake, dir.path());
    let text = printed(&o);
    assert!(!o.status.success());
    assert!(
        text.contains("Invalid Rule") && text.contains("nothing was changed"),
        "{text}"
    );
    let posts: Vec<_> = fake
        .requests_to("/2/tweets/search/stream/rules")
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].param("dry_run"), Some("true"));
    assert!(fake.requests_to("/2/tweets/search/stream").is_empty());
    assert!(!out.exists(), "nothing was streamed");
    assert!(!text.contains(TOKEN));
}

#[test]
fn posts_go_to_social_tweets_keyed_by_author_with_bad_lines_dead_lettered() {
    let broker = dev_broker(3);
    let fake = fake_x(false);
    let dir = tempfile::tempdir().unwrap();
    let o = ingest(
        &fake,
        dir.path(),
        &["--out", &format!("kafka:{}", broker.bootstrap)],
    );
    assert!(o.status.success(), "{}", printed(&o));
    let recs = topic_records(&broker.bootstrap, "social.tweets");
    let mut keys: Vec<String> = recs.iter().map(|r| r.key.clone()).collect();
    keys.sort();
    assert_eq!(keys, ["9alice", "9bob"]);
    let t: hypeflow::model::Tweet =
        hypeflow::kafka::envelope::decode("tweet", &recs[0].payload).unwrap();
    assert!(t.text.starts_with("$AXL from"));
    let dead = topic_records(&broker.bootstrap, "deadletter.social.tweets");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].payload, b"not json at all");
    assert!(dead[0]
        .headers
        .iter()
        .any(|(k, v)| k.contains("reason") && v.contains("not a stream JSON")));
}

/// Without a synced list and without --influencers, `ingest x` says what to run.
#[test]
fn without_an_influencer_list_ingest_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("influencers.csv");
    let o = bin()
        .args(["ingest", "x", "--out", "jsonl:/dev/null", "--influencers"])
        .arg(&missing)
        .env("X_BEARER_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no influencer list at")
            && err.contains("hypeflow influencers sync --seed YOUR_SEED --out")
            && err.contains("data/influencers/seed_example.txt"),
        "{err}"
    );
}
