//! `hypeflow sentiment score --jsonl`: the lexicon score of every line of stdin, posts (`social.tweets`
//! records) or `{"text": ...}` objects, one JSON line out per line in, so a user scores a file without a
//! pipeline. A line that cannot be scored gets an error line in its place (with its number), never a silent
//! gap, and the counts go to stderr.

use anyhow::Result;
use hypeflow::sentiment::LexiconScorer;
use std::io::{BufRead, Write};

/// Longer lines are refused: no post comes near it, and a line is held in memory whole.
const MAX_LINE: usize = 1 << 20;

pub fn run(input: impl BufRead, mut out: impl Write, mut err: impl Write) -> Result<()> {
    let scorer = LexiconScorer::shared();
    let (mut scored, mut refused) = (0u64, 0u64);
    let mut input = input.take(u64::MAX);
    let mut buf = Vec::new();
    for n in 1u64.. {
        buf.clear();
        input.set_limit(MAX_LINE as u64 + 1);
        let read = input.read_until(b'\n', &mut buf)?;
        if read == 0 {
            break;
        }
        let long = buf.len() > MAX_LINE && !buf.ends_with(b"\n");
        if long {
            // the rest of the line is skipped (not held, not read as lines of its own)
            input.set_limit(u64::MAX);
            input.skip_until(b'\n')?;
        }
        let line = trim(&buf);
        if line.is_empty() {
            continue;
        }
        let answer = if long {
            Err(format!("longer than {MAX_LINE} bytes"))
        } else {
            score_line(line, scorer)
        };
        let json = match answer {
            Ok((id, score)) => {
                scored += 1;
                serde_json::json!({ "line": n, "id": id, "score": (score * 1e4).round() / 1e4 })
            }
            Err(why) => {
                refused += 1;
                serde_json::json!({ "line": n, "error": why })
            }
        };
        writeln!(out, "{json}")?;
    }
    out.flush()?;
    writeln!(err, "scored {scored} lines, refused {refused}")?;
    Ok(())
}

fn trim(b: &[u8]) -> &[u8] {
    let b = b.strip_suffix(b"\n").unwrap_or(b);
    let b = b.strip_suffix(b"\r").unwrap_or(b);
    b.strip_prefix("\u{feff}".as_bytes()).unwrap_or(b)
}

/// The id (a post's, when it has one) and the score of one line, or why it has none.
fn score_line(line: &[u8], scorer: &LexiconScorer) -> Result<(serde_json::Value, f64), String> {
    let text = std::str::from_utf8(line).map_err(|_| "not UTF-8 text".to_string())?;
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not a JSON line: {e}"))?;
    let body = v
        .get("text")
        .and_then(|t| t.as_str())
        .ok_or("no \"text\" string field")?;
    let id = v.get("id").cloned().unwrap_or(serde_json::Value::Null);
    Ok((id, scorer.score(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_gets_a_score_or_its_reason_in_its_place() {
        let input = "{\"id\":\"7\",\"text\":\"$AXL to the moon, love it\"}\n\
                     \n\
                     {\"text\":\"this is a terrible rug pull\"}\r\n\
                     not json\n\
                     {\"id\":3}\n"
            .as_bytes()
            .to_vec();
        let mut bytes = input;
        bytes.extend_from_slice(b"{\"text\":\"\xff\"}\n");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        run(bytes.as_slice(), &mut out, &mut err).unwrap();
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines.len(),
            5,
            "the blank line is skipped, every other one answered"
        );
        assert_eq!(lines[0]["id"], "7");
        assert!(lines[0]["score"].as_f64().unwrap() > 0.3);
        assert_eq!(lines[1]["line"], 3);
        assert!(lines[1]["score"].as_f64().unwrap() < -0.3);
        assert!(lines[2]["error"]
            .as_str()
            .unwrap()
            .starts_with("not a JSON line"));
        assert_eq!(lines[3]["error"], "no \"text\" string field");
        assert_eq!(lines[4]["error"], "not UTF-8 text");
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "scored 2 lines, refused 3\n"
        );
    }
}
