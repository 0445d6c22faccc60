//! SVG charts for the report: a frame (axes, grid, time labels) that maps times and values onto the picture,
//! lines and areas through points, and the data the report's inline hover script reads off each chart.

use crate::model::time::to_rfc3339;
use std::fmt::Write;

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
pub const HOVER_SCRIPT: &str = r##"
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
    // the hover reads the points as drawn (already downsampled, so not thinned twice)
    let hovered: Vec<Series> = drawn
        .iter()
        .map(|(l, pts)| Series { points: pts, ..**l })
        .collect();
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

#[cfg(test)]
mod tests {
    use super::*;

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
