//! DynamoDB's legacy (pre-2014) parameters, translated into the expression parameters.
//!
//! `AttributesToGet`, `Expected`, `AttributeUpdates`, `KeyConditions`, `QueryFilter`,
//! `ScanFilter` and `ConditionalOperator` are rewritten — with DynamoDB's validation of the
//! legacy forms — into `ProjectionExpression`, `ConditionExpression`, `UpdateExpression`,
//! `KeyConditionExpression` and `FilterExpression` over generated placeholders (`#lg0`,
//! `:lg0`, …), so one evaluator serves both forms. [`translate`] runs first in each operation;
//! the rest of the operation only ever sees expressions.
//!
//! It also enforces DynamoDB's rules on mixing: legacy and expression parameters may not be
//! combined, and placeholder maps are only allowed with expressions.

use super::common::Req;
use meridian_model::key::KeySchema;
use meridian_model::value::av_from_json;
use meridian_model::{ApiError, AttributeValue};
use serde_json::{Map, Value};
use std::collections::HashSet;

/// The operations that take legacy parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    GetItem,
    /// One table's entry of `BatchGetItem.RequestItems`.
    BatchGetItem,
    PutItem,
    DeleteItem,
    UpdateItem,
    Query,
    Scan,
}

impl Op {
    /// (expression parameters, legacy parameters), in the order DynamoDB lists them.
    fn params(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            Op::GetItem | Op::BatchGetItem => (&["ProjectionExpression"], &["AttributesToGet"]),
            Op::PutItem | Op::DeleteItem => (
                &["ConditionExpression"],
                &["Expected", "ConditionalOperator"],
            ),
            Op::UpdateItem => (
                &["UpdateExpression", "ConditionExpression"],
                &["AttributeUpdates", "Expected", "ConditionalOperator"],
            ),
            Op::Query => (
                &[
                    "ProjectionExpression",
                    "FilterExpression",
                    "KeyConditionExpression",
                ],
                &[
                    "AttributesToGet",
                    "QueryFilter",
                    "ConditionalOperator",
                    "KeyConditions",
                ],
            ),
            Op::Scan => (
                &["ProjectionExpression", "FilterExpression"],
                &["AttributesToGet", "ScanFilter", "ConditionalOperator"],
            ),
        }
    }
}

fn invalid(msg: impl AsRef<str>) -> ApiError {
    ApiError::validation(format!(
        "One or more parameter values were invalid: {}",
        msg.as_ref()
    ))
}

/// Generated placeholders, added to the request's own (only `KeyConditions` may be combined
/// with expressions that bring their own).
#[derive(Default)]
struct Builder {
    names: Map<String, Value>,
    values: Map<String, Value>,
    next_name: usize,
    next_value: usize,
}

impl Builder {
    fn fresh(&mut self, sigil: char) -> String {
        let (taken, next) = if sigil == '#' {
            (&self.names, &mut self.next_name)
        } else {
            (&self.values, &mut self.next_value)
        };
        loop {
            let k = format!("{sigil}lg{next}");
            *next += 1;
            if !taken.contains_key(&k) {
                return k;
            }
        }
    }

    fn name(&mut self, attr: &str) -> String {
        if let Some((k, _)) = self
            .names
            .iter()
            .find(|(k, v)| k.starts_with("#lg") && v.as_str() == Some(attr))
        {
            return k.clone();
        }
        let k = self.fresh('#');
        self.names.insert(k.clone(), Value::String(attr.to_owned()));
        k
    }

    fn value(&mut self, v: &Value) -> String {
        let k = self.fresh(':');
        self.values.insert(k.clone(), v.clone());
        k
    }
}

