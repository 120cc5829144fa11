"""Conformance fixes for Query, Scan, the legacy filter/Expected parameters, indexes and limits,
found by running an independent DynamoDB suite (see docs/compatibility/dynamodb.md, "Measured
against an independent suite")."""

import time

import pytest
from botocore.exceptions import ClientError

from meridian_testlib import create_table


def message(exc):
    return exc.value.response["Error"]["Message"]


def code(exc):
    return exc.value.response["Error"]["Code"]


N = lambda n: {"N": str(n)}  # noqa: E731
S = lambda s: {"S": s}  # noqa: E731


@pytest.fixture
def tbl(ddb, table_name):
    create_table(ddb, table_name, range_key=("sk", "N"))
    for i in range(4):
        ddb.put_item(TableName=table_name, Item={
            "pk": S("p"), "sk": N(i), "flag": {"BOOL": i % 2 == 0},
            "l": {"L": [N(i)]}, "s": S(f"v{i}")})
    return table_name


def query(ddb, tbl, **kw):
    return ddb.query(TableName=tbl, ConsistentRead=True, **kw)


KC = {"pk": {"ComparisonOperator": "EQ", "AttributeValueList": [S("p")]}}


def test_filter_expression_on_a_key_attribute_is_refused(ddb, tbl):
    for attr in ["pk", "sk"]:
        with pytest.raises(ClientError) as e:
            query(ddb, tbl, KeyConditionExpression="pk = :p", FilterExpression=f"{attr} = :v",
                  ExpressionAttributeValues={":p": S("p"), ":v": N(1) if attr == "sk" else S("p")})
        assert message(e) == ("Filter Expression can only contain non-primary key attributes: "
                              f"Primary key attribute: {attr}")
    # Comparing a non-key attribute to a key attribute counts too.
    with pytest.raises(ClientError) as e:
        query(ddb, tbl, KeyConditionExpression="pk = :p", FilterExpression="s = sk",
              ExpressionAttributeValues={":p": S("p")})
    assert message(e).endswith("Primary key attribute: sk")
    # A Scan may filter on keys.
    got = ddb.scan(TableName=tbl, FilterExpression="sk = :v", ExpressionAttributeValues={":v": N(1)})
    assert got["Count"] == 1


def test_query_filter_without_key_condition_reports_the_missing_key_condition(ddb, tbl):
    with pytest.raises(ClientError) as e:
        query(ddb, tbl, QueryFilter=KC)
    assert "keyConditionExpression" in message(e)


def test_query_filter_eq_and_ne_take_any_type(ddb, tbl):
    got = query(ddb, tbl, KeyConditions=KC,
                QueryFilter={"flag": {"ComparisonOperator": "EQ", "AttributeValueList": [{"BOOL": True}]}})
    assert [i["sk"] for i in got["Items"]] == [N(0), N(2)]
    got = query(ddb, tbl, KeyConditions=KC,
                QueryFilter={"l": {"ComparisonOperator": "NE", "AttributeValueList": [{"L": [N(1)]}]}})
    assert got["Count"] == 3
    # Ordering operators still refuse collections and booleans.
    with pytest.raises(ClientError) as e:
        query(ddb, tbl, KeyConditions=KC,
              QueryFilter={"flag": {"ComparisonOperator": "LT", "AttributeValueList": [{"BOOL": True}]}})
    assert "ComparisonOperator LT is not valid for BOOL AttributeValue type" in message(e)


def test_not_contains_fails_on_a_missing_attribute(ddb, tbl):
    got = query(ddb, tbl, KeyConditions=KC,
                QueryFilter={"nosuch": {"ComparisonOperator": "NOT_CONTAINS", "AttributeValueList": [S("x")]}})
    assert got["Count"] == 0
    ddb.put_item(TableName=tbl, Item={"pk": S("q"), "sk": N(0), "a": S("hello")})
    upd = dict(TableName=tbl, Key={"pk": S("q"), "sk": N(0)},
               AttributeUpdates={"z": {"Action": "PUT", "Value": N(1)}})
    with pytest.raises(ClientError) as e:
        ddb.update_item(**upd, Expected={"q": {"ComparisonOperator": "NOT_CONTAINS",
                                               "AttributeValueList": [N(1)]}})
    assert code(e) == "ConditionalCheckFailedException"
    ddb.update_item(**upd, Expected={"a": {"ComparisonOperator": "NOT_CONTAINS",
                                           "AttributeValueList": [S("dog")]}})


