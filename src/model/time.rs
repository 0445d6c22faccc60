//! Event time: milliseconds since the Unix epoch, UTC. Records carry the exact time; timely timestamps carry
//! a coarsened copy (see `dataflow::epoch`).

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{de, Deserializer, Serializer};
use std::fmt;

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type Millis = i64;

pub fn to_rfc3339(ms: Millis) -> String {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => format!("invalid-time({ms})"),
    }
}

pub fn parse_time(s: &str) -> Result<Millis, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return s
            .parse::<i64>()
            .map_err(|e| format!("bad millisecond timestamp {s:?}: {e}"));
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc).timestamp_millis())
        .map_err(|e| {
            format!(
                "bad time {s:?} (want RFC 3339 like 2024-01-31T12:00:00Z or ms since epoch): {e}"
            )
        })
}

/// Parses durations like `500ms`, `30s`, `5m`, `1h`, `2d`, `1w`.
pub fn parse_duration_ms(s: &str) -> Result<Millis, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: i64 = num.parse().map_err(|_| {
        format!("bad duration {s:?}: want a number and a unit (ms, s, m, h, d, w), e.g. 5m")
    })?;
    let mult = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => {
            return Err(format!(
                "bad duration unit in {s:?}: use ms, s, m, h, d or w"
            ))
        }
    };
    if n <= 0 {
        return Err(format!("duration {s:?} must be positive"));
    }
    Ok(n * mult)
}

/// As `parse_duration_ms`, but `0`, `0s`, `0ms` are allowed (for lateness and similar allowances).
pub fn parse_allowance_ms(s: &str) -> Result<Millis, String> {
    let t = s.trim();
    if t == "0"
        || t.trim_start_matches('0')
            .chars()
            .all(|c| c.is_ascii_alphabetic())
            && t.starts_with('0')
    {
        return Ok(0);
    }
    parse_duration_ms(t)
}

pub fn format_duration_ms(ms: Millis) -> String {
    for (unit, size) in [
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms % size == 0 && ms >= size {
            return format!("{}{}", ms / size, unit);
        }
    }
    format!("{ms}ms")
}

/// Serde helpers: written as RFC 3339, read from RFC 3339 or integer milliseconds.
pub mod rfc3339 {
    use super::*;

    pub fn serialize<S: Serializer>(ms: &Millis, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&to_rfc3339(*ms))
        } else {
            s.serialize_i64(*ms)
        }
    }

    /// Binary formats (timely's exchange between processes) carry plain milliseconds and cannot be asked to
    /// guess a type, so only text formats get the lenient reader.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Millis, D::Error> {
        if d.is_human_readable() {
            d.deserialize_any(TimeVisitor)
        } else {
            d.deserialize_i64(TimeVisitor)
        }
    }

    struct TimeVisitor;
    impl de::Visitor<'_> for TimeVisitor {
        type Value = Millis;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an RFC 3339 time or milliseconds since the epoch")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Millis, E> {
            Ok(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Millis, E> {
            i64::try_from(v).map_err(|_| E::custom("timestamp out of range"))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Millis, E> {
            parse_time(v).map_err(E::custom)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_time_forms() {
        assert_eq!(parse_time("1700000000000").unwrap(), 1_700_000_000_000);
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000_000
        );
        assert_eq!(
            parse_time("2023-11-14T23:13:20+01:00").unwrap(),
            1_700_000_000_000
        );
        assert!(parse_time("yesterday").is_err());
        assert_eq!(to_rfc3339(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("5m").unwrap(), 300_000);
        assert_eq!(parse_duration_ms("250ms").unwrap(), 250);
        assert_eq!(parse_duration_ms("1d").unwrap(), 86_400_000);
        assert!(parse_duration_ms("5").is_err());
        assert!(parse_duration_ms("0s").is_err());
        assert_eq!(format_duration_ms(300_000), "5m");
        assert_eq!(format_duration_ms(90_000), "90s");
    }
}
