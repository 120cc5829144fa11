//! `UpdateTable`: billing mode and provisioned throughput (accepted, persisted and reported;
//! never enforced), global secondary indexes (created `CREATING` and backfilled by the region's
//! index builder, or deleted), and replicas (`ReplicaUpdates`, as DynamoDB 2019.11.21 global
//! tables: the change replicates, and a region dropped from the set drops its copy). Other
//! changes are refused with a clear `ValidationException`.

use crate::request::common::{Req, capacity_units, store_err};
use crate::request::describe::describe;
use crate::request::indexes::{MAX_GSIS, check_definitions_used, parse_index};
use crate::state::AppState;
use meridian_model::ApiError;
use meridian_model::error::table_not_found;
use meridian_model::key::KeyType;
use meridian_model::table::{
    Billing, IndexKind, IndexMeta, IndexStatus, TableMeta, check_table_name,
};
use meridian_storage::StoreError;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Parameters of UpdateTable that Meridian does not implement, and why.
const REFUSED: [(&str, &str); 9] = [
    (
        "StreamSpecification",
        "DynamoDB Streams are not supported; use the change log",
    ),
    (
        "SSESpecification",
        "encryption at rest is configured on the host, not per table",
    ),
    ("TableClass", "there is one storage class"),
    (
        "DeletionProtectionEnabled",
        "deletion protection is not supported yet",
    ),
    (
        "OnDemandThroughput",
        "on-demand throughput limits are not supported",
    ),
    ("WarmThroughput", "warm throughput is not supported"),
    (
        "MultiRegionConsistency",
        "replication is asynchronous (last writer wins)",
    ),
    (
        "GlobalTableWitnessUpdates",
        "global table witnesses are not supported",
    ),
    (
        "GlobalTableSettingsReplicationMode",
        "table settings are per region",
    ),
];

fn invalid(msg: &str) -> ApiError {
    ApiError::validation(format!("One or more parameter values were invalid: {msg}"))
}

/// The billing the request asks for, given the current one.
fn new_billing(req: &Req, cur: &Billing) -> Result<Billing, ApiError> {
    let mode = req.str("BillingMode")?;
    let pt = req.map("ProvisionedThroughput")?;
    if mode.is_none() && pt.is_none() {
        return Ok(cur.clone());
    }
    let target = mode.unwrap_or(cur.mode.as_str());
    match target {
        "PAY_PER_REQUEST" => {
            if pt.is_some() {
                return Err(invalid(if mode.is_some() {
                    "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST"
                } else {
                    "ProvisionedThroughput cannot be specified when BillingMode is PAY_PER_REQUEST"
                }));
            }
            Ok(Billing {
                mode: target.into(),
                read_units: 0,
                write_units: 0,
            })
        }
        "PROVISIONED" => {
            let Some(pt) = pt else {
                if cur.mode == "PROVISIONED" {
                    return Ok(cur.clone());
                }
                return Err(invalid(
                    "ProvisionedThroughput must be specified when BillingMode is PROVISIONED",
                ));
            };
            let read = capacity_units(pt, "ReadCapacityUnits", "readCapacityUnits")?;
            let write = capacity_units(pt, "WriteCapacityUnits", "writeCapacityUnits")?;
            if cur.mode == "PROVISIONED" && cur.read_units == read && cur.write_units == write {
                return Err(ApiError::validation(format!(
                    "The provisioned throughput for the table will not change. The requested value equals the current value. Current ReadCapacityUnits provisioned for the table: {}. Requested ReadCapacityUnits: {read}. Current WriteCapacityUnits provisioned for the table: {}. Requested WriteCapacityUnits: {write}. Refer to the Amazon DynamoDB Developer Guide for current limits and how to request higher limits.",
                    cur.read_units, cur.write_units
                )));
            }
            Ok(Billing {
                mode: target.into(),
                read_units: read,
                write_units: write,
            })
        }
        other => Err(ApiError::validation(format!(
            "1 validation error detected: Value '{other}' at 'billingMode' failed to satisfy constraint: Member must satisfy enum value set: [PROVISIONED, PAY_PER_REQUEST]"
        ))),
    }
}