def test_expected_contains_and_in_take_scalars_only(ddb, tbl):
    upd = dict(TableName=tbl, Key={"pk": S("p"), "sk": N(0)},
               AttributeUpdates={"z": {"Action": "PUT", "Value": N(1)}})
    for op, vals in [("CONTAINS", [{"L": [N(1)]}]), ("NOT_CONTAINS", [{"L": [N(1)]}]),
                     ("IN", [{"L": [N(1)]}, {"L": [N(2)]}])]:
        with pytest.raises(ClientError) as e:
            ddb.update_item(**upd, Expected={"l": {"ComparisonOperator": op, "AttributeValueList": vals}})
        assert code(e) == "ValidationException", op
        assert f"ComparisonOperator {op} is not valid for L AttributeValue type" in message(e)


def test_conditional_operator_with_empty_expected_is_refused(ddb, tbl):
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=tbl, Key={"pk": S("p"), "sk": N(0)},
                        AttributeUpdates={"z": {"Action": "PUT", "Value": N(1)}},
                        Expected={}, ConditionalOperator="OR")
    assert "ConditionalOperator" in message(e)
    # Without ConditionalOperator an empty Expected is no condition at all.
    ddb.update_item(TableName=tbl, Key={"pk": S("p"), "sk": N(0)},
                    AttributeUpdates={"z": {"Action": "PUT", "Value": N(1)}}, Expected={})


def test_parallel_scan_start_key_must_map_to_the_segment(ddb, tbl):
    with pytest.raises(ClientError) as e:
        ddb.scan(TableName=tbl, TotalSegments=1000000, Segment=0,
                 ExclusiveStartKey={"pk": S("0"), "sk": N(0)})
    assert message(e).startswith("The provided Exclusive start key does not map to the provided Segment")
    # A start key from a page of the same segment is fine.
    page = ddb.scan(TableName=tbl, TotalSegments=1, Segment=0, Limit=1)
    ddb.scan(TableName=tbl, TotalSegments=1, Segment=0, ExclusiveStartKey=page["LastEvaluatedKey"])


def gsi_table(ddb, name, **kw):
    return ddb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "x", "AttributeType": "S"}], **kw)


def test_consistent_read_of_a_gsi_is_refused(ddb, table_name):
    gsi_table(ddb, table_name, GlobalSecondaryIndexes=[{
        "IndexName": "gsi_x", "KeySchema": [{"AttributeName": "x", "KeyType": "HASH"}],
        "Projection": {"ProjectionType": "ALL"}}])
    for call in [lambda: ddb.scan(TableName=table_name, IndexName="gsi_x", ConsistentRead=True),
                 lambda: ddb.query(TableName=table_name, IndexName="gsi_x", ConsistentRead=True,
                                   KeyConditionExpression="x = :x",
                                   ExpressionAttributeValues={":x": S("a")})]:
        with pytest.raises(ClientError) as e:
            call()
        assert message(e) == "Consistent reads are not supported on global secondary indexes"


def test_projection_type_is_required_and_include_names_unique(ddb, table_name):
    for proj, text in [({}, "Unknown ProjectionType: null"),
                       ({"ProjectionType": "INCLUDE", "NonKeyAttributes": ["a", "a"]}, "Duplicate"),
                       ({"ProjectionType": "INCLUDE", "NonKeyAttributes": ["n" * 256]}, "255")]:
        with pytest.raises(ClientError) as e:
            gsi_table(ddb, table_name, GlobalSecondaryIndexes=[{
                "IndexName": "gsi_x", "KeySchema": [{"AttributeName": "x", "KeyType": "HASH"}],
                "Projection": proj}])
        assert text in message(e)


