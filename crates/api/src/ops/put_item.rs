//! `PutItem`.

use crate::request::capacity::{self, Consumed};
use crate::request::common::{
    Placeholders, Req, check_condition, condition, missing, refuse_reserved_attrs,
    return_old_on_failure, return_values, store_err, table,
};
use crate::state::AppState;
use meridian_expr::ExprKind;
use meridian_model::size::{check_item, item_size};
use meridian_model::value::item_to_json;
use meridian_model::{ApiError, Item};
use meridian_storage::{Change, ChangeKind};
use serde_json::{Value, json};

/// Writes a whole item, optionally under a condition.
pub async fn handle(state: &AppState, mut req: Req<'_>) -> Result<Value, ApiError> {
    let t = table(state, req.req_str("TableName", "tableName")?)?;
    crate::request::legacy::translate(
        &mut req,
        crate::request::legacy::Op::PutItem,
        &t.key_schema,
    )?;
    let mode = capacity::Mode::from_req(&req)?;
    let item = req.item("Item")?.ok_or_else(|| missing("item"))?;
    refuse_reserved_attrs(&item)?;
    t.key_schema.key_of_item(&item)?;
    check_item(&item)?;
    t.check_index_keys(&item)?;
    let rv = return_values(&req, &["NONE", "ALL_OLD"])?;
    let return_old = rv == "ALL_OLD";
    let old_on_failure = return_old_on_failure(&req)?;
    let ph = Placeholders::from_req(&req)?;
    let attrs = ph.attrs()?;
    let cond = condition(&req, "ConditionExpression", ExprKind::Condition, &attrs)?;
    attrs.check_all_used()?;
    let key = t.key_schema.encode(&item)?;
    let new_size = item_size(&item);
    let name = t.name.clone();

    let table = t.clone();
    let old: Option<Item> = state
        .store()
        .write(vec![(t, key.clone())], move |cur| {
            let old = cur.first().and_then(|c| c.as_ref()).map(|s| &s.item);
            if let Err(e) = check_condition(cond.as_ref(), old, old_on_failure) {
                return (vec![], Err(e));
            }
            let change = Change {
                table,
                key,
                kind: ChangeKind::Put(item),
            };
            (vec![change], Ok(old.cloned()))
        })
        .await
        .map_err(store_err)??;
    let units = capacity::write_units(new_size.max(old.as_ref().map_or(0, item_size)));
    let mut out = match old {
        Some(old) if return_old => json!({"Attributes": item_to_json(&old)}),
        _ => json!({}),
    };
    capacity::attach(&mut out, mode, &Consumed::write(&name, units));
    Ok(out)
}
