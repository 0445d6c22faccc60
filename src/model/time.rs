//! Event time: milliseconds since the Unix epoch, UTC. Records carry the exact time; timely timestamps carry
//! a coarsened copy (see `dataflow::epoch`).

use super::Invalid;
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

pub fn parse_time(s: &str) -> Result<Millis, Invalid> {
    let s = s.trim();
    // Every record on the topics carries this form; chrono's general parser below cost a tenth of the
    // Kafka source's time.
    if let Some(ms) = parse_utc_fast(s.as_bytes()) {
        return Ok(ms);
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return s
            .parse::<i64>()
            .map_err(|e| Invalid(format!("bad millisecond timestamp {s:?}: {e}")));
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc).timestamp_millis())
        .map_err(|e| {
            Invalid(format!(
                "bad time {s:?} (want RFC 3339 like 2024-01-31T12:00:00Z or ms since epoch): {e}"
            ))
        })
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (what `to_rfc3339` writes), or None for anything else, including a
/// leap second and out-of-range fields, which the general parser then judges. The fraction is truncated to
/// milliseconds, as chrono does.
fn parse_utc_fast(b: &[u8]) -> Option<Millis> {
    if b.len() < 20 || !matches!(b[b.len() - 1], b'Z' | b'z') || !matches!(b[10], b'T' | b't') {
        return None;
    }
    if b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        b[r].iter().try_fold(0i64, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
        })
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut millis = 0;
    let rest = &b[19..b.len() - 1];
    if !rest.is_empty() {
        let digits = rest.strip_prefix(b".")?;
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        for i in 0..3 {
            millis = millis * 10 + digits.get(i).map_or(0, |d| i64::from(d - b'0'));
        }
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > month_days || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    Some(
        ((days_since_epoch(year, month, day) * 24 + hour) * 60 + minute) * 60_000
            + second * 1_000
            + millis,
    )
}

/// Days from 1970-01-01 to a proleptic Gregorian date: count in 400-year eras of 146,097 days, with years
/// starting in March so the leap day falls at the end of one.
fn days_since_epoch(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Parses durations like `500ms`, `30s`, `5m`, `1h`, `2d`, `1w`.
pub fn parse_duration_ms(s: &str) -> Result<Millis, Invalid> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: i64 = num.parse().map_err(|_| {
        Invalid(format!(
            "bad duration {s:?}: want a number and a unit (ms, s, m, h, d, w), e.g. 5m"
        ))
    })?;
    let mult = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => {
            return Err(Invalid(format!(
                "bad duration unit in {s:?}: use ms, s, m, h, d or w"
            )))
        }
    };
    if n <= 0 {
        return Err(Invalid(format!("duration {s:?} must be positive")));
    }
    n.checked_mul(mult).ok_or_else(|| {
        Invalid(format!(
            "duration {s:?} is too long: write at most 52 weeks' worth"
        ))
    })
}

