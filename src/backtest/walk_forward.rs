//! `hypeflow sweep --walk-forward TRAIN:TEST[:STEP]`: rolling train/test splits. On each training span every
//! combination runs and the best by the ranking metric is chosen; that choice then runs on the test span that
//! follows, which it has never seen. The test spans, chained (each starts with the equity the previous one
//! ended with), are the out-of-sample record; beside them stand the in-sample figures and each choice's
//! deflated Sharpe ratio for the number of combinations tried, so a user sees how much of a result is
//! selection.
//!
//! Each span is run as the `backtest --from --to` of a pipeline file with the chosen values would run it:
//! flat at its start, indicators and sentiment baselines warming up on the span's own data, positions closed
//! at its end by the end-of-data rule.

use super::inputs::{Loaded, Span};
use super::sweep::{self, load_once, planned, run_on, Combination, SweepRequest, SweepRun};
use super::{run_metrics, BacktestError, BacktestResult};
use crate::model::time::{format_duration_ms, parse_duration_ms, to_rfc3339, Millis};
use crate::risk::deflated::{deflated_sharpe, Deflated};
use crate::risk::metrics::{annualizing, daily_returns, excess_returns, Metrics};
use rust_decimal::Decimal;

/// At most this many folds (a step far shorter than the data would otherwise ask for thousands of sweeps).
pub const MAX_FOLDS: usize = 200;

/// `TRAIN:TEST[:STEP]`, durations such as `90d:30d` (the step defaults to the test span: test spans that
/// touch without overlapping).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkSpec {
    pub train: Millis,
    pub test: Millis,
    pub step: Millis,
}

impl std::str::FromStr for WalkSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(format!(
                "--walk-forward {s:?}: expected TRAIN:TEST or TRAIN:TEST:STEP (e.g. 90d:30d)"
            ));
        }
        let d = |p: &str, what: &str| {
            let ms = parse_duration_ms(p.trim())
                .map_err(|e| format!("--walk-forward {s:?}: the {what} span: {e}"))?;
            // a span up to 100 years: longer is a typo, and fold arithmetic stays far from overflow
            if ms <= 0 || ms > 100 * 365 * 86_400_000 {
                return Err(format!(
                    "--walk-forward {s:?}: the {what} span must be above zero and at most 100 years"
                ));
            }
            Ok(ms)
        };
        let train = d(parts[0], "training")?;
        let test = d(parts[1], "test")?;
        let step = match parts.get(2) {
            Some(p) => d(p, "step")?,
            None => test,
        };
        Ok(WalkSpec { train, test, step })
    }
}

impl WalkSpec {
    pub fn describe(&self) -> String {
        format!(
            "train {}, test {}, step {}",
            format_duration_ms(self.train),
            format_duration_ms(self.test),
            format_duration_ms(self.step)
        )
    }

    /// The (train, test) spans over data from `first` to `last`, on multiples of `quantum` (bar and window
    /// boundaries): a fold is kept when its test span ends by the end of the data's last quantum.
    pub fn folds(
        &self,
        first: Millis,
        last: Millis,
        quantum: Millis,
    ) -> Result<Vec<(Span, Span)>, String> {
        let q = quantum.max(1);
        for (what, ms) in [
            ("training", self.train),
            ("test", self.test),
            ("step", self.step),
        ] {
            if ms % q != 0 {
                return Err(format!(
                    "--walk-forward: the {what} span {} is not a whole number of {} (the bar and window \
                     step)",
                    format_duration_ms(ms),
                    format_duration_ms(q)
                ));
            }
        }
        let start = first.div_euclid(q) * q;
        let end = (last.div_euclid(q) + 1) * q;
        let mut out = Vec::new();
        for k in 0..=MAX_FOLDS as i64 {
            let a = start + k * self.step;
            let (b, c) = (a + self.train, a + self.train + self.test);
            if c > end {
                break;
            }
            if out.len() == MAX_FOLDS {
                return Err(format!(
                    "--walk-forward {}: more than {MAX_FOLDS} folds; take a longer step",
                    self.describe()
                ));
            }
            out.push((Span::new(a, b), Span::new(b, c)));
        }
        if out.is_empty() {
            return Err(format!(
                "--walk-forward {}: the data spans {} ({} to {}), shorter than one training and one test span",
                self.describe(),
                format_duration_ms(end - start),
                to_rfc3339(first),
                to_rfc3339(last)
            ));
        }
        Ok(out)
    }
}

