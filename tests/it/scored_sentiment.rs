//! Sentiment scored upstream (`hypeflow score`, `social.scored`) drives the same pipeline: with lexicon scores
//! recorded by the stage, a backtest of the scored file and a replay of the scored topic make exactly the
//! decisions of the plain backtest that scores posts inline; with different scores, different decisions.

use crate::common;

use common::{dev_broker, read, run_ok, sample};

#[test]
fn recorded_scores_replay_to_the_same_decisions_as_inline_scoring() {
    let dir = tempfile::tempdir().unwrap();
    let scored = dir.path().join("scored.jsonl");
    let out = run_ok(&[
        "score",
        "--lexicon-only",
        "--in",
        sample("tweets.jsonl").to_str().unwrap(),
        "--out",
        &format!("jsonl:{}", scored.display()),
    ]);
    assert!(out.contains("by llm 0"), "{out}");

    let inline = dir.path().join("inline");
    run_ok(&["backtest", "--quiet", "--out", inline.to_str().unwrap()]);
    let from_file = dir.path().join("from_file");
    run_ok(&[
        "backtest",
        "--quiet",
        "--scored",
        scored.to_str().unwrap(),
        "--out",
        from_file.to_str().unwrap(),
    ]);
    for f in ["intents.jsonl", "trades.csv"] {
        let a = read(&inline.join(f));
        assert!(a.lines().count() > 5, "{f} should not be trivial");
        assert_eq!(a, read(&from_file.join(f)), "{f}: scored backtest differs");
    }

    // through the topics: ticks and scored mentions published, replayed with --scored
    let broker = dev_broker(3);
    let b = broker.bootstrap.as_str();
    common::publish_file(b, "market.ticks", &sample("ticks.jsonl"));
    common::publish_file(b, "social.scored", &scored);
    let replayed = dir.path().join("replayed");
    run_ok(&[
        "replay",
        "--scored",
        "--brokers",
        b,
        "--out",
        replayed.to_str().unwrap(),
    ]);
    assert_eq!(
        read(&inline.join("intents.jsonl")),
        read(&replayed.join("intents.jsonl")),
        "replay of social.scored differs"
    );

    // the scores matter: flip them and the decisions change
    let flipped = dir.path().join("flipped.jsonl");
    let text: String = read(&scored)
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["score"] = (-v["score"].as_f64().unwrap()).into();
            v.to_string() + "\n"
        })
        .collect();
    std::fs::write(&flipped, text).unwrap();
    let other = dir.path().join("flipped_out");
    run_ok(&[
        "backtest",
        "--quiet",
        "--scored",
        flipped.to_str().unwrap(),
        "--out",
        other.to_str().unwrap(),
    ]);
    assert_ne!(
        read(&inline.join("intents.jsonl")),
        read(&other.join("intents.jsonl"))
    );
}
