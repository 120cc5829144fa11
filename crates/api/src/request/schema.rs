//! Key schema parsing shared by `CreateTable` and `UpdateTable` (and index definitions).

use super::common::{Req, missing};
use meridian_model::ApiError;
use meridian_model::key::{KeyAttr, KeySchema, KeyType};
use serde_json::Value;

pub(crate) fn invalid(msg: &str) -> ApiError {
    ApiError::validation(format!("One or more parameter values were invalid: {msg}"))
}

/// Longest key attribute name (table and index keys, attribute definitions), in bytes.
pub(crate) const MAX_KEY_NAME_BYTES: usize = 255;

/// Refuses a key attribute name longer than [`MAX_KEY_NAME_BYTES`].
pub(crate) fn check_key_name_len(name: &str, field: &str) -> Result<(), ApiError> {
    if name.len() > MAX_KEY_NAME_BYTES {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{name}' at '{field}' failed to satisfy constraint: Member must have length less than or equal to {MAX_KEY_NAME_BYTES}"
        )));
    }
    Ok(())
}

/// Parses `AttributeDefinitions`.
pub(crate) fn attribute_definitions(req: &Req) -> Result<Vec<(String, KeyType)>, ApiError> {
    let defs = req
        .list("AttributeDefinitions")?
        .ok_or_else(|| missing("attributeDefinitions"))?;
    let mut out = Vec::with_capacity(defs.len());
    for (i, d) in defs.iter().enumerate() {
        let d = Req::nested(d, "AttributeDefinitions")?;
        let name = d.req_str(
            "AttributeName",
            &format!("attributeDefinitions.{}.member.attributeName", i + 1),
        )?;
        check_key_name_len(
            name,
            &format!("attributeDefinitions.{}.member.attributeName", i + 1),
        )?;
        let ty = d.req_str(
            "AttributeType",
            &format!("attributeDefinitions.{}.member.attributeType", i + 1),
        )?;
        let ty = KeyType::parse(ty).ok_or_else(|| {
            ApiError::validation(format!(
                "1 validation error detected: Value '{ty}' at 'attributeDefinitions.{}.member.attributeType' failed to satisfy constraint: Member must satisfy enum value set: [B, N, S]",
                i + 1
            ))
        })?;
        if out.iter().any(|(n, _)| n == name) {
            return Err(ApiError::validation(format!(
                "Attribute Name is duplicated: {name}"
            )));
        }
        out.push((name.to_owned(), ty));
    }
    Ok(out)
}

/// Parses `KeySchema` against the attribute definitions.
pub(crate) fn key_schema(
    list: Option<&Vec<Value>>,
    defs: &[(String, KeyType)],
    field: &str,
) -> Result<KeySchema, ApiError> {
    let list = list.ok_or_else(|| missing(field))?;
    if list.is_empty() || list.len() > 2 {
        let bound = if list.is_empty() {
            "Member must have length greater than or equal to 1"
        } else {
            "Member must have length less than or equal to 2"
        };
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{}' at '{field}' failed to satisfy constraint: {bound}",
            Value::Array(list.clone())
        )));
    }
    let mut elems = Vec::new();
    for (i, e) in list.iter().enumerate() {
        let e = Req::nested(e, "KeySchema")?;
        let name = e.req_str(
            "AttributeName",
            &format!("{field}.{}.member.attributeName", i + 1),
        )?;
        check_key_name_len(name, &format!("{field}.{}.member.attributeName", i + 1))?;
        let kt = e.req_str("KeyType", &format!("{field}.{}.member.keyType", i + 1))?;
        if kt != "HASH" && kt != "RANGE" {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{kt}' at '{field}.{}.member.keyType' failed to satisfy constraint: Member must satisfy enum value set: [HASH, RANGE]",
                i + 1
            )));
        }
        elems.push((name.to_owned(), kt.to_owned()));
    }
    let attr = |name: &str| -> Result<KeyAttr, ApiError> {
        let ty = defs.iter().find(|(n, _)| n == name).map(|(_, t)| *t).ok_or_else(|| {
            let keys: Vec<&str> = elems.iter().map(|(n, _)| n.as_str()).collect();
            let defined: Vec<&str> = defs.iter().map(|(n, _)| n.as_str()).collect();
            invalid(&format!(
                "Some index key attributes are not defined in AttributeDefinitions. Keys: [{}], AttributeDefinitions: [{}]",
                keys.join(", "),
                defined.join(", ")
            ))
        })?;
        Ok(KeyAttr {
            name: name.to_owned(),
            ty,
        })
    };
    let (hash_name, hash_type) = &elems[0];
    if hash_type != "HASH" {
        return Err(ApiError::validation(
            "Invalid KeySchema: The first KeySchemaElement is not a HASH key type",
        ));
    }
    let hash = attr(hash_name)?;
    let range = match elems.get(1) {
        None => None,
        Some((name, kt)) => {
            if kt != "RANGE" {
                return Err(ApiError::validation(
                    "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type",
                ));
            }
            if name == hash_name {
                return Err(ApiError::validation(
                    "Invalid KeySchema: Both the Hash Key and the Range Key element in the KeySchema have the same name",
                ));
            }
            Some(attr(name)?)
        }
    };
    Ok(KeySchema { hash, range })
}
