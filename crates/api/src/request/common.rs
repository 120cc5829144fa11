//! Helpers shared by the operations: typed access to the request, table lookup, expression
//! placeholders, store calls and the mapping of store errors.

use crate::state::AppState;
use meridian_model::error::resource_not_found;
use meridian_model::table::{TableMeta, check_table_name};
use meridian_model::value::{av_from_json, item_from_json};
use meridian_model::{ApiError, AttributeValue, Item};
use meridian_storage::StoreError;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

/// A parsed request body with typed getters. Absent and `null` members are `None`; a member of
/// the wrong JSON type is a `SerializationException`, as DynamoDB answers. A nested object
/// (e.g. one write of a `BatchWriteItem`) is borrowed from the body, not copied.
#[derive(Debug)]
pub struct Req<'a>(pub Cow<'a, Map<String, Value>>);

fn wrong_type(field: &str, expected: &str) -> ApiError {
    ApiError::Serialization(format!(
        "Unexpected value type in payload: member '{field}' must be {expected}"
    ))
}

/// `1 validation error detected: Value null at 'x' failed to satisfy constraint: Member must not be null`
pub fn missing(field: &str) -> ApiError {
    ApiError::validation(format!(
        "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
    ))
}

/// A capacity-unit member (`k`, reported as `provisionedThroughput.{wire}`) of a
/// `ProvisionedThroughput`: present and at least 1, as CreateTable and UpdateTable require.
pub fn capacity_units(pt: &Map<String, Value>, k: &str, wire: &str) -> Result<u64, ApiError> {
    let v = pt
        .get(k)
        .and_then(Value::as_i64)
        .ok_or_else(|| missing(&format!("provisionedThroughput.{wire}")))?;
    if v < 1 {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{v}' at 'provisionedThroughput.{wire}' failed to satisfy constraint: Member must have value greater than or equal to 1"
        )));
    }
    Ok(v as u64)
}

impl<'a> Req<'a> {
    /// Parses a request body.
    pub fn parse(body: &[u8]) -> Result<Req<'static>, ApiError> {
        if body.is_empty() {
            return Ok(Req(Cow::Owned(Map::new())));
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => Ok(Req(Cow::Owned(m))),
            Ok(_) => Err(ApiError::Serialization(
                "Start of structure or map found where not expected".into(),
            )),
            Err(_) => Err(ApiError::Serialization(
                "Malformed request body: not valid JSON".into(),
            )),
        }
    }

    /// Wraps a nested object (e.g. one entry of `RequestItems`).
    pub fn nested(v: &'a Value, field: &str) -> Result<Req<'a>, ApiError> {
        v.as_object()
            .map(|m| Req(Cow::Borrowed(m)))
            .ok_or_else(|| wrong_type(field, "a structure"))
    }

    /// A member, `None` when absent or null.
    pub fn get(&self, k: &str) -> Option<&Value> {
        self.0.get(k).filter(|v| !v.is_null())
    }

    /// An optional string member.
    pub fn str(&self, k: &str) -> Result<Option<&str>, ApiError> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(wrong_type(k, "a string")),
        }
    }

    /// A required string member (`wire` is the name DynamoDB uses in its message).
    pub fn req_str(&self, k: &str, wire: &str) -> Result<&str, ApiError> {
        self.str(k)?.ok_or_else(|| missing(wire))
    }

    /// An optional boolean member.
    pub fn bool(&self, k: &str) -> Result<Option<bool>, ApiError> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(wrong_type(k, "a boolean")),
        }
    }

    /// An optional integer member.
    pub fn int(&self, k: &str) -> Result<Option<i64>, ApiError> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .map(Some)
                .ok_or_else(|| wrong_type(k, "an integer")),
            Some(_) => Err(wrong_type(k, "an integer")),
        }
    }

    /// An optional list member.
    pub fn list(&self, k: &str) -> Result<Option<&Vec<Value>>, ApiError> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(_) => Err(wrong_type(k, "a list")),
        }
    }

    /// An optional map member.
    pub fn map(&self, k: &str) -> Result<Option<&Map<String, Value>>, ApiError> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(_) => Err(wrong_type(k, "a map")),
        }
    }

    /// An optional item-shaped member (`Item`, `Key`, `ExclusiveStartKey`).
    pub fn item(&self, k: &str) -> Result<Option<Item>, ApiError> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => item_from_json(v).map(Some),
        }
    }

    /// `ExpressionAttributeNames`.
    pub fn names(&self) -> Result<Option<HashMap<String, String>>, ApiError> {
        let Some(m) = self.map("ExpressionAttributeNames")? else {
            return Ok(None);
        };
        let mut out = HashMap::with_capacity(m.len());
        for (k, v) in m {
            let s = v
                .as_str()
                .ok_or_else(|| wrong_type("ExpressionAttributeNames", "a map of strings"))?;
            out.insert(k.clone(), s.to_owned());
        }
        Ok(Some(out))
    }

    /// `ExpressionAttributeValues`.
    pub fn values(&self) -> Result<Option<HashMap<String, AttributeValue>>, ApiError> {
        let Some(m) = self.map("ExpressionAttributeValues")? else {
            return Ok(None);
        };
        let mut out = HashMap::with_capacity(m.len());
        for (k, v) in m {
            let av = av_from_json(v).map_err(|e| match e {
                ApiError::Validation(msg) => ApiError::validation(format!(
                    "ExpressionAttributeValues contains invalid value: {msg} for key {k}"
                )),
                other => other,
            })?;
            out.insert(k.clone(), av);
        }
        Ok(Some(out))
    }
}

