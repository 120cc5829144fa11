//! `TransactWriteItems`: up to 100 puts, updates, deletes and condition checks on distinct
//! items, all or nothing.
//!
//! Every action is parsed and validated first (a malformed action fails the whole request
//! with a `ValidationException`, as in DynamoDB). Then one `Store::write` reads every item and
//! its `decide` closure evaluates every condition and update before deciding anything: if any
//! fails, it returns no changes and the request gets `TransactionCanceledException` with one
//! reason per action, in order. Isolation comes from the store's single writer.

use crate::request::capacity::{self, Consumed, Mode, TRANSACTIONAL};
use crate::request::common::{
    Placeholders, Req, missing, refuse_reserved_attrs, return_old_on_failure, store_err, table,
    transact_items,
};
use crate::request::transact_tokens::{Lookup, fingerprint};
use crate::state::AppState;
use meridian_expr::{Condition, ExprKind, Update, parse_condition, parse_update};
use meridian_model::error::CancellationReason;
use meridian_model::size::{check_item, item_size};
use meridian_model::table::TableMeta;
use meridian_model::{ApiError, Item};
use meridian_storage::{Change, ChangeKind};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

/// Most actions in one transaction.
pub const MAX_ITEMS: usize = 100;
/// Longest `ClientRequestToken`.
pub const MAX_TOKEN_LEN: usize = 36;
/// Largest payload of one transaction: its new items (`Put`) and keys (other actions).
pub const MAX_PAYLOAD_BYTES: usize = 4 * 1024 * 1024;

/// What one action does.
enum Action {
    Put(Item),
    Update { key: Item, update: Update },
    Delete,
    Check,
}

/// Why an action could not be parsed. `Request` fails the whole request (a
/// `ValidationException`); `Action` is a problem of the item itself (a key of the wrong type, an
/// item over the size limit), which DynamoDB reports as the action's `ValidationError`
/// cancellation reason.
enum Fail {
    Request(ApiError),
    Action(ApiError),
}

impl From<ApiError> for Fail {
    fn from(e: ApiError) -> Self {
        Fail::Request(e)
    }
}

/// One parsed action.
struct Op {
    table: Arc<TableMeta>,
    key: Vec<u8>,
    cond: Option<Condition>,
    action: Action,
    return_old: bool,
    /// Bytes this action adds to the transaction's payload.
    payload: usize,
}

/// The outcome of one action inside `decide`: its change (if any) and the bytes it touched.
struct Applied {
    change: Option<ChangeKind>,
    read_bytes: Option<usize>,
    write_bytes: Option<usize>,
}

const KINDS: [(&str, &str); 4] = [
    ("Put", "put"),
    ("Update", "update"),
    ("Delete", "delete"),
    ("ConditionCheck", "conditionCheck"),
];

/// Parses and validates one `TransactItems` entry (`n` is 1-based, as in DynamoDB's messages).
fn parse_op(state: &AppState, raw: &Value, n: usize) -> Result<Op, Fail> {
    let entry = Req::nested(raw, "TransactItems")?;
    let present: Vec<&(&str, &str)> = KINDS
        .iter()
        .filter(|(k, _)| entry.get(k).is_some())
        .collect();
    let (kind, wire) = match present.as_slice() {
        [one] => **one,
        [] => {
            return Err(Fail::Request(ApiError::validation(
                "The action or operation requested is invalid. Verify that the action is typed correctly.",
            )));
        }
        _ => {
            return Err(Fail::Request(ApiError::validation(
                "TransactItems can only contain one of Check, Put, Update or Delete",
            )));
        }
    };
    let field = |member: &str| format!("transactItems.{n}.member.{wire}.{member}");
    let sub = Req::nested(entry.get(kind).unwrap_or(&Value::Null), kind)?;
    let t = table(state, sub.req_str("TableName", &field("tableName"))?)?;
    let return_old = return_old_on_failure(&sub)?;
    let ph = Placeholders::from_req(&sub)?;
    let attrs = ph.attrs()?;
    let (key_item, action) = match kind {
        "Put" => {
            let item = sub.item("Item")?.ok_or_else(|| missing(&field("item")))?;
            refuse_reserved_attrs(&item)?;
            let key = t.key_schema.key_of_item(&item).map_err(Fail::Action)?;
            check_item(&item).map_err(Fail::Action)?;
            (key, Action::Put(item))
        }
        _ => {
            let key = sub.item("Key")?.ok_or_else(|| missing(&field("key")))?;
            t.key_schema.check_key(&key)?;
            let action = match kind {
                "Update" => {
                    let src = sub
                        .str("UpdateExpression")?
                        .ok_or_else(|| missing(&field("updateExpression")))?;
                    let update = parse_update(src, &attrs)?;
                    update.refuse_key_updates(&t.key_schema)?;
                    Action::Update {
                        key: key.clone(),
                        update,
                    }
                }
                "Delete" => Action::Delete,
                _ => Action::Check,
            };
            (key, action)
        }
    };
    let cond = match sub.str("ConditionExpression")? {
        Some(src) => Some(parse_condition(src, ExprKind::Condition, &attrs)?),
        None if matches!(action, Action::Check) => {
            return Err(Fail::Request(missing(&field("conditionExpression"))));
        }
        None => None,
    };
    attrs.check_all_used()?;
    let key = t.key_schema.encode(&key_item).map_err(Fail::Action)?;
    let payload = match &action {
        Action::Put(item) => item_size(item),
        _ => item_size(&key_item),
    };
    Ok(Op {
        table: t,
        key,
        cond,
        action,
        return_old,
        payload,
    })
}