/// Rewrites the legacy parameters of `req` into expressions (no-op without any).
pub fn translate(req: &mut Req, op: Op, schema: &KeySchema) -> Result<(), ApiError> {
    let (exprs, legacy) = op.params();
    let expr_present: Vec<&str> = exprs
        .iter()
        .copied()
        .filter(|p| req.get(p).is_some())
        .collect();
    let mut legacy_present: Vec<&str> = legacy
        .iter()
        .copied()
        .filter(|p| req.get(p).is_some())
        .collect();
    if !expr_present.is_empty() {
        // KeyConditions may go with expressions as long as KeyConditionExpression is absent.
        if req.get("KeyConditionExpression").is_none() {
            legacy_present.retain(|p| *p != "KeyConditions");
        }
        if !legacy_present.is_empty() {
            return Err(ApiError::validation(format!(
                "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {{{}}} Expression parameters: {{{}}}",
                legacy_present.join(", "),
                expr_present.join(", ")
            )));
        }
    }
    if req.get("ExpressionAttributeNames").is_some() && expr_present.is_empty() {
        return Err(ApiError::validation(
            "ExpressionAttributeNames can only be specified when using expressions",
        ));
    }
    let value_exprs: Vec<&str> = exprs
        .iter()
        .copied()
        .filter(|e| *e != "ProjectionExpression")
        .collect();
    if !value_exprs.is_empty()
        && req.get("ExpressionAttributeValues").is_some()
        && value_exprs.iter().all(|e| req.get(e).is_none())
    {
        return Err(ApiError::validation(format!(
            "ExpressionAttributeValues can only be specified when using expressions: {} {} null",
            value_exprs.join(" and "),
            if value_exprs.len() > 1 { "are" } else { "is" }
        )));
    }
    let legacy_present: Vec<&str> = legacy
        .iter()
        .copied()
        .filter(|p| req.get(p).is_some())
        .collect();
    if legacy_present.is_empty() {
        return Ok(());
    }

    let mut b = Builder::default();
    if let Some(Value::Object(m)) = req.get("ExpressionAttributeNames") {
        b.names = m.clone();
    }
    if let Some(Value::Object(m)) = req.get("ExpressionAttributeValues") {
        b.values = m.clone();
    }
    let mut out: Vec<(&str, String)> = Vec::new();
    let conditional_or = conditional_operator(req)?;
    if let Some(v) = req.get("AttributeUpdates")
        && let Some(u) = attribute_updates(&mut b, v)?
    {
        out.push(("UpdateExpression", u));
    }
    if let Some(v) = req.get("Expected")
        && v.as_object().is_some_and(|m| m.is_empty())
        && req.get("ConditionalOperator").is_some()
    {
        return Err(invalid(
            "ConditionalOperator cannot be used without Expected conditions",
        ));
    }
    if let Some(v) = req.get("Expected")
        && let Some(c) = expected(&mut b, v, conditional_or)?
    {
        out.push(("ConditionExpression", c));
    }
    if let Some(v) = req.get("KeyConditions") {
        out.push(("KeyConditionExpression", key_conditions(&mut b, v)?));
    }
    for filter in ["QueryFilter", "ScanFilter"] {
        if let Some(v) = req.get(filter) {
            if filter == "QueryFilter" {
                refuse_key_filter(v, schema)?;
            }
            if let Some(f) = conditions(&mut b, v, filter, conditional_or)? {
                out.push(("FilterExpression", f));
            }
        }
    }
    if let Some(v) = req.get("AttributesToGet") {
        refuse_select_with_attributes(req)?;
        out.push(("ProjectionExpression", attributes_to_get(&mut b, v)?));
    }

    for p in legacy {
        req.0.to_mut().remove(*p);
    }
    for (k, v) in out {
        req.0.to_mut().insert(k.into(), Value::String(v));
    }
    if !b.names.is_empty() {
        req.0
            .to_mut()
            .insert("ExpressionAttributeNames".into(), Value::Object(b.names));
    }
    if !b.values.is_empty() {
        req.0
            .to_mut()
            .insert("ExpressionAttributeValues".into(), Value::Object(b.values));
    }
    Ok(())
}

/// `ConditionalOperator`: whether conditions are joined with OR.
fn conditional_operator(req: &Req) -> Result<bool, ApiError> {
    match req.str("ConditionalOperator")? {
        None | Some("AND") => Ok(false),
        Some("OR") => Ok(true),
        Some(other) => Err(ApiError::validation(format!(
            "1 validation error detected: Value '{other}' at 'conditionalOperator' failed to satisfy constraint: Member must satisfy enum value set: [OR, AND]"
        ))),
    }
}

