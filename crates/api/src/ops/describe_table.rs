//! `DescribeTable`.

use crate::request::common::Req;
use crate::request::describe::describe;
use crate::state::AppState;
use meridian_model::ApiError;
use meridian_model::error::table_not_found;
use meridian_model::table::check_table_name;
use serde_json::{Value, json};

/// Describes one table.
pub async fn handle(state: &AppState, req: Req<'_>) -> Result<Value, ApiError> {
    let name = req.req_str("TableName", "tableName")?;
    check_table_name(name, "tableName")?;
    let t = state
        .store()
        .table(name)
        .ok_or_else(|| table_not_found(name))?;
    Ok(json!({"Table": describe(state, &t, None)}))
}
