//! Decimal amounts to token base units and back, through their decimal strings: exact, whatever the token's
//! decimals, and without the 28-digit limit of a Decimal on the integer side (a meme token's supply in base
//! units does not fit one).

use alloy::primitives::U256;
use rust_decimal::Decimal;
use std::str::FromStr;

/// `amount` whole tokens in base units, truncated below one unit; None for a negative amount.
pub fn to_base_units(amount: Decimal, decimals: u8) -> Option<U256> {
    if amount.is_sign_negative() {
        return None;
    }
    let s = amount.normalize().to_string();
    let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
    let d = decimals as usize;
    let mut digits = String::with_capacity(int.len() + d);
    digits.push_str(int);
    if frac.len() >= d {
        digits.push_str(&frac[..d]);
    } else {
        digits.push_str(frac);
        digits.extend(std::iter::repeat_n('0', d - frac.len()));
    }
    U256::from_str(&digits).ok()
}

/// Base units as a Decimal of whole tokens; when the integer part leaves too few of Decimal's 28 digits, the
/// smallest fractional digits are dropped (truncated), never the integer part.
pub fn from_base_units(units: U256, decimals: u8) -> Option<Decimal> {
    let s = units.to_string();
    let d = decimals as usize;
    let (int, frac) = if s.len() > d {
        (s[..s.len() - d].to_string(), s[s.len() - d..].to_string())
    } else {
        ("0".to_string(), format!("{}{s}", "0".repeat(d - s.len())))
    };
    let room = 28usize.saturating_sub(int.len());
    let frac = &frac[..frac.len().min(room)];
    let text = if frac.is_empty() {
        int
    } else {
        format!("{int}.{frac}")
    };
    Decimal::from_str(&text).ok().map(|d| d.normalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_round_trip_exactly() {
        let d = |s: &str| Decimal::from_str(s).unwrap();
        assert_eq!(to_base_units(d("1.5"), 6), Some(U256::from(1_500_000u64)));
        assert_eq!(
            to_base_units(d("0.0000001"), 6),
            Some(U256::ZERO),
            "below one unit"
        );
        assert_eq!(
            to_base_units(d("2000"), 18).unwrap().to_string(),
            "2000000000000000000000"
        );
        assert_eq!(to_base_units(d("-1"), 18), None);
        assert_eq!(from_base_units(U256::from(1_500_000u64), 6), Some(d("1.5")));
        assert_eq!(
            from_base_units(U256::from(5u8), 18),
            Some(d("0.000000000000000005"))
        );
        // 10^12 tokens of 18 decimals: 31 digits; the integer part stays whole
        let big = U256::from(10u8).pow(U256::from(30u8)) + U256::from(7u8);
        assert_eq!(from_base_units(big, 18), Some(d("1000000000000")));
    }
}
