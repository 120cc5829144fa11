//! What `Query` and `Scan` share: `Select`, `Limit`, the 1 MB page, filters applied after the
//! limit (as DynamoDB does), projections and `LastEvaluatedKey`.

use super::capacity::{self, Consumed};
use super::common::{Req, blocking};
use crate::state::AppState;
use meridian_expr::key_condition::prefix_successor;
use meridian_expr::{Condition, Projection};
use meridian_model::key::KeySchema;
use meridian_model::size::item_size;
use meridian_model::table::{IndexKind, IndexMeta, IndexProjection, IndexStatus, TableMeta};
use meridian_model::value::item_to_json;
use meridian_model::{ApiError, Item};
use meridian_storage::StoreError;
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
    /// `ReturnConsumedCapacity`.
    pub capacity: capacity::Mode,
    /// `ConsistentRead` (halves the reported read units when false).
    pub consistent: bool,
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

/// Where a page is read from.
/// Refuses a strongly consistent read of a global secondary index.
pub fn check_consistent(source: &Source, consistent: bool) -> Result<(), ApiError> {
    if consistent
        && let Source::Index { index, .. } = source
        && index.kind == meridian_model::table::IndexKind::Global
    {
        return Err(ApiError::validation(
            "Consistent reads are not supported on global secondary indexes",
        ));
    }
    Ok(())
}

pub enum Source {
    /// The table's items.
    Table(Arc<TableMeta>),
    /// An index's entries; with `fetch_base`, each entry is replaced by its base item (an LSI
    /// queried for attributes it does not project).
    Index {
        /// The table.
        table: Arc<TableMeta>,
        /// The index.
        index: IndexMeta,
        /// Read the whole item from the table.
        fetch_base: bool,
    },
}

type Entries = Box<dyn Iterator<Item = Result<Item, StoreError>> + Send>;

/// Bounds over an index's keys (`index key ‖ base key`) from bounds over index keys alone:
/// an inclusive upper bound or exclusive lower bound must cover every base key after it.
pub fn index_bounds(
    (lo, hi): (Bound<Vec<u8>>, Bound<Vec<u8>>),
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let after = |b: Vec<u8>| prefix_successor(&b).map_or(Bound::Unbounded, Bound::Excluded);
    let lo = match lo {
        Bound::Excluded(b) => match prefix_successor(&b) {
            Some(s) => Bound::Included(s),
            None => Bound::Excluded(b),
        },
        other => other,
    };
    let hi = match hi {
        Bound::Included(b) => after(b),
        other => other,
    };
    (lo, hi)
}

