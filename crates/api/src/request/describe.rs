//! `TableDescription` as DynamoDB returns it.

use crate::state::AppState;
use meridian_model::table::TableMeta;
use serde_json::{Value, json};

/// The table's ARN in this region.
pub fn table_arn(region: &str, name: &str) -> String {
    format!("arn:aws:dynamodb:{region}:000000000000:table/{name}")
}

/// Describes a table, with `status` overriding the stored one (e.g. `DELETING`).
pub fn describe(state: &AppState, t: &TableMeta, status: Option<&str>) -> Value {
    let stats = state.store().stats(t.id);
    let mut key_schema = vec![json!({"AttributeName": t.key_schema.hash.name, "KeyType": "HASH"})];
    if let Some(r) = &t.key_schema.range {
        key_schema.push(json!({"AttributeName": r.name, "KeyType": "RANGE"}));
    }
    let defs: Vec<Value> = t
        .attribute_definitions
        .iter()
        .map(|(n, ty)| json!({"AttributeName": n, "AttributeType": ty.as_str()}))
        .collect();
    let mut d = json!({
        "AttributeDefinitions": defs,
        "TableName": t.name,
        "KeySchema": key_schema,
        "TableStatus": status.unwrap_or(t.status.as_str()),
        "CreationDateTime": t.created_at,
        "ProvisionedThroughput": {
            "NumberOfDecreasesToday": 0,
            "ReadCapacityUnits": t.billing.read_units,
            "WriteCapacityUnits": t.billing.write_units,
        },
        "TableSizeBytes": stats.size_bytes.max(0),
        "ItemCount": stats.item_count.max(0),
        "TableArn": table_arn(state.region(), &t.name),
        "TableId": t.table_uuid,
        "DeletionProtectionEnabled": false,
    });
    let (gsis, lsis) = super::indexes::describe_indexes(state.region(), t);
    if let Some(o) = d.as_object_mut() {
        if !gsis.is_empty() {
            o.insert("GlobalSecondaryIndexes".into(), Value::Array(gsis));
        }
        if !lsis.is_empty() {
            o.insert("LocalSecondaryIndexes".into(), Value::Array(lsis));
        }
    }
    // Tables are global: every region of the cluster holds a replica (or the table's own set).
    let cfg = &state.inner.config;
    if !cfg.peer_regions.is_empty()
        && let Some(o) = d.as_object_mut()
    {
        let mut regions: Vec<String> = match &t.replicas {
            Some(r) => r.iter().cloned().collect(),
            None => std::iter::once(cfg.region.clone())
                .chain(cfg.peer_regions.iter().cloned())
                .collect(),
        };
        regions.sort();
        let replicas: Vec<Value> = regions
            .iter()
            .map(|r| json!({"RegionName": r, "ReplicaStatus": "ACTIVE"}))
            .collect();
        o.insert("Replicas".into(), Value::Array(replicas));
        o.insert("GlobalTableVersion".into(), json!("2019.11.21"));
    }
    if t.billing.mode == "PAY_PER_REQUEST"
        && let Some(o) = d.as_object_mut()
    {
        o.insert(
            "BillingModeSummary".into(),
            json!({"BillingMode": "PAY_PER_REQUEST", "LastUpdateToPayPerRequestDateTime": t.created_at}),
        );
    }
    d
}
