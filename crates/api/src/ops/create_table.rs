//! `CreateTable`.

use crate::request::common::{Req, capacity_units, store_err};
use crate::request::describe::describe;
use crate::request::indexes::{check_definitions_used, parse_indexes};
use crate::request::schema::{attribute_definitions, invalid, key_schema};
use crate::state::AppState;
use meridian_model::ApiError;
use meridian_model::table::{Billing, TableMeta, TableStatus, check_table_name};
use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

fn billing(req: &Req) -> Result<Billing, ApiError> {
    let mode = req.str("BillingMode")?.unwrap_or("PROVISIONED");
    let pt = req.map("ProvisionedThroughput")?;
    match mode {
        "PROVISIONED" => {
            let pt = pt.ok_or_else(|| {
                invalid("ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED")
            })?;
            Ok(Billing {
                mode: mode.into(),
                read_units: capacity_units(pt, "ReadCapacityUnits", "readCapacityUnits")?,
                write_units: capacity_units(pt, "WriteCapacityUnits", "writeCapacityUnits")?,
            })
        }
        "PAY_PER_REQUEST" => {
            if pt.is_some() {
                return Err(invalid(
                    "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
                ));
            }
            Ok(Billing {
                mode: mode.into(),
                read_units: 0,
                write_units: 0,
            })
        }
        other => Err(ApiError::validation(format!(
            "1 validation error detected: Value '{other}' at 'billingMode' failed to satisfy constraint: Member must satisfy enum value set: [PROVISIONED, PAY_PER_REQUEST]"
        ))),
    }
}

fn uuid() -> String {
    let b: [u8; 16] = rand::random();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// Creates a table. Returns it `ACTIVE` at once (creation is synchronous here).
pub async fn handle(state: &AppState, req: Req<'_>) -> Result<Value, ApiError> {
    let name = req.req_str("TableName", "tableName")?;
    check_table_name(name, "tableName")?;
    let defs = attribute_definitions(&req)?;
    let schema = key_schema(req.list("KeySchema")?, &defs, "keySchema")?;
    let billing = billing(&req)?;
    let extra = crate::request::tags::initial_extra(&req)?;
    let indexes = parse_indexes(&req, &defs, &schema, billing.mode == "PROVISIONED")?;
    check_definitions_used(&defs, &schema, &indexes)?;
    let created_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| (d.as_millis() as f64) / 1000.0)
        .unwrap_or(0.0);
    let meta = TableMeta {
        name: name.to_owned(),
        id: 0,
        key_schema: schema,
        attribute_definitions: defs,
        created_at,
        status: TableStatus::Active,
        billing,
        table_uuid: uuid(),
        indexes,
        version: None,
        replicas: None,
        created: None,
        extra,
    };
    let t = state.store().create_table(meta).await.map_err(store_err)?;
    Ok(json!({"TableDescription": describe(state, &t, None)}))
}
