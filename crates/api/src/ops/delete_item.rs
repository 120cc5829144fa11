//! `DeleteItem`.

use crate::request::capacity::{self, Consumed};
use crate::request::common::{
    Placeholders, Req, check_condition, condition, missing, return_old_on_failure, return_values,
    store_err, table,
};
use crate::state::AppState;
use meridian_expr::ExprKind;
use meridian_model::size::item_size;
use meridian_model::value::item_to_json;
use meridian_model::{ApiError, Item};
use meridian_storage::{Change, ChangeKind};
use serde_json::{Value, json};

/// Deletes one item, optionally under a condition. Deleting a missing item succeeds.
pub async fn handle(state: &AppState, mut req: Req<'_>) -> Result<Value, ApiError> {
    let t = table(state, req.req_str("TableName", "tableName")?)?;
    crate::request::legacy::translate(
        &mut req,
        crate::request::legacy::Op::DeleteItem,
        &t.key_schema,
    )?;
    let mode = capacity::Mode::from_req(&req)?;
    let key = req.item("Key")?.ok_or_else(|| missing("key"))?;
    t.key_schema.check_key(&key)?;
    let return_old = return_values(&req, &["NONE", "ALL_OLD"])? == "ALL_OLD";
    let old_on_failure = return_old_on_failure(&req)?;
    let ph = Placeholders::from_req(&req)?;
    let attrs = ph.attrs()?;
    let cond = condition(&req, "ConditionExpression", ExprKind::Condition, &attrs)?;
    attrs.check_all_used()?;
    let enc = t.key_schema.encode(&key)?;
    let name = t.name.clone();

    let table = t.clone();
    let old: Option<Item> = state
        .store()
        .write(vec![(t, enc.clone())], move |cur| {
            let old = cur.first().and_then(|c| c.as_ref()).map(|s| &s.item);
            if let Err(e) = check_condition(cond.as_ref(), old, old_on_failure) {
                return (vec![], Err(e));
            }
            match old {
                None => (vec![], Ok(None)),
                Some(old) => (
                    vec![Change {
                        table,
                        key: enc,
                        kind: ChangeKind::Delete,
                    }],
                    Ok(Some(old.clone())),
                ),
            }
        })
        .await
        .map_err(store_err)??;
    let units = capacity::write_units(old.as_ref().map_or(0, item_size));
    let mut out = match old {
        Some(old) if return_old => json!({"Attributes": item_to_json(&old)}),
        _ => json!({}),
    };
    capacity::attach(&mut out, mode, &Consumed::write(&name, units));
    Ok(out)
}
