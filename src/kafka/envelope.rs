//! Message values: `{"schema": NAME, "v": VERSION, "data": {...}}`. The version lets a consumer refuse (and
//! dead-letter) a shape it does not understand instead of misreading it.

use crate::model::money::parse_decimal;
use crate::model::time::parse_time;
use crate::model::{Invalid, PriceTickRef};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

pub const VERSION: u32 = 1;

#[derive(Serialize)]
struct Out<'a, T> {
    schema: &'a str,
    v: u32,
    data: &'a T,
}

/// Read in place: the schema name is only compared, never kept.
#[derive(Deserialize)]
struct In<'a, T> {
    #[serde(borrow)]
    schema: Cow<'a, str>,
    v: u32,
    data: T,
}

pub fn encode<T: Serialize>(schema: &str, data: &T) -> Vec<u8> {
    serde_json::to_vec(&Out {
        schema,
        v: VERSION,
        data,
    })
    .unwrap_or_default()
}

/// Decodes a value of the expected schema; the error says what was wrong, for the dead-letter reason. `T` may
/// borrow from `bytes` (the Kafka source reads ticks that way).
pub fn decode<'a, T: Deserialize<'a>>(schema: &str, bytes: &'a [u8]) -> Result<T, Invalid> {
    let m: In<'a, T> = serde_json::from_slice(bytes)
        .map_err(|e| Invalid(format!("not a valid {schema} envelope: {e}")))?;
    if m.schema != schema {
        return Err(Invalid(format!(
            "schema {:?} where {schema:?} was expected",
            m.schema
        )));
    }
    if m.v != VERSION {
        return Err(Invalid(format!(
            "schema version {} of {schema} is not supported (this build reads {VERSION})",
            m.v
        )));
    }
    Ok(m.data)
}

