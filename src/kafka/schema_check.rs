//! A checker for the subset of JSON Schema that `kafka/schemas/` uses (type, required, properties, enum), so
//! tests can prove that what hypeflow writes matches what it documents.

use serde_json::Value;

fn type_ok(kind: &str, v: &Value) -> bool {
    match kind {
        "object" => v.is_object(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "array" => v.is_array(),
        "boolean" => v.is_boolean(),
        _ => true,
    }
}

/// Problems found, as JSON-pointer-like paths with what was wrong; empty when the value conforms.
pub fn check(schema: &Value, value: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    walk(schema, value, "", &mut problems);
    problems
}

fn walk(schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    if let Some(kind) = schema.get("type").and_then(Value::as_str) {
        if !type_ok(kind, value) {
            out.push(format!("{path}: expected {kind}, got {value}"));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            out.push(format!("{path}: {value} is not one of {allowed:?}"));
        }
    }
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for r in required.iter().filter_map(Value::as_str) {
            if value.get(r).is_none() {
                out.push(format!("{path}/{r}: required but missing"));
            }
        }
    }
    if let (Some(props), Some(obj)) = (
        schema.get("properties").and_then(Value::as_object),
        value.as_object(),
    ) {
        for (k, v) in obj {
            match props.get(k) {
                Some(s) => walk(s, v, &format!("{path}/{k}"), out),
                None => out.push(format!("{path}/{k}: not in the schema")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check;
    use crate::kafka::{envelope, topics};
    use crate::model::{Fill, FillStatus, OrderIntent, PriceTick, Protection, Side, Tweet};
    use serde_json::Value;
    use std::path::Path;

    fn schema(name: &str) -> Value {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("kafka/schemas")
            .join(format!("{name}.json"));
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn conforms<T: serde::Serialize>(name: &str, data: &T) {
        let bytes = envelope::encode(name, data);
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            check(&schema("envelope"), &v),
            Vec::<String>::new(),
            "envelope of {name}"
        );
        assert_eq!(
            check(&schema(name), &v["data"]),
            Vec::<String>::new(),
            "{name}"
        );
    }

    #[test]
    fn every_topic_has_a_schema_file() {
        for t in topics::load(None).unwrap() {
            schema(&t.schema);
        }
    }

    #[test]
    fn what_hypeflow_writes_matches_the_schemas() {
        let d = |s: &str| s.parse().unwrap();
        let line = r#"{"id":"1","author_id":"9","author_handle":"a","followers":5,"text":"$AXL up","created_at":"2025-03-01T00:00:00Z","engagement":{"likes":1,"retweets":0,"replies":0,"quotes":0}}"#;
        conforms("tweet", &serde_json::from_str::<Tweet>(line).unwrap());
        conforms(
            "tick",
            &PriceTick {
                token: "AXL".into(),
                price: d("1.5"),
                volume: d("2"),
                source: "s".into(),
                event_time: 0,
            },
        );
        let intent = OrderIntent {
            id: "ab".into(),
            pipeline_id: "p".into(),
            token: "AXL".into(),
            side: Side::Buy,
            quantity: None,
            notional: Some(d("100")),
            reference_price: d("1"),
            max_slippage_bps: d("50"),
            protection: Protection {
                stop_loss: Some(crate::model::Distance::Fraction(d("0.05"))),
                ..Default::default()
            },
            reason: "r".into(),
            decision_time: 0,
            inputs_version: "1+x".into(),
            triggered: None,
        };
        conforms("intent", &intent);
        let fill = Fill {
            intent_id: "ab".into(),
            venue: "paper".into(),
            token: "AXL".into(),
            side: Side::Sell,
            quantity: d("1"),
            price: d("1"),
            fee: d("0.001"),
            gas: d("0"),
            tx_hash: None,
            status: FillStatus::Filled,
            reason: "stop_loss".into(),
            fill_time: 0,
            quoted_price: None,
        };
        conforms("fill", &fill);
        conforms(
            "reject",
            &Fill {
                status: FillStatus::Rejected,
                ..fill
            },
        );
        // and the checker does catch a wrong shape
        let bad: Value = serde_json::json!({"token": 5, "price": "1"});
        assert_eq!(check(&schema("tick"), &bad).len(), 2);
    }
}