/// Looks up a table named by `TableName` (validating the name first).
pub fn table(state: &AppState, name: &str) -> Result<Arc<TableMeta>, ApiError> {
    check_table_name(name, "tableName")?;
    state.store().table(name).ok_or_else(resource_not_found)
}

/// Maps a store error to the API (the one place this happens).
pub fn store_err(e: StoreError) -> ApiError {
    match e {
        StoreError::NoSuchTable(_) => resource_not_found(),
        StoreError::TableExists(name) => {
            ApiError::ResourceInUse(format!("Table already exists: {name}"))
        }
        // The store stopped (fail-stop) or is stopping: a retryable answer, and the region's
        // health check takes it out of routing.
        e @ (StoreError::Poisoned | StoreError::Closed | StoreError::Engine(_)) => {
            tracing::error!(error = %e, "store unavailable");
            ApiError::ServiceUnavailable("The region's store is unavailable".into())
        }
        StoreError::Recovering => ApiError::ServiceUnavailable(
            "The region is recovering its change log from its peers; retry shortly".into(),
        ),
        other => ApiError::InternalServerError(other.to_string()),
    }
}

/// Runs one point read of the store on the calling task. A point read is a memtable lookup and
/// at most a block from the cache or the page cache — microseconds — while handing it to the
/// blocking pool and back cost more than the read itself (profile in docs/benchmarks.md: half
/// of GetItem's CPU was thread hand-offs). Scans and multi-key reads still use [`blocking`].
pub fn point_read<T>(f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, ApiError> {
    f().map_err(store_err)
}

/// Runs blocking store work off the async executor.
pub async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::InternalServerError(format!("blocking task failed: {e}")))?
        .map_err(store_err)
}

/// Validates `ReturnValues` against the values an operation allows.
pub fn return_values<'a>(req: &'a Req, allowed: &[&str]) -> Result<&'a str, ApiError> {
    let rv = req.str("ReturnValues")?.unwrap_or("NONE");
    if !allowed.contains(&rv) {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{rv}' at 'returnValues' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
            allowed.join(", ")
        )));
    }
    Ok(rv)
}

/// Whether `ReturnValuesOnConditionCheckFailure` asks for the old item.
pub fn return_old_on_failure(req: &Req) -> Result<bool, ApiError> {
    match req.str("ReturnValuesOnConditionCheckFailure")? {
        None | Some("NONE") => Ok(false),
        Some("ALL_OLD") => Ok(true),
        Some(other) => Err(ApiError::validation(format!(
            "1 validation error detected: Value '{other}' at 'returnValuesOnConditionCheckFailure' failed to satisfy constraint: Member must satisfy enum value set: [ALL_OLD, NONE]"
        ))),
    }
}

/// Evaluates a write's `ConditionExpression` (if any) against the item as it is: `Ok` to go
/// ahead, else `ConditionalCheckFailedException` (with the item when asked) or the evaluation
/// error.
pub fn check_condition(
    cond: Option<&meridian_expr::Condition>,
    old: Option<&Item>,
    return_old_on_failure: bool,
) -> Result<(), ApiError> {
    match cond.map(|c| c.eval(old)) {
        None | Some(Ok(true)) => Ok(()),
        Some(Ok(false)) => Err(condition_failed(old, return_old_on_failure)),
        Some(Err(e)) => Err(e),
    }
}

