//! `GetItem`.

use super::common::{Placeholders, Req, blocking, missing, projection, table};
use crate::state::AppState;
use meridian_model::ApiError;
use meridian_model::value::item_to_json;
use serde_json::{Value, json};

/// Reads one item (every read is strongly consistent within the region).
pub async fn handle(state: &AppState, req: Req) -> Result<Value, ApiError> {
    let t = table(state, req.req_str("TableName", "tableName")?)?;
    req.refuse_legacy(&["AttributesToGet"])?;
    req.bool("ConsistentRead")?;
    let key = req.item("Key")?.ok_or_else(|| missing("key"))?;
    t.key_schema.check_key(&key)?;
    let ph = Placeholders::from_req(&req)?;
    let attrs = ph.attrs()?;
    let proj = projection(&req, &attrs)?;
    attrs.check_all_used()?;
    let enc = t.key_schema.encode(&key)?;
    let store = state.store().clone();
    let found = blocking(move || store.get(&t, &enc)).await?;
    Ok(match found {
        Some(s) => {
            let item = match &proj {
                Some(p) => p.apply(&s.item),
                None => s.item,
            };
            json!({"Item": item_to_json(&item)})
        }
        None => json!({}),
    })
}
