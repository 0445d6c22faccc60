//! Indicator conditions in signal rules (`[signal] entry_when` / `exit_when`): `rsi(14) < 70`,
//! `close > ema(50)`, `volume_z(20) >= 2`. Kept as their text in the pipeline file (and so in its
//! fingerprint); parsed once when the file is read, so a typo is a load error, not a silent no-op.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The longest look-back an indicator may take: a year of daily bars, ten weeks of hourly ones.
pub const MAX_PERIOD: usize = 2000;

/// A bar's own value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    Open,
    High,
    Low,
    Close,
    Volume,
}

/// An indicator over the token's bars; statistics, computed in `f64`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Indicator {
    Sma(usize),
    /// Seeded with the SMA of its first `n` closes, then `alpha = 2 / (n + 1)`.
    Ema(usize),
    /// Wilder's RSI: averages seeded with the mean of the first `n` changes, then smoothed by `1/n`.
    Rsi(usize),
    /// Wilder's average true range.
    Atr(usize),
    /// MACD line (EMA fast - EMA slow), its signal line (EMA of the line), and the histogram (line - signal).
    Macd(usize, usize, usize),
    MacdSignal(usize, usize, usize),
    MacdHist(usize, usize, usize),
    /// Bollinger bands: SMA(n) +/- k population standard deviations of the last n closes.
    BbUpper(usize, f64),
    BbLower(usize, f64),
    /// Volume-weighted average of the typical price (high + low + close) / 3 over the last n bars.
    Vwap(usize),
    /// (volume - mean) / population standard deviation over the last n bars' volumes (the current one
    /// included).
    VolumeZ(usize),
}

impl Eq for Indicator {}

impl std::hash::Hash for Indicator {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.to_string().hash(h)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Operand {
    Number(f64),
    Field(Field),
    Indicator(Indicator),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
        }
    }
    fn symbol(self) -> &'static str {
        match self {
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
        }
    }
}

/// `LEFT CMP RIGHT`, e.g. `rsi(14) < 70`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Condition {
    pub left: Operand,
    pub cmp: Cmp,
    pub right: Operand,
}

impl Operand {
    pub fn indicator(self) -> Option<Indicator> {
        match self {
            Operand::Indicator(i) => Some(i),
            _ => None,
        }
    }
}

impl Condition {
    /// The indicators this condition reads.
    pub fn indicators(&self) -> impl Iterator<Item = Indicator> + '_ {
        [self.left, self.right]
            .into_iter()
            .filter_map(Operand::indicator)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Open => "open",
            Field::High => "high",
            Field::Low => "low",
            Field::Close => "close",
            Field::Volume => "volume",
        })
    }
}

impl fmt::Display for Indicator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Indicator::Sma(n) => write!(f, "sma({n})"),
            Indicator::Ema(n) => write!(f, "ema({n})"),
            Indicator::Rsi(n) => write!(f, "rsi({n})"),
            Indicator::Atr(n) => write!(f, "atr({n})"),
            Indicator::Macd(a, b, c) => write!(f, "macd({a},{b},{c})"),
            Indicator::MacdSignal(a, b, c) => write!(f, "macd_signal({a},{b},{c})"),
            Indicator::MacdHist(a, b, c) => write!(f, "macd_hist({a},{b},{c})"),
            Indicator::BbUpper(n, k) => write!(f, "bb_upper({n},{k})"),
            Indicator::BbLower(n, k) => write!(f, "bb_lower({n},{k})"),
            Indicator::Vwap(n) => write!(f, "vwap({n})"),
            Indicator::VolumeZ(n) => write!(f, "volume_z({n})"),
        }
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Number(x) => write!(f, "{x}"),
            Operand::Field(x) => write!(f, "{x}"),
            Operand::Indicator(x) => write!(f, "{x}"),
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.left, self.cmp.symbol(), self.right)
    }
}

impl From<Condition> for String {
    fn from(c: Condition) -> String {
        c.to_string()
    }
}

impl TryFrom<String> for Condition {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl std::str::FromStr for Condition {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let shape = || {
            format!(
                "condition {text:?}: expected LEFT OP RIGHT with OP one of < <= > >= (e.g. \"rsi(14) < 70\", \"close > ema(50)\")"
            )
        };
        let at = text.find(['<', '>']).ok_or_else(shape)?;
        let (cmp, width) = match (&text[at..at + 1], text[at + 1..].starts_with('=')) {
            ("<", true) => (Cmp::Le, 2),
            ("<", false) => (Cmp::Lt, 1),
            (">", true) => (Cmp::Ge, 2),
            _ => (Cmp::Gt, 1),
        };
        let (left, right) = (&text[..at], &text[at + width..]);
        if right.contains(['<', '>', '=']) {
            return Err(shape());
        }
        let c = Condition {
            left: operand(left).map_err(|e| format!("condition {text:?}: {e}"))?,
            cmp,
            right: operand(right).map_err(|e| format!("condition {text:?}: {e}"))?,
        };
        if matches!((c.left, c.right), (Operand::Number(_), Operand::Number(_))) {
            return Err(format!(
                "condition {text:?} compares two numbers: it never changes"
            ));
        }
        Ok(c)
    }
}

const KNOWN: &str = "a number, open, high, low, close, volume, sma(n), ema(n), rsi(n), atr(n), \
macd(fast,slow,signal), macd_signal(fast,slow,signal), macd_hist(fast,slow,signal), bb_upper(n,k), \
bb_lower(n,k), vwap(n), volume_z(n)";

