"""Legacy (pre-expression) parameters: AttributesToGet, Expected, AttributeUpdates,
KeyConditions, QueryFilter, ScanFilter, ConditionalOperator — and DynamoDB's rules on mixing
them with expressions."""

import pytest
from botocore.exceptions import ClientError

from meridian_testlib import create_table, error_code


@pytest.fixture
def tbl(ddb, table_name):
    create_table(ddb, table_name, range_key=("sk", "N"))
    for i in range(5):
        ddb.put_item(TableName=table_name, Item={
            "pk": {"S": "p"}, "sk": {"N": str(i)}, "a": {"S": f"a{i}"}, "n": {"N": str(i * 10)},
            "tags": {"SS": ["x", f"t{i}"]}})
    return table_name


def k(sk, pk="p"):
    return {"pk": {"S": pk}, "sk": {"N": str(sk)}}


def message(e):
    return e.value.response["Error"]["Message"]


def test_attributes_to_get(ddb, tbl):
    out = ddb.get_item(TableName=tbl, Key=k(1), AttributesToGet=["a", "n"])
    assert out["Item"] == {"a": {"S": "a1"}, "n": {"N": "10"}}
    out = ddb.batch_get_item(RequestItems={tbl: {"Keys": [k(2)], "AttributesToGet": ["a"]}})
    assert out["Responses"][tbl] == [{"a": {"S": "a2"}}]
    out = ddb.scan(TableName=tbl, AttributesToGet=["sk"])
    assert sorted(int(i["sk"]["N"]) for i in out["Items"]) == [0, 1, 2, 3, 4]
    assert all(set(i) == {"sk"} for i in out["Items"])


def test_mixing_expression_and_legacy_is_refused(ddb, tbl):
    with pytest.raises(ClientError) as e:
        ddb.get_item(TableName=tbl, Key=k(1), AttributesToGet=["a"], ProjectionExpression="n")
    assert error_code(e.value) == "ValidationException"
    assert message(e) == (
        "Can not use both expression and non-expression parameters in the same request: "
        "Non-expression parameters: {AttributesToGet} Expression parameters: "
        "{ProjectionExpression}")
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=tbl, Key=k(1), UpdateExpression="SET a = :v",
                        ExpressionAttributeValues={":v": {"S": "x"}},
                        AttributeUpdates={"b": {"Value": {"S": "y"}}})
    assert message(e) == (
        "Can not use both expression and non-expression parameters in the same request: "
        "Non-expression parameters: {AttributeUpdates} Expression parameters: "
        "{UpdateExpression}")


def test_placeholders_need_expressions(ddb, tbl):
    with pytest.raises(ClientError) as e:
        ddb.get_item(TableName=tbl, Key=k(1), ExpressionAttributeNames={"#a": "a"})
    assert message(e) == "ExpressionAttributeNames can only be specified when using expressions"
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=tbl, Item=k(9), ExpressionAttributeValues={":a": {"S": "a"}})
    assert message(e) == (
        "ExpressionAttributeValues can only be specified when using expressions: "
        "ConditionExpression is null")


def test_expected_on_put_and_delete(ddb, tbl):
    ddb.put_item(TableName=tbl, Item={**k(7), "v": {"N": "1"}},
                 Expected={"pk": {"Exists": False}})
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=tbl, Item={**k(7), "v": {"N": "2"}},
                     Expected={"pk": {"Exists": False}})
    assert error_code(e.value) == "ConditionalCheckFailedException"
    ddb.put_item(TableName=tbl, Item={**k(7), "v": {"N": "2"}},
                 Expected={"v": {"Value": {"N": "1"}}})
    with pytest.raises(ClientError) as e:
        ddb.delete_item(TableName=tbl, Key=k(7), Expected={
            "v": {"ComparisonOperator": "GT", "AttributeValueList": [{"N": "5"}]},
            "pk": {"ComparisonOperator": "NULL"}}, ConditionalOperator="OR")
    assert error_code(e.value) == "ConditionalCheckFailedException"
    ddb.delete_item(TableName=tbl, Key=k(7), Expected={
        "v": {"ComparisonOperator": "GT", "AttributeValueList": [{"N": "5"}]},
        "pk": {"ComparisonOperator": "NOT_NULL"}}, ConditionalOperator="OR")
    assert "Item" not in ddb.get_item(TableName=tbl, Key=k(7))


@pytest.mark.parametrize("expected,msg", [
    ({"a": {"Exists": True}},
     "One or more parameter values were invalid: Value must be provided when Exists is true "
     "for Attribute: a"),
    ({"a": {"Exists": False, "Value": {"S": "x"}}},
     "One or more parameter values were invalid: Value cannot be used when Exists is false "
     "for Attribute: a"),
    ({"a": {"ComparisonOperator": "EQ", "Exists": True, "Value": {"S": "x"}}},
     "One or more parameter values were invalid: Exists and ComparisonOperator cannot be used "
     "together for Attribute: a"),
    ({"a": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "1"}]}},
     "One or more parameter values were invalid: Invalid number of argument(s) for the "
     "BETWEEN ComparisonOperator"),
    ({"a": {"AttributeValueList": [{"N": "1"}]}},
     "One or more parameter values were invalid: AttributeValueList can only be used with a "
     "ComparisonOperator for Attribute: a"),
])
def test_expected_validation(ddb, tbl, expected, msg):
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=tbl, Item=k(8), Expected=expected)
    assert error_code(e.value) == "ValidationException"
    assert message(e) == msg


