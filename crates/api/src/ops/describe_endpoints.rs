//! `DescribeEndpoints`.

use crate::request::common::Req;
use crate::state::AppState;
use meridian_model::ApiError;
use serde_json::{Value, json};

/// How long clients may cache the answer (DynamoDB's value).
pub const CACHE_MINUTES: u64 = 1440;

/// Names this region server itself as the endpoint (its listen address, as set by the binary),
/// so SDKs that use endpoint discovery keep talking to it.
pub async fn handle(state: &AppState, _req: Req<'_>) -> Result<Value, ApiError> {
    let address = state
        .inner
        .config
        .endpoint_address
        .clone()
        .unwrap_or_else(|| "localhost".to_owned());
    Ok(json!({"Endpoints": [{"Address": address, "CachePeriodInMinutes": CACHE_MINUTES}]}))
}
