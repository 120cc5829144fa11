//! Creates the benchmark table and waits until it is usable.

use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use serde_json::json;
use tokio::time::{Instant, sleep};

use crate::client::Connection;

/// How long a table may take to become ACTIVE before the run is abandoned.
const ACTIVE_DEADLINE: Duration = Duration::from_secs(30);
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Creates `table` (`pk` string hash key, on-demand billing) unless it already exists, then
/// polls `DescribeTable` until its status is `ACTIVE`.
pub async fn ensure_table(conn: &mut Connection, table: &str) -> anyhow::Result<()> {
    let create = json!({
        "TableName": table,
        "AttributeDefinitions": [{ "AttributeName": "pk", "AttributeType": "S" }],
        "KeySchema": [{ "AttributeName": "pk", "KeyType": "HASH" }],
        "BillingMode": "PAY_PER_REQUEST",
    });
    let response = conn
        .call("CreateTable", Bytes::from(serde_json::to_vec(&create)?))
        .await
        .context("CreateTable")?;
    if !response.is_ok() && !is_error_type(&response.body, "ResourceInUseException") {
        bail!(
            "CreateTable {table} failed with HTTP {}: {}",
            response.status,
            response.body_text()
        );
    }

    let describe = Bytes::from(serde_json::to_vec(&json!({ "TableName": table }))?);
    let deadline = Instant::now() + ACTIVE_DEADLINE;
    loop {
        let response = conn
            .call("DescribeTable", describe.clone())
            .await
            .context("DescribeTable")?;
        if response.is_ok() && table_status(&response.body).as_deref() == Some("ACTIVE") {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "table {table} not ACTIVE after {ACTIVE_DEADLINE:?}; last DescribeTable: HTTP {} {}",
                response.status,
                response.body_text()
            );
        }
        sleep(POLL_INTERVAL).await;
    }
}

/// Whether an error body's `__type` names `error` (`"com.amazonaws.dynamodb.v20120810#X"`
/// or plain `"X"`).
fn is_error_type(body: &[u8], error: &str) -> bool {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    value
        .get("__type")
        .and_then(serde_json::Value::as_str)
        .is_some_and(|t| t.rsplit('#').next() == Some(error))
}

fn table_status(body: &[u8]) -> Option<String> {
    let value = serde_json::from_slice::<serde_json::Value>(body).ok()?;
    Some(value.get("Table")?.get("TableStatus")?.as_str()?.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_error_types_with_and_without_namespace() {
        let namespaced =
            br#"{"__type":"com.amazonaws.dynamodb.v20120810#ResourceInUseException","message":"x"}"#;
        assert!(is_error_type(namespaced, "ResourceInUseException"));
        assert!(is_error_type(
            br#"{"__type":"ResourceInUseException"}"#,
            "ResourceInUseException"
        ));
        assert!(!is_error_type(
            br#"{"__type":"com.amazonaws.dynamodb.v20120810#ValidationException"}"#,
            "ResourceInUseException"
        ));
        assert!(!is_error_type(b"not json", "ResourceInUseException"));
    }

    #[test]
    fn reads_table_status() {
        let body = br#"{"Table":{"TableName":"bench","TableStatus":"CREATING"}}"#;
        assert_eq!(table_status(body).as_deref(), Some("CREATING"));
        assert_eq!(table_status(b"{}"), None);
    }
}
