//! The report's per-token pictures (the price with each trade's entry, exit and protective levels, and the
//! token's sentiment and mention velocity under it on the same time axis: the picture that shows whether the
//! posts moved the price) and the influencer attribution table.

use super::attribution::{entry_fills, AuthorRow};
use super::svg::{escape, fmt_num, Axes, Series};
use crate::dataflow::token_chart::TokenChart;
use crate::model::time::to_rfc3339;
use crate::model::{Fill, OrderIntent, Trade};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

/// Tokens pictured at most; the others' trades are in the trades table.
pub const MAX_TOKENS: usize = 12;
/// Accounts listed at most in the attribution table.
pub const MAX_AUTHORS: usize = 50;

/// One trade as drawn: where it entered and left, and the protective levels its entry set.
struct Drawn<'a> {
    trade: &'a Trade,
    stop: Option<Decimal>,
    take: Option<Decimal>,
}

/// Each trade's levels from its entry intent's protection, applied to the entry fill's price.
fn levels<'a>(
    trades: &[&'a Trade],
    by_id: &HashMap<&str, &OrderIntent>,
    entries: &HashMap<(&str, i64), &Fill>,
) -> Vec<Drawn<'a>> {
    trades
        .iter()
        .map(|t| {
            let fill = entries.get(&(t.token.as_str(), t.entry_time));
            let p = fill.and_then(|f| {
                by_id
                    .get(f.intent_id.as_str())
                    .map(|i| (&i.protection, f.price))
            });
            Drawn {
                trade: t,
                stop: p
                    .and_then(|(p, price)| p.stop_loss.or(p.trailing_stop).map(|d| d.below(price))),
                take: p.and_then(|(p, price)| p.take_profit.map(|d| d.above(price))),
            }
        })
        .collect()
}

/// The tokens worth a picture: those traded most (then by name), or the first few when nothing traded.
fn chosen<'a>(charts: &'a [TokenChart], trades: &[Trade]) -> Vec<&'a TokenChart> {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for t in trades {
        *count.entry(t.token.as_str()).or_default() += 1;
    }
    let mut picked: Vec<&TokenChart> = charts
        .iter()
        .filter(|c| count.contains_key(c.token.as_str()))
        .collect();
    picked.sort_by(|a, b| {
        count[b.token.as_str()]
            .cmp(&count[a.token.as_str()])
            .then(a.token.cmp(&b.token))
    });
    if picked.is_empty() {
        picked = charts.iter().take(3).collect();
    }
    picked.truncate(MAX_TOKENS);
    picked
}

pub fn token_sections(
    charts: &[TokenChart],
    trades: &[Trade],
    intents: &[OrderIntent],
    fills: &[Fill],
) -> String {
    let picked = chosen(charts, trades);
    if picked.is_empty() {
        return String::new();
    }
    let mut h = String::from(
        "<h2>Per token</h2><p class=note>Closes with each bar bucket's high-low range; ▲ entry and ▼ exit \
         (green: the trade made money), dashed red: the stop the entry set (a trailing stop rises from there), dashed green: its take-profit \
         (hover a marker for the trade). Under each price: the sentiment score of the window current at each \
         close and the mention velocity (z against the token's own recent windows), on the same time axis.</p>",
    );
    let traded = trades
        .iter()
        .map(|t| t.token.as_str())
        .collect::<std::collections::BTreeSet<_>>();
    if traded.len() > picked.len() {
        let _ = write!(
            h,
            "<p class=note>{} of {} traded tokens pictured (most trades first); the rest are in the trades \
             table.</p>",
            picked.len(),
            traded.len()
        );
    }
    let by_id: HashMap<&str, &OrderIntent> = intents.iter().map(|i| (i.id.as_str(), i)).collect();
    let entries = entry_fills(fills);
    for c in picked {
        let own: Vec<&Trade> = trades.iter().filter(|t| t.token == c.token).collect();
        let drawn = levels(&own, &by_id, &entries);
        let _ = write!(
            h,
            "<h3 id=\"token-{0}\">{0}: {1} trades</h3>",
            escape(&c.token),
            own.len()
        );
        h.push_str(&price_chart(c, &drawn));
        if c.points.iter().any(|p| p.score.is_some()) {
            h.push_str(&sentiment_charts(c));
        }
    }
    h
}

