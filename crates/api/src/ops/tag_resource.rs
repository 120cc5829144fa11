//! `TagResource`.

use crate::request::common::{Req, missing};
use crate::request::tags::{MAX_TAGS, parse_tags, table_of_arn, update_tags};
use crate::state::AppState;
use meridian_model::ApiError;
use serde_json::{Value, json};

/// Adds or overwrites tags on a table.
pub async fn handle(state: &AppState, req: Req<'_>) -> Result<Value, ApiError> {
    let raw = req.list("Tags")?;
    let (arn, name) = table_of_arn(&req)?;
    let raw = raw.ok_or_else(|| missing("tags"))?;
    if raw.is_empty() {
        return Err(ApiError::validation(
            "Atleast one Tag needs to be provided as Input.",
        ));
    }
    let tags = parse_tags(raw)?;
    update_tags(state, &name, &arn, move |current| {
        for (k, v) in tags {
            current.insert(k, Value::String(v));
        }
        if current.len() > MAX_TAGS {
            return Err(ApiError::validation(
                "Number of Tags exceed the current limit for the provided ResourceArn",
            ));
        }
        Ok(())
    })
    .await?;
    Ok(json!({}))
}
