//! `ListTagsOfResource`.

use crate::request::common::Req;
use crate::request::tags::{arn_not_found, table_of_arn, tags_of};
use crate::state::AppState;
use meridian_model::ApiError;
use serde_json::{Value, json};

/// Lists a table's tags (all of them: at most 50, so never a `NextToken`).
pub async fn handle(state: &AppState, req: Req<'_>) -> Result<Value, ApiError> {
    let (arn, name) = table_of_arn(&req)?;
    req.str("NextToken")?;
    let t = state
        .store()
        .table(&name)
        .ok_or_else(|| arn_not_found(&arn))?;
    let tags: Vec<Value> = tags_of(&t)
        .into_iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    Ok(json!({"Tags": tags}))
}