fn as_map<'a>(v: &'a Value, field: &str) -> Result<&'a Map<String, Value>, ApiError> {
    v.as_object().ok_or_else(|| {
        ApiError::Serialization(format!(
            "Unexpected value type in payload: member '{field}' must be a map"
        ))
    })
}

fn refuse_select_with_attributes(req: &Req) -> Result<(), ApiError> {
    match req.str("Select")? {
        Some(s @ ("ALL_ATTRIBUTES" | "ALL_PROJECTED_ATTRIBUTES" | "COUNT")) => {
            Err(ApiError::validation(format!(
                "Cannot specify the AttributesToGet when choosing to get {s}"
            )))
        }
        _ => Ok(()),
    }
}

/// `AttributesToGet` → a projection.
fn attributes_to_get(b: &mut Builder, v: &Value) -> Result<String, ApiError> {
    let list = v.as_array().ok_or_else(|| {
        ApiError::Serialization(
            "Unexpected value type in payload: member 'AttributesToGet' must be a list".into(),
        )
    })?;
    if list.is_empty() {
        return Err(ApiError::validation(
            "1 validation error detected: Value '[]' at 'attributesToGet' failed to satisfy constraint: Member must have length greater than or equal to 1",
        ));
    }
    let mut seen = HashSet::new();
    let mut parts = Vec::with_capacity(list.len());
    for a in list {
        let a = a.as_str().ok_or_else(|| {
            ApiError::Serialization(
                "Unexpected value type in payload: member 'AttributesToGet' must be a list of strings"
                    .into(),
            )
        })?;
        if !seen.insert(a) {
            return Err(invalid(format!("Duplicate value in attribute name: {a}")));
        }
        parts.push(b.name(a));
    }
    Ok(parts.join(", "))
}

/// A legacy `AttributeValue`, checked as DynamoDB checks an item's values.
fn attribute_value(v: &Value) -> Result<AttributeValue, ApiError> {
    av_from_json(v)
}

