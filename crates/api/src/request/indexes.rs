//! Secondary-index definitions (`GlobalSecondaryIndexes`, `LocalSecondaryIndexes`): parsing,
//! validation and description.

use super::common::{Req, missing};
use super::describe::table_arn;
use super::schema::key_schema;
use meridian_model::ApiError;
use meridian_model::key::{KeySchema, KeyType};
use meridian_model::table::{IndexKind, IndexMeta, IndexProjection, IndexStatus, TableMeta};
use serde_json::{Value, json};

/// Most global secondary indexes per table.
pub const MAX_GSIS: usize = 20;
/// Most local secondary indexes per table.
pub const MAX_LSIS: usize = 5;

fn invalid(msg: String) -> ApiError {
    ApiError::validation(format!("One or more parameter values were invalid: {msg}"))
}

fn projection(v: Option<&Value>, index: &str) -> Result<IndexProjection, ApiError> {
    let p = Req::nested(v.ok_or_else(|| missing("projection"))?, "Projection")?;
    let non_key = p.list("NonKeyAttributes")?;
    let pt = p
        .str("ProjectionType")?
        .ok_or_else(|| invalid("Unknown ProjectionType: null".to_owned()))?;
    match (pt, non_key) {
        ("ALL", None) => Ok(IndexProjection::All),
        ("KEYS_ONLY", None) => Ok(IndexProjection::KeysOnly),
        ("INCLUDE", Some(names)) if !names.is_empty() => {
            let names: Vec<String> = names
                .iter()
                .map(|n| {
                    n.as_str().map(str::to_owned).ok_or_else(|| {
                        ApiError::Serialization("NonKeyAttributes must be strings".into())
                    })
                })
                .collect::<Result<_, _>>()?;
            for n in &names {
                super::schema::check_key_name_len(n, "projection.nonKeyAttributes.member")?;
            }
            let mut seen = std::collections::HashSet::new();
            if let Some(d) = names.iter().find(|n| !seen.insert(n.as_str())) {
                return Err(invalid(format!(
                    "Duplicate NonKeyAttributes in ProjectionType INCLUDE for index: {index}: {d}"
                )));
            }
            Ok(IndexProjection::Include(names))
        }
        ("INCLUDE", _) => Err(invalid(format!(
            "ProjectionType is INCLUDE, but NonKeyAttributes is not specified for index: {index}"
        ))),
        ("ALL" | "KEYS_ONLY", Some(_)) => Err(invalid(format!(
            "ProjectionType is {pt}, but NonKeyAttributes is specified"
        ))),
        (other, _) => Err(ApiError::validation(format!(
            "1 validation error detected: Value '{other}' at 'projection.projectionType' failed to satisfy constraint: Member must satisfy enum value set: [ALL, INCLUDE, KEYS_ONLY]"
        ))),
    }
}

/// Parses one index definition.
pub fn parse_index(
    v: &Value,
    kind: IndexKind,
    defs: &[(String, KeyType)],
    table_key: &KeySchema,
    provisioned: bool,
) -> Result<IndexMeta, ApiError> {
    let r = Req::nested(v, "SecondaryIndex")?;
    let name = r.req_str("IndexName", "indexName")?;
    meridian_model::table::check_table_name(name, "indexName")?;
    let key_schema = key_schema(r.list("KeySchema")?, defs, "keySchema")?;
    if kind == IndexKind::Local {
        if table_key.range.is_none() {
            return Err(invalid(
                "Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex".into(),
            ));
        }
        if key_schema.hash.name != table_key.hash.name {
            return Err(invalid(format!(
                "Index KeySchema does not have the same leading hash key as table KeySchema for index: {name}. index hash key: {}, table hash key: {}",
                key_schema.hash.name, table_key.hash.name
            )));
        }
        if key_schema.range.is_none() {
            return Err(invalid(format!(
                "Index KeySchema does not have a range key for index: {name}"
            )));
        }
    }
    let projection = projection(r.get("Projection"), name)?;
    let (mut read_units, mut write_units) = (0, 0);
    if kind == IndexKind::Global {
        match (r.map("ProvisionedThroughput")?, provisioned) {
            (Some(pt), true) => {
                read_units = pt
                    .get("ReadCapacityUnits")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                write_units = pt
                    .get("WriteCapacityUnits")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
            }
            (None, true) => {
                return Err(invalid(format!(
                    "ProvisionedThroughput must be specified for index: {name}"
                )));
            }
            (Some(_), false) => {
                return Err(invalid(format!(
                    "ProvisionedThroughput should not be specified for index: {name} when BillingMode is PAY_PER_REQUEST"
                )));
            }
            (None, false) => {}
        }
    }
    Ok(IndexMeta {
        name: name.to_owned(),
        kind,
        id: 0,
        key_schema,
        projection,
        status: IndexStatus::Active,
        read_units,
        write_units,
    })
}

