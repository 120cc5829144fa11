//! `Query`.

use super::common::{Placeholders, Req, condition, missing, projection, table};
use super::paging::{PageSpec, after_start, exclusive_start, page, parse_select_and_limit};
use crate::state::AppState;
use meridian_expr::{ExprKind, parse_key_condition};
use meridian_model::ApiError;
use serde_json::Value;

/// Reads one partition's items in sort-key order (or reversed), a page at a time.
pub async fn handle(state: &AppState, req: Req) -> Result<Value, ApiError> {
    let t = table(state, req.req_str("TableName", "tableName")?)?;
    req.refuse_legacy(&[
        "KeyConditions",
        "QueryFilter",
        "AttributesToGet",
        "ConditionalOperator",
    ])?;
    if req.str("IndexName")?.is_some() {
        return Err(ApiError::validation(
            "Secondary indexes are not supported yet by Meridian",
        ));
    }
    req.bool("ConsistentRead")?;
    let forward = req.bool("ScanIndexForward")?.unwrap_or(true);
    let ph = Placeholders::from_req(&req)?;
    let attrs = ph.attrs()?;
    let kc_src = req
        .str("KeyConditionExpression")?
        .ok_or_else(|| missing("keyConditionExpression"))?;
    let kc = parse_key_condition(kc_src, &attrs, &t.key_schema)?;
    let filter = condition(&req, "FilterExpression", ExprKind::Filter, &attrs)?;
    let proj = projection(&req, &attrs)?;
    attrs.check_all_used()?;
    let (select, limit) = parse_select_and_limit(&req, proj.is_some(), false)?;
    let start = exclusive_start(&req, &t.key_schema)?;
    let range = after_start(kc.storage_range(&t.key_schema)?, start, !forward);
    let spec = PageSpec {
        limit,
        filter,
        projection: proj,
        select,
        reverse: !forward,
    };
    page(state, t, range, spec).await
}