/// The `ConditionalCheckFailedException` DynamoDB sends.
pub fn condition_failed(old: Option<&Item>, return_old: bool) -> ApiError {
    ApiError::ConditionalCheckFailed {
        message: "The conditional request failed".into(),
        item: if return_old { old.cloned() } else { None },
    }
}

/// The placeholder maps of one request, owned, so expressions can borrow them while parsing.
#[derive(Debug, Default)]
pub struct Placeholders {
    names: Option<HashMap<String, String>>,
    values: Option<HashMap<String, AttributeValue>>,
}

impl Placeholders {
    /// Reads `ExpressionAttributeNames` and `ExpressionAttributeValues`.
    pub fn from_req(req: &Req) -> Result<Self, ApiError> {
        Ok(Self {
            names: req.names()?,
            values: req.values()?,
        })
    }

    /// Resolver for the request's expressions (validated maps).
    pub fn attrs(&self) -> Result<meridian_expr::Attrs<'_>, ApiError> {
        let a = meridian_expr::Attrs::new(self.names.as_ref(), self.values.as_ref());
        a.validate()?;
        Ok(a)
    }
}

/// Parses an optional `ConditionExpression`/`FilterExpression` member.
pub fn condition(
    req: &Req,
    member: &str,
    kind: meridian_expr::ExprKind,
    attrs: &meridian_expr::Attrs<'_>,
) -> Result<Option<meridian_expr::Condition>, ApiError> {
    req.str(member)?
        .map(|s| meridian_expr::parse_condition(s, kind, attrs))
        .transpose()
}

/// Parses an optional `ProjectionExpression`.
pub fn projection(
    req: &Req,
    attrs: &meridian_expr::Attrs<'_>,
) -> Result<Option<meridian_expr::Projection>, ApiError> {
    req.str("ProjectionExpression")?
        .map(|s| meridian_expr::parse_projection(s, attrs))
        .transpose()
}

/// Attributes reserved for replication metadata; clients may read but never write them.
pub const REPLICATION_ATTRS: [&str; 2] = ["aws:rep:updateregion", "aws:rep:updatetime"];

/// Refuses items that write replication metadata attributes.
pub fn refuse_reserved_attrs(item: &Item) -> Result<(), ApiError> {
    for a in REPLICATION_ATTRS {
        if item.contains_key(a) {
            return Err(ApiError::validation(format!(
                "One or more parameter values were invalid: Attribute {a} is reserved for replication and cannot be written"
            )));
        }
    }
    Ok(())
}

/// An item as reads return it. With replication configured (`ApiConfig::replication_attrs`) it
/// carries, like DynamoDB global tables 2017.11.29, `aws:rep:updateregion` (S: the region that
/// wrote this version) and `aws:rep:updatetime` (N: the version's HLC physical time in seconds,
/// with milliseconds). They are added on the way out only: the stored item never holds them.
pub fn readable_item(replication_attrs: bool, stored: meridian_storage::StoredItem) -> Item {
    let mut item = stored.item;
    if replication_attrs {
        let ms = stored.version.ts.physical_ms();
        item.insert(
            REPLICATION_ATTRS[0].to_owned(),
            AttributeValue::S(stored.version.region),
        );
        if let Ok(n) = meridian_model::Number::parse(&format!("{}.{:03}", ms / 1000, ms % 1000)) {
            item.insert(REPLICATION_ATTRS[1].to_owned(), AttributeValue::N(n));
        }
    }
    item
}

/// Reads `TransactItems`, checking its length.
pub fn transact_items<'a>(req: &'a Req<'_>, max: usize) -> Result<&'a Vec<Value>, ApiError> {
    let items = req
        .list("TransactItems")?
        .ok_or_else(|| missing("transactItems"))?;
    if items.is_empty() || items.len() > max {
        let bound = if items.is_empty() {
            "Member must have length greater than or equal to 1".to_owned()
        } else {
            format!("Member must have length less than or equal to {max}")
        };
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{}' at 'transactItems' failed to satisfy constraint: {bound}",
            Value::Array(items.clone())
        )));
    }
    Ok(items)
}
