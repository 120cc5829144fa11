//! `BatchGetItem`.

use crate::request::capacity::{self, Consumed};
use crate::request::common::{Placeholders, Req, blocking, missing, projection, table};
use crate::state::AppState;
use meridian_model::ApiError;
use meridian_model::size::item_size;
use meridian_model::value::item_to_json;
use serde_json::{Map, Value, json};
use std::collections::HashSet;

/// Most keys in one call.
pub const MAX_KEYS: usize = 100;
/// Response size after which remaining keys are returned as `UnprocessedKeys`.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Reads up to 100 items from one or more tables.
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
        .map(|v| v.get("Keys").and_then(Value::as_array).map_or(0, Vec::len))
        .sum();
    if total > MAX_KEYS {
        return Err(ApiError::validation(
            "Too many items requested for the BatchGetItem call",
        ));
    }
    let mode = capacity::Mode::from_req(&req)?;
    let mut consumed = Vec::new();
    let mut responses = Map::new();
    let mut unprocessed = Map::new();
    let mut size = 0usize;
    for (name, spec) in request_items {
        let t = table(state, name)?;
        let mut spec = Req::nested(spec, "RequestItems")?;
        crate::request::legacy::translate(
            &mut spec,
            crate::request::legacy::Op::BatchGetItem,
            &t.key_schema,
        )?;
        let consistent = spec.bool("ConsistentRead")?.unwrap_or(false);
        let keys = spec
            .list("Keys")?
            .ok_or_else(|| missing("requestItems.keys"))?;
        if keys.is_empty() {
            return Err(ApiError::validation(
                "1 validation error detected: Value '[]' at 'requestItems.keys' failed to satisfy constraint: Member must have length greater than or equal to 1",
            ));
        }
        let ph = Placeholders::from_req(&spec)?;
        let attrs = ph.attrs()?;
        let proj = projection(&spec, &attrs)?;
        attrs.check_all_used()?;
        let mut encoded = Vec::with_capacity(keys.len());
        let mut seen = HashSet::new();
        for k in keys {
            let key = meridian_model::value::item_from_json(k)?;
            t.key_schema.check_key(&key)?;
            let enc = t.key_schema.encode(&key)?;
            if !seen.insert(enc.clone()) {
                return Err(ApiError::validation(
                    "Provided list of item keys contains duplicates",
                ));
            }
            encoded.push((k.clone(), enc));
        }
        let store = state.store().clone();
        let t2 = t.clone();
        let encs: Vec<Vec<u8>> = encoded.iter().map(|(_, e)| e.clone()).collect();
        let found = blocking(move || {
            encs.iter()
                .map(|e| store.get(&t2, e))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
        let mut items = Vec::new();
        let mut left = Vec::new();
        for ((raw_key, _), f) in encoded.into_iter().zip(found) {
            if size >= MAX_RESPONSE_BYTES {
                left.push(raw_key);
                continue;
            }
            let read = f.as_ref().map_or(0, |s| item_size(&s.item));
            consumed.push(Consumed::read(name, capacity::read_units(read, consistent)));
            if let Some(s) = f {
                let full =
                    crate::request::common::readable_item(state.inner.config.replication_attrs, s);
                let item = match &proj {
                    Some(p) => p.apply(&full),
                    None => full,
                };
                size += item_size(&item);
                items.push(item_to_json(&item));
            }
        }
        responses.insert(name.clone(), Value::Array(items));
        if !left.is_empty() {
            let mut u = spec.0.as_ref().clone();
            u.insert("Keys".into(), Value::Array(left));
            unprocessed.insert(name.clone(), Value::Object(u));
        }
    }
    let mut out = json!({"Responses": responses, "UnprocessedKeys": unprocessed});
    capacity::attach_list(&mut out, mode, &consumed);
    Ok(out)
}