fn price_chart(c: &TokenChart, drawn: &[Drawn]) -> String {
    let closes: Vec<(i64, f64)> = c.points.iter().map(|p| (p.end, p.close)).collect();
    let mut range: Vec<(i64, f64)> = c
        .points
        .iter()
        .flat_map(|p| [(p.start, p.low), (p.end, p.high)])
        .collect();
    let f = |d: Decimal| d.to_f64().unwrap_or(0.0);
    for d in drawn {
        for level in [d.stop, d.take].into_iter().flatten() {
            range.push((d.trade.entry_time, f(level)));
        }
    }
    let Some(ax) = Axes::over(280.0, &[&range], false) else {
        return String::new();
    };
    let line = Series {
        color: "#264653",
        name: "close",
        points: &closes,
    };
    let mut s = ax.frame(&format!("{} price", c.token), &[line]);
    // the high-low band: up along the highs, back along the lows
    let mut band = String::new();
    for (i, p) in c.points.iter().enumerate() {
        let _ = write!(
            band,
            "{}{:.1},{:.1}",
            if i == 0 { "M" } else { " L" },
            ax.x(p.end as f64),
            ax.y(p.high)
        );
    }
    for p in c.points.iter().rev() {
        let _ = write!(band, " L{:.1},{:.1}", ax.x(p.end as f64), ax.y(p.low));
    }
    let _ = write!(
        s,
        r##"<path d="{band} Z" fill="#264653" fill-opacity="0.12" stroke="none"/>"##
    );
    s.push_str(&ax.path(&closes, "#264653", false));
    for d in drawn {
        s.push_str(&trade_marks(&ax, d));
    }
    s.push_str("</svg>");
    s
}

/// A trade's protective levels (dashed, from entry to exit) and its two markers with their details.
fn trade_marks(ax: &Axes, d: &Drawn) -> String {
    let t = d.trade;
    let f = |d: Decimal| d.to_f64().unwrap_or(0.0);
    let (x0, x1) = (ax.x(t.entry_time as f64), ax.x(t.exit_time as f64));
    let mut s = String::new();
    for (level, color, class) in [(d.stop, "#c0392b", "stop"), (d.take, "#1e7d4f", "take")] {
        if let Some(l) = level {
            let y = ax.y(f(l));
            let _ = write!(
                s,
                r#"<line class="{class}" x1="{x0:.1}" x2="{x1:.1}" y1="{y:.1}" y2="{y:.1}" stroke="{color}" stroke-dasharray="4 3"/>"#
            );
        }
    }
    let color = if t.pnl > Decimal::ZERO {
        "#1e7d4f"
    } else {
        "#c0392b"
    };
    let stop = d.stop.map_or(String::new(), |l| {
        format!(", stop {}", l.round_dp(8).normalize())
    });
    let (ye, yx) = (ax.y(f(t.entry_price)), ax.y(f(t.exit_price)));
    let _ = write!(
        s,
        r#"<path class="entry" d="M{x0:.1},{:.1} l-5,9 h10 z" fill="{color}"><title>entry {} at {}{stop}</title></path><path class="exit" d="M{x1:.1},{:.1} l-5,-9 h10 z" fill="{color}"><title>exit {} at {} ({}), pnl {}</title></path>"#,
        ye - 1.0,
        to_rfc3339(t.entry_time),
        t.entry_price.round_dp(8).normalize(),
        yx + 1.0,
        to_rfc3339(t.exit_time),
        t.exit_price.round_dp(8).normalize(),
        escape(&t.exit_reason),
        t.pnl.round_dp(4)
    );
    s
}

