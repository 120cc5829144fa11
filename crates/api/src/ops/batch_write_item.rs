//! `BatchWriteItem`.

use crate::request::capacity::{self, Consumed};
use crate::request::common::{Req, missing, refuse_reserved_attrs, store_err, table};
use crate::state::AppState;
use meridian_model::size::{check_item, item_size};
use meridian_model::{ApiError, Item};
use meridian_storage::{Change, ChangeKind};
use serde_json::{Map, Value, json};
use std::collections::HashSet;

/// Most writes in one call.
pub const MAX_WRITES: usize = 25;
/// Writer queue depth beyond which a batch is only partly processed and the rest handed back
/// as `UnprocessedItems` (the client retries them with backoff).
pub const OVERLOAD_QUEUE_DEPTH: usize = 4096;

/// Puts and deletes up to 25 items across tables, committed together.
pub async fn handle(state: &AppState, req: Req<'_>) -> Result<Value, ApiError> {
    let request_items = req
        .map("RequestItems")?
        .ok_or_else(|| missing("requestItems"))?;
    if request_items.is_empty() {
        return Err(ApiError::validation(
            "1 validation error detected: Value '{}' at 'requestItems' failed to satisfy constraint: Member must have length greater than or equal to 1",
        ));
    }
    let total: usize = request_items
        .values()
        .map(|v| v.as_array().map_or(0, Vec::len))
        .sum();
    if total > MAX_WRITES {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to {MAX_WRITES}, Member must have length greater than or equal to 1]"
        )));
    }
    let mode = capacity::Mode::from_req(&req)?;
    // Validate everything before writing anything.
    // Each write with its table's name and its request, handed back if it goes unprocessed.
    let mut writes: Vec<(&String, &Value, Change)> = Vec::with_capacity(total);
    let mut seen = HashSet::new();
    for (name, list) in request_items {
        let t = table(state, name)?;
        let list = list.as_array().ok_or_else(|| {
            ApiError::Serialization(
                "Unexpected value type in payload: member 'RequestItems' must be a map of lists"
                    .into(),
            )
        })?;
        if list.is_empty() {
            return Err(ApiError::validation(
                "1 validation error detected: Value '[]' at 'requestItems' failed to satisfy constraint: Member must have length greater than or equal to 1",
            ));
        }
        for raw in list {
            let w = Req::nested(raw, "RequestItems")?;
            let (key_item, kind): (Item, ChangeKind) = match (
                w.get("PutRequest"),
                w.get("DeleteRequest"),
            ) {
                (Some(p), None) => {
                    let p = Req::nested(p, "PutRequest")?;
                    let item = p
                        .item("Item")?
                        .ok_or_else(|| missing("requestItems.putRequest.item"))?;
                    refuse_reserved_attrs(&item)?;
                    let key = t.key_schema.key_of_item(&item)?;
                    check_item(&item)?;
                    t.check_index_keys(&item)?;
                    (key, ChangeKind::Put(item))
                }
                (None, Some(d)) => {
                    let d = Req::nested(d, "DeleteRequest")?;
                    let key = d
                        .item("Key")?
                        .ok_or_else(|| missing("requestItems.deleteRequest.key"))?;
                    t.key_schema.check_key(&key)?;
                    (key, ChangeKind::Delete)
                }
                _ => {
                    return Err(ApiError::validation(
                        "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes: WriteRequest must contain exactly one of PutRequest or DeleteRequest",
                    ));
                }
            };
            let enc = t.key_schema.encode(&key_item)?;
            if !seen.insert((t.id, enc.clone())) {
                return Err(ApiError::validation(
                    "Provided list of item keys contains duplicates",
                ));
            }
            writes.push((
                name,
                raw,
                Change {
                    table: t.clone(),
                    key: enc,
                    kind,
                },
            ));
        }
    }
    // Under overload, take only part of the batch; the rest comes back unprocessed.
    let room = OVERLOAD_QUEUE_DEPTH.saturating_sub(state.store().queue_depth());
    let take = if room == 0 { 1 } else { writes.len() };
    let rest = writes.split_off(take.min(writes.len()));
    let reads: Vec<_> = writes
        .iter()
        .map(|(_, _, c)| (c.table.clone(), c.key.clone()))
        .collect();
    let changes: Vec<Change> = writes.into_iter().map(|(_, _, c)| c).collect();
    let consumed = state
        .store()
        .write(reads, move |cur| {
            let consumed: Vec<Consumed> = changes
                .iter()
                .zip(cur)
                .map(|(c, old)| {
                    let new = match &c.kind {
                        ChangeKind::Put(item) => item_size(item),
                        _ => 0,
                    };
                    let old = old.as_ref().map_or(0, |s| item_size(&s.item));
                    Consumed::write(&c.table.name, capacity::write_units(new.max(old)))
                })
                .collect();
            // A delete of an absent item changes nothing and is not logged.
            let changes = changes
                .into_iter()
                .zip(cur)
                .filter(|(c, old)| !(c.kind == ChangeKind::Delete && old.is_none()))
                .map(|(c, _)| c)
                .collect();
            (changes, consumed)
        })
        .await
        .map_err(store_err)?;
    let mut unprocessed = Map::new();
    for (name, raw, _) in rest {
        if let Value::Array(a) = unprocessed
            .entry(name.clone())
            .or_insert_with(|| Value::Array(vec![]))
        {
            a.push(raw.clone());
        }
    }
    let mut out = json!({"UnprocessedItems": unprocessed});
    capacity::attach_list(&mut out, mode, &consumed);
    Ok(out)
}
