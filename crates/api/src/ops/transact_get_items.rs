//! `TransactGetItems`: up to 100 items read as one serializable snapshot.
//!
//! The reads go through the store's single writer (a `Store::write` that decides no changes),
//! so no write of the region can land between two of them.

use crate::request::capacity::{self, Consumed, Mode, TRANSACTIONAL};
use crate::request::common::transact_items;
use crate::request::common::{Placeholders, Req, missing, projection, store_err, table};
use crate::state::AppState;
use meridian_expr::Projection;
use meridian_model::ApiError;
use meridian_model::size::item_size;
use meridian_model::table::TableMeta;
use meridian_model::value::item_to_json;
use serde_json::{Value, json};
use std::sync::Arc;

/// Most items in one call.
pub const MAX_ITEMS: usize = 100;

struct Get {
    table: Arc<TableMeta>,
    key: Vec<u8>,
    projection: Option<Projection>,
}

fn parse_get(state: &AppState, raw: &Value, n: usize) -> Result<Get, ApiError> {
    let entry = Req::nested(raw, "TransactItems")?;
    let get = entry
        .get("Get")
        .ok_or_else(|| missing(&format!("transactItems.{n}.member.get")))?;
    let get = Req::nested(get, "Get")?;
    let t = table(
        state,
        get.req_str(
            "TableName",
            &format!("transactItems.{n}.member.get.tableName"),
        )?,
    )?;
    let key = get
        .item("Key")?
        .ok_or_else(|| missing(&format!("transactItems.{n}.member.get.key")))?;
    t.key_schema.check_key(&key)?;
    let ph = Placeholders::from_req(&get)?;
    let attrs = ph.attrs()?;
    let proj = projection(&get, &attrs)?;
    attrs.check_all_used()?;
    Ok(Get {
        key: t.key_schema.encode(&key)?,
        table: t,
        projection: proj,
    })
}

/// Reads the items.
pub async fn handle(state: &AppState, req: Req<'_>) -> Result<Value, ApiError> {
    let raw_items = transact_items(&req, MAX_ITEMS)?;
    let mode = Mode::from_req(&req)?;
    let gets = raw_items
        .iter()
        .enumerate()
        .map(|(i, raw)| parse_get(state, raw, i + 1))
        .collect::<Result<Vec<_>, _>>()?;
    let reads = gets
        .iter()
        .map(|g| (g.table.clone(), g.key.clone()))
        .collect();
    let rep_attrs = state.inner.config.replication_attrs;
    let (responses, consumed) = state
        .store()
        .write(reads, move |cur| {
            let mut responses = Vec::with_capacity(gets.len());
            let mut consumed = Vec::with_capacity(gets.len());
            for (g, c) in gets.iter().zip(cur) {
                let size = c.as_ref().map_or(0, |s| item_size(&s.item));
                consumed.push(Consumed::read(
                    &g.table.name,
                    TRANSACTIONAL * capacity::read_units(size, true),
                ));
                responses.push(match c {
                    Some(s) => {
                        let full = crate::request::common::readable_item(rep_attrs, s.clone());
                        let item = match &g.projection {
                            Some(p) => p.apply(&full),
                            None => full,
                        };
                        json!({"Item": item_to_json(&item)})
                    }
                    None => json!({}),
                });
            }
            (vec![], (responses, consumed))
        })
        .await
        .map_err(store_err)?;
    let mut out = json!({"Responses": responses});
    capacity::attach_list(&mut out, mode, &consumed);
    Ok(out)
}
