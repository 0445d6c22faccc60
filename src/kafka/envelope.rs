//! Message values: `{"schema": NAME, "v": VERSION, "data": {...}}`. The version lets a consumer refuse (and
//! dead-letter) a shape it does not understand instead of misreading it.

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
pub fn decode<'a, T: Deserialize<'a>>(schema: &str, bytes: &'a [u8]) -> Result<T, String> {
    let m: In<'a, T> =
        serde_json::from_slice(bytes).map_err(|e| format!("not a valid {schema} envelope: {e}"))?;
    if m.schema != schema {
        return Err(format!(
            "schema {:?} where {schema:?} was expected",
            m.schema
        ));
    }
    if m.v != VERSION {
        return Err(format!(
            "schema version {} of {schema} is not supported (this build reads {VERSION})",
            m.v
        ));
    }
    Ok(m.data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PriceTick;

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
            .contains("schema"));
        let v2 = String::from_utf8(b).unwrap().replace("\"v\":1", "\"v\":2");
        assert!(decode::<PriceTick>("tick", v2.as_bytes())
            .unwrap_err()
            .contains("version 2"));
        assert!(decode::<PriceTick>("tick", b"{oops").is_err());
    }
}
