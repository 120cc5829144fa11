"""Conformance fixes found by running an independent DynamoDB suite (see
docs/compatibility/dynamodb.md, "Measured against an independent suite"): how
TransactWriteItems reports an invalid item and an oversized payload, and which characters tags
may hold."""

import pytest
from botocore.exceptions import ClientError

from meridian_testlib import create_table, error_code


@pytest.fixture
def tbl(ddb, table_name):
    create_table(ddb, table_name)
    return table_name


def put(tbl, item, **kw):
    return {"Put": dict({"TableName": tbl, "Item": item}, **kw)}


def test_a_key_of_the_wrong_type_is_the_actions_validation_error(ddb, tbl):
    with pytest.raises(ClientError) as e:
        ddb.transact_write_items(TransactItems=[
            put(tbl, {"pk": {"N": "7"}}),
            put(tbl, {"pk": {"N": "8"}}),
            put(tbl, {"pk": {"S": "a"}}, ConditionExpression="attribute_exists(pk)"),
        ])
    assert error_code(e.value) == "TransactionCanceledException"
    reasons = e.value.response["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["ValidationError", "None", "None"]
    assert "Type mismatch for key pk" in reasons[0]["Message"]
    assert "Message" not in reasons[1] and "Message" not in reasons[2]
    # A request-level problem later in the list still fails the whole request.
    with pytest.raises(ClientError) as e:
        ddb.transact_write_items(TransactItems=[
            put(tbl, {"pk": {"N": "7"}}),
            put(tbl, {"pk": {"S": "b"}}, ConditionExpression="attribute_exists(#x)"),
        ])
    assert error_code(e.value) == "ValidationException"


def test_a_payload_over_4_mb_is_refused_but_3_mb_is_fine(ddb, tbl):
    big = {"S": "x" * 100000}
    with pytest.raises(ClientError) as e:
        ddb.transact_write_items(TransactItems=[
            put(tbl, {"pk": {"S": f"k{i}"}, "v": big}) for i in range(50)])
    assert error_code(e.value) == "ValidationException"
    assert "size cannot exceed" in e.value.response["Error"]["Message"]
    assert ddb.scan(TableName=tbl, Select="COUNT")["Count"] == 0
    ddb.transact_write_items(TransactItems=[
        put(tbl, {"pk": {"S": f"k{i}"}, "v": big}) for i in range(30)])
    for i in range(30):
        got = ddb.get_item(TableName=tbl, Key={"pk": {"S": f"k{i}"}}, ConsistentRead=True)
        assert got["Item"]["v"] == big


@pytest.mark.parametrize("bad", ["hi!", "d%g", '"hello"', "#!%%^$$&", "<><"])
def test_tags_refuse_characters_outside_the_allowed_set(ddb, tbl, bad):
    arn = ddb.describe_table(TableName=tbl)["Table"]["TableArn"]
    for tag in [{"Key": bad, "Value": "dog"}, {"Key": "dog", "Value": bad}]:
        with pytest.raises(ClientError) as e:
            ddb.tag_resource(ResourceArn=arn, Tags=[tag])
        assert error_code(e.value) == "ValidationException"
    assert ddb.list_tags_of_resource(ResourceArn=arn)["Tags"] == []


def test_tags_accept_letters_of_any_script_and_the_allowed_punctuation(ddb, tbl):
    arn = ddb.describe_table(TableName=tbl)["Table"]["TableArn"]
    tags = [{"Key": "законные буквы", "Value": "ѮѮѮ value"}, {"Key": "k+-=._:/@", "Value": ""}]
    ddb.tag_resource(ResourceArn=arn, Tags=tags)
    got = ddb.list_tags_of_resource(ResourceArn=arn)["Tags"]
    assert sorted(got, key=lambda t: t["Key"]) == sorted(tags, key=lambda t: t["Key"])
