//! `UpdateItem`.

use crate::request::capacity::{self, Consumed};
use crate::request::common::{
    Placeholders, Req, check_condition, condition, missing, return_old_on_failure, return_values,
    store_err, table,
};
use crate::state::AppState;
use meridian_expr::update::Action;
use meridian_expr::{ExprKind, PathElem, Projection, Update, parse_update};
use meridian_model::ApiError;
use meridian_model::AttributeValue;
use meridian_model::crdt::{Effect, after_update};
use meridian_model::size::{check_item, item_size};
use meridian_model::value::item_to_json;
use meridian_storage::{Change, ChangeKind};
use serde_json::{Value, json};

/// What an update does to counters (see `meridian_model::crdt`): top-level `ADD` of a number
/// increments, top-level `SET`/`REMOVE` resets.
pub fn counter_effects(update: &Update) -> Vec<Effect> {
    update
        .actions()
        .iter()
        .filter_map(|a| {
            let path = a.path();
            let [PathElem::Attr(name)] = path.0.as_slice() else {
                return None;
            };
            match a {
                Action::Add(_, AttributeValue::N(n)) => Some(Effect::Add(name.clone(), n.clone())),
                Action::Set(..) | Action::Remove(_) => Some(Effect::Reset(name.clone())),
                _ => None,
            }
        })
        .collect()
}

/// Whether the update only takes things away (`REMOVE`, `DELETE`): DynamoDB does not create
/// an absent item for such an update.
fn only_removes(update: &Update) -> bool {
    !update.actions().is_empty()
        && update
            .actions()
            .iter()
            .all(|a| matches!(a, Action::Remove(_) | Action::Delete(..)))
}

/// The legacy `AttributeUpdates` words a type clash as DynamoDB does for that parameter.
fn legacy_type_error(e: ApiError) -> ApiError {
    match e {
        ApiError::Validation(m)
            if m == "An operand in the update expression has an incorrect data type" =>
        {
            ApiError::validation("Type mismatch for attribute to update")
        }
        other => other,
    }
}

/// Updates (or creates) one item with an `UpdateExpression`, optionally under a condition.
pub async fn handle(state: &AppState, mut req: Req<'_>) -> Result<Value, ApiError> {
    let t = table(state, req.req_str("TableName", "tableName")?)?;
    let legacy = req.get("AttributeUpdates").is_some_and(|v| !v.is_null());
    crate::request::legacy::translate(
        &mut req,
        crate::request::legacy::Op::UpdateItem,
        &t.key_schema,
    )?;
    let mode = capacity::Mode::from_req(&req)?;
    let key = req.item("Key")?.ok_or_else(|| missing("key"))?;
    t.key_schema.check_key(&key)?;
    let rv = return_values(
        &req,
        &["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"],
    )?
    .to_owned();
    let old_on_failure = return_old_on_failure(&req)?;
    let ph = Placeholders::from_req(&req)?;
    let attrs = ph.attrs()?;
    let update = req
        .str("UpdateExpression")?
        .map(|s| parse_update(s, &attrs))
        .transpose()?;
    if let Some(u) = &update {
        u.refuse_key_updates(&t.key_schema)?;
    }
    let cond = condition(&req, "ConditionExpression", ExprKind::Condition, &attrs)?;
    attrs.check_all_used()?;
    let enc = t.key_schema.encode(&key)?;
    let name = t.name.clone();
    // UPDATED_OLD / UPDATED_NEW show just the paths the update wrote, nested as they are.
    let touched = Projection::from_paths(update.as_ref().map(|u| u.paths()).unwrap_or_default());

    let effects = update.as_ref().map(counter_effects).unwrap_or_default();
    let region = state.region().to_owned();
    let table = t.clone();
    let (old, new) = state
        .store()
        .write(vec![(t, enc.clone())], move |cur| {
            let old = cur.first().and_then(|c| c.as_ref()).map(|s| &s.item);
            if let Err(e) = check_condition(cond.as_ref(), old, old_on_failure) {
                return (vec![], Err(e));
            }
            if old.is_none() && update.as_ref().is_some_and(only_removes) {
                return (vec![], Ok((None, None)));
            }
            let base = old.cloned().unwrap_or(key);
            let new = match &update {
                Some(u) => match u.apply(Some(&base)) {
                    Ok(n) => n,
                    Err(e) if legacy => return (vec![], Err(legacy_type_error(e))),
                    Err(e) => return (vec![], Err(e)),
                },
                None => base,
            };
            if let Err(e) = check_item(&new).and_then(|_| table.check_index_keys(&new)) {
                return (vec![], Err(e));
            }
            let stored = cur.first().and_then(|c| c.as_ref());
            let crdt = after_update(
                stored.map(|s| (&s.version, &s.item, s.crdt.as_ref())),
                &new,
                &effects,
                &region,
            );
            let change = Change {
                table,
                key: enc,
                kind: ChangeKind::Update(new.clone(), crdt),
            };
            (vec![change], Ok((old.cloned(), Some(new))))
        })
        .await
        .map_err(store_err)??;
    let units = capacity::write_units(
        new.as_ref()
            .map_or(0, item_size)
            .max(old.as_ref().map_or(0, item_size)),
    );
    let consumed = Consumed::write(&name, units);
    let attributes = match rv.as_str() {
        "ALL_OLD" => old,
        "UPDATED_OLD" => old.map(|o| touched.apply(&o)),
        "ALL_NEW" => new,
        "UPDATED_NEW" => new.map(|n| touched.apply(&n)),
        _ => None,
    };
    let mut out = match attributes {
        Some(a) if !(a.is_empty() && rv.starts_with("UPDATED")) => {
            json!({"Attributes": item_to_json(&a)})
        }
        _ => json!({}),
    };
    capacity::attach(&mut out, mode, &consumed);
    Ok(out)
}
