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
