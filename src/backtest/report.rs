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

pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

/// Shows the values under the pointer on every chart: a vertical rule and, for each series, the value of
/// its point nearest in time (from the chart's `data-hover`).
const HOVER_SCRIPT: &str = r##"
(function () {
  "use strict";
  var ns = "http://www.w3.org/2000/svg";
  function nearest(pts, t) {
    var lo = 0, hi = pts.length - 1;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (pts[mid][0] < t) lo = mid + 1; else hi = mid; }
    if (lo > 0 && Math.abs(pts[lo - 1][0] - t) <= Math.abs(pts[lo][0] - t)) lo -= 1;
    return pts[lo];
  }
  document.querySelectorAll("svg.hf-chart").forEach(function (svg) {
    var d = JSON.parse(svg.getAttribute("data-hover"));
    var series = d.series.filter(function (s) { return s.points.length > 0; });
    if (series.length === 0) return;
    var g = document.createElementNS(ns, "g");
    g.setAttribute("class", "hf-hover");
    g.style.display = "none";
    var rule = document.createElementNS(ns, "line");
    rule.setAttribute("y1", "10"); rule.setAttribute("y2", String(d.h - 30)); rule.setAttribute("stroke", "#888");
    var bg = document.createElementNS(ns, "rect");
    bg.setAttribute("fill", "#fff"); bg.setAttribute("fill-opacity", "0.9"); bg.setAttribute("stroke", "#ccc");
    var text = document.createElementNS(ns, "text");
    text.setAttribute("font-size", "11"); text.setAttribute("y", "26");
    g.appendChild(rule); g.appendChild(bg); g.appendChild(text);
    svg.appendChild(g);
    svg.addEventListener("mousemove", function (e) {
      var r = svg.getBoundingClientRect();
      var x = (e.clientX - r.left) / r.width * d.w;
      if (x < d.x0 || x > d.x1) { g.style.display = "none"; return; }
      var t = d.t0 + (x - d.x0) / (d.x1 - d.x0) * (d.t1 - d.t0);
      var first = nearest(series[0].points, t);
      var parts = [new Date(first[0]).toISOString().slice(0, 16).replace("T", " ")];
      series.forEach(function (s) { parts.push(s.name + " " + nearest(s.points, t)[1]); });
      text.textContent = parts.join("  \u00b7  ");
      var right = x > d.w / 2;
      text.setAttribute("x", String(right ? x - 8 : x + 8));
      text.setAttribute("text-anchor", right ? "end" : "start");
      rule.setAttribute("x1", String(x)); rule.setAttribute("x2", String(x));
      g.style.display = "";
      var b = text.getBBox();
      bg.setAttribute("x", String(b.x - 4)); bg.setAttribute("y", String(b.y - 2));
      bg.setAttribute("width", String(b.width + 8)); bg.setAttribute("height", String(b.height + 4));
    });
    svg.addEventListener("mouseleave", function () { g.style.display = "none"; });
  });
})();
"##;

/// Keeps first, min, max and last of each bucket so spikes and troughs survive downsampling.
pub(crate) fn downsample(points: &[(i64, f64)], max: usize) -> Vec<(i64, f64)> {
    if points.len() <= max {
        return points.to_vec();
    }
    let per = points.len().div_ceil(max / 4).max(1);
    let mut out = Vec::new();
    for chunk in points.chunks(per) {
        let mut picks = vec![0, chunk.len() - 1];
        let (mut lo, mut hi) = (0, 0);
        for (i, p) in chunk.iter().enumerate() {
            if p.1 < chunk[lo].1 {
                lo = i;
            }
            if p.1 > chunk[hi].1 {
                hi = i;
            }
        }
        picks.push(lo);
        picks.push(hi);
        picks.sort();
        picks.dedup();
        out.extend(picks.into_iter().map(|i| chunk[i]));
    }
    out
}

pub(crate) fn fmt_num(v: f64) -> String {
    if v.abs() >= 1e5 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.4}")
    }
}