def test_attribute_updates(ddb, tbl):
    out = ddb.update_item(TableName=tbl, Key=k(1), AttributeUpdates={
        "a": {"Action": "PUT", "Value": {"S": "new"}},
        "n": {"Action": "ADD", "Value": {"N": "5"}},
        "tags": {"Action": "DELETE", "Value": {"SS": ["x"]}},
        "list": {"Action": "ADD", "Value": {"L": [{"S": "one"}]}},
        "gone": {"Action": "DELETE"},
    }, ReturnValues="ALL_NEW")
    item = out["Attributes"]
    assert item["a"] == {"S": "new"}
    assert item["n"] == {"N": "15"}
    assert item["tags"] == {"SS": ["t1"]}
    assert item["list"] == {"L": [{"S": "one"}]}
    ddb.update_item(TableName=tbl, Key=k(1), AttributeUpdates={
        "list": {"Action": "ADD", "Value": {"L": [{"S": "two"}]}},
        "a": {"Action": "DELETE"}}, Expected={"n": {"Value": {"N": "15"}}})
    item = ddb.get_item(TableName=tbl, Key=k(1))["Item"]
    assert item["list"] == {"L": [{"S": "one"}, {"S": "two"}]}
    assert "a" not in item
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=tbl, Key=k(1), AttributeUpdates={"a": {"Action": "PUT"}})
    assert message(e) == ("One or more parameter values were invalid: Only DELETE action is "
                          "allowed when no attribute value is specified")
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=tbl, Key=k(1),
                        AttributeUpdates={"sk": {"Value": {"N": "9"}}})
    assert "This attribute is part of the key" in message(e)


def test_key_conditions_and_query_filter(ddb, tbl):
    out = ddb.query(TableName=tbl, KeyConditions={
        "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]},
        "sk": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "1"}, {"N": "3"}]},
    })
    assert [int(i["sk"]["N"]) for i in out["Items"]] == [1, 2, 3]
    out = ddb.query(TableName=tbl, KeyConditions={
        "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]}},
        QueryFilter={"n": {"ComparisonOperator": "GE", "AttributeValueList": [{"N": "20"}]},
                     "a": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "a0"}]}},
        ConditionalOperator="OR", ScanIndexForward=False)
    assert [int(i["sk"]["N"]) for i in out["Items"]] == [4, 3, 2, 0]
    assert out["ScannedCount"] == 5
    # KeyConditions may be combined with a FilterExpression.
    out = ddb.query(TableName=tbl, KeyConditions={
        "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]}},
        FilterExpression="n > :z", ExpressionAttributeValues={":z": {"N": "25"}})
    assert [int(i["sk"]["N"]) for i in out["Items"]] == [3, 4]
    with pytest.raises(ClientError) as e:
        ddb.query(TableName=tbl, KeyConditions={
            "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]}},
            QueryFilter={"sk": {"ComparisonOperator": "NOT_NULL"}})
    assert message(e) == ("QueryFilter can only contain non-primary key attributes: "
                          "Primary key attribute: sk")
    with pytest.raises(ClientError) as e:
        ddb.query(TableName=tbl, KeyConditions={
            "pk": {"ComparisonOperator": "NE", "AttributeValueList": [{"S": "p"}]}})
    assert message(e) == "Attempted conditional constraint is not an indexable operation"


def test_scan_filter(ddb, tbl):
    out = ddb.scan(TableName=tbl, ScanFilter={
        "tags": {"ComparisonOperator": "CONTAINS", "AttributeValueList": [{"S": "t3"}]}})
    assert [i["sk"]["N"] for i in out["Items"]] == ["3"]
    out = ddb.scan(TableName=tbl, ScanFilter={
        "a": {"ComparisonOperator": "IN", "AttributeValueList": [{"S": "a1"}, {"S": "a4"}]},
        "n": {"ComparisonOperator": "LT", "AttributeValueList": [{"N": "20"}]}})
    assert [i["sk"]["N"] for i in out["Items"]] == ["1"]
    out = ddb.scan(TableName=tbl, ScanFilter={
        "a": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [{"S": "a"}]}},
        Select="COUNT")
    assert out["Count"] == 5
    with pytest.raises(ClientError) as e:
        ddb.scan(TableName=tbl, ScanFilter={
            "a": {"ComparisonOperator": "BEGINS_WITH", "AttributeValueList": [{"N": "1"}]}})
    assert message(e) == ("One or more parameter values were invalid: ComparisonOperator "
                          "BEGINS_WITH is not valid for N AttributeValue type")