/// Changes a table's billing mode or provisioned throughput. The table stays `ACTIVE`.
pub async fn handle(state: &AppState, req: Req<'_>) -> Result<Value, ApiError> {
    let name = req.req_str("TableName", "tableName")?.to_owned();
    check_table_name(&name, "tableName")?;
    for (p, why) in REFUSED {
        if req.get(p).is_some() {
            return Err(ApiError::validation(format!(
                "{p} is not supported by Meridian ({why}); UpdateTable accepts BillingMode and ProvisionedThroughput"
            )));
        }
    }
    let gsi_updates = req.list("GlobalSecondaryIndexUpdates")?;
    let replica_updates = req.list("ReplicaUpdates")?;
    if req.str("BillingMode")?.is_none()
        && req.get("ProvisionedThroughput").is_none()
        && gsi_updates.is_none()
        && replica_updates.is_none()
    {
        return Err(ApiError::validation(
            "At least one of ProvisionedThroughput, BillingMode, UpdateStreamEnabled, GlobalSecondaryIndexUpdates, SSESpecification, ReplicaUpdates, MultiAccountReplicaReady, ReplicaTransitRoleArn, MultiRegionConsistency, DeletionProtectionEnabled, OnDemandThroughput, WarmThroughput or TableClass is required",
        ));
    }
    let t = state
        .store()
        .table(&name)
        .ok_or_else(|| table_not_found(&name))?;
    let billing = new_billing(&req, &t.billing)?;
    let (defs, indexes) = index_updates(&req, &t, &billing, gsi_updates)?;
    let replicas = replica_set(state, &t, replica_updates)?;
    let t = state
        .store()
        .update_table(
            &name,
            Box::new(move |meta| {
                meta.billing = billing;
                meta.attribute_definitions = defs;
                meta.indexes = indexes;
                meta.replicas = replicas;
            }),
        )
        .await
        .map_err(|e| match e {
            StoreError::NoSuchTable(_) => table_not_found(&name),
            other => store_err(other),
        })?;
    Ok(json!({"TableDescription": describe(state, &t, None)}))
}

/// Attribute definitions: name and key type.
type Definitions = Vec<(String, KeyType)>;

/// Applies `GlobalSecondaryIndexUpdates` (Create / Update / Delete) to the table's indexes and
/// attribute definitions.
fn index_updates(
    req: &Req,
    t: &TableMeta,
    billing: &Billing,
    updates: Option<&Vec<Value>>,
) -> Result<(Definitions, Vec<IndexMeta>), ApiError> {
    let mut defs = t.attribute_definitions.clone();
    let mut indexes = t.indexes.clone();
    let Some(updates) = updates else {
        return Ok((defs, indexes));
    };
    if let Some(extra) = req.list("AttributeDefinitions")? {
        for d in extra {
            let d = Req::nested(d, "AttributeDefinitions")?;
            let n = d.req_str("AttributeName", "attributeDefinitions.member.attributeName")?;
            crate::request::schema::check_key_name_len(
                n,
                "attributeDefinitions.member.attributeName",
            )?;
            let ty = d.req_str("AttributeType", "attributeDefinitions.member.attributeType")?;
            let ty = KeyType::parse(ty).ok_or_else(|| {
                ApiError::validation(format!(
                    "1 validation error detected: Value '{ty}' at 'attributeDefinitions.member.attributeType' failed to satisfy constraint: Member must satisfy enum value set: [B, N, S]"
                ))
            })?;
            match defs.iter().find(|(name, _)| name == n) {
                Some((_, existing)) if *existing != ty => {
                    return Err(invalid(&format!(
                        "Cannot change the type of attribute {n} that is already defined"
                    )));
                }
                Some(_) => {}
                None => defs.push((n.to_owned(), ty)),
            }
        }
    }
    for u in updates {
        let u = Req::nested(u, "GlobalSecondaryIndexUpdates")?;
        match (u.get("Create"), u.get("Delete"), u.get("Update")) {
            (Some(c), None, None) => {
                let mut idx = parse_index(
                    c,
                    IndexKind::Global,
                    &defs,
                    &t.key_schema,
                    billing.mode == "PROVISIONED",
                )?;
                if indexes.iter().any(|i| i.name == idx.name) {
                    return Err(ApiError::validation(format!(
                        "One or more parameter values were invalid: Index with name: {} already exists",
                        idx.name
                    )));
                }
                if indexes
                    .iter()
                    .filter(|i| i.kind == IndexKind::Global)
                    .count()
                    >= MAX_GSIS
                {
                    return Err(ApiError::LimitExceeded(format!(
                        "One or more parameter values were invalid: Number of GlobalSecondaryIndexes exceeds per-table limit of {MAX_GSIS}"
                    )));
                }
                idx.status = IndexStatus::Creating;
                indexes.push(idx);
            }
            (None, Some(d), None) => {
                let d = Req::nested(d, "Delete")?;
                let n = d.req_str("IndexName", "indexName")?;
                let before = indexes.len();
                indexes.retain(|i| !(i.name == n && i.kind == IndexKind::Global));
                if indexes.len() == before {
                    return Err(ApiError::ResourceNotFound(format!(
                        "Requested resource not found: Index: {n} not found"
                    )));
                }
            }
            (None, None, Some(upd)) => {
                let upd = Req::nested(upd, "Update")?;
                let n = upd.req_str("IndexName", "indexName")?;
                let idx = indexes
                    .iter_mut()
                    .find(|i| i.name == n && i.kind == IndexKind::Global)
                    .ok_or_else(|| {
                        ApiError::ResourceNotFound(format!(
                            "Requested resource not found: Index: {n} not found"
                        ))
                    })?;
                if let Some(pt) = upd.map("ProvisionedThroughput")? {
                    idx.read_units = capacity_units(pt, "ReadCapacityUnits", "readCapacityUnits")?;
                    idx.write_units =
                        capacity_units(pt, "WriteCapacityUnits", "writeCapacityUnits")?;
                }
            }
            _ => {
                return Err(invalid(
                    "One of GlobalSecondaryIndexUpdate Create, Update or Delete must be specified",
                ));
            }
        }
    }
    // Definitions only a deleted index used go with it, as in DynamoDB.
    defs.retain(|(n, _)| {
        t.key_schema.is_key_attr(n) || indexes.iter().any(|i| i.key_schema.is_key_attr(n))
    });
    check_definitions_used(&defs, &t.key_schema, &indexes)?;
    Ok((defs, indexes))
}

