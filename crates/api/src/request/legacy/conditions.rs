//! Legacy comparisons: `Expected`, `KeyConditions`, `QueryFilter` and `ScanFilter` entries,
//! checked as DynamoDB checks them and written as condition expressions.

use super::{Builder, as_map, invalid};
use meridian_model::key::KeySchema;
use meridian_model::value::av_from_json;
use meridian_model::{ApiError, AttributeValue};
use serde_json::Value;

/// A legacy `AttributeValue`, checked as DynamoDB checks an item's values.
pub(super) fn attribute_value(v: &Value) -> Result<AttributeValue, ApiError> {
    av_from_json(v)
}

/// How many values a comparison operator takes: `(min, max)`.
pub(super) fn arity(op: &str) -> Option<(usize, usize)> {
    Some(match op {
        "NULL" | "NOT_NULL" => (0, 0),
        "EQ" | "NE" | "LE" | "LT" | "GE" | "GT" | "CONTAINS" | "NOT_CONTAINS" | "BEGINS_WITH" => {
            (1, 1)
        }
        "IN" => (1, usize::MAX),
        "BETWEEN" => (2, 2),
        _ => return None,
    })
}

pub(super) fn unknown_operator(op: &str, field: &str) -> ApiError {
    ApiError::validation(format!(
        "1 validation error detected: Value '{op}' at '{field}' failed to satisfy constraint: Member must satisfy enum value set: [IN, NULL, BETWEEN, LT, NOT_CONTAINS, EQ, GT, NOT_NULL, NE, LE, BEGINS_WITH, GE, CONTAINS]"
    ))
}

/// Checks the values of one comparison: count, one type, and (for filters) the types the
/// operator accepts; `BETWEEN` bounds in order.
pub(super) fn check_values(
    op: &str,
    vals: &[AttributeValue],
    check_types: bool,
) -> Result<(), ApiError> {
    let (min, max) = arity(op).unwrap_or((0, 0));
    if vals.len() < min || vals.len() > max {
        return Err(invalid(format!(
            "Invalid number of argument(s) for the {op} ComparisonOperator"
        )));
    }
    if let Some(first) = vals.first()
        && vals.iter().any(|v| v.type_name() != first.type_name())
    {
        return Err(invalid(
            "AttributeValues inside AttributeValueList must be of same type",
        ));
    }
    if check_types {
        let allowed: &[&str] = match op {
            "EQ" | "NE" => &["S", "N", "B", "SS", "NS", "BS", "BOOL", "NULL", "L", "M"],
            "BEGINS_WITH" => &["S", "B"],
            "NULL" | "NOT_NULL" => &[],
            _ => &["S", "N", "B"],
        };
        if let Some(v) = vals.iter().find(|v| !allowed.contains(&v.type_name())) {
            return Err(invalid(format!(
                "ComparisonOperator {op} is not valid for {} AttributeValue type",
                v.type_name()
            )));
        }
    }
    if let [lo, hi] = vals
        && op == "BETWEEN"
        && lo.type_name() == hi.type_name()
        && scalar_gt(lo, hi)
    {
        return Err(ApiError::validation(
            "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound",
        ));
    }
    Ok(())
}

pub(super) fn scalar_gt(a: &AttributeValue, b: &AttributeValue) -> bool {
    match (a, b) {
        (AttributeValue::S(x), AttributeValue::S(y)) => x > y,
        (AttributeValue::N(x), AttributeValue::N(y)) => x > y,
        (AttributeValue::B(x), AttributeValue::B(y)) => x > y,
        _ => false,
    }
}

/// One comparison as an expression.
pub(super) fn comparison(b: &mut Builder, attr: &str, op: &str, raw: &[Value]) -> String {
    let n = b.name(attr);
    let vs: Vec<String> = raw.iter().map(|v| b.value(v)).collect();
    let first = vs.first().cloned().unwrap_or_default();
    let sym = |s: &str| format!("{n} {s} {first}");
    match op {
        "EQ" => sym("="),
        "NE" => sym("<>"),
        "LE" => sym("<="),
        "LT" => sym("<"),
        "GE" => sym(">="),
        "GT" => sym(">"),
        "NULL" => format!("attribute_not_exists({n})"),
        "NOT_NULL" => format!("attribute_exists({n})"),
        "CONTAINS" => format!("contains({n}, {first})"),
        // A missing attribute fails NOT_CONTAINS too.
        "NOT_CONTAINS" => format!("(attribute_exists({n}) AND NOT contains({n}, {first}))"),
        "BEGINS_WITH" => format!("begins_with({n}, {first})"),
        "IN" => format!("{n} IN ({})", vs.join(", ")),
        _ => format!(
            "{n} BETWEEN {first} AND {}",
            vs.get(1).cloned().unwrap_or_default()
        ),
    }
}

pub(super) fn join(parts: Vec<String>, or: bool) -> Option<String> {
    match parts.len() {
        0 => None,
        1 => parts.into_iter().next(),
        _ => Some(
            parts
                .iter()
                .map(|p| format!("({p})"))
                .collect::<Vec<_>>()
                .join(if or { " OR " } else { " AND " }),
        ),
    }
}

