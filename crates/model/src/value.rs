//! Attribute values and items, and their DynamoDB JSON form (`{"S": "x"}`, `{"N": "1"}`, …).
//!
//! Sets are kept sorted and maps ordered, so one item has exactly one representation in memory,
//! on disk and on the wire: two regions holding the same item hold the same bytes.

use crate::error::ApiError;
use crate::number::Number;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// An item: attribute name → value.
pub type Item = BTreeMap<String, AttributeValue>;

/// A DynamoDB attribute value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttributeValue {
    /// String.
    S(String),
    /// Number.
    N(Number),
    /// Binary.
    B(Vec<u8>),
    /// Boolean.
    Bool(bool),
    /// Null.
    Null,
    /// Map.
    M(Item),
    /// List.
    L(Vec<AttributeValue>),
    /// String set.
    Ss(BTreeSet<String>),
    /// Number set.
    Ns(BTreeSet<Number>),
    /// Binary set.
    Bs(BTreeSet<Vec<u8>>),
}

impl AttributeValue {
    /// The DynamoDB type descriptor: `S`, `N`, `B`, `BOOL`, `NULL`, `M`, `L`, `SS`, `NS`, `BS`.
    pub fn type_name(&self) -> &'static str {
        match self {
            AttributeValue::S(_) => "S",
            AttributeValue::N(_) => "N",
            AttributeValue::B(_) => "B",
            AttributeValue::Bool(_) => "BOOL",
            AttributeValue::Null => "NULL",
            AttributeValue::M(_) => "M",
            AttributeValue::L(_) => "L",
            AttributeValue::Ss(_) => "SS",
            AttributeValue::Ns(_) => "NS",
            AttributeValue::Bs(_) => "BS",
        }
    }
}

const ONE_TYPE: &str = "must contain exactly one of the supported datatypes";

fn ser_err(what: &str) -> ApiError {
    ApiError::Serialization(format!("Unexpected value type in payload: expected {what}"))
}

fn as_str<'a>(v: &'a Value, what: &str) -> Result<&'a str, ApiError> {
    v.as_str().ok_or_else(|| ser_err(what))
}

fn as_array(v: &Value) -> Result<&Vec<Value>, ApiError> {
    v.as_array().ok_or_else(|| ser_err("a list"))
}

fn decode_b64(s: &str) -> Result<Vec<u8>, ApiError> {
    B64.decode(s)
        .map_err(|_| ApiError::Serialization("Base64 encoded value is not valid".into()))
}

fn dup_error<T: std::fmt::Display>(items: &[T]) -> ApiError {
    let list: Vec<String> = items.iter().map(ToString::to_string).collect();
    ApiError::validation(format!(
        "One or more parameter values were invalid: Input collection [{}] contains duplicates.",
        list.join(", ")
    ))
}

/// Deepest nesting DynamoDB accepts: a top-level attribute's value is level 1, and each map or
/// list around a value adds a level (so 31 maps around a scalar is the deepest item).
pub const MAX_NESTING_LEVELS: usize = 32;

const NESTING: &str = "Nesting Levels have exceeded supported limits: Attributes in the item have nested levels beyond supported limit";

fn too_deep() -> ApiError {
    ApiError::validation(NESTING)
}

/// Parses one attribute value from its DynamoDB JSON form (at most [`MAX_NESTING_LEVELS`]
/// deep, like any value a request carries).
pub fn av_from_json(v: &Value) -> Result<AttributeValue, ApiError> {
    av_at_level(v, 1)
}

/// The nesting level of a value: 1 for a scalar, a set or an empty container, one more than
/// its deepest element for a map or list.
pub fn nesting_level(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::M(m) => 1 + m.values().map(nesting_level).max().unwrap_or(0),
        AttributeValue::L(l) => 1 + l.iter().map(nesting_level).max().unwrap_or(0),
        _ => 1,
    }
}

/// Refuses an item nested deeper than [`MAX_NESTING_LEVELS`] (what an update expression can
/// build from values that were each within the limit), with DynamoDB's message.
pub fn check_nesting(item: &Item) -> Result<(), ApiError> {
    match item.values().map(nesting_level).max() {
        Some(level) if level > MAX_NESTING_LEVELS => Err(too_deep()),
        _ => Ok(()),
    }
}

