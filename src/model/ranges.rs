//! Range checks for configuration keys, shared by every configuration file (pipeline, venue, capital ladder,
//! price feeds): each refusal names the key, the value and the range, so a user fixes the file in one go.

use super::time::{format_duration_ms, Millis};
use super::Invalid;
use rust_decimal::Decimal;

/// A finite number within `[lo, hi]` (NaN and infinities are refused).
pub fn real(key: &str, v: f64, lo: f64, hi: f64) -> Result<(), Invalid> {
    if v.is_finite() && (lo..=hi).contains(&v) {
        return Ok(());
    }
    Err(Invalid(format!(
        "{key} is {v}: it must be a number from {lo} to {hi}"
    )))
}

pub fn count(key: &str, v: u64, lo: u64, hi: u64) -> Result<(), Invalid> {
    if (lo..=hi).contains(&v) {
        return Ok(());
    }
    Err(Invalid(format!(
        "{key} is {v}: it must be from {lo} to {hi}"
    )))
}

/// `lo` itself is allowed only when `lo_ok`.
pub fn dec(key: &str, v: Decimal, lo: Decimal, hi: Decimal, lo_ok: bool) -> Result<(), Invalid> {
    if (v > lo || (lo_ok && v == lo)) && v <= hi {
        return Ok(());
    }
    let low = if lo_ok { "from" } else { "above" };
    let high = if hi == Decimal::MAX {
        String::new()
    } else {
        format!(" up to {hi}")
    };
    Err(Invalid(format!(
        "{key} is {v}: it must be {low} {lo}{high}"
    )))
}

pub fn dur(key: &str, ms: Millis, lo: Millis, hi: Millis) -> Result<(), Invalid> {
    if (lo..=hi).contains(&ms) {
        return Ok(());
    }
    Err(Invalid(format!(
        "{key} is {}: it must be from {} to {}",
        format_duration_ms(ms),
        format_duration_ms(lo.max(0)),
        format_duration_ms(hi)
    )))
}

/// A 20-byte hex address as `0x` and 40 hex digits: a typo in an address would send money elsewhere, so a
/// malformed one stops the start.
pub fn address(key: &str, v: &str) -> Result<(), Invalid> {
    let hex = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X"));
    if hex.is_some_and(|h| h.len() == 40 && h.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Ok(());
    }
    Err(Invalid(format!(
        "{key} is {v:?}: it must be an address, 0x and 40 hex digits"
    )))
}

/// A name that is not blank and at most `max` characters.
pub fn name(key: &str, v: &str, max: usize) -> Result<(), Invalid> {
    if !v.trim().is_empty() && v.chars().count() <= max {
        return Ok(());
    }
    Err(Invalid(format!(
        "{key} is {v:?}: it must be a name of 1 to {max} characters"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_key_the_value_and_the_range() {
        assert!(real("k", f64::NAN, 0.0, 1.0)
            .unwrap_err()
            .0
            .contains("k is NaN"));
        assert!(count("k", 9, 1, 3).unwrap_err().0.contains("from 1 to 3"));
        let neg = dec(
            "k",
            Decimal::NEGATIVE_ONE,
            Decimal::ZERO,
            Decimal::ONE,
            true,
        );
        assert!(neg
            .unwrap_err()
            .0
            .contains("k is -1: it must be from 0 up to 1"));
        assert!(address("a", "0x6982508145454ce325ddbe47a25d4ec3d2311933").is_ok());
        for bad in [
            "",
            "0x12",
            "6982508145454ce325ddbe47a25d4ec3d2311933",
            "0x6982508145454ce325ddbe47a25d4ec3d231193g",
        ] {
            assert!(
                address("a", bad).unwrap_err().0.starts_with("a is "),
                "{bad}"
            );
        }
        assert!(name("q", " ", 10).is_err() && name("q", "USDC", 10).is_ok());
    }
}