def test_backfill_skips_items_whose_index_key_has_the_wrong_type_or_is_empty(ddb, table_name):
    create_table(ddb, table_name)
    ddb.put_item(TableName=table_name, Item={"pk": S("good"), "x": S("v")})
    ddb.put_item(TableName=table_name, Item={"pk": S("num"), "x": N(3)})
    ddb.put_item(TableName=table_name, Item={"pk": S("empty"), "x": S("")})
    ddb.update_table(TableName=table_name,
                     AttributeDefinitions=[{"AttributeName": "x", "AttributeType": "S"}],
                     GlobalSecondaryIndexUpdates=[{"Create": {
                         "IndexName": "gsi_x", "KeySchema": [{"AttributeName": "x", "KeyType": "HASH"}],
                         "Projection": {"ProjectionType": "ALL"}}}])
    for _ in range(100):
        idx = ddb.describe_table(TableName=table_name)["Table"]["GlobalSecondaryIndexes"][0]
        if idx["IndexStatus"] == "ACTIVE":
            break
        time.sleep(0.1)
    got = ddb.scan(TableName=table_name, IndexName="gsi_x")["Items"]
    assert [i["pk"] for i in got] == [S("good")]


def test_key_attribute_names_are_limited_to_255_bytes(ddb, table_name):
    long = "k" * 256
    for ks, ad in [([long], [long]), ([long], ["short"]), (["short"], [long])]:
        with pytest.raises(ClientError) as e:
            ddb.create_table(TableName=table_name, BillingMode="PAY_PER_REQUEST",
                             KeySchema=[{"AttributeName": ks[0], "KeyType": "HASH"}],
                             AttributeDefinitions=[{"AttributeName": ad[0], "AttributeType": "S"}])
        assert "Member must have length less than or equal to 255" in message(e)
    ok = "k" * 255
    ddb.create_table(TableName=table_name, BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": ok, "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": ok, "AttributeType": "S"}])


def test_attribute_names_are_limited_to_65535_bytes(ddb, table_name):
    create_table(ddb, table_name)
    fine, too_long = "a" * 65535, "a" * 65536
    ddb.put_item(TableName=table_name, Item={"pk": S("p"), fine: N(1)})
    for call in [
        lambda: ddb.put_item(TableName=table_name, Item={"pk": S("p"), too_long: N(1)}),
        lambda: ddb.get_item(TableName=table_name, Key={"pk": S("p")}, ProjectionExpression="#n",
                             ExpressionAttributeNames={"#n": too_long}),
        lambda: ddb.get_item(TableName=table_name, Key={"pk": S("p")}, AttributesToGet=[too_long]),
        lambda: ddb.update_item(TableName=table_name, Key={"pk": S("p")},
                                AttributeUpdates={too_long: {"Action": "PUT", "Value": N(2)}}),
    ]:
        with pytest.raises(ClientError) as e:
            call()
        assert "Attribute name is too large, must be less than 65536 bytes" in message(e)


def test_nesting_up_to_160_levels_parses_without_exhausting_the_stack(ddb, table_name):
    create_table(ddb, table_name)
    ddb.put_item(TableName=table_name, Item={"pk": S("p"), "a": N(1), "b": N(2)})
    depth = 149  # 299 operators: DynamoDB accepts it
    cond = "a<b " + "or (a<b " * depth + ")" * depth
    ddb.update_item(TableName=table_name, Key={"pk": S("p")}, UpdateExpression="SET z = :v",
                    ConditionExpression=cond, ExpressionAttributeValues={":v": N(1)})
    got = ddb.scan(TableName=table_name, FilterExpression=cond)
    assert got["Count"] == 1
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=table_name, Key={"pk": S("p")}, UpdateExpression="SET z = :v",
                        ConditionExpression="(" * 2046 + "a<b" + ")" * 2046,
                        ExpressionAttributeValues={":v": N(1)})
    assert message(e).startswith("Invalid ConditionExpression")