/// How many values a comparison operator takes: `(min, max)`.
fn arity(op: &str) -> Option<(usize, usize)> {
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

fn unknown_operator(op: &str, field: &str) -> ApiError {
    ApiError::validation(format!(
        "1 validation error detected: Value '{op}' at '{field}' failed to satisfy constraint: Member must satisfy enum value set: [IN, NULL, BETWEEN, LT, NOT_CONTAINS, EQ, GT, NOT_NULL, NE, LE, BEGINS_WITH, GE, CONTAINS]"
    ))
}

/// Checks the values of one comparison: count, one type, and (for filters) the types the
/// operator accepts; `BETWEEN` bounds in order.
fn check_values(op: &str, vals: &[AttributeValue], check_types: bool) -> Result<(), ApiError> {
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

fn scalar_gt(a: &AttributeValue, b: &AttributeValue) -> bool {
    match (a, b) {
        (AttributeValue::S(x), AttributeValue::S(y)) => x > y,
        (AttributeValue::N(x), AttributeValue::N(y)) => x > y,
        (AttributeValue::B(x), AttributeValue::B(y)) => x > y,
        _ => false,
    }
}

/// One comparison as an expression.
fn comparison(b: &mut Builder, attr: &str, op: &str, raw: &[Value]) -> String {
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

fn join(parts: Vec<String>, or: bool) -> Option<String> {
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
fn expected(b: &mut Builder, v: &Value, or: bool) -> Result<Option<String>, ApiError> {
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
fn conditions(
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
fn condition_parts(
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
fn key_conditions(b: &mut Builder, v: &Value) -> Result<String, ApiError> {
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

fn refuse_key_filter(v: &Value, schema: &KeySchema) -> Result<(), ApiError> {
    if let Some(m) = v.as_object()
        && let Some(k) = m.keys().find(|k| schema.is_key_attr(k))
    {
        return Err(ApiError::validation(format!(
            "QueryFilter can only contain non-primary key attributes: Primary key attribute: {k}"
        )));
    }
    Ok(())
}

/// `AttributeUpdates` → an update expression.
fn attribute_updates(b: &mut Builder, v: &Value) -> Result<Option<String>, ApiError> {
    let (mut set, mut remove, mut add, mut delete) = (vec![], vec![], vec![], vec![]);
    for (attr, upd) in as_map(v, "AttributeUpdates")? {
        let upd = as_map(upd, "AttributeUpdates")?;
        let action = match upd.get("Action").filter(|v| !v.is_null()) {
            None => "PUT",
            Some(a) => a.as_str().unwrap_or_default(),
        };
        let value = upd.get("Value").filter(|v| !v.is_null());
        if !matches!(action, "PUT" | "ADD" | "DELETE") {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{action}' at 'attributeUpdates.{attr}.member.action' failed to satisfy constraint: Member must satisfy enum value set: [ADD, PUT, DELETE]"
            )));
        }
        let Some(raw) = value else {
            if action != "DELETE" {
                return Err(invalid(
                    "Only DELETE action is allowed when no attribute value is specified",
                ));
            }
            remove.push(b.name(attr));
            continue;
        };
        let av = attribute_value(raw)?;
        let n = b.name(attr);
        match action {
            "PUT" => {
                let val = b.value(raw);
                set.push(format!("{n} = {val}"));
            }
            "ADD" => match av {
                AttributeValue::N(_)
                | AttributeValue::Ss(_)
                | AttributeValue::Ns(_)
                | AttributeValue::Bs(_) => {
                    let val = b.value(raw);
                    add.push(format!("{n} {val}"));
                }
                AttributeValue::L(_) => {
                    let empty = b.value(&serde_json::json!({"L": []}));
                    let val = b.value(raw);
                    set.push(format!(
                        "{n} = list_append(if_not_exists({n}, {empty}), {val})"
                    ));
                }
                other => {
                    return Err(invalid(format!(
                        "ADD action is not supported for the type {}",
                        other.type_name()
                    )));
                }
            },
            _ => match av {
                AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_) => {
                    let val = b.value(raw);
                    delete.push(format!("{n} {val}"));
                }
                other => {
                    return Err(invalid(format!(
                        "DELETE action with value is not supported for the type {}",
                        other.type_name()
                    )));
                }
            },
        }
    }
    let mut clauses = Vec::new();
    for (kw, items) in [
        ("SET", set),
        ("REMOVE", remove),
        ("ADD", add),
        ("DELETE", delete),
    ] {
        if !items.is_empty() {
            clauses.push(format!("{kw} {}", items.join(", ")));
        }
    }
    Ok((!clauses.is_empty()).then(|| clauses.join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use meridian_model::key::{KeyAttr, KeyType};
    use serde_json::json;

    fn schema() -> KeySchema {
        KeySchema {
            hash: KeyAttr {
                name: "pk".into(),
                ty: KeyType::S,
            },
            range: Some(KeyAttr {
                name: "sk".into(),
                ty: KeyType::N,
            }),
        }
    }

    fn run(op: Op, body: Value) -> Result<Map<String, Value>, ApiError> {
        let mut req = Req::parse(body.to_string().as_bytes())?;
        translate(&mut req, op, &schema())?;
        Ok(req.0.into_owned())
    }

    #[test]
    fn attributes_to_get_becomes_projection() {
        let out = run(Op::GetItem, json!({"AttributesToGet": ["a", "b"]})).unwrap();
        assert_eq!(out["ProjectionExpression"], json!("#lg0, #lg1"));
        assert_eq!(out["ExpressionAttributeNames"]["#lg1"], json!("b"));
        assert!(out.get("AttributesToGet").is_none());
    }

    #[test]
    fn mixing_is_refused() {
        let e = run(
            Op::GetItem,
            json!({"AttributesToGet": ["a"], "ProjectionExpression": "a"}),
        )
        .unwrap_err();
        assert_eq!(
            e.message(),
            Some(
                "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {AttributesToGet} Expression parameters: {ProjectionExpression}"
            )
        );
    }

    #[test]
    fn names_need_expressions() {
        let e = run(
            Op::GetItem,
            json!({"ExpressionAttributeNames": {"#a": "a"}}),
        )
        .unwrap_err();
        assert_eq!(
            e.message(),
            Some("ExpressionAttributeNames can only be specified when using expressions")
        );
        let e = run(
            Op::UpdateItem,
            json!({"ExpressionAttributeValues": {":a": {"S": "a"}}}),
        )
        .unwrap_err();
        assert_eq!(
            e.message(),
            Some(
                "ExpressionAttributeValues can only be specified when using expressions: UpdateExpression and ConditionExpression are null"
            )
        );
    }

    #[test]
    fn expected_forms() {
        let out = run(
            Op::PutItem,
            json!({"Expected": {
                "a": {"Exists": false},
                "b": {"Value": {"S": "x"}},
                "c": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "1"}, {"N": "5"}]}
            }, "ConditionalOperator": "OR"}),
        )
        .unwrap();
        assert_eq!(
            out["ConditionExpression"],
            json!("(attribute_not_exists(#lg0)) OR (#lg1 = :lg0) OR (#lg2 BETWEEN :lg1 AND :lg2)")
        );
        let e = run(Op::PutItem, json!({"Expected": {"a": {"Exists": true}}})).unwrap_err();
        assert_eq!(
            e.message(),
            Some(
                "One or more parameter values were invalid: Value must be provided when Exists is true for Attribute: a"
            )
        );
        let e = run(
            Op::PutItem,
            json!({"Expected": {"a": {"ComparisonOperator": "EQ", "AttributeValueList": []}}}),
        )
        .unwrap_err();
        assert_eq!(
            e.message(),
            Some(
                "One or more parameter values were invalid: Invalid number of argument(s) for the EQ ComparisonOperator"
            )
        );
        let e = run(
            Op::PutItem,
            json!({"Expected": {"a": {"ComparisonOperator": "EQ"}}}),
        )
        .unwrap_err();
        assert_eq!(
            e.message(),
            Some(
                "One or more parameter values were invalid: Value or AttributeValueList must be used with ComparisonOperator: EQ for Attribute: a"
            )
        );
    }

    #[test]
    fn attribute_updates_forms() {
        let out = run(
            Op::UpdateItem,
            json!({"AttributeUpdates": {
                "a": {"Value": {"S": "x"}},
                "b": {"Action": "DELETE"},
                "c": {"Action": "ADD", "Value": {"N": "1"}},
                "d": {"Action": "ADD", "Value": {"L": [{"S": "y"}]}},
                "e": {"Action": "DELETE", "Value": {"SS": ["z"]}}
            }}),
        )
        .unwrap();
        assert_eq!(
            out["UpdateExpression"],
            json!(
                "SET #lg0 = :lg0, #lg3 = list_append(if_not_exists(#lg3, :lg2), :lg3) REMOVE #lg1 ADD #lg2 :lg1 DELETE #lg4 :lg4"
            )
        );
        let e = run(
            Op::UpdateItem,
            json!({"AttributeUpdates": {"a": {"Action": "PUT"}}}),
        )
        .unwrap_err();
        assert_eq!(
            e.message(),
            Some(
                "One or more parameter values were invalid: Only DELETE action is allowed when no attribute value is specified"
            )
        );
    }

    #[test]
    fn key_conditions_and_filters() {
        let out = run(
            Op::Query,
            json!({
                "KeyConditions": {
                    "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]},
                    "sk": {"ComparisonOperator": "GT", "AttributeValueList": [{"N": "3"}]}
                },
                "QueryFilter": {"x": {"ComparisonOperator": "NOT_NULL"}}
            }),
        )
        .unwrap();
        assert_eq!(
            out["KeyConditionExpression"],
            json!("#lg0 = :lg0 AND #lg1 > :lg1")
        );
        assert_eq!(out["FilterExpression"], json!("attribute_exists(#lg2)"));
        let e = run(
            Op::Query,
            json!({"KeyConditions": {"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]}},
                   "QueryFilter": {"pk": {"ComparisonOperator": "NOT_NULL"}}}),
        )
        .unwrap_err();
        assert_eq!(
            e.message(),
            Some(
                "QueryFilter can only contain non-primary key attributes: Primary key attribute: pk"
            )
        );
        let e = run(
            Op::Scan,
            json!({"ScanFilter": {"x": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "5"}, {"N": "1"}]}}}),
        )
        .unwrap_err();
        assert_eq!(
            e.message(),
            Some(
                "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound"
            )
        );
    }
}
