//! Table metadata, as stored by the region and described to clients.
//!
//! Stored as JSON inside a versioned record (see `docs/design/storage.md`): table metadata is
//! written rarely, and a self-describing form lets later versions add fields with defaults.

use crate::error::ApiError;
use crate::key::{KeySchema, KeyType};
use crate::value::{AttributeValue, Item};
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
    /// Secondary indexes (global and local).
    #[serde(default)]
    pub indexes: Vec<IndexMeta>,
    /// Version of the last change to this metadata (create/update), for last-writer-wins
    /// between regions; `None` until the writer stamps it.
    #[serde(default)]
    pub version: Option<meridian_core::Version>,
    /// Regions holding a replica (`None`: every region of the cluster).
    #[serde(default)]
    pub replicas: Option<std::collections::BTreeSet<String>>,
    /// Version of the `CreateTable` (`None` for tables stored before it was recorded): a
    /// replicated metadata change with another version is a change to an existing table.
    #[serde(default)]
    pub created: Option<meridian_core::Version>,
    /// Streams, TTL, tags…: fields without a typed home yet, kept as JSON.
    #[serde(default)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Global or local secondary index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IndexKind {
    /// A global secondary index (any key).
    Global,
    /// A local secondary index (the table's partition key, another sort key).
    Local,
}

/// Which attributes an index stores.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IndexProjection {
    /// Every attribute.
    All,
    /// Table and index key attributes only.
    KeysOnly,
    /// Keys plus these attributes.
    Include(Vec<String>),
}

/// Lifecycle of an index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IndexStatus {
    /// Being backfilled from the table.
    Creating,
    /// Queryable.
    Active,
}

/// One secondary index.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndexMeta {
    /// Index name (unique within the table).
    pub name: String,
    /// Global or local.
    pub kind: IndexKind,
    /// Storage id of the index's entries (from the same counter as table ids).
    pub id: u64,
    /// The index's key.
    pub key_schema: KeySchema,
    /// Projected attributes.
    pub projection: IndexProjection,
    /// Lifecycle.
    pub status: IndexStatus,
    /// Provisioned throughput of a global index (reported only).
    #[serde(default)]
    pub read_units: u64,
    /// Provisioned throughput of a global index (reported only).
    #[serde(default)]
    pub write_units: u64,
}

impl IndexMeta {
    /// The index entry of `item`: `None` when the item lacks an index key attribute (sparse
    /// index). The entry holds the projected attributes.
    pub fn entry_of(&self, table_key: &KeySchema, item: &Item) -> Option<Item> {
        if !self.key_schema.attrs().all(|a| item.contains_key(&a.name)) {
            return None;
        }
        Some(match &self.projection {
            IndexProjection::All => item.clone(),
            IndexProjection::KeysOnly | IndexProjection::Include(_) => item
                .iter()
                .filter(|(k, _)| {
                    table_key.is_key_attr(k)
                        || self.key_schema.is_key_attr(k)
                        || matches!(&self.projection, IndexProjection::Include(names) if names.contains(k))
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }
}

impl TableMeta {
    /// An index by name.
    pub fn index(&self, name: &str) -> Option<&IndexMeta> {
        self.indexes.iter().find(|i| i.name == name)
    }

    /// Refuses an item whose index key attributes have the wrong type, an empty value or a value
    /// over the key-size limit, as DynamoDB does.
    pub fn check_index_keys(&self, item: &Item) -> Result<(), ApiError> {
        for idx in &self.indexes {
            for attr in idx.key_schema.attrs() {
                let Some(v) = item.get(&attr.name) else {
                    continue;
                };
                let ok = matches!(
                    (attr.ty, v),
                    (KeyType::S, AttributeValue::S(_))
                        | (KeyType::N, AttributeValue::N(_))
                        | (KeyType::B, AttributeValue::B(_))
                );
                if !ok {
                    return Err(ApiError::validation(format!(
                        "One or more parameter values were invalid: Type mismatch for Index Key {} Expected: {} Actual: {} IndexName: {}",
                        attr.name,
                        attr.ty.as_str(),
                        v.type_name(),
                        idx.name
                    )));
                }
                let len = crate::key::key_value_len(v);
                let max = idx.key_schema.max_len(&attr.name);
                if let Some(n) = len.filter(|n| *n > max) {
                    return Err(ApiError::validation(format!(
                        "One or more parameter values were invalid: Size limit exceeded for Index Key {} Actual Size: {n} bytes Max Size: {max} bytes IndexName: {}",
                        attr.name, idx.name
                    )));
                }
                if len == Some(0) {
                    return Err(ApiError::validation(format!(
                        "One or more parameter values are not valid. A value specified for a secondary index key is not supported. The AttributeValue for a key attribute cannot contain an empty string value. IndexName: {}, IndexKey: {}",
                        idx.name, attr.name
                    )));
                }
            }
        }
        Ok(())
    }
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
