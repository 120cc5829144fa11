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

mod conditions;

use super::common::Req;
use conditions::*;
use meridian_model::key::KeySchema;
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
mod tests;