/// Reads a tick laid out exactly as [`encode`] writes one (`{"schema":"tick","v":1,"data":{"token":..,
/// "price":..,"volume":..,"source":..,"event_time":..}}`, every value a printable-ASCII string without escapes)
/// by matching that layout byte for byte; None for anything else, which the caller then gives to [`decode`].
/// The values go through the same parsers as in `decode`, so an accepted record reads the same either way.
/// Ticks are nine records in ten on the topics, and the general parser's per-key work was a fifth of the
/// Kafka source's time.
pub fn decode_tick_canonical(b: &[u8]) -> Option<PriceTickRef<'_>> {
    const _: () = assert!(
        VERSION == 1,
        "the canonical tick layout below spells out version 1"
    );
    let mut r = Layout { b, at: 0 };
    r.literal(br#"{"schema":"tick","v":1,"data":{"token":""#)?;
    let token = r.plain()?;
    r.literal(br#"","price":""#)?;
    let price = r.plain()?;
    r.literal(br#"","volume":""#)?;
    let volume = r.plain()?;
    r.literal(br#"","source":""#)?;
    let source = r.plain()?;
    r.literal(br#"","event_time":""#)?;
    let time = r.plain()?;
    r.literal(br#""}}"#)?;
    if r.at != b.len() {
        return None;
    }
    Some(PriceTickRef {
        token: Cow::Borrowed(token),
        price: parse_decimal(price).ok()?,
        volume: parse_decimal(volume).ok()?,
        source: Cow::Borrowed(source),
        event_time: parse_time(time).ok()?,
    })
}

struct Layout<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Layout<'a> {
    fn literal(&mut self, l: &[u8]) -> Option<()> {
        let end = self.at.checked_add(l.len())?;
        (self.b.get(self.at..end)? == l).then(|| self.at = end)
    }

    /// A string's contents up to (not including) its closing quote: printable ASCII, no escapes.
    fn plain(&mut self) -> Option<&'a str> {
        let rest = self.b.get(self.at..)?;
        let len = rest.iter().position(|&c| c == b'"')?;
        let text = &rest[..len];
        if !text
            .iter()
            .all(|&c| (0x20..0x7f).contains(&c) && c != b'\\')
        {
            return None;
        }
        self.at += len;
        std::str::from_utf8(text).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PriceTick;
    use rust_decimal::Decimal;

    fn fields(t: &PriceTickRef) -> (String, String, String, String, i64) {
        (
            t.token.to_string(),
            t.price.to_string(),
            t.volume.to_string(),
            t.source.to_string(),
            t.event_time,
        )
    }

    /// Whatever the layout reader accepts, the general decoder reads the same.
    fn agrees(bytes: &[u8]) -> bool {
        match decode_tick_canonical(bytes) {
            None => true,
            Some(fast) => decode::<PriceTickRef>("tick", bytes)
                .is_ok_and(|slow| fields(&fast) == fields(&slow)),
        }
    }

    #[test]
    fn the_tick_layout_reader_agrees_with_the_decoder() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let sources = [
            "bench",
            "coingecko",
            "dexscreener:pair",
            "",
            "crème",
            "a\"b",
        ];
        for i in 0..3_000 {
            let t = PriceTick {
                token: format!("T{}", next() % 50),
                price: Decimal::new((next() % 10_000_000_000) as i64 + 1, (next() % 12) as u32),
                volume: Decimal::new((next() % 1_000_000) as i64, (next() % 6) as u32),
                source: sources[i % sources.len()].to_string(),
                event_time: (next() % 4_000_000_000_000) as i64,
            };
            let b = encode("tick", &t);
            let slow: PriceTickRef = decode("tick", &b).unwrap();
            match decode_tick_canonical(&b) {
                Some(fast) => assert_eq!(fields(&fast), fields(&slow)),
                // only a source needing escapes or outside ASCII leaves the fast path
                None => assert!(!t.source.is_ascii() || t.source.contains('"'), "{t:?}"),
            }
            if i < 200 {
                for cut in 0..b.len() {
                    assert!(decode_tick_canonical(&b[..cut]).is_none());
                }
                for at in 0..b.len() {
                    for by in [b' ', b'"', b'\\', b'0', b'9', b'.', b'x', b'}', 0xC3, 0x00] {
                        let mut m = b.clone();
                        m[at] = by;
                        assert!(agrees(&m), "{}", String::from_utf8_lossy(&m));
                    }
                }
            }
        }
        for other in [
            r#"{"schema":"tick","v":1,"data":{"price":"1","token":"A","volume":"1","source":"s","event_time":"2024-01-01T00:00:00Z"}}"#,
            r#"{"schema":"tick", "v":1,"data":{"token":"A","price":"1","volume":"1","source":"s","event_time":"2024-01-01T00:00:00Z"}}"#,
            r#"{"schema":"tick","v":2,"data":{"token":"A","price":"1","volume":"1","source":"s","event_time":"2024-01-01T00:00:00Z"}}"#,
            r#"{"schema":"tick","v":1,"data":{"token":"A","price":1,"volume":"1","source":"s","event_time":"2024-01-01T00:00:00Z"}}"#,
            r#"{"schema":"tick","v":1,"data":{"token":"A","price":"x","volume":"1","source":"s","event_time":"2024-01-01T00:00:00Z"}}"#,
            r#"{"schema":"tick","v":1,"data":{"token":"A","price":"1","volume":"1","source":"s","event_time":"2024-01-01T00:00:00Z"}} "#,
            r#"{"schema":"tick","v":1,"data":{"token":"A\u0042","price":"1","volume":"1","source":"s","event_time":"2024-01-01T00:00:00Z"}}"#,
        ] {
            assert!(decode_tick_canonical(other.as_bytes()).is_none(), "{other}");
        }
    }

    #[test]
    fn round_trip_and_refusals() {
        let t = PriceTick {
            token: "AXL".into(),
            price: "1.5".parse().unwrap(),
            volume: Default::default(),
            source: "x".into(),
            event_time: 5,
        };
        let b = encode("tick", &t);
        assert_eq!(decode::<PriceTick>("tick", &b).unwrap(), t);
        assert!(decode::<PriceTick>("tweet", &b)
            .unwrap_err()
            .0
            .contains("schema"));
        let v2 = String::from_utf8(b).unwrap().replace("\"v\":1", "\"v\":2");
        assert!(decode::<PriceTick>("tick", v2.as_bytes())
            .unwrap_err()
            .0
            .contains("version 2"));
        assert!(decode::<PriceTick>("tick", b"{oops").is_err());
    }
}
