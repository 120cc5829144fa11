//! `GetItem`.

use crate::request::capacity::{self, Consumed};
use crate::request::common::{Placeholders, Req, missing, point_read, projection, table};
use crate::state::AppState;
use meridian_model::ApiError;
use meridian_model::size::item_size;
use meridian_model::value::item_to_json;
use serde_json::{Value, json};

/// Reads one item (every read is strongly consistent within the region).
pub async fn handle(state: &AppState, mut req: Req<'_>) -> Result<Value, ApiError> {
    let t = table(state, req.req_str("TableName", "tableName")?)?;
    crate::request::legacy::translate(
        &mut req,
        crate::request::legacy::Op::GetItem,
        &t.key_schema,
    )?;
    let consistent = req.bool("ConsistentRead")?.unwrap_or(false);
    let mode = capacity::Mode::from_req(&req)?;
    let key = req.item("Key")?.ok_or_else(|| missing("key"))?;
    t.key_schema.check_key(&key)?;
    let ph = Placeholders::from_req(&req)?;
    let attrs = ph.attrs()?;
    let proj = projection(&req, &attrs)?;
    attrs.check_all_used()?;
    let enc = t.key_schema.encode(&key)?;
    let name = t.name.clone();
    let found = point_read(|| state.store().get(&t, &enc))?;
    let size = found.as_ref().map_or(0, |s| item_size(&s.item));
    let mut out = match found {
        Some(s) => {
            let full =
                crate::request::common::readable_item(state.inner.config.replication_attrs, s);
            let item = match &proj {
                Some(p) => p.apply(&full),
                None => full,
            };
            json!({"Item": item_to_json(&item)})
        }
        None => json!({}),
    };
    let units = capacity::read_units(size, consistent);
    capacity::attach(&mut out, mode, &Consumed::read(&name, units));
    Ok(out)
}