/// The token's sentiment score (-1 to 1) and mention velocity, on the price chart's time axis.
fn sentiment_charts(c: &TokenChart) -> String {
    let (Some(first), Some(last)) = (c.points.first(), c.points.last()) else {
        return String::new();
    };
    let (t0, t1) = (first.start as f64, last.end as f64);
    let scores: Vec<(i64, f64)> = c
        .points
        .iter()
        .filter_map(|p| p.score.map(|s| (p.end, s)))
        .collect();
    let velocity: Vec<(i64, f64)> = c
        .points
        .iter()
        .filter_map(|p| p.velocity_z.map(|v| (p.end, v)))
        .collect();
    let score_ax = Axes {
        w: 900.0,
        h: 130.0,
        t0,
        t1,
        lo: -1.0,
        hi: 1.0,
    };
    let line = Series {
        color: "#8e44ad",
        name: "sentiment",
        points: &scores,
    };
    let mut s = score_ax.frame(&format!("{} sentiment score", c.token), &[line]);
    let zero = score_ax.y(0.0);
    let _ = write!(
        s,
        r##"<line x1="{}" x2="{}" y1="{zero:.1}" y2="{zero:.1}" stroke="#999"/>"##,
        Axes::ML,
        score_ax.w - Axes::MR
    );
    for p in &scores {
        let _ = write!(
            s,
            r##"<circle cx="{:.1}" cy="{:.1}" r="2" fill="#8e44ad"/>"##,
            score_ax.x(p.0 as f64),
            score_ax.y(p.1)
        );
    }
    s.push_str("</svg>");
    let hi = velocity.iter().map(|p| p.1).fold(1.0, f64::max);
    let lo = velocity.iter().map(|p| p.1).fold(0.0, f64::min);
    let vel_ax = Axes {
        h: 130.0,
        lo,
        hi,
        ..score_ax
    };
    let bars = Series {
        color: "#e76f51",
        name: "velocity z",
        points: &velocity,
    };
    s.push_str(&vel_ax.frame(&format!("{} mention velocity", c.token), &[bars]));
    let width = ((vel_ax.x(t1) - vel_ax.x(t0)) / c.points.len().max(1) as f64).max(1.0);
    for p in &velocity {
        let (y0, y1) = (vel_ax.y(0.0), vel_ax.y(p.1));
        let _ = write!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#e76f51"/>"##,
            vel_ax.x(p.0 as f64) - width,
            y0.min(y1),
            width,
            (y0 - y1).abs().max(0.5)
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="22" font-size="11">mention velocity (z), {} at most</text></svg>"#,
        Axes::ML + 8.0,
        fmt_num(hi)
    );
    s
}

/// The influencer attribution table: each account's entries, and the hit rate and profit of their trades.
pub fn attribution_table(rows: &[AuthorRow]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut h = String::from(
        "<h2>Influencer attribution</h2><p class=note>An entry counts for every account with a post in the \
         sentiment window that made it (so one trade can count for several). Trades: those entries' round \
         trips that closed; hit rate: the share that made money; PnL: their profit after costs.</p><table><tr>\
         <th class=l>account</th><th>entries</th><th>trades</th><th>hit rate</th><th>PnL</th>\
         <th class=l>tokens</th></tr>",
    );
    for r in rows.iter().take(MAX_AUTHORS) {
        let cls = if r.pnl > Decimal::ZERO {
            "pos"
        } else if r.pnl < Decimal::ZERO {
            "neg"
        } else {
            ""
        };
        let tokens: Vec<&str> = r.tokens.iter().map(String::as_str).collect();
        let _ = write!(
            h,
            "<tr><td class=l>{}</td><td>{}</td><td>{}</td><td>{}</td><td class={cls}>{}</td><td class=l>{}</td></tr>",
            escape(&r.author),
            r.entries,
            r.trades,
            r.hit_rate().map_or("-".into(), |x| format!("{:.1}%", x * 100.0)),
            r.pnl.round_dp(2),
            escape(&tokens.join(", "))
        );
    }
    h.push_str("</table>");
    if rows.len() > MAX_AUTHORS {
        let _ = write!(
            h,
            "<p class=note>{} more accounts in attribution.csv.</p>",
            rows.len() - MAX_AUTHORS
        );
    }
    h
}