fn av_at_level(v: &Value, level: usize) -> Result<AttributeValue, ApiError> {
    if level > MAX_NESTING_LEVELS {
        return Err(too_deep());
    }
    let obj = v
        .as_object()
        .ok_or_else(|| ser_err("an AttributeValue object"))?;
    let mut found: Option<AttributeValue> = None;
    for (k, inner) in obj {
        if inner.is_null() {
            continue;
        }
        let parsed = match k.as_str() {
            "S" => AttributeValue::S(as_str(inner, "a string")?.to_owned()),
            "N" => AttributeValue::N(Number::parse(as_str(inner, "a string")?)?),
            "B" => AttributeValue::B(decode_b64(as_str(inner, "a string")?)?),
            "BOOL" => AttributeValue::Bool(inner.as_bool().ok_or_else(|| ser_err("a boolean"))?),
            "NULL" => {
                if inner.as_bool().ok_or_else(|| ser_err("a boolean"))? {
                    AttributeValue::Null
                } else {
                    return Err(ApiError::validation(
                        "One or more parameter values were invalid: Null attribute value types must have the value of true",
                    ));
                }
            }
            "M" => {
                let m = inner.as_object().ok_or_else(|| ser_err("a map"))?;
                let mut item = Item::new();
                for (name, value) in m {
                    item.insert(name.clone(), av_at_level(value, level + 1)?);
                }
                AttributeValue::M(item)
            }
            "L" => AttributeValue::L(
                as_array(inner)?
                    .iter()
                    .map(|x| av_at_level(x, level + 1))
                    .collect::<Result<_, _>>()?,
            ),
            "SS" => {
                let raw: Vec<&str> = as_array(inner)?
                    .iter()
                    .map(|x| as_str(x, "a string"))
                    .collect::<Result<_, _>>()?;
                empty_set_check(raw.len(), "string")?;
                let set: BTreeSet<String> = raw.iter().map(|s| (*s).to_owned()).collect();
                if set.len() != raw.len() {
                    return Err(dup_error(&raw));
                }
                AttributeValue::Ss(set)
            }
            "NS" => {
                let raw: Vec<&str> = as_array(inner)?
                    .iter()
                    .map(|x| as_str(x, "a string"))
                    .collect::<Result<_, _>>()?;
                empty_set_check(raw.len(), "number")?;
                let set: BTreeSet<Number> = raw
                    .iter()
                    .map(|s| Number::parse(s))
                    .collect::<Result<_, _>>()?;
                if set.len() != raw.len() {
                    return Err(dup_error(&raw));
                }
                AttributeValue::Ns(set)
            }
            "BS" => {
                let raw: Vec<&str> = as_array(inner)?
                    .iter()
                    .map(|x| as_str(x, "a string"))
                    .collect::<Result<_, _>>()?;
                empty_set_check(raw.len(), "binary")?;
                let set: BTreeSet<Vec<u8>> = raw
                    .iter()
                    .map(|s| decode_b64(s))
                    .collect::<Result<_, _>>()?;
                if set.len() != raw.len() {
                    return Err(dup_error(&raw));
                }
                AttributeValue::Bs(set)
            }
            _ => continue, // unknown members are ignored, as DynamoDB does
        };
        if found.is_some() {
            return Err(ApiError::validation(format!(
                "Supplied AttributeValue has more than one datatypes set, {ONE_TYPE}"
            )));
        }
        found = Some(parsed);
    }
    found.ok_or_else(|| {
        ApiError::validation(format!("Supplied AttributeValue is empty, {ONE_TYPE}"))
    })
}

fn empty_set_check(len: usize, kind: &str) -> Result<(), ApiError> {
    if len == 0 {
        return Err(ApiError::validation(format!(
            "One or more parameter values were invalid: An {kind} set  may not be empty"
        )));
    }
    Ok(())
}

/// Parses an item (`{"name": {"S": "x"}, …}`).
pub fn item_from_json(v: &Value) -> Result<Item, ApiError> {
    let obj = v
        .as_object()
        .ok_or_else(|| ser_err("a map of attribute values"))?;
    let mut item = Item::new();
    for (name, value) in obj {
        check_attribute_name(name)?;
        item.insert(name.clone(), av_from_json(value)?);
    }
    Ok(item)
}

/// Longest attribute name DynamoDB accepts, in bytes.
pub const MAX_ATTRIBUTE_NAME_BYTES: usize = 65535;

/// Refuses an attribute name longer than [`MAX_ATTRIBUTE_NAME_BYTES`].
pub fn check_attribute_name(name: &str) -> Result<(), ApiError> {
    if name.len() > MAX_ATTRIBUTE_NAME_BYTES {
        return Err(ApiError::validation(format!(
            "One or more parameter values were invalid: Attribute name is too large, must be less than {} bytes",
            MAX_ATTRIBUTE_NAME_BYTES + 1
        )));
    }
    Ok(())
}