fn operand(text: &str) -> Result<Operand, String> {
    let t = text.trim();
    if let Ok(x) = t.parse::<f64>() {
        return if x.is_finite() && x.abs() <= 1e12 {
            Ok(Operand::Number(x))
        } else {
            Err(format!("{t} is not a number within +/-1e12"))
        };
    }
    let field = match t {
        "open" => Some(Field::Open),
        "high" => Some(Field::High),
        "low" => Some(Field::Low),
        "close" => Some(Field::Close),
        "volume" => Some(Field::Volume),
        _ => None,
    };
    if let Some(f) = field {
        return Ok(Operand::Field(f));
    }
    let (name, args) = t
        .strip_suffix(')')
        .and_then(|t| t.split_once('('))
        .ok_or_else(|| format!("{t:?} is not one of: {KNOWN}"))?;
    let args: Vec<&str> = args.split(',').map(str::trim).collect();
    indicator(name.trim(), &args).map(Operand::Indicator)
}

fn indicator(name: &str, args: &[&str]) -> Result<Indicator, String> {
    let want = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!("{name} takes {n} argument(s), got {}", args.len()))
        }
    };
    let period = |i: usize| -> Result<usize, String> {
        args[i]
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PERIOD).contains(n))
            .ok_or_else(|| {
                format!(
                    "{name}: period {:?} must be a whole number in 1-{MAX_PERIOD}",
                    args[i]
                )
            })
    };
    let macd = || -> Result<(usize, usize, usize), String> {
        want(3)?;
        let (f, s, g) = (period(0)?, period(1)?, period(2)?);
        if f >= s {
            return Err(format!(
                "{name}: the fast period ({f}) must be shorter than the slow one ({s})"
            ));
        }
        Ok((f, s, g))
    };
    let band = || -> Result<(usize, f64), String> {
        want(2)?;
        let k = args[1]
            .parse::<f64>()
            .ok()
            .filter(|k| *k > 0.0 && *k <= 10.0)
            .ok_or_else(|| format!("{name}: width {:?} must be a number in (0, 10]", args[1]))?;
        Ok((period(0)?, k))
    };
    Ok(match name {
        "sma" => want(1).and(period(0)).map(Indicator::Sma)?,
        "ema" => want(1).and(period(0)).map(Indicator::Ema)?,
        "rsi" => want(1).and(period(0)).map(Indicator::Rsi)?,
        "atr" => want(1).and(period(0)).map(Indicator::Atr)?,
        "vwap" => want(1).and(period(0)).map(Indicator::Vwap)?,
        "volume_z" => want(1)
            .and(period(0))
            .and_then(|n| {
                if n >= 2 {
                    Ok(n)
                } else {
                    Err("volume_z needs a period of at least 2".into())
                }
            })
            .map(Indicator::VolumeZ)?,
        "macd" => macd().map(|(f, s, g)| Indicator::Macd(f, s, g))?,
        "macd_signal" => macd().map(|(f, s, g)| Indicator::MacdSignal(f, s, g))?,
        "macd_hist" => macd().map(|(f, s, g)| Indicator::MacdHist(f, s, g))?,
        "bb_upper" => band().map(|(n, k)| Indicator::BbUpper(n, k))?,
        "bb_lower" => band().map(|(n, k)| Indicator::BbLower(n, k))?,
        other => return Err(format!("unknown indicator {other:?}; known: {KNOWN}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Condition, String> {
        s.parse()
    }

    #[test]
    fn conditions_parse_and_print_back() {
        for (text, printed) in [
            ("rsi(14) < 70", "rsi(14) < 70"),
            ("close>ema(50)", "close > ema(50)"),
            ("macd_hist( 12, 26 ,9 ) >= 0", "macd_hist(12,26,9) >= 0"),
            ("close <= bb_lower(20, 2.5)", "close <= bb_lower(20,2.5)"),
            ("volume_z(20) >= 2", "volume_z(20) >= 2"),
            ("vwap(24) < close", "vwap(24) < close"),
            ("atr(14) > 0.5", "atr(14) > 0.5"),
        ] {
            let c = p(text).unwrap();
            assert_eq!(c.to_string(), printed);
            assert_eq!(p(&c.to_string()).unwrap(), c, "{text} round-trips");
        }
        let c = p("rsi(14) < 70").unwrap();
        assert_eq!(
            (c.left, c.cmp, c.right),
            (
                Operand::Indicator(Indicator::Rsi(14)),
                Cmp::Lt,
                Operand::Number(70.0)
            )
        );
    }

    #[test]
    fn bad_conditions_say_what_is_wrong() {
        for (text, says) in [
            ("rsi(14)", "expected LEFT OP RIGHT"),
            ("rsi(14) = 70", "expected LEFT OP RIGHT"),
            ("rsi(0) < 70", "1-2000"),
            ("rsi(2001) < 70", "1-2000"),
            ("rsi(x) < 70", "whole number"),
            ("rsi(14, 2) < 70", "takes 1 argument"),
            ("macd(26,12,9) > 0", "shorter than the slow"),
            ("bb_upper(20, 0) > close", "(0, 10]"),
            ("foo(3) > 1", "unknown indicator"),
            ("closes > 1", "is not one of"),
            ("1 < 2", "two numbers"),
            ("close > 1e13", "within"),
            ("close > NaN", "within"),
            ("volume_z(1) > 2", "at least 2"),
            ("1 < close < 3", "expected LEFT OP RIGHT"),
        ] {
            let e = p(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
