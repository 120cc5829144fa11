//! `ListTables`.

use crate::request::common::Req;
use crate::state::AppState;
use meridian_model::ApiError;
use meridian_model::table::check_table_name;
use serde_json::{Value, json};

/// Lists table names in order, `Limit` (1–100, default 100) at a time.
pub async fn handle(state: &AppState, req: Req<'_>) -> Result<Value, ApiError> {
    let limit = req.int("Limit")?.unwrap_or(100);
    if !(1..=100).contains(&limit) {
        let bound = if limit < 1 {
            "Member must have value greater than or equal to 1"
        } else {
            "Member must have value less than or equal to 100"
        };
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: {bound}"
        )));
    }
    let start = req.str("ExclusiveStartTableName")?;
    if let Some(s) = start {
        check_table_name(s, "exclusiveStartTableName")?;
    }
    let names = state.store().table_names();
    let after: Vec<&String> = names
        .iter()
        .filter(|n| start.is_none_or(|s| n.as_str() > s))
        .collect();
    let page: Vec<&String> = after.iter().take(limit as usize).copied().collect();
    let mut out = json!({"TableNames": page});
    if after.len() > page.len()
        && let (Some(last), Some(o)) = (page.last(), out.as_object_mut())
    {
        o.insert("LastEvaluatedTableName".into(), json!(last));
    }
    Ok(out)
}
