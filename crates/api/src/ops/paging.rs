//! What `Query` and `Scan` share: `Select`, `Limit`, the 1 MB page, filters applied after the
//! limit (as DynamoDB does), projections and `LastEvaluatedKey`.

use super::common::{Req, blocking};
use crate::state::AppState;
use meridian_expr::{Condition, Projection};
use meridian_model::key::KeySchema;
use meridian_model::size::item_size;
use meridian_model::table::TableMeta;
use meridian_model::value::item_to_json;
use meridian_model::{ApiError, Item};
use serde_json::{Value, json};
use std::cmp::Ordering;
use std::ops::Bound;
use std::sync::Arc;

/// Data read per page before the page ends (DynamoDB's 1 MB).
pub const PAGE_BYTES: usize = 1024 * 1024;

/// `Select`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Select {
    /// Whole items (or the projection, when given).
    All,
    /// Only `Count` and `ScannedCount`.
    Count,
}

/// Everything that shapes one page.
pub struct PageSpec {
    /// Most items evaluated (before the filter).
    pub limit: Option<usize>,
    /// `FilterExpression`.
    pub filter: Option<Condition>,
    /// `ProjectionExpression`.
    pub projection: Option<Projection>,
    /// `Select`.
    pub select: Select,
    /// Scan direction.
    pub reverse: bool,
}

/// Reads `Select`, `Limit` and checks them against the projection.
pub fn parse_select_and_limit(
    req: &Req,
    has_projection: bool,
    has_index: bool,
) -> Result<(Select, Option<usize>), ApiError> {
    let select = match req.str("Select")? {
        None | Some("ALL_ATTRIBUTES") | Some("SPECIFIC_ATTRIBUTES") => Select::All,
        Some("ALL_PROJECTED_ATTRIBUTES") if has_index => Select::All,
        Some("ALL_PROJECTED_ATTRIBUTES") => {
            return Err(ApiError::validation(
                "ALL_PROJECTED_ATTRIBUTES can be used only when Querying using an IndexName",
            ));
        }
        Some("COUNT") => Select::Count,
        Some(other) => {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{other}' at 'select' failed to satisfy constraint: Member must satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES]"
            )));
        }
    };
    match (req.str("Select")?, has_projection) {
        (Some("SPECIFIC_ATTRIBUTES"), false) => {
            return Err(ApiError::validation(
                "1 validation error detected: SPECIFIC_ATTRIBUTES requires a ProjectionExpression",
            ));
        }
        (Some(s @ ("ALL_ATTRIBUTES" | "COUNT" | "ALL_PROJECTED_ATTRIBUTES")), true) => {
            return Err(ApiError::validation(format!(
                "Cannot specify the ProjectionExpression when choosing to get {s}"
            )));
        }
        _ => {}
    }
    let limit = match req.int("Limit")? {
        None => None,
        Some(l) if l >= 1 => Some(l as usize),
        Some(l) => {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{l}' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"
            )));
        }
    };
    Ok((select, limit))
}

/// Reads `ExclusiveStartKey` as a storage key.
pub fn exclusive_start(req: &Req, schema: &KeySchema) -> Result<Option<Vec<u8>>, ApiError> {
    let Some(esk) = req.item("ExclusiveStartKey")? else {
        return Ok(None);
    };
    schema.check_key(&esk).map_err(|_| {
        ApiError::validation("The provided starting key is invalid: The provided key element does not match the schema")
    })?;
    Ok(Some(schema.encode(&esk)?))
}

fn bound_value(b: &Bound<Vec<u8>>) -> Option<&Vec<u8>> {
    match b {
        Bound::Included(v) | Bound::Excluded(v) => Some(v),
        Bound::Unbounded => None,
    }
}

/// Narrows `(lo, hi)` to keys after (or, reversed, before) the exclusive start key.
pub fn after_start(
    (lo, hi): (Bound<Vec<u8>>, Bound<Vec<u8>>),
    start: Option<Vec<u8>>,
    reverse: bool,
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let Some(s) = start else { return (lo, hi) };
    if reverse {
        let tighter = bound_value(&hi).is_none_or(|h| s.cmp(h) != Ordering::Greater);
        (lo, if tighter { Bound::Excluded(s) } else { hi })
    } else {
        let tighter = bound_value(&lo).is_none_or(|l| s.cmp(l) != Ordering::Less);
        (if tighter { Bound::Excluded(s) } else { lo }, hi)
    }
}

/// Reads one page of `table` within `range` and encodes the response.
pub async fn page(
    state: &AppState,
    table: Arc<TableMeta>,
    range: (Bound<Vec<u8>>, Bound<Vec<u8>>),
    spec: PageSpec,
) -> Result<Value, ApiError> {
    let store = state.store().clone();
    let (items, count, scanned, last) = blocking(move || {
        let mut items = Vec::new();
        let (mut count, mut scanned, mut bytes) = (0usize, 0usize, 0usize);
        let mut last: Option<Item> = None;
        for entry in store.range(&table, range.0, range.1, spec.reverse)? {
            let (_, stored) = entry?;
            scanned += 1;
            bytes += item_size(&stored.item);
            let keep = match &spec.filter {
                Some(f) => f.eval(Some(&stored.item)).unwrap_or(false),
                None => true,
            };
            let full_page = spec.limit.is_some_and(|l| scanned >= l) || bytes >= PAGE_BYTES;
            if full_page {
                last = Some(key_of(&table.key_schema, &stored.item));
            }
            if keep {
                count += 1;
                if spec.select == Select::All {
                    items.push(match &spec.projection {
                        Some(p) => p.apply(&stored.item),
                        None => stored.item,
                    });
                }
            }
            if full_page {
                break;
            }
        }
        Ok((items, count, scanned, last))
    })
    .await?;
    let mut out = json!({"Count": count, "ScannedCount": scanned});
    if let Some(o) = out.as_object_mut() {
        if spec.select == Select::All {
            o.insert(
                "Items".into(),
                Value::Array(items.iter().map(item_to_json).collect()),
            );
        }
        if let Some(k) = last {
            o.insert("LastEvaluatedKey".into(), item_to_json(&k));
        }
    }
    Ok(out)
}

/// The primary-key attributes of an item.
pub fn key_of(schema: &KeySchema, item: &Item) -> Item {
    schema
        .attrs()
        .filter_map(|a| item.get(&a.name).map(|v| (a.name.clone(), v.clone())))
        .collect()
}