/// Reads one page and encodes the response.
pub async fn page(
    state: &AppState,
    source: Source,
    range: (Bound<Vec<u8>>, Bound<Vec<u8>>),
    spec: PageSpec,
) -> Result<Value, ApiError> {
    let store = state.store().clone();
    let rep_attrs = state.inner.config.replication_attrs;
    let name = match &source {
        Source::Table(t) | Source::Index { table: t, .. } => t.name.clone(),
    };
    let (items, count, scanned, last, read) = blocking(move || {
        let (entries, lek_schemas): (Entries, Vec<KeySchema>) = match &source {
            Source::Table(t) => (
                Box::new(
                    store
                        .range(t, range.0, range.1, spec.reverse)?
                        .map(move |r| r.map(|(_, s)| super::common::readable_item(rep_attrs, s))),
                ),
                vec![t.key_schema.clone()],
            ),
            Source::Index {
                table,
                index,
                fetch_base,
            } => {
                let entries = store.index_range(index.id, range.0, range.1, spec.reverse)?;
                let entries: Entries = if *fetch_base {
                    let (store, table) = (store.clone(), table.clone());
                    Box::new(entries.filter_map(move |r| match r {
                        Ok((_, entry)) => {
                            let key = match table.key_schema.encode(&entry) {
                                Ok(k) => k,
                                Err(e) => return Some(Err(StoreError::Corrupt(e.to_string()))),
                            };
                            store
                                .get(&table, &key)
                                .transpose()
                                .map(|r| r.map(|s| super::common::readable_item(rep_attrs, s)))
                        }
                        Err(e) => Some(Err(e)),
                    }))
                } else {
                    Box::new(entries.map(|r| r.map(|(_, item)| item)))
                };
                (
                    entries,
                    vec![table.key_schema.clone(), index.key_schema.clone()],
                )
            }
        };
        let mut items = Vec::new();
        let (mut count, mut scanned, mut bytes) = (0usize, 0usize, 0usize);
        let mut last: Option<Item> = None;
        for entry in entries {
            let item = entry?;
            scanned += 1;
            bytes += item_size(&item);
            let keep = match &spec.filter {
                Some(f) => f.eval(Some(&item)).unwrap_or(false),
                None => true,
            };
            let full_page = spec.limit.is_some_and(|l| scanned >= l) || bytes >= PAGE_BYTES;
            if full_page {
                let mut k = Item::new();
                for schema in &lek_schemas {
                    k.extend(key_of(schema, &item));
                }
                last = Some(k);
            }
            if keep {
                count += 1;
                if spec.select == Select::All {
                    items.push(match &spec.projection {
                        Some(p) => p.apply(&item),
                        None => item,
                    });
                }
            }
            if full_page {
                break;
            }
        }
        Ok((items, count, scanned, last, bytes))
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
    let units = capacity::read_units(read, spec.consistent);
    capacity::attach(&mut out, spec.capacity, &Consumed::read(&name, units));
    Ok(out)
}

/// Resolves `IndexName` and `Select` into a page source, with DynamoDB's rules: an index
/// answers its projected attributes by default; `ALL_ATTRIBUTES` on a global index needs an
/// `ALL` projection, on a local index it reads the base items.
pub fn source_for(
    table: Arc<TableMeta>,
    index_name: Option<&str>,
    select: Option<&str>,
    has_projection_expression: bool,
) -> Result<Source, ApiError> {
    let Some(name) = index_name else {
        return Ok(Source::Table(table));
    };
    let index = table.index(name).cloned().ok_or_else(|| {
        ApiError::validation(format!(
            "The table does not have the specified index: {name}"
        ))
    })?;
    if index.status != IndexStatus::Active {
        return Err(ApiError::validation(format!(
            "Cannot read from backfilling global secondary index: {name}"
        )));
    }
    let projects_all = index.projection == IndexProjection::All;
    let wants_all = select == Some("ALL_ATTRIBUTES");
    let fetch_base = match (index.kind, wants_all && !projects_all) {
        (IndexKind::Global, true) => {
            return Err(ApiError::validation(format!(
                "One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not supported for global secondary index {name} because its projection type is not ALL"
            )));
        }
        (IndexKind::Local, fetch) => fetch || (has_projection_expression && !projects_all),
        (IndexKind::Global, false) => false,
    };
    Ok(Source::Index {
        table,
        index,
        fetch_base,
    })
}

/// Reads `ExclusiveStartKey` for an index: the index key followed by the table key.
pub fn exclusive_start_in_index(
    req: &Req,
    table: &TableMeta,
    index: &IndexMeta,
) -> Result<Option<Vec<u8>>, ApiError> {
    let Some(esk) = req.item("ExclusiveStartKey")? else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::validation(
            "The provided starting key is invalid: The provided key element does not match the schema",
        )
    };
    let mut k = index.key_schema.encode(&esk).map_err(|_| invalid())?;
    k.extend_from_slice(&table.key_schema.encode(&esk).map_err(|_| invalid())?);
    Ok(Some(k))
}

/// The primary-key attributes of an item.
pub fn key_of(schema: &KeySchema, item: &Item) -> Item {
    schema
        .attrs()
        .filter_map(|a| item.get(&a.name).map(|v| (a.name.clone(), v.clone())))
        .collect()
}