/// One fold: what was chosen on its training span and how it did on its test span.
pub struct Fold {
    pub train: Span,
    pub test: Span,
    /// The chosen combination's index in the sweep's plan.
    pub chosen: usize,
    pub combination: Combination,
    pub in_sample: Metrics,
    /// The chosen run's deflated Sharpe for the number of combinations tried on the training span.
    pub deflated: Option<Deflated>,
    pub tried: usize,
    /// The test span's run (its pipeline: the chosen values and the equity the previous fold ended with).
    pub out_of_sample: BacktestResult,
}

pub struct WalkForward {
    pub spec: WalkSpec,
    pub rank_by: String,
    pub folds: Vec<Fold>,
    /// The test spans chained: intents, fills, trades and equity of every fold, metrics over the whole.
    pub stitched: BacktestResult,
}

/// The deflated Sharpe of run `chosen` among `runs` (daily excess returns; every run counts as a trial).
pub fn deflate(runs: &[SweepRun], chosen: usize, risk_free_rate: f64) -> Option<Deflated> {
    let excess = excess_returns(
        &daily_returns(&runs.get(chosen)?.result.equity),
        risk_free_rate,
    );
    // the sweep's Sharpe ratios are annualized; the paper's formulas take daily ones
    let daily: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.result.metrics.sharpe)
        .map(|s| s / annualizing())
        .collect();
    deflated_sharpe(&excess, &daily, runs.len())
}

/// Runs the walk-forward: inputs read once, one sweep per training span, the choice on each test span.
pub fn walk_forward(
    req: &SweepRequest,
    spec: WalkSpec,
    rank_by: &str,
) -> Result<WalkForward, BacktestError> {
    let plan = sweep::pipelines(req)?;
    let (table, loaded) = load_once(req, &plan)?;
    let (Some(first), Some(last)) = (loaded.first_time, loaded.last_time) else {
        return Err(BacktestError::Option(
            "--walk-forward: the inputs hold no events".into(),
        ));
    };
    let mut probe = plan[0].2.clone();
    probe.follow_bar_interval(loaded.bar_interval);
    let quantum = super::lookahead::boundary(&probe, loaded.bar_interval);
    let spans = spec
        .folds(first, last, quantum)
        .map_err(BacktestError::Option)?;
    let mut equity = plan[0].2.backtest.initial_equity;
    let mut folds = Vec::with_capacity(spans.len());
    for (train, test) in spans {
        let runs = run_on(&plan, req, &table, &loaded.within(train))?;
        let chosen = sweep::ranking(&runs, rank_by)[0];
        let combination = runs[chosen].combination.clone();
        let rf = plan[chosen].2.backtest.risk_free_rate;
        let deflated = deflate(&runs, chosen, rf);
        let out_of_sample = test_run(req, &combination, equity, &table, &loaded, test)?;
        if let Some(e) = out_of_sample.metrics.final_equity {
            equity = e;
        }
        folds.push(Fold {
            train,
            test,
            chosen,
            in_sample: runs[chosen].result.metrics.clone(),
            deflated,
            tried: runs.len(),
            combination,
            out_of_sample,
        });
    }
    let stitched = stitch(&folds, spec, rank_by)?;
    Ok(WalkForward {
        spec,
        rank_by: rank_by.to_string(),
        folds,
        stitched,
    })
}

/// The chosen values on the test span, starting from `equity`: the backtest of a file with those values and
/// that initial equity.
fn test_run(
    req: &SweepRequest,
    combination: &Combination,
    equity: Decimal,
    table: &std::sync::Arc<crate::model::TokenTable>,
    loaded: &Loaded,
    test: Span,
) -> Result<BacktestResult, BacktestError> {
    let mut combo = combination.clone();
    combo.push((
        "backtest.initial_equity".into(),
        toml::Value::String(equity.normalize().to_string()),
    ));
    // the same checks as every sweep value; the text is what the test run's report shows
    let one = planned(req, combo)?;
    let mut runs = run_on(std::slice::from_ref(&one), req, table, &loaded.within(test))?;
    runs.pop()
        .map(|r| r.result)
        .ok_or_else(|| BacktestError::Option("the test run did not finish".into()))
}

