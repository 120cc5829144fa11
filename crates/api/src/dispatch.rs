//! `X-Amz-Target` → operation. Adding an operation is one file in `ops/` and one arm here.

use crate::ops;
use crate::request::common::Req;
use crate::state::AppState;
use meridian_model::ApiError;
use serde_json::Value;

const OPERATIONS: &[&str] = &[
    "CreateTable",
    "DescribeTable",
    "ListTables",
    "DeleteTable",
    "PutItem",
    "GetItem",
    "DeleteItem",
    "UpdateItem",
    "BatchGetItem",
    "BatchWriteItem",
    "Query",
    "Scan",
    "TransactWriteItems",
    "TransactGetItems",
    "UpdateTimeToLive",
    "DescribeTimeToLive",
    "TagResource",
    "UntagResource",
    "ListTagsOfResource",
    "DescribeEndpoints",
    "DescribeLimits",
    "UpdateTable",
];

/// Whether `op` is an operation this server implements (for metric labels).
pub fn is_known(op: &str) -> bool {
    OPERATIONS.contains(&op)
}

/// Parses the body and runs the operation.
/// Bodies up to this size are parsed where the request runs; larger ones (up to 16 MiB, whose
/// parse takes milliseconds) on the blocking pool, so they never hold one of the region's two
/// async workers.
const PARSE_INLINE_BYTES: usize = 64 * 1024;

pub async fn dispatch(state: &AppState, op: &str, body: bytes::Bytes) -> Result<Value, ApiError> {
    if !is_known(op) {
        return Err(ApiError::UnknownOperation);
    }
    let req = if body.len() <= PARSE_INLINE_BYTES {
        Req::parse(&body)?
    } else {
        tokio::task::spawn_blocking(move || Req::parse(&body))
            .await
            .map_err(|e| ApiError::InternalServerError(e.to_string()))??
    };
    match op {
        "CreateTable" => ops::create_table::handle(state, req).await,
        "DescribeTable" => ops::describe_table::handle(state, req).await,
        "ListTables" => ops::list_tables::handle(state, req).await,
        "DeleteTable" => ops::delete_table::handle(state, req).await,
        "PutItem" => ops::put_item::handle(state, req).await,
        "GetItem" => ops::get_item::handle(state, req).await,
        "DeleteItem" => ops::delete_item::handle(state, req).await,
        "UpdateItem" => ops::update_item::handle(state, req).await,
        "BatchGetItem" => ops::batch_get_item::handle(state, req).await,
        "BatchWriteItem" => ops::batch_write_item::handle(state, req).await,
        "Query" => ops::query::handle(state, req).await,
        "Scan" => ops::scan::handle(state, req).await,
        "TransactWriteItems" => ops::transact_write_items::handle(state, req).await,
        "TransactGetItems" => ops::transact_get_items::handle(state, req).await,
        "UpdateTimeToLive" => ops::update_time_to_live::handle(state, req).await,
        "DescribeTimeToLive" => ops::describe_time_to_live::handle(state, req).await,
        "TagResource" => ops::tag_resource::handle(state, req).await,
        "UntagResource" => ops::untag_resource::handle(state, req).await,
        "ListTagsOfResource" => ops::list_tags_of_resource::handle(state, req).await,
        "DescribeEndpoints" => ops::describe_endpoints::handle(state, req).await,
        "DescribeLimits" => ops::describe_limits::handle(state, req).await,
        "UpdateTable" => ops::update_table::handle(state, req).await,
        _ => Err(ApiError::UnknownOperation),
    }
}
