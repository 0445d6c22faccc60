//! The LLM scoring stage and `sentiment eval --model llm` against a fake DashScope (OpenAI-compatible
//! chat completions): valid JSON replies, a reply that leaves an id out and one with an out-of-range score
//! (re-asked once), a reply that is not JSON, a 429 with DashScope's body, a reply slower than the latency
//! budget. Whatever the model fails to score gets the lexicon score, named as such.

use crate::common;

use common::fake_http::{FakeHttp, Reply, Req};
use common::{bin, dev_broker, topic_records};
use hypeflow::model::ScoredMention;
use hypeflow::sentiment::LexiconScorer;
use std::time::Duration;

const KEY: &str = "sk-fake-dashscope-5566";

/// The ids the request asks about.
fn asked(req: &Req) -> Vec<String> {
    let body: serde_json::Value = serde_json::from_str(&req.body).unwrap();
    let user: serde_json::Value =
        serde_json::from_str(body["messages"][1]["content"].as_str().unwrap()).unwrap();
    user["tweets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

fn completion(content: serde_json::Value) -> Reply {
    let content = if let Some(s) = content.as_str() {
        s.to_string()
    } else {
        content.to_string()
    };
    Reply::json(
        200,
        serde_json::json!({"id": "chatcmpl-x", "object": "chat.completion", "model": "qwen-plus",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}),
    )
}

fn result(id: &str, score: f64) -> serde_json::Value {
    serde_json::json!({"id": id, "sentiment": if score > 0.0 {"bullish"} else {"bearish"}, "score": score, "confidence": 0.9, "assets": ["AXL"]})
}

fn post(id: &str, text: &str) -> String {
    serde_json::json!({"id": id, "author_id": format!("a{id}"), "author_handle": "trader", "followers": 50000,
        "text": text, "created_at": "2025-03-01T10:00:00Z", "engagement": {"likes": 3}})
    .to_string()
}

/// The fake model: p1..p3 in one batch (p2 left with an out-of-range score, then answered when asked
/// alone), p4..p5 answered with prose instead of JSON.
fn fake_model() -> FakeHttp {
    FakeHttp::start(|req| {
        if req.path != "/compatible-mode/v1/chat/completions" {
            return Reply::json(404, serde_json::json!({}));
        }
        let ids = asked(req);
        if ids.contains(&"p4".to_string()) {
            return completion(
                "Sure! The first tweet is bullish and the second one bearish.".into(),
            );
        }
        if ids == ["p2"] {
            return completion(serde_json::json!({"results": [result("p2", -0.6)]}));
        }
        completion(
            serde_json::json!({"results": [result("p1", 0.7), {"id": "p2", "score": 7}, result("p3", 0.2)]}),
        )
    })
}

fn scored_in(p: &std::path::Path) -> Vec<ScoredMention> {
    common::read_jsonl(p)
}

fn posts_file(dir: &std::path::Path) -> (std::path::PathBuf, Vec<(&'static str, &'static str)>) {
    let posts = vec![
        ("p1", "$AXL breaking out, loading up"),
        ("p2", "$BOLT looks heavy here"),
        ("p3", "$AXL and $CRUX steady"),
        ("p4", "$PEPX to the moon!!! 🚀"),
        ("p5", "$DOGX rug incoming, terrible team"),
        ("p6", "good morning everyone"),
    ];
    let f = dir.join("posts.jsonl");
    let mut text: String = posts.iter().map(|(i, t)| post(i, t) + "\n").collect();
    text.push_str("{\"id\": 5, broken\n");
    std::fs::write(&f, text).unwrap();
    (f, posts)
}

fn score_cmd(url: &str, concurrency: &str) -> std::process::Command {
    let mut c = bin();
    c.args(["score", "--batch-size", "3", "--concurrency", concurrency])
        .env("LLM_BASE_URL", format!("{url}/compatible-mode/v1"))
        .env("DASHSCOPE_API_KEY", KEY)
        .env_remove("LLM_API_KEY")
        .env("HYPEFLOW_LOG", "debug");
    c
}

#[test]
fn llm_scores_are_validated_reasked_once_and_fall_back_to_the_lexicon() {
    let fake = fake_model();
    let dir = tempfile::tempdir().unwrap();
    let (input, posts) = posts_file(dir.path());
    let out = dir.path().join("scored.jsonl");
    let o = score_cmd(&fake.url, "2")
        .arg("--in")
        .arg(&input)
        .args(["--out", &format!("jsonl:{}", out.display())])
        .output()
        .unwrap();
    common::assert_ok_without_secret(&o, KEY);

    let scored = scored_in(&out);
    let lexicon = LexiconScorer::shared();
    let find = |id: &str, tok: &str| {
        scored
            .iter()
            .find(|s| s.tweet_id == id && s.token == tok)
            .unwrap_or_else(|| panic!("no record for {id}/{tok}: {scored:?}"))
    };
    assert_eq!(
        (find("p1", "AXL").score, find("p1", "AXL").model.as_str()),
        (0.7, "qwen-plus")
    );
    assert_eq!(find("p2", "BOLT").score, -0.6, "the re-ask's answer");
    // one record per (post, token), same score
    assert_eq!(
        (find("p3", "AXL").score, find("p3", "CRUX").score),
        (0.2, 0.2)
    );
    for (id, tok) in [("p4", "PEPX"), ("p5", "DOGX")] {
        let s = find(id, tok);
        let text = posts.iter().find(|(i, _)| *i == id).unwrap().1;
        assert_eq!(s.model, lexicon.model_name());
        assert_eq!(s.score, lexicon.score(text));
        assert_eq!(s.followers, 50000);
    }
    assert_eq!(scored.len(), 6, "p6 names no token");
    let dead = std::fs::read_to_string(format!("{}.deadletter.jsonl", out.display())).unwrap();
    assert!(dead.contains("broken"));

    let reqs = fake.requests_to("/compatible-mode/v1/chat/completions");
    assert_eq!(reqs.len(), 3, "two batches and one re-ask");
    for r in &reqs {
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["model"], "qwen-plus");
        assert_eq!(body["temperature"], 0);
        assert_eq!(body["enable_thinking"], false);
        assert_eq!(body["response_format"]["type"], "json_object");
        assert!(body["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("JSON"));
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {KEY}").as_str())
        );
    }
}

#[test]
fn rate_limits_and_slow_replies_end_in_the_lexicon_within_the_budget() {
    let limited = FakeHttp::start(|_| {
        Reply::json(429, serde_json::json!({"error": {"message": "You have exceeded your current request limit. For details, see: https://help.aliyun.com/zh/model-studio/error-code#rate-limit", "type": "limit_requests", "code": "limit_requests"}, "request_id": "8605e472"}))
            .with_header("retry-after", "30")
    });
    let slow = FakeHttp::start(|req| {
        std::thread::sleep(Duration::from_millis(1500));
        let ids = asked(req);
        completion(
            serde_json::json!({"results": ids.iter().map(|i| result(i, 0.5)).collect::<Vec<_>>()}),
        )
    });
    for (fake, budget) in [(&limited, "2000"), (&slow, "400")] {
        let dir = tempfile::tempdir().unwrap();
        let (input, _) = posts_file(dir.path());
        let out = dir.path().join("scored.jsonl");
        let o = score_cmd(&fake.url, "1")
            .arg("--in")
            .arg(&input)
            .args([
                "--out",
                &format!("jsonl:{}", out.display()),
                "--budget-ms",
                budget,
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let scored = scored_in(&out);
        assert_eq!(scored.len(), 6);
        assert!(
            scored
                .iter()
                .all(|s| s.model == LexiconScorer::shared().model_name()),
            "{scored:?}"
        );
    }
    // one batch at a time: after the 429 the second batch was not sent at all, the bucket waits for retry-after
    assert_eq!(
        limited
            .requests_to("/compatible-mode/v1/chat/completions")
            .len(),
        1
    );
}

#[test]
fn the_stage_reads_social_tweets_and_writes_social_scored_keyed_by_token() {
    let broker = dev_broker(2);
    let fake = fake_model();
    let dir = tempfile::tempdir().unwrap();
    let (input, _) = posts_file(dir.path());
    // the broken line goes to the dead-letter topic on publish; put a poison record in directly too
    common::publish_file(&broker.bootstrap, "social.tweets", &input);
    let mut p = hypeflow::kafka::publish::Publisher::immediate(&broker.bootstrap).unwrap();
    p.send(
        &common::topic("social.tweets"),
        "x",
        b"\x00not an envelope",
        0,
        None,
    )
    .unwrap();
    p.finish().unwrap();
    let o = score_cmd(&fake.url, "2")
        .args([
            "--brokers",
            &broker.bootstrap,
            "--exit-when-idle-ms",
            "2000",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let recs = topic_records(&broker.bootstrap, "social.scored");
    assert_eq!(recs.len(), 6);
    for r in &recs {
        let s: ScoredMention = hypeflow::kafka::envelope::decode("scored", &r.payload).unwrap();
        assert_eq!(r.key, s.token);
    }
    let dead = topic_records(&broker.bootstrap, "deadletter.social.tweets");
    assert!(dead.iter().any(|d| d.payload == b"\x00not an envelope"
        && d.headers.iter().any(|(_, v)| v.starts_with("score:"))));
    // offsets were committed: a second run has nothing to do
    let o = score_cmd(&fake.url, "2")
        .args([
            "--brokers",
            &broker.bootstrap,
            "--exit-when-idle-ms",
            "1500",
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("posts 0 "),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(topic_records(&broker.bootstrap, "social.scored").len(), 6);
}

#[test]
fn sentiment_eval_scores_the_labeled_set_with_the_model_in_batches() {
    let fake = FakeHttp::start(|req| {
        let body: serde_json::Value = serde_json::from_str(&req.body).unwrap();
        let user: serde_json::Value =
            serde_json::from_str(body["messages"][1]["content"].as_str().unwrap()).unwrap();
        let results: Vec<serde_json::Value> = user["tweets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let text = t["text"].as_str().unwrap();
                let s = if text.contains("moon") {
                    0.9
                } else if text.contains("rug") {
                    -0.9
                } else {
                    0.0
                };
                result(t["id"].as_str().unwrap(), s)
            })
            .collect();
        completion(serde_json::json!({ "results": results }))
    });
    let dir = tempfile::tempdir().unwrap();
    let labels = dir.path().join("labels.csv");
    let mut csv = String::from("text,label\n");
    for i in 0..25 {
        csv.push_str(&format!(
            "token {i} to the moon,positive\nthis is a rug {i},negative\nblock {i} mined,neutral\n"
        ));
    }
    std::fs::write(&labels, csv).unwrap();
    let o = bin()
        .args([
            "sentiment",
            "eval",
            "--model",
            "llm",
            "--batch-size",
            "20",
            "--labels",
        ])
        .arg(&labels)
        .env("LLM_BASE_URL", format!("{}/v1", fake.url))
        .env("LLM_API_KEY", KEY)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("model qwen-plus"), "{out}");
    assert!(out.contains("4 requests; 0 of 75 texts unscored"), "{out}");
    assert!(
        out.contains("accuracy 1.0000") || out.contains("accuracy 100"),
        "{out}"
    );
}