fn reason(code: &str, message: Option<String>, item: Option<Item>) -> CancellationReason {
    CancellationReason {
        code: code.to_owned(),
        message,
        item,
    }
}

/// Evaluates one action against the current item; `Err` is its cancellation reason.
fn apply(op: &Op, old: Option<&Item>) -> Result<Applied, CancellationReason> {
    if let Some(c) = &op.cond {
        match c.eval(old) {
            Ok(true) => {}
            Ok(false) => {
                let item = if op.return_old { old.cloned() } else { None };
                return Err(reason(
                    "ConditionalCheckFailed",
                    Some("The conditional request failed".into()),
                    item,
                ));
            }
            Err(e) => return Err(validation_reason(&e)),
        }
    }
    let old_size = old.map(item_size);
    Ok(match &op.action {
        Action::Put(item) => Applied {
            write_bytes: Some(item_size(item).max(old_size.unwrap_or(0))),
            change: Some(ChangeKind::Put(item.clone())),
            read_bytes: None,
        },
        Action::Update { key, update } => {
            let base = old.cloned().unwrap_or_else(|| key.clone());
            let new = update
                .apply(Some(&base))
                .map_err(|e| validation_reason(&e))?;
            check_item(&new).map_err(|e| validation_reason(&e))?;
            Applied {
                write_bytes: Some(item_size(&new).max(old_size.unwrap_or(0))),
                change: Some(ChangeKind::Put(new)),
                read_bytes: None,
            }
        }
        Action::Delete => Applied {
            // Deleting an absent item changes nothing and is not logged.
            change: old.map(|_| ChangeKind::Delete),
            write_bytes: Some(old_size.unwrap_or(0)),
            read_bytes: None,
        },
        Action::Check => Applied {
            change: None,
            read_bytes: Some(old_size.unwrap_or(0)),
            write_bytes: None,
        },
    })
}

fn validation_reason(e: &ApiError) -> CancellationReason {
    reason(
        "ValidationError",
        Some(e.message().unwrap_or_default().to_owned()),
        None,
    )
}

/// The `TransactionCanceledException` for these reasons.
pub fn cancelled(reasons: Vec<CancellationReason>) -> ApiError {
    let codes: Vec<&str> = reasons.iter().map(|r| r.code.as_str()).collect();
    ApiError::TransactionCanceled {
        message: format!(
            "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
            codes.join(", ")
        ),
        reasons,
    }
}

/// Checks `ClientRequestToken`.
fn client_token(req: &Req) -> Result<Option<String>, ApiError> {
    let Some(tok) = req.str("ClientRequestToken")? else {
        return Ok(None);
    };
    if tok.is_empty() || tok.len() > MAX_TOKEN_LEN {
        let bound = if tok.is_empty() {
            "Member must have length greater than or equal to 1"
        } else {
            "Member must have length less than or equal to 36"
        };
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{tok}' at 'clientRequestToken' failed to satisfy constraint: {bound}"
        )));
    }
    Ok(Some(tok.to_owned()))
}