/// Applies `ReplicaUpdates` (Create / Delete) to the table's replica set. Regions must belong
/// to the cluster; the receiving region keeps its replica.
fn replica_set(
    state: &AppState,
    t: &TableMeta,
    updates: Option<&Vec<Value>>,
) -> Result<Option<BTreeSet<String>>, ApiError> {
    let Some(updates) = updates else {
        return Ok(t.replicas.clone());
    };
    let cfg = &state.inner.config;
    let cluster: BTreeSet<String> = std::iter::once(cfg.region.clone())
        .chain(cfg.peer_regions.iter().cloned())
        .collect();
    let mut set = t.replicas.clone().unwrap_or_else(|| cluster.clone());
    for u in updates {
        let u = Req::nested(u, "ReplicaUpdates")?;
        let (action, body) = match (u.get("Create"), u.get("Delete"), u.get("Update")) {
            (Some(b), None, None) => ("Create", b),
            (None, Some(b), None) => ("Delete", b),
            (None, None, Some(b)) => ("Update", b),
            _ => {
                return Err(invalid(
                    "One of ReplicationGroupUpdate Create, Update or Delete must be specified",
                ));
            }
        };
        let region = Req::nested(body, action)?
            .req_str("RegionName", "regionName")?
            .to_owned();
        if !cluster.contains(&region) {
            return Err(ApiError::validation(format!(
                "One or more parameter values were invalid: Region {region} is not a region of this Meridian cluster (regions: {})",
                cluster.iter().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        match action {
            "Create" if set.contains(&region) => {
                return Err(ApiError::validation(format!(
                    "Failed to create a the new replica of table with name: '{}' because one or more replicas already existed as tables.",
                    t.name
                )));
            }
            "Create" => {
                set.insert(region);
            }
            "Delete" if region == cfg.region => {
                return Err(ApiError::validation(format!(
                    "Cannot remove the replica in {region}, the region serving this request; send the request to another replica"
                )));
            }
            "Delete" if !set.remove(&region) => {
                return Err(ApiError::validation(format!(
                    "Update global table operation failed because the replica in {region} does not exist"
                )));
            }
            _ => {}
        }
    }
    Ok(if set == cluster { None } else { Some(set) })
}
