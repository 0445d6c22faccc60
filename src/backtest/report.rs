//! report.html: one self-contained file (no network; one small inline script for the hover values) with the
//! equity curve beside buy and hold, drawdown, per-token pictures and PnL, the influencer attribution, the
//! trade list, the metrics, the pipeline parameters and the fill conventions in force.

use crate::dataflow::portfolio::ExposurePoint;
use crate::model::time::to_rfc3339;
use crate::model::Trade;
use crate::risk::metrics::Metrics;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::fmt::Write;

use super::svg::{chart, escape, line_chart, Series, HOVER_SCRIPT};

pub struct ReportInput<'a> {
    pub title: &'a str,
    pub metrics: &'a Metrics,
    pub curve: &'a [(i64, Decimal)],
    pub trades: &'a [Trade],
    pub pipeline_toml: &'a str,
    pub conventions: &'a [(String, String)],
    pub summary: &'a [(String, String)],
    pub exposure: &'a [(i64, ExposurePoint)],
    pub intents: &'a [crate::model::OrderIntent],
    pub fills: &'a [crate::model::Fill],
    pub charts: &'a [crate::dataflow::token_chart::TokenChart],
    pub authors: &'a [super::attribution::AuthorRow],
    pub benchmark: &'a super::attribution::BuyAndHold,
}

/// Colors of the lines of a chart with several series, in order.
const PALETTE: &[&str] = &[
    "#264653", "#e76f51", "#2a9d8f", "#e9c46a", "#8e44ad", "#f4a261", "#3d5a80", "#c0392b",
];

/// The report's exposure pictures: the largest position's share of equity, and each cluster's (the eight
/// that peaked highest), in percent, over time.
fn exposure_charts(points: &[(i64, ExposurePoint)]) -> String {
    let largest: Vec<(i64, f64)> = points
        .iter()
        .map(|(t, p)| (*t, p.largest * 100.0))
        .collect();
    let mut clusters: BTreeMap<&str, Vec<(i64, f64)>> = BTreeMap::new();
    for (t, p) in points {
        for (label, _) in &p.clusters {
            clusters.entry(label.as_str()).or_default();
        }
        for (label, line) in clusters.iter_mut() {
            let share = p
                .clusters
                .iter()
                .find(|(l, _)| l == label)
                .map_or(0.0, |c| c.1);
            line.push((*t, share * 100.0));
        }
    }
    let mut ranked: Vec<(&str, Vec<(i64, f64)>)> = clusters.into_iter().collect();
    let peak = |l: &[(i64, f64)]| l.iter().map(|p| p.1).fold(0.0, f64::max);
    ranked.sort_by(|a, b| peak(&b.1).total_cmp(&peak(&a.1)).then(a.0.cmp(b.0)));
    ranked.truncate(PALETTE.len());
    let series: Vec<Series> = ranked
        .iter()
        .enumerate()
        .map(|(i, (name, line))| Series {
            color: PALETTE[i],
            name,
            points: line.as_slice(),
        })
        .collect();
    format!(
        "<h2>Largest position (% of equity)</h2>{}<h2>Exposure per cluster (% of equity)</h2>{}",
        line_chart(&largest, "#8e44ad", true, "largest position share"),
        chart(&series, false, "exposure per cluster")
    )
}