/// Applies the transaction.
pub async fn handle(state: &AppState, req: Req<'_>) -> Result<Value, ApiError> {
    let raw_items = transact_items(&req, MAX_ITEMS)?;
    let token = client_token(&req)?;
    let mode = Mode::from_req(&req)?;
    let mut ops = Vec::with_capacity(raw_items.len());
    let mut seen = HashSet::new();
    // The first action whose item is invalid, and why; DynamoDB stops looking there.
    let mut invalid: Option<(usize, ApiError)> = None;
    for (i, raw) in raw_items.iter().enumerate() {
        let op = match parse_op(state, raw, i + 1) {
            Ok(op) => op,
            Err(Fail::Request(e)) => return Err(e),
            Err(Fail::Action(e)) => {
                invalid.get_or_insert((i, e));
                continue;
            }
        };
        if !seen.insert((op.table.id, op.key.clone())) {
            return Err(ApiError::validation(
                "Transaction request cannot include multiple operations on one item",
            ));
        }
        ops.push(op);
    }
    if let Some((at, e)) = invalid {
        let reasons = (0..raw_items.len())
            .map(|i| {
                if i == at {
                    validation_reason(&e)
                } else {
                    reason("None", None, None)
                }
            })
            .collect();
        return Err(cancelled(reasons));
    }
    if ops.iter().map(|o| o.payload).sum::<usize>() > MAX_PAYLOAD_BYTES {
        return Err(ApiError::validation(
            "Transaction payload size cannot exceed 4 MB",
        ));
    }
    let print = fingerprint(req.get("TransactItems").unwrap_or(&Value::Null));
    let reads: Vec<_> = ops
        .iter()
        .map(|o| (o.table.clone(), o.key.clone()))
        .collect();
    let cache = state.inner.transact_tokens.clone();
    let tok = token.clone();
    let result = state
        .store()
        .write(reads, move |cur| {
            let now = Instant::now();
            if let (Some(t), Ok(mut c)) = (&tok, cache.lock()) {
                match c.lookup(t, print, now) {
                    Lookup::Fresh => {}
                    Lookup::Replay => return (vec![], Ok((true, usage(&ops, None)))),
                    Lookup::Mismatch => {
                        return (
                            vec![],
                            Err(ApiError::IdempotentParameterMismatch(
                                "Request with the same ClientRequestToken has already been processed with different parameters"
                                    .into(),
                            )),
                        );
                    }
                }
            }
            let mut reasons = Vec::with_capacity(ops.len());
            let mut applied = Vec::with_capacity(ops.len());
            for (op, cur) in ops.iter().zip(cur) {
                match apply(op, cur.as_ref().map(|s| &s.item)) {
                    Ok(a) => {
                        reasons.push(reason("None", None, None));
                        applied.push(a);
                    }
                    Err(r) => reasons.push(r),
                }
            }
            if applied.len() != ops.len() {
                return (vec![], Err(cancelled(reasons)));
            }
            if let (Some(t), Ok(mut c)) = (&tok, cache.lock()) {
                c.record(t, print, now);
            }
            let consumed = usage(&ops, Some(&applied));
            let changes = ops
                .iter()
                .zip(applied)
                .filter_map(|(op, a)| {
                    a.change.map(|kind| Change {
                        table: op.table.clone(),
                        key: op.key.clone(),
                        kind,
                    })
                })
                .collect();
            (changes, Ok((false, consumed)))
        })
        .await;
    let (_replayed, consumed) = match result {
        Ok(r) => r?,
        Err(e) => {
            // Not applied (e.g. a table was dropped meanwhile): the token must not claim it was.
            if let (Some(t), Ok(mut c)) = (&token, state.inner.transact_tokens.lock()) {
                c.forget(t);
            }
            return Err(store_err(e));
        }
    };
    let mut out = json!({});
    capacity::attach_list(&mut out, mode, &consumed);
    Ok(out)
}

/// Capacity of the transaction: twice the plain units per action. A replay (no `applied`) is
/// billed as the one-unit reads DynamoDB reports for it.
fn usage(ops: &[Op], applied: Option<&Vec<Applied>>) -> Vec<Consumed> {
    ops.iter()
        .enumerate()
        .map(|(i, op)| {
            let name = op.table.name.as_str();
            match applied.and_then(|a| a.get(i)) {
                Some(a) => Consumed {
                    table: name.to_owned(),
                    read: a
                        .read_bytes
                        .map_or(0.0, |b| TRANSACTIONAL * capacity::read_units(b, true)),
                    write: a
                        .write_bytes
                        .map_or(0.0, |b| TRANSACTIONAL * capacity::write_units(b)),
                },
                None => Consumed::read(name, TRANSACTIONAL * capacity::read_units(0, true)),
            }
        })
        .collect()
}
