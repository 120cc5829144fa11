//! `DescribeTimeToLive`.

use crate::request::common::Req;
use crate::state::AppState;
use crate::ttl::ttl_attribute;
use meridian_model::ApiError;
use meridian_model::error::table_not_found;
use meridian_model::table::check_table_name;
use serde_json::{Value, json};

/// Reports `ENABLED` (with the attribute) or `DISABLED`.
pub async fn handle(state: &AppState, req: Req<'_>) -> Result<Value, ApiError> {
    let name = req.req_str("TableName", "tableName")?;
    check_table_name(name, "tableName")?;
    let t = state
        .store()
        .table(name)
        .ok_or_else(|| table_not_found(name))?;
    Ok(match ttl_attribute(&t) {
        Some(attr) => json!({"TimeToLiveDescription": {
            "TimeToLiveStatus": "ENABLED", "AttributeName": attr
        }}),
        None => json!({"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}),
    })
}
