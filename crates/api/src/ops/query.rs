//! `Query`.

use crate::request::common::{Placeholders, Req, condition, missing, projection, table};
use crate::request::paging::{
    PageSpec, Source, after_start, exclusive_start, exclusive_start_in_index, index_bounds, page,
    parse_select_and_limit, source_for,
};
use crate::state::AppState;
use meridian_expr::{ExprKind, parse_key_condition};
use meridian_model::ApiError;
use serde_json::Value;

/// Reads one partition's items in sort-key order (or reversed), a page at a time.
pub async fn handle(state: &AppState, mut req: Req<'_>) -> Result<Value, ApiError> {
    let t = table(state, req.req_str("TableName", "tableName")?)?;
    // Checked before the legacy parameters, so a lone QueryFilter reports the missing
    // key condition first, as DynamoDB does.
    if req.get("KeyConditions").is_none() && req.get("KeyConditionExpression").is_none() {
        return Err(missing("keyConditionExpression"));
    }
    crate::request::legacy::translate(&mut req, crate::request::legacy::Op::Query, &t.key_schema)?;
    let consistent = req.bool("ConsistentRead")?.unwrap_or(false);
    let capacity = crate::request::capacity::Mode::from_req(&req)?;
    let forward = req.bool("ScanIndexForward")?.unwrap_or(true);
    let ph = Placeholders::from_req(&req)?;
    let attrs = ph.attrs()?;
    let kc_src = req
        .str("KeyConditionExpression")?
        .ok_or_else(|| missing("keyConditionExpression"))?;
    let index_name = req.str("IndexName")?;
    let source = source_for(
        t.clone(),
        index_name,
        req.str("Select")?,
        req.get("ProjectionExpression").is_some(),
    )?;
    crate::request::paging::check_consistent(&source, consistent)?;
    let key_schema = match &source {
        Source::Index { index, .. } => index.key_schema.clone(),
        Source::Table(_) => t.key_schema.clone(),
    };
    let kc = parse_key_condition(kc_src, &attrs, &key_schema)?;
    let filter = condition(&req, "FilterExpression", ExprKind::Filter, &attrs)?;
    if let Some(f) = &filter
        && let Some(k) = f
            .top_level_attrs()
            .into_iter()
            .find(|a| key_schema.is_key_attr(a))
    {
        return Err(ApiError::validation(format!(
            "Filter Expression can only contain non-primary key attributes: Primary key attribute: {k}"
        )));
    }
    let proj = projection(&req, &attrs)?;
    attrs.check_all_used()?;
    let (select, limit) = parse_select_and_limit(&req, proj.is_some(), index_name.is_some())?;
    let range = kc.storage_range(&key_schema)?;
    let range = match &source {
        Source::Index { index, .. } => after_start(
            index_bounds(range),
            exclusive_start_in_index(&req, &t, index)?,
            !forward,
        ),
        Source::Table(_) => after_start(range, exclusive_start(&req, &t.key_schema)?, !forward),
    };
    let spec = PageSpec {
        limit,
        filter,
        projection: proj,
        select,
        reverse: !forward,
        capacity,
        consistent,
    };
    page(state, source, range, spec).await
}
