//! `UntagResource`.

use crate::request::common::{Req, missing};
use crate::request::tags::{check_key, table_of_arn, update_tags};
use crate::state::AppState;
use meridian_model::ApiError;
use serde_json::{Value, json};

/// Removes tags (by key) from a table; absent keys are ignored.
pub async fn handle(state: &AppState, req: Req<'_>) -> Result<Value, ApiError> {
    let raw = req.list("TagKeys")?;
    let (arn, name) = table_of_arn(&req)?;
    let raw = raw.ok_or_else(|| missing("tagKeys"))?;
    if raw.is_empty() {
        return Err(ApiError::validation(
            "Atleast one Tag Key needs to be provided as Input.",
        ));
    }
    let mut keys = Vec::with_capacity(raw.len());
    for k in raw {
        let k = k.as_str().ok_or_else(|| {
            ApiError::Serialization(
                "Unexpected value type in payload: member 'TagKeys' must be a list of strings"
                    .into(),
            )
        })?;
        check_key(k)?;
        keys.push(k.to_owned());
    }
    update_tags(state, &name, &arn, move |current| {
        for k in &keys {
            current.remove(k);
        }
        Ok(())
    })
    .await?;
    Ok(json!({}))
}
