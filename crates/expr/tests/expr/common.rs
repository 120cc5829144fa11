//! Shorthand for values in tests: plain JSON maps onto DynamoDB types (string → S,
//! number → N, bool → BOOL, null → NULL, array → L, object → M), except one-key objects
//! `{"$b": base64}`, `{"$n": "exact number"}`, `{"$ss": [..]}`, `{"$ns": ["1", ..]}`, `{"$bs": [base64, ..]}`.

use meridian_expr::Attrs;
use meridian_model::value::av_from_json;
use meridian_model::{ApiError, AttributeValue, Item, Number};
use serde_json::{Value, json};
use std::collections::HashMap;

pub fn v(j: &Value) -> AttributeValue {
    match j {
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Number(n) => AttributeValue::N(Number::parse(&n.to_string()).expect("number")),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Null => AttributeValue::Null,
        Value::Array(a) => AttributeValue::L(a.iter().map(v).collect()),
        Value::Object(o) => {
            if o.len() == 1 {
                let (k, inner) = o.iter().next().expect("one");
                let tag = match k.as_str() {
                    "$b" => Some("B"),
                    "$n" => Some("N"),
                    "$ss" => Some("SS"),
                    "$ns" => Some("NS"),
                    "$bs" => Some("BS"),
                    _ => None,
                };
                if let Some(tag) = tag {
                    return av_from_json(&json!({ tag: inner })).expect("typed value");
                }
            }
            AttributeValue::M(o.iter().map(|(k, x)| (k.clone(), v(x))).collect())
        }
    }
}

pub fn item(j: &Value) -> Item {
    match v(j) {
        AttributeValue::M(m) => m,
        other => panic!("not a map: {other:?}"),
    }
}

pub fn values(j: &Value) -> HashMap<String, AttributeValue> {
    item(j).into_iter().collect()
}

pub fn names(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

pub fn msg(e: ApiError) -> String {
    match e {
        ApiError::Validation(m) => m,
        other => panic!("not a validation error: {other:?}"),
    }
}

/// Owns a request's maps so `Attrs` can borrow them.
pub struct Req {
    pub names: Option<HashMap<String, String>>,
    pub values: Option<HashMap<String, AttributeValue>>,
}

impl Req {
    pub fn new(n: &[(&str, &str)], vals: &Value) -> Req {
        Req {
            names: (!n.is_empty()).then(|| names(n)),
            values: vals
                .as_object()
                .filter(|o| !o.is_empty())
                .map(|_| values(vals)),
        }
    }

    pub fn attrs(&self) -> Attrs<'_> {
        Attrs::new(self.names.as_ref(), self.values.as_ref())
    }
}

/// The item most evaluation tests run against.
pub fn fixture() -> Item {
    item(&json!({
        "pk": "p1",
        "s": "hello",
        "e": "",
        "u": "héllo",
        "n": 5,
        "neg": -2.5,
        "b": {"$b": "AQID"},
        "t": true,
        "f": false,
        "z": null,
        "l": [1, "x", {"m": 2}, [3, 4]],
        "el": [],
        "m": {"a": {"b": [10, 20]}, "k": "v", "n": 7},
        "em": {},
        "ss": {"$ss": ["a", "b"]},
        "ns": {"$ns": ["1", "2.5"]},
        "bs": {"$bs": ["AQ==", "Ag=="]},
        "dot.name": "dotted",
        "status": "active"
    }))
}
