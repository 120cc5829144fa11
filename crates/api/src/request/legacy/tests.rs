//! The legacy-parameter translation, checked against DynamoDB's answers.

use super::*;
use meridian_model::key::{KeyAttr, KeyType};
use serde_json::json;

fn schema() -> KeySchema {
    KeySchema {
        hash: KeyAttr {
            name: "pk".into(),
            ty: KeyType::S,
        },
        range: Some(KeyAttr {
            name: "sk".into(),
            ty: KeyType::N,
        }),
    }
}

fn run(op: Op, body: Value) -> Result<Map<String, Value>, ApiError> {
    let mut req = Req::parse(body.to_string().as_bytes())?;
    translate(&mut req, op, &schema())?;
    Ok(req.0.into_owned())
}

#[test]
fn attributes_to_get_becomes_projection() {
    let out = run(Op::GetItem, json!({"AttributesToGet": ["a", "b"]})).unwrap();
    assert_eq!(out["ProjectionExpression"], json!("#lg0, #lg1"));
    assert_eq!(out["ExpressionAttributeNames"]["#lg1"], json!("b"));
    assert!(out.get("AttributesToGet").is_none());
}

#[test]
fn mixing_is_refused() {
    let e = run(
        Op::GetItem,
        json!({"AttributesToGet": ["a"], "ProjectionExpression": "a"}),
    )
    .unwrap_err();
    assert_eq!(
        e.message(),
        Some(
            "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {AttributesToGet} Expression parameters: {ProjectionExpression}"
        )
    );
}

#[test]
fn names_need_expressions() {
    let e = run(
        Op::GetItem,
        json!({"ExpressionAttributeNames": {"#a": "a"}}),
    )
    .unwrap_err();
    assert_eq!(
        e.message(),
        Some("ExpressionAttributeNames can only be specified when using expressions")
    );
    let e = run(
        Op::UpdateItem,
        json!({"ExpressionAttributeValues": {":a": {"S": "a"}}}),
    )
    .unwrap_err();
    assert_eq!(
        e.message(),
        Some(
            "ExpressionAttributeValues can only be specified when using expressions: UpdateExpression and ConditionExpression are null"
        )
    );
}

#[test]
fn expected_forms() {
    let out = run(
        Op::PutItem,
        json!({"Expected": {
            "a": {"Exists": false},
            "b": {"Value": {"S": "x"}},
            "c": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "1"}, {"N": "5"}]}
        }, "ConditionalOperator": "OR"}),
    )
    .unwrap();
    assert_eq!(
        out["ConditionExpression"],
        json!("(attribute_not_exists(#lg0)) OR (#lg1 = :lg0) OR (#lg2 BETWEEN :lg1 AND :lg2)")
    );
    let e = run(Op::PutItem, json!({"Expected": {"a": {"Exists": true}}})).unwrap_err();
    assert_eq!(
        e.message(),
        Some(
            "One or more parameter values were invalid: Value must be provided when Exists is true for Attribute: a"
        )
    );
    let e = run(
        Op::PutItem,
        json!({"Expected": {"a": {"ComparisonOperator": "EQ", "AttributeValueList": []}}}),
    )
    .unwrap_err();
    assert_eq!(
        e.message(),
        Some(
            "One or more parameter values were invalid: Invalid number of argument(s) for the EQ ComparisonOperator"
        )
    );
    let e = run(
        Op::PutItem,
        json!({"Expected": {"a": {"ComparisonOperator": "EQ"}}}),
    )
    .unwrap_err();
    assert_eq!(
        e.message(),
        Some(
            "One or more parameter values were invalid: Value or AttributeValueList must be used with ComparisonOperator: EQ for Attribute: a"
        )
    );
}

#[test]
fn attribute_updates_forms() {
    let out = run(
        Op::UpdateItem,
        json!({"AttributeUpdates": {
            "a": {"Value": {"S": "x"}},
            "b": {"Action": "DELETE"},
            "c": {"Action": "ADD", "Value": {"N": "1"}},
            "d": {"Action": "ADD", "Value": {"L": [{"S": "y"}]}},
            "e": {"Action": "DELETE", "Value": {"SS": ["z"]}}
        }}),
    )
    .unwrap();
    assert_eq!(
        out["UpdateExpression"],
        json!(
            "SET #lg0 = :lg0, #lg3 = list_append(if_not_exists(#lg3, :lg2), :lg3) REMOVE #lg1 ADD #lg2 :lg1 DELETE #lg4 :lg4"
        )
    );
    let e = run(
        Op::UpdateItem,
        json!({"AttributeUpdates": {"a": {"Action": "PUT"}}}),
    )
    .unwrap_err();
    assert_eq!(
        e.message(),
        Some(
            "One or more parameter values were invalid: Only DELETE action is allowed when no attribute value is specified"
        )
    );
}

#[test]
fn key_conditions_and_filters() {
    let out = run(
        Op::Query,
        json!({
            "KeyConditions": {
                "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]},
                "sk": {"ComparisonOperator": "GT", "AttributeValueList": [{"N": "3"}]}
            },
            "QueryFilter": {"x": {"ComparisonOperator": "NOT_NULL"}}
        }),
    )
    .unwrap();
    assert_eq!(
        out["KeyConditionExpression"],
        json!("#lg0 = :lg0 AND #lg1 > :lg1")
    );
    assert_eq!(out["FilterExpression"], json!("attribute_exists(#lg2)"));
    let e = run(
        Op::Query,
        json!({"KeyConditions": {"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]}},
               "QueryFilter": {"pk": {"ComparisonOperator": "NOT_NULL"}}}),
    )
    .unwrap_err();
    assert_eq!(
        e.message(),
        Some("QueryFilter can only contain non-primary key attributes: Primary key attribute: pk")
    );
    let e = run(
        Op::Scan,
        json!({"ScanFilter": {"x": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "5"}, {"N": "1"}]}}}),
    )
    .unwrap_err();
    assert_eq!(
        e.message(),
        Some(
            "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound"
        )
    );
}