/// As `parse_duration_ms`, but `0`, `0s`, `0ms` are allowed (for lateness and similar allowances).
pub fn parse_allowance_ms(s: &str) -> Result<Millis, Invalid> {
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

/// The largest whole unit, days at most: a week reads as `7d`, as traders write horizons and windows
/// (`1w` is still parsed).
pub fn format_duration_ms(ms: Millis) -> String {
    for (unit, size) in [
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

/// A length of time as the user wrote it (`5m`, `24h`), parsed once when its file is read: the code reads
/// `ms()`, and the file's text is kept because the pipeline's fingerprint (and so every intent id) is taken
/// over what the user wrote, so reading "24h" must not come back as "1d".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    ms: Millis,
    text: String,
}

impl Span {
    /// A positive duration (`parse_duration_ms`).
    pub fn parse(text: &str) -> Result<Span, Invalid> {
        Ok(Span {
            ms: parse_duration_ms(text)?,
            text: text.to_string(),
        })
    }
    /// A duration that may also be zero (`parse_allowance_ms`), for allowances such as lateness.
    pub fn parse_allowance(text: &str) -> Result<Span, Invalid> {
        Ok(Span {
            ms: parse_allowance_ms(text)?,
            text: text.to_string(),
        })
    }
    pub fn ms(&self) -> Millis {
        self.ms
    }
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl serde::Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        Span::parse(&text).map_err(de::Error::custom)
    }
}

/// Serde adapters for spans that are not plain positive durations.
pub mod span {
    use super::*;

    /// A span that may be zero: `#[serde(deserialize_with = "span::allowance")]`.
    pub fn allowance<'de, D: Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        Span::parse_allowance(&text).map_err(de::Error::custom)
    }

    /// An optional span written as `""` when absent: `#[serde(default, with = "span::blank_is_none")]`.
    pub mod blank_is_none {
        use super::*;

        pub fn serialize<S: Serializer>(v: &Option<Span>, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(v.as_ref().map_or("", Span::text))
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Span>, D::Error> {
            let text = <String as serde::Deserialize>::deserialize(d)?;
            if text.is_empty() {
                return Ok(None);
            }
            Span::parse(&text).map(Some).map_err(de::Error::custom)
        }
    }
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
    fn the_fast_path_agrees_with_chrono() {
        let chrono_ms = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|t| t.timestamp_millis())
        };
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // 1600-01-01 .. 2400-01-01
            let ms = (x % 25_246_080_000_000) as i64 - 11_676_096_000_000;
            let t = to_rfc3339(ms);
            for text in [
                t.clone(),
                format!("{}Z", &t[..19]),
                t.replace('Z', "987654Z"),
            ] {
                assert_eq!(parse_utc_fast(text.as_bytes()), chrono_ms(&text), "{text}");
            }
        }
        for text in [
            "2024-02-29T23:59:59Z",
            "2024-02-29T23:59:59.999999999Z",
            "2000-02-29T00:00:00.5z",
            "1970-01-01t00:00:00Z",
            "1969-12-31T23:59:59.001Z",
            "2024-12-31T23:59:59.9Z",
        ] {
            assert_eq!(parse_utc_fast(text.as_bytes()), chrono_ms(text), "{text}");
        }
        for not_fast in [
            "2023-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-04-31T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:60:00Z",
            "2016-12-31T23:59:60Z",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00+00:00",
            "2024-01-01 00:00:00Z",
            "2024-1-01T00:00:00Z",
            "+024-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_utc_fast(not_fast.as_bytes()), None, "{not_fast}");
        }
        // what the fast path leaves still parses (or fails) as before
        assert_eq!(
            parse_time("2024-01-01T01:00:00+01:00").unwrap(),
            chrono_ms("2024-01-01T00:00:00Z").unwrap()
        );
        assert!(parse_time("2023-02-29T00:00:00Z").is_err());
    }

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
        assert_eq!(format_duration_ms(7 * 86_400_000), "7d");
        assert_eq!(format_duration_ms(parse_duration_ms("2w").unwrap()), "14d");
    }

    #[test]
    fn spans_keep_the_text_they_were_read_from() {
        #[derive(serde::Serialize, serde::Deserialize)]
        struct T {
            every: Span,
            #[serde(deserialize_with = "span::allowance")]
            late: Span,
            #[serde(default, with = "span::blank_is_none")]
            stop: Option<Span>,
        }
        let t: T = serde_json::from_str(r#"{"every":"24h","late":"0s","stop":""}"#).unwrap();
        assert_eq!(
            (t.every.ms(), t.late.ms(), t.stop.clone()),
            (86_400_000, 0, None)
        );
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#"{"every":"24h","late":"0s","stop":""}"#
        );
        let t: T = serde_json::from_str(r#"{"every":"5m","late":"1s"}"#).unwrap();
        assert_eq!(t.stop, None);
        let err = serde_json::from_str::<T>(r#"{"every":"0s","late":"0s"}"#)
            .err()
            .unwrap();
        assert!(err.to_string().contains("must be positive"), "{err}");
        let err = serde_json::from_str::<T>(r#"{"every":"9999999999999999w","late":"0s"}"#)
            .err()
            .unwrap();
        assert!(err.to_string().contains("too long"), "{err}");
    }
}