/// Horizontal bars of PnL per token.
pub fn pnl_bars(per_token: &BTreeMap<String, Decimal>) -> String {
    let row = 24.0;
    let (w, ml) = (900.0, 90.0);
    let h = row * per_token.len().max(1) as f64 + 10.0;
    let max = per_token
        .values()
        .map(|v| v.abs().to_f64().unwrap_or(0.0))
        .fold(0.0, f64::max)
        .max(1e-9);
    let mid = ml + (w - ml - 100.0) / 2.0;
    let half = (w - ml - 100.0) / 2.0;
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" role="img" aria-label="PnL per token">"#
    );
    let _ = write!(
        s,
        r##"<line x1="{mid}" x2="{mid}" y1="0" y2="{h}" stroke="#999"/>"##
    );
    for (i, (tok, pnl)) in per_token.iter().enumerate() {
        let v = pnl.to_f64().unwrap_or(0.0);
        let len = v.abs() / max * half;
        let yy = 5.0 + i as f64 * row;
        let (x0, color) = if v >= 0.0 {
            (mid, "#2a9d8f")
        } else {
            (mid - len, "#e76f51")
        };
        let _ = write!(
            s,
            r#"<text x="{}" y="{:.1}" font-size="12" text-anchor="end">{}</text><rect x="{x0:.1}" y="{yy:.1}" width="{len:.1}" height="{}" fill="{color}"/><text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#,
            ml - 6.0,
            yy + 15.0,
            escape(tok),
            row - 6.0,
            if v >= 0.0 { mid + len + 4.0 } else { mid + 4.0 },
            yy + 15.0,
            pnl.round_dp(2)
        );
    }
    s.push_str("</svg>");
    s
}

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map(|x| x.to_string())
        .unwrap_or_else(|| "null".into())
}
fn optf(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.4}"))
        .unwrap_or_else(|| "null".into())
}

