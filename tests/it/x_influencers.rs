//! `hypeflow influencers sync` against a fake X API (wiremock) that speaks the documented user-lookup format:
//! 100 handles per call, not-found users in `errors`, a 429 with X's rate-limit headers first, a 401 for a wrong
//! token. The bearer token must never show up in what the command prints.

use crate::common;

use common::bin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const TOKEN: &str = "test-bearer-9f8e7d6c5b4a";

fn followers_of(handle: &str) -> u64 {
    // deterministic (FNV-1a), spread around the 50,000 threshold
    let h = handle.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    h % 100_000
}

fn user_lookup(
    calls: Arc<AtomicUsize>,
    sizes: Arc<Mutex<Vec<usize>>>,
) -> impl Fn(&Request) -> ResponseTemplate {
    move |req: &Request| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        if n == 0 {
            let reset = chrono::Utc::now().timestamp() + 1;
            return ResponseTemplate::new(429)
                .insert_header("x-rate-limit-limit", "300")
                .insert_header("x-rate-limit-remaining", "0")
                .insert_header("x-rate-limit-reset", reset.to_string().as_str())
                .set_body_json(serde_json::json!({"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429}));
        }
        let names: Vec<String> = req
            .url
            .query_pairs()
            .find(|(k, _)| k == "usernames")
            .map(|(_, v)| v.split(',').map(str::to_string).collect())
            .unwrap_or_default();
        sizes.lock().unwrap().push(names.len());
        let mut data = Vec::new();
        let mut errors = Vec::new();
        for (i, h) in names.iter().enumerate() {
            if h.starts_with("gone") {
                errors.push(serde_json::json!({"value": h, "detail": format!("Could not find user with usernames: [{h}]."), "title": "Not Found Error", "resource_type": "user", "parameter": "usernames", "type": "https://api.twitter.com/2/problems/resource-not-found"}));
            } else {
                // both generations of the post-count name, and an unknown field, as the docs warn
                let count_name = if i % 2 == 0 {
                    "tweet_count"
                } else {
                    "post_count"
                };
                data.push(serde_json::json!({"id": format!("{}", 1000 + i), "name": h, "username": h, "brand_new": true,
                    "public_metrics": {"followers_count": followers_of(h), "following_count": 1, count_name: 5, "listed_count": 0}}));
            }
        }
        ResponseTemplate::new(200)
            .insert_header("x-rate-limit-remaining", "299")
            .set_body_json(serde_json::json!({"data": data, "errors": errors}))
    }
}

/// Runs `influencers sync` as its own process (off the runtime's threads, which serve the fake).
async fn sync(
    seed: &std::path::Path,
    out: &std::path::Path,
    uri: &str,
    token: &str,
) -> std::process::Output {
    let mut c = bin();
    c.args(["influencers", "sync", "--seed"])
        .arg(seed)
        .arg("--out")
        .arg(out)
        .env("X_API_BASE_URL", uri)
        .env("X_BEARER_TOKEN", token)
        .env("HYPEFLOW_LOG", "debug");
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influencers_sync_resolves_keeps_the_followed_and_never_prints_the_token() {
    let server = MockServer::start().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let sizes = Arc::new(Mutex::new(Vec::new()));
    Mock::given(method("GET"))
        .and(path("/2/users/by"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(user_lookup(calls.clone(), sizes.clone()))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/2/users/by"))
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"})))
        .with_priority(10)
        .mount(&server)
        .await;

    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.tsv");
    let mut text = String::from("# rank\thandle\n");
    for i in 0..150 {
        text.push_str(&format!("{i}\ttrader_{i:03}\n"));
    }
    text.push_str("151\tgone_user\n");
    std::fs::write(&seed, text).unwrap();
    let out = dir.path().join("influencers.csv");
    let uri = server.uri();
    let o = sync(&seed, &out, &uri, TOKEN).await;
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{stdout}\n{stderr}");
    assert!(
        !stdout.contains(TOKEN) && !stderr.contains(TOKEN),
        "the token leaked"
    );
    assert!(stderr.contains("not found: gone_user"), "{stderr}");

    // one 429 then 100 + 51 handles
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(*sizes.lock().unwrap(), vec![100, 51]);

    let csv = std::fs::read_to_string(&out).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("handle,user_id,followers,counted_on"));
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    let expected = (0..150)
        .map(|i| format!("trader_{i:03}"))
        .filter(|h| followers_of(h) >= 50_000)
        .count();
    assert_eq!(rows.len(), expected, "{csv}");
    assert!(
        expected > 10 && expected < 140,
        "the fixture spreads around the threshold"
    );
    let followers: Vec<u64> = rows.iter().map(|r| r[2].parse().unwrap()).collect();
    assert!(
        followers.windows(2).all(|w| w[0] >= w[1]),
        "most followed first"
    );
    assert!(rows
        .iter()
        .all(|r| r[3] == today && followers_of(&r[0]) == r[2].parse::<u64>().unwrap()));
    assert!(
        stdout.contains(&format!("found 150 kept {expected}")),
        "{stdout}"
    );

    // a wrong token: a clear error that names the variable, not its value
    let o = sync(&seed, &out, &uri, "wrong-token-0000").await;
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success());
    assert!(
        stderr.contains("401") && stderr.contains("check X_BEARER_TOKEN"),
        "{stderr}"
    );
    assert!(!stderr.contains("wrong-token-0000"), "{stderr}");
}
