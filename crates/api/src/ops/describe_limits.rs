//! `DescribeLimits`.

use crate::request::common::Req;
use crate::state::AppState;
use meridian_model::ApiError;
use serde_json::{Value, json};

/// DynamoDB's default account and table quotas. Meridian enforces none of them; the numbers
/// let tools that size provisioned throughput against them work unchanged.
pub async fn handle(_state: &AppState, _req: Req<'_>) -> Result<Value, ApiError> {
    Ok(json!({
        "AccountMaxReadCapacityUnits": 80000,
        "AccountMaxWriteCapacityUnits": 80000,
        "TableMaxReadCapacityUnits": 40000,
        "TableMaxWriteCapacityUnits": 40000,
    }))
}