pub fn render(r: &ReportInput) -> String {
    let curve: Vec<(i64, f64)> = r
        .curve
        .iter()
        .map(|(t, e)| (*t, e.to_f64().unwrap_or(0.0)))
        .collect();
    let mut per_token: BTreeMap<String, Decimal> = BTreeMap::new();
    for t in r.trades {
        *per_token.entry(t.token.clone()).or_default() += t.pnl;
    }
    let mut h = String::new();
    let _ = write!(
        h,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title><style>
body{{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#222;max-width:1100px}}
table{{border-collapse:collapse;font-size:13px;margin:8px 0 20px}}td,th{{border:1px solid #ddd;padding:3px 8px;text-align:right}}
th{{background:#f3f3f3}}td.l,th.l{{text-align:left}}h2{{margin-top:28px;border-bottom:1px solid #eee}}
pre{{background:#f7f7f7;padding:10px;font-size:12px;overflow:auto}}.note{{color:#666;font-size:13px}}
.neg{{color:#c0392b}}.pos{{color:#1e7d4f}}</style></head><body>
<h1>{title}</h1>
<p class="note">Backtest report generated by hypeflow. All times UTC. Numbers follow the definitions in the README ("Metrics").</p>"#,
        title = escape(r.title)
    );
    h.push_str("<h2>Metrics</h2><table><tr><th class=l>metric</th><th>value</th></tr>");
    for (k, v) in metric_rows(r.metrics) {
        let _ = write!(
            h,
            "<tr><td class=l>{}</td><td>{}</td></tr>",
            escape(k),
            escape(&v)
        );
    }
    h.push_str("</table>");
    let strategy = Series {
        color: "#264653",
        name: "strategy",
        points: &curve,
    };
    let benchmark = Series {
        color: "#e9c46a",
        name: "buy and hold (equal weight)",
        points: &r.benchmark.curve,
    };
    let lines = if r.benchmark.curve.is_empty() {
        vec![strategy]
    } else {
        vec![strategy, benchmark]
    };
    let _ = write!(
        h,
        "<h2>Equity</h2>{}<p class=note>Buy and hold: the initial equity split evenly over the {} tokens with \
         prices, each bought at its first bar's open and held, without costs (total return {}).</p>",
        chart(&lines, false, "equity curve"),
        r.benchmark.tokens,
        opt(&r.benchmark.total_return.map(|x| x.round_dp(4)))
    );
    let _ = write!(
        h,
        "<h2>Drawdown (%)</h2>{}",
        line_chart(&drawdown_pct(&curve), "#e76f51", true, "drawdown")
    );
    h.push_str(&monthly_table(r.curve));
    h.push_str(&rolling_sharpe_chart(r.curve, r.metrics.risk_free_rate));
    h.push_str(&exposure_charts(r.exposure));
    let _ = write!(h, "<h2>PnL per token</h2>{}", pnl_bars(&per_token));
    h.push_str(&super::report_tokens::token_sections(
        r.charts, r.trades, r.intents, r.fills,
    ));
    h.push_str(&super::report_tokens::attribution_table(r.authors));
    h.push_str(&signal_quality_table(&r.metrics.signal_quality));
    h.push_str("<h2>Run summary</h2><table>");
    text_rows(&mut h, r.summary);
    h.push_str("</table><h2>Fill conventions in force</h2><table>");
    text_rows(&mut h, r.conventions);
    let _ = write!(
        h,
        "</table><h2>Pipeline parameters</h2><pre>{}</pre>",
        escape(r.pipeline_toml)
    );
    trades_table(&mut h, r.trades);
    h.push_str("</table><script>");
    h.push_str(HOVER_SCRIPT);
    h.push_str("</script></body></html>\n");
    h
}

/// Each calendar month's return (UTC): its last equity over the previous month's last (the first month: over
/// the first equity point), one row per year, a column per month, and the year's compounded total.
fn monthly_returns(curve: &[(i64, Decimal)]) -> BTreeMap<i32, [Option<f64>; 12]> {
    use chrono::Datelike;
    let mut ends: BTreeMap<(i32, u32), f64> = BTreeMap::new();
    for (t, e) in curve {
        if let (Some(d), Some(v)) = (chrono::DateTime::from_timestamp_millis(*t), e.to_f64()) {
            ends.insert((d.year(), d.month0()), v);
        }
    }
    let mut out: BTreeMap<i32, [Option<f64>; 12]> = BTreeMap::new();
    let mut prev = curve.first().and_then(|(_, e)| e.to_f64());
    for ((y, m), v) in ends {
        if let Some(p) = prev.filter(|p| *p > 0.0) {
            out.entry(y).or_insert([None; 12])[m as usize] = Some(v / p - 1.0);
        }
        prev = Some(v);
    }
    out
}

fn pct_cell(v: Option<f64>) -> String {
    match v {
        Some(x) => format!(
            "<td class={}>{:.2}%</td>",
            if x < 0.0 { "neg" } else { "pos" },
            x * 100.0
        ),
        None => "<td></td>".into(),
    }
}

fn monthly_table(curve: &[(i64, Decimal)]) -> String {
    let months = monthly_returns(curve);
    let mut h = String::from("<h2>Monthly returns</h2><table><tr><th class=l>year</th>");
    for m in [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "year",
    ] {
        let _ = write!(h, "<th>{m}</th>");
    }
    h.push_str("</tr>");
    for (y, row) in &months {
        let _ = write!(h, "<tr><td class=l>{y}</td>");
        for v in row {
            h.push_str(&pct_cell(*v));
        }
        let year = row.iter().flatten().fold(None, |acc: Option<f64>, r| {
            Some(acc.unwrap_or(1.0) * (1.0 + r))
        });
        h.push_str(&pct_cell(year.map(|g| g - 1.0)));
        h.push_str("</tr>");
    }
    h.push_str("</table>");
    h
}

/// The Sharpe ratio of the last `window` daily returns at each day (the metric's definition: ddof 1, sqrt 365,
/// the annual risk-free rate compounded daily); 30 days, 7 when the run is shorter than 60 days.
fn rolling_sharpe(curve: &[(i64, Decimal)], rf_annual: f64) -> (usize, Vec<(i64, f64)>) {
    use crate::risk::metrics::{daily_series, day_returns, sharpe};
    let returns = day_returns(&daily_series(curve));
    let window = if returns.len() < 60 { 7 } else { 30 };
    let values: Vec<f64> = returns.iter().map(|(_, r)| *r).collect();
    let points = (window..=returns.len())
        .filter_map(|end| {
            let s = sharpe(&values[end - window..end], rf_annual)?;
            Some((returns[end - 1].0 * 86_400_000, s))
        })
        .collect();
    (window, points)
}

fn rolling_sharpe_chart(curve: &[(i64, Decimal)], rf_annual: f64) -> String {
    let (window, points) = rolling_sharpe(curve, rf_annual);
    if points.is_empty() {
        return format!("<h2>Rolling Sharpe ({window} days)</h2><p class=note>Fewer than {window} daily returns: no rolling value.</p>");
    }
    format!(
        "<h2>Rolling Sharpe ({window} days)</h2>{}",
        line_chart(&points, "#2a9d8f", false, "rolling Sharpe")
    )
}

/// Every signal onset judged at each horizon (metrics.json's `signal_quality`), traded or not.
fn signal_quality_table(rows: &[crate::risk::metrics::SignalQuality]) -> String {
    let mut h = String::from(
        "<h2>Signal quality</h2><p class=note>Every signal onset, traded or not, judged by the first bar close at or after each horizon (README, \"Metrics\").</p>\
         <table><tr><th class=l>horizon</th><th>judged</th><th>up</th><th>down</th><th>hit rate</th><th>false positives (up)</th><th>mean directional return</th></tr>",
    );
    for q in rows {
        let _ = write!(
            h,
            "<tr><td class=l>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&q.horizon),
            q.evaluated,
            q.up_signals,
            q.down_signals,
            optf(q.hit_rate),
            optf(q.false_positive_rate),
            optf(q.mean_directional_return)
        );
    }
    h.push_str("</table>");
    h
}

/// The drawdown below the running peak, in percent (0 or negative).
fn drawdown_pct(curve: &[(i64, f64)]) -> Vec<(i64, f64)> {
    let mut peak = f64::MIN;
    curve
        .iter()
        .map(|(t, e)| {
            peak = peak.max(*e);
            (
                *t,
                if peak > 0.0 {
                    -(1.0 - e / peak) * 100.0
                } else {
                    0.0
                },
            )
        })
        .collect()
}

fn metric_rows(m: &Metrics) -> Vec<(&'static str, String)> {
    vec![
        ("total_return", optf(m.total_return)),
        ("cagr", optf(m.cagr)),
        ("sharpe (daily, ddof=1, sqrt 365)", optf(m.sharpe)),
        ("sortino", optf(m.sortino)),
        ("calmar", optf(m.calmar)),
        ("max_drawdown", optf(m.max_drawdown)),
        (
            "max_drawdown peak / trough / recovery",
            format!(
                "{} / {} / {}",
                opt(&m.max_drawdown_start),
                opt(&m.max_drawdown_trough),
                opt(&m.max_drawdown_recovery)
            ),
        ),
        ("trades", m.trades.to_string()),
        ("win_rate", optf(m.win_rate)),
        ("profit_factor", optf(m.profit_factor)),
        ("expectancy", opt(&m.expectancy.map(|d| d.round_dp(4)))),
        ("avg_win", opt(&m.avg_win.map(|d| d.round_dp(4)))),
        ("avg_loss", opt(&m.avg_loss.map(|d| d.round_dp(4)))),
        ("payoff_ratio", optf(m.payoff_ratio)),
        ("exposure", optf(m.exposure)),
        ("turnover", optf(m.turnover)),
        ("max_position_share", optf(m.max_position_share)),
        ("start", opt(&m.start)),
        ("end", opt(&m.end)),
        (
            "initial / final equity",
            format!(
                "{} / {}",
                opt(&m.initial_equity.map(|d| d.round_dp(2))),
                opt(&m.final_equity.map(|d| d.round_dp(2)))
            ),
        ),
    ]
}

fn text_rows(h: &mut String, rows: &[(String, String)]) {
    for (k, v) in rows {
        let _ = write!(
            h,
            "<tr><td class=l>{}</td><td class=l>{}</td></tr>",
            escape(k),
            escape(v)
        );
    }
}

/// The trades table, left open for the caller to close.
/// A trade's exit reason, with its legs when it was sold in parts.
fn exit_text(t: &Trade) -> String {
    if t.legs.is_empty() {
        return t.exit_reason.clone();
    }
    let legs: Vec<String> = t
        .legs
        .iter()
        .map(|l| {
            format!(
                "{} x {} at {}",
                l.reason,
                l.quantity.round_dp(6),
                l.price.round_dp(6)
            )
        })
        .collect();
    format!(
        "{} ({} legs: {})",
        t.exit_reason,
        t.legs.len(),
        legs.join("; ")
    )
}

fn trades_table(h: &mut String, trades: &[Trade]) {
    let _ = write!(h, "<h2>Trades ({})</h2><table><tr><th class=l>token</th><th class=l>entry</th><th>entry price</th><th class=l>exit</th><th>exit price</th><th>quantity</th><th>fees</th><th>pnl</th><th>return</th><th class=l>exit reason</th></tr>", trades.len());
    for t in trades {
        let cls = if t.pnl > Decimal::ZERO {
            "pos"
        } else if t.pnl < Decimal::ZERO {
            "neg"
        } else {
            ""
        };
        let _ = write!(
            h,
            "<tr><td class=l>{}</td><td class=l>{}</td><td>{}</td><td class=l>{}</td><td>{}</td><td>{}</td><td>{}</td><td class={cls}>{}</td><td class={cls}>{:.4}%</td><td class=l>{}</td></tr>",
            escape(&t.token),
            to_rfc3339(t.entry_time),
            t.entry_price.round_dp(6),
            to_rfc3339(t.exit_time),
            t.exit_price.round_dp(6),
            t.quantity.round_dp(6),
            t.fees.round_dp(4),
            t.pnl.round_dp(4),
            (t.ret * Decimal::from(100)).to_f64().unwrap_or(0.0),
            escape(&exit_text(t))
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_sharpe_is_the_metric_over_each_window() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        let day = 86_400_000;
        let equity = [
            "100", "101", "100.5", "102", "103", "102.5", "104", "105", "104", "106",
        ];
        let curve: Vec<(i64, Decimal)> = equity
            .iter()
            .enumerate()
            .map(|(i, e)| (i as i64 * day, d(e)))
            .collect();
        let (window, points) = rolling_sharpe(&curve, 0.0);
        assert_eq!(window, 7);
        assert_eq!(
            points.len(),
            3,
            "9 daily returns: windows ending at days 7, 8, 9"
        );
        let rets = crate::risk::metrics::daily_returns(&curve);
        assert_eq!(
            points[0],
            (
                7 * day,
                crate::risk::metrics::sharpe(&rets[0..7], 0.0).unwrap()
            )
        );
        assert_eq!(points[2].0, 9 * day);
        assert!(rolling_sharpe_chart(&curve[..5], 0.0).contains("Fewer than 7 daily returns"));
    }

    #[test]
    fn monthly_returns_chain_month_ends() {
        let t = |s: &str| crate::model::time::parse_time(s).unwrap();
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        let curve = vec![
            (t("2025-01-05T00:00:00Z"), d("100")),
            (t("2025-01-31T23:00:00Z"), d("110")),
            (t("2025-02-10T00:00:00Z"), d("99")),
            (t("2025-04-01T00:00:00Z"), d("99")),
            (t("2026-01-01T00:00:00Z"), d("198")),
        ];
        let m = monthly_returns(&curve);
        let y25 = m[&2025];
        assert!((y25[0].unwrap() - 0.10).abs() < 1e-12);
        assert!((y25[1].unwrap() + 0.10).abs() < 1e-12);
        assert_eq!(
            (y25[2], y25[3]),
            (None, Some(0.0)),
            "no March point: April is over February's end"
        );
        assert!((m[&2026][0].unwrap() - 1.0).abs() < 1e-12);
        let html = monthly_table(&curve);
        assert!(html.contains("<td class=pos>10.00%</td><td class=neg>-10.00%</td><td></td><td class=pos>0.00%</td>"), "{html}");
        assert!(
            html.contains("<td class=neg>-1.00%</td></tr>"),
            "2025 compounds to 1.1 x 0.9 x 1.0 - 1: {html}"
        );
    }
}