/// The folds' test runs chained into one record.
fn stitch(folds: &[Fold], spec: WalkSpec, rank_by: &str) -> Result<BacktestResult, BacktestError> {
    let first = folds
        .first()
        .ok_or_else(|| BacktestError::Option("no fold".into()))?;
    let base = &first.out_of_sample;
    let mut s = BacktestResult {
        cfg: base.cfg.clone(),
        pipeline_text: base.pipeline_text.clone(),
        intents: Vec::new(),
        fills: Vec::new(),
        trades: Vec::new(),
        equity: Vec::new(),
        exposure: Vec::new(),
        metrics: base.metrics.clone(),
        dead: base.dead.clone(),
        skipped: Default::default(),
        clusters: Default::default(),
        summary: Vec::new(),
        bar_interval: base.bar_interval,
        events_replayed: 0,
        elapsed: Default::default(),
        charts: Vec::new(),
        entry_authors: Default::default(),
    };
    let mut charts: std::collections::BTreeMap<String, crate::dataflow::token_chart::TokenChart> =
        Default::default();
    for f in folds {
        let r = &f.out_of_sample;
        s.intents.extend(r.intents.iter().cloned());
        s.fills.extend(r.fills.iter().cloned());
        s.trades.extend(r.trades.iter().cloned());
        s.equity.extend(r.equity.iter().copied());
        s.exposure.extend(r.exposure.iter().cloned());
        for (k, v) in &r.skipped {
            *s.skipped.entry(k.clone()).or_default() += v;
        }
        s.events_replayed += r.events_replayed;
        s.elapsed += r.elapsed;
        s.entry_authors
            .extend(r.entry_authors.iter().map(|(k, v)| (k.clone(), v.clone())));
        for c in &r.charts {
            match charts.get_mut(&c.token) {
                Some(all) => {
                    all.points.extend(c.points.iter().cloned());
                    all.last_close = c.last_close;
                }
                None => {
                    charts.insert(c.token.clone(), c.clone());
                }
            }
        }
    }
    s.charts = charts.into_values().collect();
    s.metrics = run_metrics(
        base.cfg.backtest.risk_free_rate,
        &s.equity,
        &s.trades,
        &s.fills,
        &s.exposure,
    );
    s.summary = summary(folds, spec, rank_by, &s.metrics);
    Ok(s)
}

/// The stitched record's summary: the split, then each fold's choice beside its in- and out-of-sample figures.
fn summary(folds: &[Fold], spec: WalkSpec, rank_by: &str, oos: &Metrics) -> Vec<(String, String)> {
    let f4 = |x: Option<f64>| x.map_or("-".into(), |v| format!("{v:.4}"));
    let mean = |xs: Vec<f64>| (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64);
    let mut out = vec![
        (
            "walk-forward".to_string(),
            format!(
                "{} folds ({}), the best by {rank_by} on each training span run on the test span after it",
                folds.len(),
                spec.describe()
            ),
        ),
        (
            "Sharpe in / out of sample".into(),
            format!(
                "{} mean over the folds' training spans / {} over the chained test spans",
                f4(mean(folds.iter().filter_map(|f| f.in_sample.sharpe).collect())),
                f4(oos.sharpe)
            ),
        ),
    ];
    for (i, f) in folds.iter().enumerate() {
        let values: Vec<String> = f
            .combination
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        out.push((
            format!("fold {}", i + 1),
            format!(
                "train {} to {}, test to {}: {} (of {}); Sharpe in {} (deflated {}), out {}, return out {}",
                day(f.train.from),
                day(f.train.to),
                day(f.test.to),
                values.join(" "),
                f.tried,
                f4(f.in_sample.sharpe),
                f4(f.deflated.as_ref().map(|d| d.probability)),
                f4(f.out_of_sample.metrics.sharpe),
                f4(f.out_of_sample.metrics.total_return)
            ),
        ));
    }
    out
}

