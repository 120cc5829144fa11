//! Table metadata, as stored by the region and described to clients.
//!
//! Stored as JSON inside a versioned record (see `docs/design/storage.md`): table metadata is
//! written rarely, and a self-describing form lets later versions add fields with defaults.

use crate::error::ApiError;
use crate::key::{KeySchema, KeyType};
use serde::{Deserialize, Serialize};

/// Lifecycle of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TableStatus {
    /// Serving.
    Active,
    /// Being deleted (items are removed in the background).
    Deleting,
}

impl TableStatus {
    /// DynamoDB's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TableStatus::Active => "ACTIVE",
            TableStatus::Deleting => "DELETING",
        }
    }
}

/// Billing mode and provisioned throughput (accepted and reported, never enforced).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Billing {
    /// `PROVISIONED` or `PAY_PER_REQUEST`.
    pub mode: String,
    /// Read capacity units (0 for on-demand).
    pub read_units: u64,
    /// Write capacity units (0 for on-demand).
    pub write_units: u64,
}

/// Everything the region knows about one table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableMeta {
    /// Table name (unique in the region).
    pub name: String,
    /// Storage id: a new id for every creation, so a re-created table never sees old items.
    pub id: u64,
    /// Primary key.
    pub key_schema: KeySchema,
    /// Declared attributes (name, type).
    pub attribute_definitions: Vec<(String, KeyType)>,
    /// Creation time, seconds since the epoch.
    pub created_at: f64,
    /// Lifecycle.
    pub status: TableStatus,
    /// Billing mode and throughput.
    pub billing: Billing,
    /// A UUID-shaped id reported as `TableId`.
    pub table_uuid: String,
    /// Secondary indexes, streams, TTL, tags…: later fields, kept as JSON until they exist.
    #[serde(default)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Checks a table name against DynamoDB's rules, with its message.
pub fn check_table_name(name: &str, field: &str) -> Result<(), ApiError> {
    if name.len() < 3 || name.len() > 255 {
        let bound = if name.len() < 3 {
            "Member must have length greater than or equal to 3"
        } else {
            "Member must have length less than or equal to 255"
        };
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{name}' at '{field}' failed to satisfy constraint: {bound}"
        )));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{name}' at '{field}' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        assert!(check_table_name("abc", "tableName").is_ok());
        assert!(check_table_name("a.b-c_D9", "tableName").is_ok());
        for bad in ["ab", "with space", "ünï", &"x".repeat(256)] {
            assert!(check_table_name(bad, "tableName").is_err(), "{bad}");
        }
    }
}