/// The DynamoDB JSON form of a value.
pub fn av_to_json(v: &AttributeValue) -> Value {
    let mut o = Map::with_capacity(1);
    let (k, val) = match v {
        AttributeValue::S(s) => ("S", Value::from(s.clone())),
        AttributeValue::N(n) => ("N", Value::from(n.to_string())),
        AttributeValue::B(b) => ("B", Value::from(B64.encode(b))),
        AttributeValue::Bool(b) => ("BOOL", Value::from(*b)),
        AttributeValue::Null => ("NULL", Value::from(true)),
        AttributeValue::M(m) => ("M", item_to_json(m)),
        AttributeValue::L(l) => ("L", Value::Array(l.iter().map(av_to_json).collect())),
        AttributeValue::Ss(s) => (
            "SS",
            Value::Array(s.iter().cloned().map(Value::from).collect()),
        ),
        AttributeValue::Ns(s) => (
            "NS",
            Value::Array(s.iter().map(|n| Value::from(n.to_string())).collect()),
        ),
        AttributeValue::Bs(s) => (
            "BS",
            Value::Array(s.iter().map(|b| Value::from(B64.encode(b))).collect()),
        ),
    };
    o.insert(k.to_owned(), val);
    Value::Object(o)
}

/// The DynamoDB JSON form of an item.
pub fn item_to_json(item: &Item) -> Value {
    Value::Object(
        item.iter()
            .map(|(k, v)| (k.clone(), av_to_json(v)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_every_type() {
        let j = json!({
            "s": {"S": "héllo"}, "n": {"N": "-12.5"}, "b": {"B": "AAEC/w=="},
            "t": {"BOOL": true}, "z": {"NULL": true},
            "m": {"M": {"a": {"L": [{"S": "x"}, {"N": "1"}]}}},
            "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2.5"]}, "bs": {"BS": ["AA==", "AQ=="]}
        });
        let item = item_from_json(&j).expect("parse");
        assert_eq!(item_to_json(&item), j);
    }

    #[test]
    fn validation_errors_in_dynamodb_words() {
        let cases = [
            (json!({}), "Supplied AttributeValue is empty"),
            (json!({"S": "a", "N": "1"}), "more than one datatypes"),
            (
                json!({"NULL": false}),
                "Null attribute value types must have the value of true",
            ),
            (json!({"SS": []}), "may not be empty"),
            (json!({"SS": ["a", "a"]}), "contains duplicates"),
            (json!({"NS": ["1", "1.0"]}), "contains duplicates"),
            (
                json!({"N": "x"}),
                "The parameter cannot be converted to a numeric value: x",
            ),
        ];
        for (v, msg) in cases {
            match av_from_json(&v) {
                Err(ApiError::Validation(m)) => assert!(m.contains(msg), "{m} !~ {msg}"),
                other => panic!("{v}: {other:?}"),
            }
        }
    }

    /// `{"M": {"a": … {"S": "x"} …}}` with `maps` maps around the string.
    fn nested(maps: usize) -> Value {
        (0..maps).fold(json!({"S": "x"}), |v, _| json!({"M": {"a": v}}))
    }

    #[test]
    fn nesting_beyond_32_levels_is_refused_as_dynamodb_does() {
        let ok = av_from_json(&nested(31)).expect("32 levels");
        assert_eq!(nesting_level(&ok), 32);
        match av_from_json(&nested(32)) {
            Err(ApiError::Validation(m)) => assert!(m.starts_with("Nesting Levels"), "{m}"),
            other => panic!("{other:?}"),
        }
        let list = (0..32).fold(json!({"N": "1"}), |v, _| json!({"L": [v]}));
        assert!(av_from_json(&list).is_err());
        // A value within the limit placed inside another one can exceed it.
        let mut item = Item::new();
        item.insert(
            "a".into(),
            AttributeValue::M(Item::from([("b".into(), ok)])),
        );
        assert!(check_nesting(&item).is_err());
    }

    #[test]
    fn wrong_json_types_are_serialization_errors() {
        for v in [
            json!({"S": 5}),
            json!({"N": 1}),
            json!("x"),
            json!({"L": {}}),
            json!({"B": "!!"}),
        ] {
            assert!(
                matches!(av_from_json(&v), Err(ApiError::Serialization(_))),
                "{v}"
            );
        }
    }
}
