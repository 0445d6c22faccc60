//! The X filtered stream and recent-search clients against a fake that speaks X's documented protocol:
//! chunked newline-delimited JSON with keep-alives, duplicates, malformed and unknown lines, in-stream errors,
//! disconnect objects, a line cut by a dropped connection, a silent connection, 503/429/401/409 answers with
//! X's rate-limit headers, and recent search with `since_id` and `next_token` paging. The reconnect schedule
//! is read from a recording clock and compared with the one X documents.

use crate::common;

use common::fake_http::{line, FakeHttp, Reply, Step};
use hypeflow::ingest::clock::RecordingClock;
use hypeflow::ingest::x_api::{XApi, XError};
use hypeflow::ingest::x_ingest::{self, IngestError, PollOptions, StreamOptions};
use hypeflow::kafka::sink::{DeadLine, Sink};
use hypeflow::model::Tweet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const TOKEN: &str = "fake-bearer-0a1b2c3d4e5f";

/// A post line shaped like the documented sample; `new_names` uses the 2026 spec's metric names.
fn post(id: u64, author: &str, text: &str, new_names: bool) -> String {
    let (rt, tc) = if new_names {
        ("repost_count", "post_count")
    } else {
        ("retweet_count", "tweet_count")
    };
    serde_json::json!({
        "data": {"id": id.to_string(), "text": text, "author_id": format!("9{author}"),
                 "created_at": format!("2026-11-24T10:{:02}:00.000Z", id % 60), "lang": "en",
                 "edit_history_tweet_ids": [id.to_string()],
                 "public_metrics": {rt: 3, "reply_count": 1, "like_count": 20, "quote_count": 0}},
        "includes": {"users": [{"id": format!("9{author}"), "username": author, "name": author,
                     "public_metrics": {"followers_count": 120000, tc: 10}}]},
        "matching_rules": [{"id": "1273026480692322304", "tag": "hypeflow:influencers-1"}]
    })
    .to_string()
}

fn problem(status: u16, title: &str) -> Reply {
    Reply::json(
        status,
        serde_json::json!({"title": title, "detail": title, "type": "about:blank", "status": status}),
    )
}

fn jsonl(dir: &tempfile::TempDir) -> (Sink, std::path::PathBuf) {
    let p = dir.path().join("posts.jsonl");
    (
        Sink::open(&format!("jsonl:{}", p.display()), "social.tweets").unwrap(),
        p,
    )
}

fn posts_in(p: &std::path::Path) -> Vec<Tweet> {
    common::read_jsonl(p)
}

fn dead_in(p: &std::path::Path) -> Vec<DeadLine> {
    common::read_jsonl(std::path::Path::new(&format!(
        "{}.deadletter.jsonl",
        p.display()
    )))
}

fn opts(max_posts: Option<u64>, max_failures: Option<u32>) -> StreamOptions {
    StreamOptions {
        silence: Duration::from_millis(400),
        max_posts,
        max_failures,
        gap_queries: vec!["(from:alice OR from:bob) -is:retweet".into()],
    }
}