/// A line (or filled area) chart of `points` as inline SVG.
pub fn line_chart(points: &[(i64, f64)], color: &str, fill: bool, label: &str) -> String {
    let one = Series {
        color,
        name: "",
        points,
    };
    chart(&[one], fill, label)
}

/// One line of a chart: its color, its name in the legend ("" for none) and its points.
#[derive(Clone, Copy)]
pub struct Series<'a> {
    pub color: &'a str,
    pub name: &'a str,
    pub points: &'a [(i64, f64)],
}

/// Colors of the lines of a chart with several series, in order.
const PALETTE: &[&str] = &[
    "#264653", "#e76f51", "#2a9d8f", "#e9c46a", "#8e44ad", "#f4a261", "#3d5a80", "#c0392b",
];

/// A chart's frame: its size, margins and the time and value ranges it maps onto them.
pub(crate) struct Axes {
    pub w: f64,
    pub h: f64,
    pub t0: f64,
    pub t1: f64,
    pub lo: f64,
    pub hi: f64,
}

impl Axes {
    pub const ML: f64 = 70.0;
    pub const MR: f64 = 10.0;
    pub const MT: f64 = 10.0;
    pub const MB: f64 = 30.0;

    /// Axes of width 900 and height `h` over the times and values of `series` (zero kept in range for areas).
    pub fn over(h: f64, series: &[&[(i64, f64)]], with_zero: bool) -> Option<Axes> {
        let all = || series.iter().flat_map(|p| p.iter());
        let t0 = all().map(|p| p.0).min()? as f64;
        let t1 = all().map(|p| p.0).max()? as f64;
        let (mut lo, mut hi) =
            all().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
        if with_zero {
            hi = hi.max(0.0);
            lo = lo.min(0.0);
        }
        if (hi - lo).abs() < 1e-12 {
            hi += 1.0;
            lo -= 1.0;
        }
        Some(Axes {
            w: 900.0,
            h,
            t0,
            t1,
            lo,
            hi,
        })
    }

    pub fn x(&self, t: f64) -> f64 {
        Self::ML + (t - self.t0) / (self.t1 - self.t0).max(1.0) * (self.w - Self::ML - Self::MR)
    }

    pub fn y(&self, v: f64) -> f64 {
        Self::MT + (self.hi - v) / (self.hi - self.lo) * (self.h - Self::MT - Self::MB)
    }

    /// The opening tag (with the values the hover script reads), the background, the value grid and the
    /// time labels.
    pub fn frame(&self, label: &str, hover: &[Series]) -> String {
        let (w, h, ml, mr, mt, mb) = (self.w, self.h, Self::ML, Self::MR, Self::MT, Self::MB);
        let mut s = String::new();
        let _ = write!(
            s,
            r##"<svg xmlns="http://www.w3.org/2000/svg" class="hf-chart" viewBox="0 0 {w} {h}" role="img" aria-label="{}" data-hover="{}"><rect x="{ml}" y="{mt}" width="{}" height="{}" fill="#fafafa" stroke="#ddd"/>"##,
            escape(label),
            escape(&self.hover_json(hover)),
            w - ml - mr,
            h - mt - mb
        );
        for k in 0..=4 {
            let v = self.lo + (self.hi - self.lo) * k as f64 / 4.0;
            let _ = write!(
                s,
                r##"<line x1="{ml}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e4e4e4"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
                w - mr,
                ml - 5.0,
                self.y(v) + 4.0,
                fmt_num(v),
                y = self.y(v)
            );
        }
        for k in 0..=3 {
            let t = self.t0 + (self.t1 - self.t0) * k as f64 / 3.0;
            let anchor = match k {
                0 => "start",
                3 => "end",
                _ => "middle",
            };
            let label = to_rfc3339(t as i64);
            let _ = write!(
                s,
                r#"<text x="{:.1}" y="{}" font-size="11" text-anchor="{anchor}">{}</text>"#,
                self.x(t),
                h - 8.0,
                &label[..16]
            );
        }
        s
    }

