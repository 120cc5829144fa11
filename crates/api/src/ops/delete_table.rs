//! `DeleteTable`.

use crate::request::common::Req;
use crate::request::describe::describe;
use crate::state::AppState;
use meridian_model::ApiError;
use meridian_model::error::table_not_found;
use meridian_model::table::check_table_name;
use meridian_storage::StoreError;
use serde_json::{Value, json};

/// Deletes a table; its items are purged in the background.
pub async fn handle(state: &AppState, req: Req<'_>) -> Result<Value, ApiError> {
    let name = req.req_str("TableName", "tableName")?;
    check_table_name(name, "tableName")?;
    match state.store().delete_table(name).await {
        Ok(t) => {
            // DeleteTable's description is the short one: no schema, indexes or creation time.
            let mut d = describe(state, &t, Some("DELETING"));
            if let Some(m) = d.as_object_mut() {
                for k in [
                    "CreationDateTime",
                    "KeySchema",
                    "AttributeDefinitions",
                    "GlobalSecondaryIndexes",
                    "LocalSecondaryIndexes",
                ] {
                    m.remove(k);
                }
            }
            Ok(json!({"TableDescription": d}))
        }
        Err(StoreError::NoSuchTable(_)) => Err(table_not_found(name)),
        Err(e) => Err(crate::request::common::store_err(e)),
    }
}
