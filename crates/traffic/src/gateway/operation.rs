//! What a DynamoDB request is, from its `X-Amz-Target` header and JSON body: the operation,
//! whether it may be retried, and the partition key value that names its user.

use serde_json::Value;

use super::config::PinningConfig;

/// Operations that only read, so a gateway may retry them on another region.
const IDEMPOTENT_READS: &[&str] = &[
    "GetItem",
    "BatchGetItem",
    "Query",
    "Scan",
    "DescribeTable",
    "ListTables",
    "TransactGetItems",
];

/// The operation named by `X-Amz-Target: DynamoDB_20120810.GetItem`.
pub fn operation(target_header: Option<&str>) -> Option<&str> {
    let (prefix, op) = target_header?.split_once('.')?;
    prefix.starts_with("DynamoDB_").then_some(op)
}

/// Whether the operation may be retried transparently on another region.
pub fn is_idempotent_read(op: Option<&str>) -> bool {
    op.is_some_and(|op| IDEMPOTENT_READS.contains(&op))
}

/// A scalar attribute value (`{"S": "alice"}`, `{"N": "42"}`, `{"B": "..."}`) as text.
fn scalar(v: &Value) -> Option<String> {
    let obj = v.as_object()?;
    ["S", "N", "B"]
        .iter()
        .find_map(|t| obj.get(*t)?.as_str().map(str::to_string))
}

/// The user named by the request's partition key, for tables configured for pinning.
pub fn partition_user(op: &str, body: &[u8], pinning: &PinningConfig) -> Option<String> {
    if pinning.tables.is_empty() {
        return None;
    }
    let body: Value = serde_json::from_slice(body).ok()?;
    let table = body.get("TableName")?.as_str()?;
    let key = &pinning.tables.get(table)?.partition_key;
    match op {
        "GetItem" | "UpdateItem" | "DeleteItem" => scalar(body.get("Key")?.get(key)?),
        "PutItem" => scalar(body.get("Item")?.get(key)?),
        "Query" => query_partition_value(&body, key),
        _ => None,
    }
}

/// The value a Query's key condition requires of the partition key: `pk = :v` (or `#n = :v`,
/// either side) in `KeyConditionExpression`, or legacy `KeyConditions` with `EQ`.
fn query_partition_value(body: &Value, key: &str) -> Option<String> {
    if let Some(expr) = body.get("KeyConditionExpression").and_then(Value::as_str) {
        let names = body.get("ExpressionAttributeNames");
        let values = body.get("ExpressionAttributeValues")?;
        let is_key = |operand: &str| {
            operand == key
                || (operand.starts_with('#')
                    && names.and_then(|n| n.get(operand)).and_then(Value::as_str) == Some(key))
        };
        for clause in split_and(expr) {
            let Some((l, r)) = clause.split_once('=') else {
                continue;
            };
            let (l, r) = (
                l.trim().trim_matches(['(', ')']).trim(),
                r.trim().trim_matches(['(', ')']).trim(),
            );
            let placeholder = if is_key(l) && r.starts_with(':') {
                r
            } else if is_key(r) && l.starts_with(':') {
                l
            } else {
                continue;
            };
            return scalar(values.get(placeholder)?);
        }
        return None;
    }
    let cond = body.get("KeyConditions")?.get(key)?;
    if cond.get("ComparisonOperator")?.as_str()? != "EQ" {
        return None;
    }
    scalar(cond.get("AttributeValueList")?.get(0)?)
}

/// Splits a key condition on the keyword `AND` (case-insensitive, as a whole word).
fn split_and(expr: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = expr;
    loop {
        let upper = rest.to_ascii_uppercase();
        match upper.find(" AND ") {
            Some(at) => {
                parts.push(rest.get(..at).unwrap_or(""));
                rest = rest.get(at + 5..).unwrap_or("");
            }
            None => {
                parts.push(rest);
                return parts;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::config::TablePinning;

    fn pinning() -> PinningConfig {
        let mut p = PinningConfig::default();
        p.tables.insert(
            "Users".into(),
            TablePinning {
                partition_key: "user_id".into(),
            },
        );
        p
    }

    #[test]
    fn operations_and_idempotency() {
        let cases = [
            (Some("DynamoDB_20120810.GetItem"), Some("GetItem"), true),
            (Some("DynamoDB_20120810.Query"), Some("Query"), true),
            (
                Some("DynamoDB_20120810.TransactGetItems"),
                Some("TransactGetItems"),
                true,
            ),
            (Some("DynamoDB_20120810.PutItem"), Some("PutItem"), false),
            (
                Some("DynamoDB_20120810.TransactWriteItems"),
                Some("TransactWriteItems"),
                false,
            ),
            (Some("Other.GetItem"), None, false),
            (Some("garbage"), None, false),
            (None, None, false),
        ];
        for (header, op, read) in cases {
            assert_eq!(operation(header), op, "{header:?}");
            assert_eq!(is_idempotent_read(operation(header)), read, "{header:?}");
        }
    }

    #[test]
    fn partition_user_table() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            (
                "GetItem",
                r#"{"TableName":"Users","Key":{"user_id":{"S":"alice"}}}"#,
                Some("alice"),
            ),
            (
                "DeleteItem",
                r#"{"TableName":"Users","Key":{"user_id":{"N":"42"}}}"#,
                Some("42"),
            ),
            (
                "UpdateItem",
                r#"{"TableName":"Users","Key":{"user_id":{"S":"bob"},"sk":{"S":"x"}}}"#,
                Some("bob"),
            ),
            (
                "PutItem",
                r#"{"TableName":"Users","Item":{"user_id":{"S":"carol"},"n":{"N":"1"}}}"#,
                Some("carol"),
            ),
            (
                "Query",
                r#"{"TableName":"Users","KeyConditionExpression":"user_id = :u AND sk > :s",
                   "ExpressionAttributeValues":{":u":{"S":"dave"},":s":{"S":"a"}}}"#,
                Some("dave"),
            ),
            (
                "Query",
                r##"{"TableName":"Users","KeyConditionExpression":"sk > :s and (:u = #p)",
                   "ExpressionAttributeNames":{"#p":"user_id"},
                   "ExpressionAttributeValues":{":u":{"S":"erin"},":s":{"S":"a"}}}"##,
                Some("erin"),
            ),
            (
                "Query",
                r#"{"TableName":"Users","KeyConditions":{"user_id":{"ComparisonOperator":"EQ",
                   "AttributeValueList":[{"S":"frank"}]}}}"#,
                Some("frank"),
            ),
            (
                "GetItem",
                r#"{"TableName":"Other","Key":{"user_id":{"S":"alice"}}}"#,
                None,
            ),
            (
                "GetItem",
                r#"{"TableName":"Users","Key":{"id":{"S":"alice"}}}"#,
                None,
            ),
            ("Scan", r#"{"TableName":"Users"}"#, None),
            ("GetItem", "not json", None),
        ];
        for (op, body, want) in cases {
            assert_eq!(
                partition_user(op, body.as_bytes(), &pinning()).as_deref(),
                *want,
                "{op} {body}"
            );
        }
    }
}