    /// What the hover script needs: the plot's horizontal extent in chart units, its time range and each
    /// series' points (at most 2000 a series).
    fn hover_json(&self, series: &[Series]) -> String {
        let lines: Vec<serde_json::Value> = series
            .iter()
            .map(|l| {
                let pts: Vec<serde_json::Value> = downsample(l.points, 2000)
                    .iter()
                    .map(|p| serde_json::json!([p.0, fmt_num(p.1)]))
                    .collect();
                serde_json::json!({"name": if l.name.is_empty() { "value" } else { l.name }, "color": l.color, "points": pts})
            })
            .collect();
        serde_json::json!({
            "x0": Self::ML, "x1": self.w - Self::MR, "w": self.w, "h": self.h,
            "t0": self.t0, "t1": self.t1, "series": lines
        })
        .to_string()
    }

    /// A line (or area down to zero) through `pts`.
    pub fn path(&self, pts: &[(i64, f64)], color: &str, fill: bool) -> String {
        let mut path = String::new();
        for (i, p) in pts.iter().enumerate() {
            let _ = write!(
                path,
                "{}{:.1},{:.1}",
                if i == 0 { "M" } else { " L" },
                self.x(p.0 as f64),
                self.y(p.1)
            );
        }
        match (fill, pts.first(), pts.last()) {
            (true, Some(first), Some(last)) => format!(
                r#"<path d="{path} L{:.1},{:.1} L{:.1},{:.1} Z" fill="{color}" fill-opacity="0.35" stroke="{color}"/>"#,
                self.x(last.0 as f64),
                self.y(0.0),
                self.x(first.0 as f64),
                self.y(0.0)
            ),
            _ => format!(r#"<path d="{path}" fill="none" stroke="{color}" stroke-width="1.5"/>"#),
        }
    }
}

/// Lines of several series (color, name, points) on shared axes, with a legend when they are named.
pub fn chart(series: &[Series], fill: bool, label: &str) -> String {
    let drawn: Vec<(&Series, Vec<(i64, f64)>)> = series
        .iter()
        .filter(|l| l.points.len() >= 2)
        .map(|l| (l, downsample(l.points, 2000)))
        .collect();
    let pts: Vec<&[(i64, f64)]> = drawn.iter().map(|(_, p)| p.as_slice()).collect();
    let Some(ax) = Axes::over(260.0, &pts, fill) else {
        return format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 900 60" role="img" aria-label="{}"><text x="20" y="40">not enough points</text></svg>"#,
            escape(label)
        );
    };
    let hovered: Vec<Series> = drawn.iter().map(|(l, _)| **l).collect();
    let mut s = ax.frame(label, &hovered);
    for (n, (line, pts)) in drawn.iter().enumerate() {
        s.push_str(&ax.path(pts, line.color, fill));
        if !line.name.is_empty() {
            let _ = write!(
                s,
                r#"<text x="{:.1}" y="{:.1}" font-size="11" fill="{}">{}</text>"#,
                Axes::ML + 8.0,
                Axes::MT + 14.0 + 13.0 * n as f64,
                line.color,
                escape(line.name)
            );
        }
    }
    s.push_str("</svg>");
    s
}

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

    #[test]
    fn escapes_and_keeps_extremes_when_downsampling() {
        assert_eq!(escape("<a&'\">"), "&lt;a&amp;&#39;&quot;&gt;");
        let mut pts: Vec<(i64, f64)> = (0..10_000).map(|i| (i, 1.0)).collect();
        pts[5_000].1 = -50.0;
        let d = downsample(&pts, 400);
        assert!(d.len() <= 2_000);
        assert!(d.iter().any(|p| p.1 == -50.0), "trough must survive");
        let svg = line_chart(&pts, "#000", false, "x");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }
}
