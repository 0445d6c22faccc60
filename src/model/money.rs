//! Exact money. Input files write prices as strings or JSON numbers; a number is read through its shortest
//! decimal spelling so `0.1` stays `0.1` instead of the binary float's 0.1000000000000000055...

use super::Invalid;
use rust_decimal::Decimal;
use serde::{de, Deserializer};
use std::fmt;
use std::str::FromStr;

pub fn parse_decimal(s: &str) -> Result<Decimal, Invalid> {
    let s = s.trim();
    Decimal::from_str(s)
        .or_else(|_| Decimal::from_scientific(s))
        .map_err(|_| Invalid(format!("not a decimal number: {s:?}")))
}

/// A money computation whose result a `Decimal` cannot hold (beyond about ±7.9 x 10^28, or a division by
/// zero). Records are held to ranges, but a book compounds them (a position bought at 10^-12 and marked at
/// 10^12 is worth 10^24 times its cost): the arithmetic of the book and the fills is checked, and an
/// overflow ends the run with this error instead of a panic or a wrong figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0} is beyond what a decimal holds (about 7.9e28)")]
pub struct Overflow(pub &'static str);

/// Checked money arithmetic that names what it computes, so an overflow says which figure left the range.
pub trait Exact: Sized {
    fn times(self, by: Decimal, what: &'static str) -> Result<Decimal, Overflow>;
    fn over(self, by: Decimal, what: &'static str) -> Result<Decimal, Overflow>;
    fn plus(self, other: Decimal, what: &'static str) -> Result<Decimal, Overflow>;
    fn minus(self, other: Decimal, what: &'static str) -> Result<Decimal, Overflow>;
}

impl Exact for Decimal {
    fn times(self, by: Decimal, what: &'static str) -> Result<Decimal, Overflow> {
        self.checked_mul(by).ok_or(Overflow(what))
    }
    fn over(self, by: Decimal, what: &'static str) -> Result<Decimal, Overflow> {
        self.checked_div(by).ok_or(Overflow(what))
    }
    fn plus(self, other: Decimal, what: &'static str) -> Result<Decimal, Overflow> {
        self.checked_add(other).ok_or(Overflow(what))
    }
    fn minus(self, other: Decimal, what: &'static str) -> Result<Decimal, Overflow> {
        self.checked_sub(other).ok_or(Overflow(what))
    }
}

/// The sum of `values`, checked.
pub fn sum_exact(
    values: impl IntoIterator<Item = Result<Decimal, Overflow>>,
    what: &'static str,
) -> Result<Decimal, Overflow> {
    values
        .into_iter()
        .try_fold(Decimal::ZERO, |acc, v| acc.plus(v?, what))
}

pub fn f64_to_decimal(v: f64) -> Option<Decimal> {
    if !v.is_finite() {
        return None;
    }
    parse_decimal(&format!("{v}")).ok()
}

pub fn lenient<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    if d.is_human_readable() {
        d.deserialize_any(DecVisitor)
    } else {
        // binary formats carry what `Decimal` itself serialized (its string form)
        <Decimal as serde::Deserialize>::deserialize(d)
    }
}

/// `lenient` for optional fields.
pub fn lenient_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    #[derive(serde::Deserialize)]
    struct W(#[serde(deserialize_with = "lenient")] Decimal);
    <Option<W> as serde::Deserialize>::deserialize(d).map(|o| o.map(|w| w.0))
}

/// `lenient` for map values.
pub fn lenient_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<std::collections::BTreeMap<String, Decimal>, D::Error> {
    #[derive(serde::Deserialize)]
    struct W(#[serde(deserialize_with = "lenient")] Decimal);
    <std::collections::BTreeMap<String, W> as serde::Deserialize>::deserialize(d)
        .map(|m| m.into_iter().map(|(k, w)| (k, w.0)).collect())
}

struct DecVisitor;
impl de::Visitor<'_> for DecVisitor {
    type Value = Decimal;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a decimal number or a string holding one")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Decimal, E> {
        Ok(Decimal::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Decimal, E> {
        Ok(Decimal::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Decimal, E> {
        f64_to_decimal(v).ok_or_else(|| E::custom(format!("not a finite number: {v}")))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Decimal, E> {
        parse_decimal(v).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn float_spelling_is_kept() {
        assert_eq!(f64_to_decimal(0.1).unwrap().to_string(), "0.1");
        assert_eq!(parse_decimal("1e-3").unwrap().to_string(), "0.001");
        assert!(f64_to_decimal(f64::NAN).is_none());
        assert!(parse_decimal("NaN").is_err());
    }
}
