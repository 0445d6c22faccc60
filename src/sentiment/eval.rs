//! Accuracy, macro-F1 and the confusion matrix of a scorer against a labeled CSV.

use super::LexiconScorer;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("cannot read labeled file {path}: {source}")]
    Read { path: String, source: csv::Error },
    #[error("labeled file {path} has no text column (looked for {wanted}); pass --text-column")]
    NoTextColumn { path: String, wanted: String },
    #[error("labeled file {path} has no label column (looked for {wanted}); pass --label-column")]
    NoLabelColumn { path: String, wanted: String },
    #[error("labeled file {path} line {line}: unknown label {label:?} (want positive, negative or neutral)")]
    BadLabel {
        path: String,
        line: u64,
        label: String,
    },
    #[error("labeled file {path} has no split column; drop --split to use every row")]
    NoSplitColumn { path: String },
    #[error("labeled file {path} has no rows{}", split.as_ref().map(|s| format!(" in split {s:?} (its splits are in the split column)")).unwrap_or_default())]
    Empty { path: String, split: Option<String> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Label {
    Negative,
    Neutral,
    Positive,
}

impl Label {
    pub fn parse(s: &str) -> Option<Label> {
        match s.trim().to_ascii_lowercase().as_str() {
            "positive" | "pos" | "bullish" | "1" => Some(Label::Positive),
            "negative" | "neg" | "bearish" | "-1" => Some(Label::Negative),
            "neutral" | "neu" | "0" => Some(Label::Neutral),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Label::Negative => "negative",
            Label::Neutral => "neutral",
            Label::Positive => "positive",
        }
    }
    /// VADER's customary cut-offs: |compound| < band is neutral.
    pub fn from_score(score: f64, band: f64) -> Label {
        if score >= band {
            Label::Positive
        } else if score <= -band {
            Label::Negative
        } else {
            Label::Neutral
        }
    }
}

#[derive(Debug, Clone)]
pub struct EvalReport {
    pub rows: usize,
    pub accuracy: f64,
    pub macro_f1: f64,
    /// Per gold label: (precision, recall, f1, support).
    pub per_class: BTreeMap<Label, (f64, f64, f64, usize)>,
    /// (gold, predicted) -> count.
    pub confusion: BTreeMap<(Label, Label), usize>,
    pub gold_labels: Vec<Label>,
    pub neutral_band: f64,
}

impl EvalReport {
    pub fn from_pairs(pairs: &[(Label, Label)], neutral_band: f64) -> EvalReport {
        let mut confusion = BTreeMap::new();
        for &(g, p) in pairs {
            *confusion.entry((g, p)).or_insert(0usize) += 1;
        }
        let mut gold_labels: Vec<Label> = pairs.iter().map(|p| p.0).collect();
        gold_labels.sort();
        gold_labels.dedup();
        let correct = pairs.iter().filter(|(g, p)| g == p).count();
        let mut per_class = BTreeMap::new();
        for &l in &gold_labels {
            let tp = pairs.iter().filter(|(g, p)| *g == l && *p == l).count() as f64;
            let pred = pairs.iter().filter(|(_, p)| *p == l).count() as f64;
            let support = pairs.iter().filter(|(g, _)| *g == l).count();
            let precision = if pred > 0.0 { tp / pred } else { 0.0 };
            let recall = if support > 0 {
                tp / support as f64
            } else {
                0.0
            };
            let f1 = if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            };
            per_class.insert(l, (precision, recall, f1, support));
        }
        let macro_f1 = per_class.values().map(|v| v.2).sum::<f64>() / per_class.len().max(1) as f64;
        EvalReport {
            rows: pairs.len(),
            accuracy: correct as f64 / pairs.len().max(1) as f64,
            macro_f1,
            per_class,
            confusion,
            gold_labels,
            neutral_band,
        }
    }

    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "rows {}  accuracy {:.4}  macro-F1 {:.4}  (neutral band |score| < {})",
            self.rows, self.accuracy, self.macro_f1, self.neutral_band
        );
        let _ = writeln!(
            s,
            "{:<10} {:>9} {:>9} {:>9} {:>8}",
            "class", "precision", "recall", "f1", "support"
        );
        for (l, (p, r, f, n)) in &self.per_class {
            let _ = writeln!(
                s,
                "{:<10} {:>9.4} {:>9.4} {:>9.4} {:>8}",
                l.name(),
                p,
                r,
                f,
                n
            );
        }
        let preds = [Label::Negative, Label::Neutral, Label::Positive];
        let _ = writeln!(s, "confusion (rows gold, columns predicted):");
        let _ = writeln!(
            s,
            "{:<10} {:>9} {:>9} {:>9}",
            "", "negative", "neutral", "positive"
        );
        for g in &self.gold_labels {
            let _ = write!(s, "{:<10}", g.name());
            for p in preds {
                let _ = write!(
                    s,
                    " {:>9}",
                    self.confusion.get(&(*g, p)).copied().unwrap_or(0)
                );
            }
            let _ = writeln!(s);
        }
        s
    }
}

/// Which columns of a labeled CSV to read, and which rows (`split`: only rows whose `split` column holds it).
#[derive(Clone, Copy, Debug, Default)]
pub struct Columns<'a> {
    pub text: Option<&'a str>,
    pub label: Option<&'a str>,
    pub split: Option<&'a str>,
}