#[test]
fn the_stream_reconnects_on_the_documented_schedule_and_loses_nothing() {
    let conns = Arc::new(AtomicUsize::new(0));
    let searches = Arc::new(AtomicUsize::new(0));
    let (c, s) = (conns.clone(), searches.clone());
    let cut_line = post(103, "alice", "$AXL cut off by a dropped connection", false);
    let cut = cut_line.clone();
    let fake = FakeHttp::start(move |req| match req.path.as_str() {
        "/2/tweets/search/stream" => match c.fetch_add(1, Ordering::SeqCst) {
            0 | 1 => problem(503, "Service Unavailable"),
            2 => {
                let reset = chrono::Utc::now().timestamp() + 200;
                problem(429, "Too Many Requests")
                    .with_header("x-rate-limit-limit", "50")
                    .with_header("x-rate-limit-remaining", "0")
                    .with_header("x-rate-limit-reset", &reset.to_string())
            }
            3 => Reply::Stream(vec![
                line(""),
                line(&post(101, "alice", "$AXL breaking out", false)),
                line("{oops"),
                line(r#"{"brand_new_message_type":{"x":1}}"#),
                line(&post(101, "alice", "$AXL breaking out", false)),
                line(
                    r#"{"errors":[{"title":"Not Found Error","detail":"Could not find tweet with id: [1]."}]}"#,
                ),
                line(&post(102, "bob", "$BOLT looks weak", true)),
                Step::Send(cut.as_bytes()[..60].to_vec()),
                Step::Drop,
            ]),
            4 => Reply::Stream(vec![
                line(""),
                line(
                    r#"{"errors":[{"title":"operational-disconnect","disconnect_type":"UpstreamOperationalDisconnect","detail":"This stream has been disconnected upstream for operational reasons.","type":"https://api.x.com/2/problems/operational-disconnect"}]}"#,
                ),
            ]),
            5 => Reply::Stream(vec![line(""), Step::Pause(Duration::from_millis(1500))]),
            _ => Reply::Stream(vec![
                line(&post(106, "bob", "$BOLT reversal", false)),
                line(&post(107, "alice", "$AXL again", false)),
                Step::Pause(Duration::from_secs(5)),
            ]),
        },
        "/2/tweets/search/recent" => {
            let n = s.fetch_add(1, Ordering::SeqCst);
            let page = |posts: Vec<String>, next: Option<&str>| search_page(&posts, next);
            match (n, req.param("next_token")) {
                // after the drop: the cut post and one more, newest first, over two pages
                (0, None) => page(
                    vec![post(104, "bob", "$BOLT during the outage", false)],
                    Some("p2"),
                ),
                (1, Some("p2")) => page(
                    vec![post(
                        103,
                        "alice",
                        "$AXL cut off by a dropped connection",
                        false,
                    )],
                    None,
                ),
                (2, None) => page(
                    vec![post(105, "alice", "$AXL after the disconnect", false)],
                    None,
                ),
                _ => Reply::json(200, serde_json::json!({"meta": {"result_count": 0}})),
            }
        }
        _ => problem(404, "Not Found"),
    });
    let dir = tempfile::tempdir().unwrap();
    let (mut sink, path) = jsonl(&dir);
    let api = XApi::new(&fake.url, TOKEN.into()).unwrap();
    let clock = RecordingClock::default();
    let stats = x_ingest::stream(&api, &opts(Some(7), None), &mut sink, &clock).unwrap();

    let ids: Vec<String> = posts_in(&path).into_iter().map(|t| t.id).collect();
    assert_eq!(ids, ["101", "102", "104", "103", "105", "106", "107"]);
    assert_eq!((stats.posts, stats.duplicates, stats.gap_filled), (7, 1, 3));
    let waits = clock.waits();
    assert_eq!(waits.len(), 6, "{waits:?}");
    assert_eq!(&waits[..2], &[Duration::ZERO, Duration::from_secs(5)]);
    assert!(
        (Duration::from_secs(195)..=Duration::from_secs(200)).contains(&waits[2]),
        "a 429 waits for x-rate-limit-reset: {:?}",
        waits[2]
    );
    // each healthy connection earns one immediate retry after it drops, disconnects or goes silent
    assert_eq!(&waits[3..], &[Duration::ZERO; 3]);

    let dead = dead_in(&path);
    let reasons: Vec<&str> = dead.iter().map(|d| d.reason.as_str()).collect();
    assert_eq!(dead.len(), 3, "{reasons:?}");
    assert_eq!(dead[0].raw, "{oops");
    assert!(dead[1].reason.contains("neither data"));
    assert!(dead[2].reason.contains("cut off") && cut_line.starts_with(&dead[2].raw));

    // the gap searches asked for what came after the newest post seen, and paged
    let s = fake.requests_to("/2/tweets/search/recent");
    assert_eq!(s[0].param("since_id"), Some("102"));
    assert_eq!(s[1].param("next_token"), Some("p2"));
    assert_eq!(s[2].param("since_id"), Some("104"));
    let st = fake.requests_to("/2/tweets/search/stream");
    assert_eq!(st.len(), 7);
    for r in &st {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert_eq!(r.param("expansions"), Some("author_id"));
        assert!(r.param("tweet.fields").unwrap().contains("created_at"));
        assert!(r.header("user-agent").unwrap().starts_with("hypeflow/"));
    }
}

/// A recent-search page of `posts` (newest first), as X answers it.
fn search_page(posts: &[String], next: Option<&str>) -> Reply {
    let posts: Vec<serde_json::Value> = posts
        .iter()
        .map(|p| serde_json::from_str(p).unwrap())
        .collect();
    let data: Vec<_> = posts.iter().map(|p| p["data"].clone()).collect();
    let users: Vec<_> = posts
        .iter()
        .map(|p| p["includes"]["users"][0].clone())
        .collect();
    let mut meta = serde_json::json!({"result_count": data.len()});
    if let Some(d) = data.first() {
        meta["newest_id"] = d["id"].clone();
    }
    if let Some(t) = next {
        meta["next_token"] = t.into();
    }
    Reply::json(
        200,
        serde_json::json!({"data": data, "includes": {"users": users}, "meta": meta}),
    )
}

#[test]
fn a_failing_gap_search_is_retried_and_never_stops_the_stream() {
    let (conns, searches) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (c, s) = (conns.clone(), searches.clone());
    let fake = FakeHttp::start(move |req| match req.path.as_str() {
        "/2/tweets/search/stream" => match c.fetch_add(1, Ordering::SeqCst) {
            0 => Reply::Stream(vec![
                line(&post(201, "alice", "$AXL first", false)),
                Step::Drop,
            ]),
            1 => Reply::Stream(vec![
                line(&post(203, "bob", "$BOLT live", false)),
                Step::Drop,
            ]),
            _ => Reply::Stream(vec![
                line(&post(204, "alice", "$AXL later", false)),
                Step::Pause(Duration::from_secs(5)),
            ]),
        },
        // the first connection's gap search fails four times (503, a cut body, 500, 502):
        // the stream goes on and the next connection searches the same gap again
        "/2/tweets/search/recent" => match s.fetch_add(1, Ordering::SeqCst) {
            0 => problem(503, "Service Unavailable"),
            1 => Reply::Stream(vec![Step::Send(b"{\"data\":[".to_vec()), Step::Drop]),
            2 => problem(500, "Internal Error"),
            3 => problem(502, "Bad Gateway"),
            _ => search_page(&[post(202, "bob", "$BOLT in the gap", false)], None),
        },
        _ => problem(404, "Not Found"),
    });
    let dir = tempfile::tempdir().unwrap();
    let (mut sink, path) = jsonl(&dir);
    let api = XApi::new(&fake.url, TOKEN.into()).unwrap();
    let clock = RecordingClock::default();
    let stats = x_ingest::stream(&api, &opts(Some(4), None), &mut sink, &clock).unwrap();
    let ids: Vec<String> = posts_in(&path).into_iter().map(|t| t.id).collect();
    assert_eq!(
        ids,
        ["201", "203", "202", "204"],
        "nothing lost, nothing stopped"
    );
    assert_eq!((stats.gap_retries, stats.gap_filled), (3, 1));
    let s = fake.requests_to("/2/tweets/search/recent");
    assert_eq!(s.len(), 5);
    assert!(
        s.iter().all(|r| r.param("since_id") == Some("201")),
        "the gap is the one before the first outage, also when searched again"
    );
    let secs: Vec<u64> = clock.waits().iter().map(Duration::as_secs).collect();
    assert_eq!(
        secs,
        [0, 5, 10, 20, 0],
        "reconnects and the gap search's backoff"
    );

    // a token without access is a configuration error: it stops, saying so
    let fake = FakeHttp::start(move |req| match req.path.as_str() {
        "/2/tweets/search/stream" => {
            Reply::Stream(vec![line(&post(301, "alice", "$AXL", false)), Step::Drop])
        }
        _ => problem(403, "Forbidden"),
    });
    let api = XApi::new(&fake.url, TOKEN.into()).unwrap();
    let (mut sink, _) = jsonl(&dir);
    let e = x_ingest::stream(
        &api,
        &opts(None, None),
        &mut sink,
        &RecordingClock::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("403"), "{e}");
}

#[test]
fn network_and_http_errors_back_off_as_documented_and_409_is_a_configuration_error() {
    // nothing listens: connection refused is a network error, linear +250 ms after one immediate retry
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let api = XApi::new(&format!("http://127.0.0.1:{port}"), TOKEN.into()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (mut sink, _) = jsonl(&dir);
    let clock = RecordingClock::default();
    let e = x_ingest::stream(&api, &opts(None, Some(5)), &mut sink, &clock).unwrap_err();
    assert!(matches!(e, IngestError::GaveUp(5)), "{e}");
    let ms: Vec<u128> = clock.waits().iter().map(Duration::as_millis).collect();
    assert_eq!(ms, [0, 250, 500, 750]);

    // invalid credentials: the docs' way to test the HTTP backoff (exponential from 5 s)
    let fake = FakeHttp::start(|_| problem(401, "Unauthorized"));
    let api = XApi::new(&fake.url, "wrong".into()).unwrap();
    let clock = RecordingClock::default();
    assert!(x_ingest::stream(&api, &opts(None, Some(5)), &mut sink, &clock).is_err());
    let s: Vec<u64> = clock.waits().iter().map(Duration::as_secs).collect();
    assert_eq!(s, [0, 5, 10, 20]);

    let fake = FakeHttp::start(|_| problem(409, "Stream has no rules"));
    let api = XApi::new(&fake.url, TOKEN.into()).unwrap();
    let e = x_ingest::stream(
        &api,
        &opts(None, None),
        &mut sink,
        &RecordingClock::default(),
    )
    .unwrap_err();
    assert!(matches!(e, IngestError::X(XError::NoRules)), "{e}");
    assert!(e.to_string().contains("--sync-rules"));
}

#[test]
fn a_failed_poll_is_asked_again_from_the_same_post_after_a_backoff() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let fake = FakeHttp::start(move |req| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        let one = |id: u64| search_page(&[post(id, "alice", "$AXL", false)], None);
        match (n, req.param("since_id")) {
            (0, None) => one(201),
            (1, _) => Reply::json(503, serde_json::json!({"title": "Service Unavailable"})),
            (2, Some("201")) => one(202),
            _ => Reply::json(200, serde_json::json!({"meta": {"result_count": 0}})),
        }
    });
    let api = XApi::new(&fake.url, TOKEN.into()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (mut sink, path) = jsonl(&dir);
    let clock = RecordingClock::default();
    let opts = PollOptions {
        interval: Duration::from_secs(1),
        max_posts: None,
        max_rounds: Some(3),
    };
    let q = vec!["(from:alice) -is:retweet".to_string()];
    let stats = x_ingest::poll(&api, &q, &opts, &mut sink, &clock).unwrap();
    let ids: Vec<String> = posts_in(&path).into_iter().map(|t| t.id).collect();
    assert_eq!(ids, ["201", "202"], "the 503 cost nothing");
    assert_eq!(stats.gap_retries, 1);
    assert_eq!(
        clock.waits(),
        [Duration::from_secs(1), Duration::from_secs(5)]
    );
    // a configuration error still stops it, with what is wrong
    let denied = FakeHttp::start(|_| Reply::json(403, serde_json::json!({"title": "Forbidden"})));
    let api = XApi::new(&denied.url, TOKEN.into()).unwrap();
    let err = x_ingest::poll(&api, &q, &opts, &mut sink, &clock).unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
}

#[test]
fn search_polling_moves_since_id_forward_and_pages_only_when_catching_up() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let fake = FakeHttp::start(move |req| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        let one = |id: u64, next| search_page(&[post(id, "alice", "$AXL", false)], next);

        match (n, req.param("since_id"), req.param("next_token")) {
            // the first round takes the newest page only, even when more exist
            (0, None, None) => one(201, Some("older")),
            (1, Some("201"), None) => one(203, Some("p2")),
            (2, Some("201"), Some("p2")) => one(202, None),
            _ => Reply::json(200, serde_json::json!({"meta": {"result_count": 0}})),
        }
    });
    let api = XApi::new(&fake.url, TOKEN.into()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (mut sink, path) = jsonl(&dir);
    let clock = RecordingClock::default();
    let opts = PollOptions {
        interval: Duration::from_secs(15),
        max_posts: None,
        max_rounds: Some(3),
    };
    let q = vec!["(from:alice) -is:retweet".to_string()];
    let stats = x_ingest::poll(&api, &q, &opts, &mut sink, &clock).unwrap();
    let ids: Vec<String> = posts_in(&path).into_iter().map(|t| t.id).collect();
    assert_eq!(ids, ["201", "203", "202"]);
    assert_eq!(stats.posts, 3);
    let reqs = fake.requests_to("/2/tweets/search/recent");
    assert_eq!(reqs.len(), 4);
    assert_eq!(reqs[3].param("since_id"), Some("203"));
    assert_eq!(reqs[0].param("query"), Some(q[0].as_str()));
    assert_eq!(reqs[0].param("max_results"), Some("100"));
    assert_eq!(clock.waits(), [Duration::from_secs(15); 2]);
}