/// `Expected` → a condition.
pub(super) fn expected(b: &mut Builder, v: &Value, or: bool) -> Result<Option<String>, ApiError> {
    let mut parts = Vec::new();
    for (attr, cond) in as_map(v, "Expected")? {
        let cond = as_map(cond, "Expected")?;
        let value = cond.get("Value").filter(|v| !v.is_null());
        let list = cond.get("AttributeValueList").filter(|v| !v.is_null());
        if value.is_some() && list.is_some() {
            return Err(invalid(format!(
                "Value and AttributeValueList cannot be used together for Attribute: {attr}"
            )));
        }
        let exists = cond.get("Exists").filter(|v| !v.is_null());
        if let Some(op) = cond.get("ComparisonOperator").filter(|v| !v.is_null()) {
            let op = op.as_str().unwrap_or_default();
            if arity(op).is_none() {
                return Err(unknown_operator(
                    op,
                    &format!("expected.{attr}.member.comparisonOperator"),
                ));
            }
            if exists.is_some() {
                return Err(invalid(format!(
                    "Exists and ComparisonOperator cannot be used together for Attribute: {attr}"
                )));
            }
            if op != "NULL" && op != "NOT_NULL" && value.is_none() && list.is_none() {
                return Err(invalid(format!(
                    "Value or AttributeValueList must be used with ComparisonOperator: {op} for Attribute: {attr}"
                )));
            }
            let raw: Vec<Value> = match (list, value) {
                (Some(l), _) => l.as_array().cloned().unwrap_or_default(),
                (None, Some(v)) => vec![v.clone()],
                (None, None) => vec![],
            };
            let vals = raw
                .iter()
                .map(attribute_value)
                .collect::<Result<Vec<_>, _>>()?;
            // Mismatched types only fail the condition, except where DynamoDB's
            // operator takes scalars only.
            check_values(op, &vals, matches!(op, "CONTAINS" | "NOT_CONTAINS" | "IN"))?;
            parts.push(comparison(b, attr, op, &raw));
        } else if list.is_some() {
            return Err(invalid(format!(
                "AttributeValueList can only be used with a ComparisonOperator for Attribute: {attr}"
            )));
        } else {
            let exists_flag = match exists {
                None => None,
                Some(Value::Bool(x)) => Some(*x),
                Some(_) => {
                    return Err(ApiError::Serialization(
                        "Unexpected value type in payload: member 'Exists' must be a boolean"
                            .into(),
                    ));
                }
            };
            match (exists_flag.unwrap_or(true), value) {
                (true, None) => {
                    return Err(invalid(format!(
                        "Value must be provided when Exists is {} for Attribute: {attr}",
                        exists_flag.map_or("null".to_owned(), |x| x.to_string())
                    )));
                }
                (false, Some(_)) => {
                    return Err(invalid(format!(
                        "Value cannot be used when Exists is false for Attribute: {attr}"
                    )));
                }
                (true, Some(v)) => {
                    attribute_value(v)?;
                    parts.push(comparison(b, attr, "EQ", std::slice::from_ref(v)));
                }
                (false, None) => parts.push(comparison(b, attr, "NULL", &[])),
            }
        }
    }
    Ok(join(parts, or))
}

/// `QueryFilter` / `ScanFilter` → a filter (also the shape of `KeyConditions`).
pub(super) fn conditions(
    b: &mut Builder,
    v: &Value,
    field: &str,
    or: bool,
) -> Result<Option<String>, ApiError> {
    let mut parts = Vec::new();
    for (attr, cond) in as_map(v, field)? {
        let (op, raw) = condition_parts(cond, field, attr)?;
        parts.push(comparison(b, attr, &op, &raw));
    }
    Ok(join(parts, or))
}

/// Validates one `{ComparisonOperator, AttributeValueList}` of a filter or key condition.
pub(super) fn condition_parts(
    cond: &Value,
    field: &str,
    attr: &str,
) -> Result<(String, Vec<Value>), ApiError> {
    let cond = as_map(cond, field)?;
    let wire = field[..1].to_ascii_lowercase() + &field[1..];
    let op = cond
        .get("ComparisonOperator")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ApiError::validation(format!(
                "1 validation error detected: Value null at '{wire}.{attr}.member.comparisonOperator' failed to satisfy constraint: Member must not be null"
            ))
        })?;
    if arity(op).is_none() {
        return Err(unknown_operator(
            op,
            &format!("{wire}.{attr}.member.comparisonOperator"),
        ));
    }
    let raw: Vec<Value> = cond
        .get("AttributeValueList")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let vals = raw
        .iter()
        .map(attribute_value)
        .collect::<Result<Vec<_>, _>>()?;
    check_values(op, &vals, true)?;
    Ok((op.to_owned(), raw))
}

/// `KeyConditions` → a key condition (the schema checks happen when it is parsed).
pub(super) fn key_conditions(b: &mut Builder, v: &Value) -> Result<String, ApiError> {
    let map = as_map(v, "KeyConditions")?;
    if map.is_empty() || map.len() > 2 {
        return Err(ApiError::validation(
            "Conditions can be of length 1 or 2 only",
        ));
    }
    let mut parts = Vec::new();
    for (attr, cond) in map {
        let (op, raw) = condition_parts(cond, "KeyConditions", attr)?;
        if !matches!(
            op.as_str(),
            "EQ" | "LE" | "LT" | "GE" | "GT" | "BEGINS_WITH" | "BETWEEN"
        ) {
            return Err(ApiError::validation(
                "Attempted conditional constraint is not an indexable operation",
            ));
        }
        parts.push(comparison(b, attr, &op, &raw));
    }
    Ok(parts.join(" AND "))
}

pub(super) fn refuse_key_filter(v: &Value, schema: &KeySchema) -> Result<(), ApiError> {
    if let Some(m) = v.as_object()
        && let Some(k) = m.keys().find(|k| schema.is_key_attr(k))
    {
        return Err(ApiError::validation(format!(
            "QueryFilter can only contain non-primary key attributes: Primary key attribute: {k}"
        )));
    }
    Ok(())
}