fn day(t: Option<Millis>) -> String {
    t.map(to_rfc3339).unwrap_or_default()
}

/// `walk_forward.csv`: one row per fold: the spans, the chosen values, the in-sample figures with the
/// deflated Sharpe, and the test span's figures.
pub fn folds_csv(w: &WalkForward, axes: &[sweep::Axis]) -> String {
    let mut out = String::from("fold,train_from,train_to,test_from,test_to,run");
    for a in axes {
        out.push(',');
        out.push_str(&a.key);
    }
    out.push_str(&format!(
        ",in_rank_by_{},in_sharpe,deflated_sharpe,expected_max_daily_sharpe,tried,out_total_return,out_sharpe,\
         out_max_drawdown,out_trades,out_final_equity\n",
        w.rank_by
    ));
    let num = |x: Option<f64>| x.map_or(String::new(), |v| v.to_string());
    for (i, f) in w.folds.iter().enumerate() {
        out.push_str(&format!(
            "{},{},{},{},{},{}",
            i + 1,
            day(f.train.from),
            day(f.train.to),
            day(f.test.from),
            day(f.test.to),
            f.chosen + 1
        ));
        for (_, v) in &f.combination {
            out.push(',');
            out.push_str(&v.to_string().replace(',', ";").replace('"', ""));
        }
        let m = &f.out_of_sample.metrics;
        out.push_str(&format!(
            ",{},{},{},{},{},{},{},{},{},{}\n",
            num(sweep::metric(&f.in_sample, &w.rank_by)),
            num(f.in_sample.sharpe),
            num(f.deflated.as_ref().map(|d| d.probability)),
            num(f.deflated.as_ref().map(|d| d.expected_max)),
            f.tried,
            num(m.total_return),
            num(m.sharpe),
            num(m.max_drawdown),
            m.trades,
            m.final_equity
                .map_or(String::new(), |e| e.normalize().to_string())
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Millis = 86_400_000;

    #[test]
    fn specs_parse_with_the_step_defaulting_to_the_test_span() {
        let w: WalkSpec = "90d:30d".parse().unwrap();
        assert_eq!((w.train, w.test, w.step), (90 * DAY, 30 * DAY, 30 * DAY));
        let w: WalkSpec = "60d:10d:5d".parse().unwrap();
        assert_eq!(w.step, 5 * DAY);
        for (bad, says) in [
            ("90d", "TRAIN:TEST"),
            ("90d:30d:1d:1d", "TRAIN:TEST"),
            ("x:30d", "training"),
            ("90d:0d", "positive"),
            ("90d:30d:-1d", "step"),
        ] {
            let e = bad.parse::<WalkSpec>().unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn folds_roll_by_the_step_and_end_with_the_data() {
        let w: WalkSpec = "4d:2d".parse().unwrap();
        // ten days of data from day 0 (last event inside day 9)
        let folds = w.folds(0, 10 * DAY - 1, 300_000).unwrap();
        let spans: Vec<(Millis, Millis, Millis)> = folds
            .iter()
            .map(|(tr, te)| {
                assert_eq!(tr.to, te.from, "a test span follows its training span");
                (
                    tr.from.unwrap() / DAY,
                    te.from.unwrap() / DAY,
                    te.to.unwrap() / DAY,
                )
            })
            .collect();
        assert_eq!(spans, vec![(0, 4, 6), (2, 6, 8), (4, 8, 10)]);
        // an overlapping step
        assert_eq!(
            "4d:2d:1d"
                .parse::<WalkSpec>()
                .unwrap()
                .folds(0, 10 * DAY - 1, 300_000)
                .unwrap()
                .len(),
            5
        );
        // too little data, spans off the bar grid, too many folds
        assert!(w
            .folds(0, 5 * DAY, 300_000)
            .unwrap_err()
            .contains("shorter"));
        let odd: WalkSpec = "4d:7m".parse().unwrap();
        assert!(odd
            .folds(0, 10 * DAY, 300_000)
            .unwrap_err()
            .contains("whole number"));
        let many: WalkSpec = "5m:5m".parse().unwrap();
        assert!(many
            .folds(0, 10 * DAY, 300_000)
            .unwrap_err()
            .contains("more than"));
    }
}