/// The lexicon's figures on a labeled CSV.
pub fn evaluate_file(
    path: &Path,
    columns: Columns<'_>,
    neutral_band: f64,
) -> Result<EvalReport, EvalError> {
    let rows = read_labeled(path, columns)?;
    let scorer = LexiconScorer::shared();
    let pairs: Vec<(Label, Label)> = rows
        .iter()
        .map(|(text, gold)| (*gold, Label::from_score(scorer.score(text), neutral_band)))
        .collect();
    Ok(EvalReport::from_pairs(&pairs, neutral_band))
}

/// (text, gold label) rows of a labeled CSV, its columns found by name.
pub fn read_labeled(path: &Path, columns: Columns<'_>) -> Result<Vec<(String, Label)>, EvalError> {
    let Columns {
        text: text_column,
        label: label_column,
        split,
    } = columns;
    let p = path.display().to_string();
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|source| EvalError::Read {
            path: p.clone(),
            source,
        })?;
    let headers = rdr
        .headers()
        .map_err(|source| EvalError::Read {
            path: p.clone(),
            source,
        })?
        .clone();
    let find = |explicit: Option<&str>, candidates: &[&str]| -> Option<usize> {
        headers.iter().position(|h| match explicit {
            Some(e) => h.eq_ignore_ascii_case(e),
            None => candidates.iter().any(|c| h.trim().eq_ignore_ascii_case(c)),
        })
    };
    let text_idx = find(
        text_column,
        &["text", "comment text", "comment", "tweet", "sentence"],
    )
    .ok_or_else(|| EvalError::NoTextColumn {
        path: p.clone(),
        wanted: text_column.unwrap_or("text, Comment Text").into(),
    })?;
    let label_idx = find(label_column, &["label", "sentiment", "polarity"]).ok_or_else(|| {
        EvalError::NoLabelColumn {
            path: p.clone(),
            wanted: label_column.unwrap_or("label, Sentiment").into(),
        }
    })?;
    let split_idx = match split {
        Some(_) => Some(
            find(Some("split"), &[]).ok_or_else(|| EvalError::NoSplitColumn { path: p.clone() })?,
        ),
        None => None,
    };
    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|source| EvalError::Read {
            path: p.clone(),
            source,
        })?;
        if let (Some(i), Some(want)) = (split_idx, split) {
            if rec.get(i).map(str::trim) != Some(want) {
                continue;
            }
        }
        let line = rec.position().map(|pos| pos.line()).unwrap_or(0);
        let raw = rec.get(label_idx).unwrap_or("");
        let gold = Label::parse(raw).ok_or_else(|| EvalError::BadLabel {
            path: p.clone(),
            line,
            label: raw.into(),
        })?;
        rows.push((rec.get(text_idx).unwrap_or("").to_string(), gold));
    }
    if rows.is_empty() {
        return Err(EvalError::Empty {
            path: p,
            split: split.map(str::to_string),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Label::*;

    #[test]
    fn hand_computed_metrics() {
        // gold P,P,P,N,N ; predicted P,P,Neutral,N,P
        let pairs = [
            (Positive, Positive),
            (Positive, Positive),
            (Positive, Neutral),
            (Negative, Negative),
            (Negative, Positive),
        ];
        let r = EvalReport::from_pairs(&pairs, 0.05);
        assert!((r.accuracy - 0.6).abs() < 1e-12);
        // positive: precision 2/3, recall 2/3, f1 2/3 ; negative: precision 1, recall 1/2, f1 2/3
        let (pp, pr, pf, _) = r.per_class[&Positive];
        assert!(
            (pp - 2.0 / 3.0).abs() < 1e-12
                && (pr - 2.0 / 3.0).abs() < 1e-12
                && (pf - 2.0 / 3.0).abs() < 1e-12
        );
        assert!((r.macro_f1 - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(r.confusion[&(Positive, Neutral)], 1);
    }

    fn shipped() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/labeled/crypto_posts.csv")
    }

    #[test]
    fn shipped_labeled_set_splits_and_beats_chance() {
        let all = read_labeled(&shipped(), Columns::default()).unwrap();
        assert_eq!(all.len(), 320);
        let split = |s| Columns {
            split: Some(s),
            ..Columns::default()
        };
        let train = read_labeled(&shipped(), split("train")).unwrap();
        let test = read_labeled(&shipped(), split("test")).unwrap();
        assert_eq!((train.len(), test.len()), (219, 101));
        assert!(test.iter().all(|r| !train.contains(r)));
        // three classes: chance is about 0.38 (the largest class)
        let r = evaluate_file(&shipped(), split("test"), 0.05).unwrap();
        assert!(r.accuracy > 0.5, "{}", r.render());
    }

    #[test]
    fn a_split_that_is_not_there_is_an_error() {
        let e = read_labeled(
            &shipped(),
            Columns {
                split: Some("validation"),
                ..Columns::default()
            },
        )
        .unwrap_err();
        assert!(matches!(e, EvalError::Empty { split: Some(_), .. }), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("l.csv");
        std::fs::write(&f, "text,label\nup only,positive\n").unwrap();
        let e = read_labeled(
            &f,
            Columns {
                split: Some("test"),
                ..Columns::default()
            },
        )
        .unwrap_err();
        assert!(matches!(e, EvalError::NoSplitColumn { .. }), "{e}");
        assert_eq!(read_labeled(&f, Columns::default()).unwrap().len(), 1);
    }
}
