//! `UpdateTimeToLive`.

use crate::request::common::{Req, missing, store_err};
use crate::state::AppState;
use crate::ttl::{TTL_KEY, enabled};
use meridian_model::ApiError;
use meridian_model::error::table_not_found;
use meridian_model::table::check_table_name;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// Enables or disables TTL on a table. Takes effect at once (DynamoDB passes through
/// `ENABLING`/`DISABLING` for up to an hour).
pub async fn handle(state: &AppState, req: Req<'_>) -> Result<Value, ApiError> {
    let name = req.req_str("TableName", "tableName")?.to_owned();
    check_table_name(&name, "tableName")?;
    let spec = req
        .get("TimeToLiveSpecification")
        .ok_or_else(|| missing("timeToLiveSpecification"))?;
    let spec = Req::nested(spec, "TimeToLiveSpecification")?;
    let attr = spec
        .req_str("AttributeName", "timeToLiveSpecification.attributeName")?
        .to_owned();
    let on = spec
        .bool("Enabled")?
        .ok_or_else(|| missing("timeToLiveSpecification.enabled"))?;
    if attr.is_empty() {
        return Err(ApiError::validation(
            "TimeToLiveSpecification.AttributeName must be non empty",
        ));
    }
    if state.store().table(&name).is_none() {
        return Err(table_not_found(&name));
    }
    // The check and the change happen together in the writer; the closure reports a refusal
    // through this cell (leaving the metadata as it was).
    let refused: Arc<Mutex<Option<ApiError>>> = Arc::default();
    let cell = refused.clone();
    let a = attr.clone();
    state
        .store()
        .update_table(
            &name,
            Box::new(move |meta| {
                let current = crate::ttl::ttl_attribute(meta).map(str::to_owned);
                let err = match (&current, on) {
                    (Some(_), true) => Some("TimeToLive is already enabled".to_owned()),
                    (None, false) => Some("TimeToLive is already disabled".to_owned()),
                    (Some(cur), false) if *cur != a => Some(format!(
                        "TimeToLive is active on a different AttributeName: current AttributeName is {cur}"
                    )),
                    _ => None,
                };
                if let Some(msg) = err {
                    if let Ok(mut c) = cell.lock() {
                        *c = Some(ApiError::validation(msg));
                    }
                    return;
                }
                if on {
                    meta.extra.insert(TTL_KEY.into(), enabled(&a));
                } else {
                    meta.extra.remove(TTL_KEY);
                }
            }),
        )
        .await
        .map_err(|e| match e {
            meridian_storage::StoreError::NoSuchTable(_) => table_not_found(&name),
            other => store_err(other),
        })?;
    if let Some(e) = refused.lock().ok().and_then(|mut c| c.take()) {
        return Err(e);
    }
    Ok(json!({"TimeToLiveSpecification": {"AttributeName": attr, "Enabled": on}}))
}