/// Parses both index lists of a `CreateTable` request.
pub fn parse_indexes(
    req: &Req,
    defs: &[(String, KeyType)],
    table_key: &KeySchema,
    provisioned: bool,
) -> Result<Vec<IndexMeta>, ApiError> {
    let mut out: Vec<IndexMeta> = Vec::new();
    for (member, kind, max) in [
        ("GlobalSecondaryIndexes", IndexKind::Global, MAX_GSIS),
        ("LocalSecondaryIndexes", IndexKind::Local, MAX_LSIS),
    ] {
        let Some(list) = req.list(member)? else {
            continue;
        };
        if list.is_empty() {
            return Err(invalid(format!("List of {member} is empty")));
        }
        if list.len() > max {
            return Err(ApiError::LimitExceeded(format!(
                "One or more parameter values were invalid: Number of {member} exceeds per-table limit of {max}"
            )));
        }
        for v in list {
            let idx = parse_index(v, kind, defs, table_key, provisioned)?;
            if out.iter().any(|i| i.name == idx.name) {
                return Err(invalid(format!("Duplicate index name: {}", idx.name)));
            }
            out.push(idx);
        }
    }
    Ok(out)
}

/// Checks that every attribute definition is used by the table's or an index's key.
pub fn check_definitions_used(
    defs: &[(String, KeyType)],
    table_key: &KeySchema,
    indexes: &[IndexMeta],
) -> Result<(), ApiError> {
    let used =
        |n: &str| table_key.is_key_attr(n) || indexes.iter().any(|i| i.key_schema.is_key_attr(n));
    if defs.iter().all(|(n, _)| used(n)) {
        return Ok(());
    }
    if indexes.is_empty() {
        return Err(invalid(
            "Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions".into(),
        ));
    }
    let names: Vec<&str> = defs.iter().map(|(n, _)| n.as_str()).collect();
    Err(invalid(format!(
        "Some AttributeDefinitions are not used. AttributeDefinitions: [{}], keys used: [{}]",
        names.join(", "),
        names
            .iter()
            .filter(|n| used(n))
            .copied()
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

fn key_schema_json(k: &KeySchema) -> Value {
    let mut v = vec![json!({"AttributeName": k.hash.name, "KeyType": "HASH"})];
    if let Some(r) = &k.range {
        v.push(json!({"AttributeName": r.name, "KeyType": "RANGE"}));
    }
    Value::Array(v)
}

/// `GlobalSecondaryIndexes` / `LocalSecondaryIndexes` of a table description.
pub fn describe_indexes(region: &str, t: &TableMeta) -> (Vec<Value>, Vec<Value>) {
    let (mut gsis, mut lsis) = (Vec::new(), Vec::new());
    for i in &t.indexes {
        let projection = match &i.projection {
            IndexProjection::All => json!({"ProjectionType": "ALL"}),
            IndexProjection::KeysOnly => json!({"ProjectionType": "KEYS_ONLY"}),
            IndexProjection::Include(n) => {
                json!({"ProjectionType": "INCLUDE", "NonKeyAttributes": n})
            }
        };
        let mut d = json!({
            "IndexName": i.name,
            "KeySchema": key_schema_json(&i.key_schema),
            "Projection": projection,
            "IndexSizeBytes": 0,
            "ItemCount": 0,
            "IndexArn": format!("{}/index/{}", table_arn(region, &t.name), i.name),
        });
        if let Some(o) = d.as_object_mut()
            && i.kind == IndexKind::Global
        {
            o.insert(
                "IndexStatus".into(),
                json!(match i.status {
                    IndexStatus::Active => "ACTIVE",
                    IndexStatus::Creating => "CREATING",
                }),
            );
            o.insert(
                "ProvisionedThroughput".into(),
                json!({"NumberOfDecreasesToday": 0, "ReadCapacityUnits": i.read_units, "WriteCapacityUnits": i.write_units}),
            );
        }
        match i.kind {
            IndexKind::Global => gsis.push(d),
            IndexKind::Local => lsis.push(d),
        }
    }
    (gsis, lsis)
}
