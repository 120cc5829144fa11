"""PutItem, GetItem, DeleteItem, UpdateItem: round trips of every type and the limits."""

import base64

import pytest
from botocore.exceptions import ClientError

from meridian_testlib import create_table, error_code


@pytest.fixture
def tbl(ddb, table_name):
    create_table(ddb, table_name)
    return table_name


EVERY_TYPE = {
    "pk": {"S": "all-types"},
    "s": {"S": "héllo wörld ✓"},
    "empty_s": {"S": ""},
    "n_int": {"N": "42"},
    "n_neg": {"N": "-3.25"},
    "n_38": {"N": "12345678901234567890123456789012345678"},
    "n_small": {"N": "0.00000000000000000000000000000000000001"},
    "n_big": {"N": "9.9999999999999999999999999999999999999E+125"},
    "b": {"B": bytes([0, 1, 2, 255, 254])},
    "t": {"BOOL": True},
    "f": {"BOOL": False},
    "z": {"NULL": True},
    "m": {"M": {"inner": {"M": {"deep": {"L": [{"S": "x"}, {"N": "1"}, {"NULL": True}]}}}}},
    "l": {"L": [{"S": "a"}, {"L": [{"N": "2"}]}, {"M": {"k": {"BOOL": False}}}]},
    "ss": {"SS": ["b", "a", "c"]},
    "ns": {"NS": ["1", "2.5", "-7"]},
    "bs": {"BS": [b"\x00", b"\x01\x02"]},
}


def normalize(item):
    """Sets come back in any order; compare them as sets."""
    out = {}
    for k, v in item.items():
        (t, x), = v.items()
        if t in ("SS", "NS", "BS"):
            out[k] = {t: sorted(x)}
        elif t == "M":
            out[k] = {t: normalize(x)}
        elif t == "L":
            out[k] = {t: [normalize({"_": e})["_"] for e in x]}
        else:
            out[k] = v
    return out


def test_every_type_round_trips(ddb, tbl):
    ddb.put_item(TableName=tbl, Item=EVERY_TYPE)
    got = ddb.get_item(TableName=tbl, Key={"pk": {"S": "all-types"}})["Item"]
    expected = dict(EVERY_TYPE)
    expected["n_big"] = {"N": "9" * 38 + "0" * 88}  # DynamoDB answers numbers in plain notation
    assert normalize(got) == normalize(expected)


def test_numbers_are_exact_and_normalized(ddb, tbl):
    ddb.put_item(TableName=tbl, Item={"pk": {"S": "n"}, "a": {"N": "1.500"}, "b": {"N": "-0"},
                                      "c": {"N": "1E+3"}, "d": {"N": "0.1"}})
    got = ddb.get_item(TableName=tbl, Key={"pk": {"S": "n"}})["Item"]
    assert got["a"] == {"N": "1.5"} and got["b"] == {"N": "0"} and got["c"] == {"N": "1000"}
    ddb.update_item(TableName=tbl, Key={"pk": {"S": "n"}}, UpdateExpression="SET d = d + :x",
                    ExpressionAttributeValues={":x": {"N": "0.2"}})
    assert ddb.get_item(TableName=tbl, Key={"pk": {"S": "n"}})["Item"]["d"] == {"N": "0.3"}


@pytest.mark.parametrize("value,fragment", [
    ("123456789012345678901234567890123456789", "38 significant digits"),
    ("1E+126", "Number overflow"),
    ("1E-131", "Number underflow"),
    ("abc", "The parameter cannot be converted to a numeric value: abc"),
])
def test_bad_numbers(ddb, tbl, value, fragment):
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=tbl, Item={"pk": {"S": "x"}, "n": {"N": value}})
    assert error_code(e.value) == "ValidationException"
    assert fragment in e.value.response["Error"]["Message"]


def test_put_get_delete(ddb, tbl):
    assert "Item" not in ddb.get_item(TableName=tbl, Key={"pk": {"S": "k"}})
    ddb.put_item(TableName=tbl, Item={"pk": {"S": "k"}, "v": {"N": "1"}})
    old = ddb.put_item(TableName=tbl, Item={"pk": {"S": "k"}, "v": {"N": "2"}}, ReturnValues="ALL_OLD")
    assert old["Attributes"]["v"] == {"N": "1"}
    gone = ddb.delete_item(TableName=tbl, Key={"pk": {"S": "k"}}, ReturnValues="ALL_OLD")
    assert gone["Attributes"]["v"] == {"N": "2"}
    assert "Item" not in ddb.get_item(TableName=tbl, Key={"pk": {"S": "k"}})
    # deleting a missing item succeeds
    ddb.delete_item(TableName=tbl, Key={"pk": {"S": "k"}})


def test_update_set_and_remove(ddb, tbl):
    key = {"pk": {"S": "u"}}
    r = ddb.update_item(TableName=tbl, Key=key, UpdateExpression="SET a = :a, b = :b",
                        ExpressionAttributeValues={":a": {"S": "x"}, ":b": {"N": "5"}},
                        ReturnValues="ALL_NEW")
    assert r["Attributes"] == {"pk": {"S": "u"}, "a": {"S": "x"}, "b": {"N": "5"}}
    r = ddb.update_item(TableName=tbl, Key=key, UpdateExpression="REMOVE a SET b = b - :one",
                        ExpressionAttributeValues={":one": {"N": "1"}}, ReturnValues="UPDATED_NEW")
    assert r["Attributes"] == {"b": {"N": "4"}}
    assert ddb.get_item(TableName=tbl, Key=key)["Item"] == {"pk": {"S": "u"}, "b": {"N": "4"}}
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=tbl, Key=key, UpdateExpression="SET pk = :x",
                        ExpressionAttributeValues={":x": {"S": "y"}})
    assert "This attribute is part of the key" in e.value.response["Error"]["Message"]


def test_conditional_put_fails_with_conditional_check_failed(ddb, tbl):
    ddb.put_item(TableName=tbl, Item={"pk": {"S": "c"}, "v": {"N": "1"}})
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=tbl, Item={"pk": {"S": "c"}}, ConditionExpression="attribute_not_exists(pk)",
                     ReturnValuesOnConditionCheckFailure="ALL_OLD")
    assert error_code(e.value) == "ConditionalCheckFailedException"
    assert e.value.response["Item"]["v"] == {"N": "1"}


def test_item_size_limit(ddb, tbl):
    ddb.put_item(TableName=tbl, Item={"pk": {"S": "big"}, "v": {"S": "x" * (400 * 1024 - 10)}})
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=tbl, Item={"pk": {"S": "big"}, "v": {"S": "x" * (400 * 1024 + 1)}})
    assert error_code(e.value) == "ValidationException"
    assert "Item size has exceeded the maximum allowed size" in e.value.response["Error"]["Message"]


def test_key_limits(ddb, table_name):
    create_table(ddb, table_name, range_key=("sk", "B"))
    ok = {"pk": {"S": "p" * 2048}, "sk": {"B": b"s" * 1024}}
    ddb.put_item(TableName=table_name, Item=ok)
    cases = [
        ({"pk": {"S": "p" * 2049}, "sk": {"B": b"s"}}, "Size of hashkey has exceeded"),
        ({"pk": {"S": "p"}, "sk": {"B": b"s" * 1025}}, "Aggregated size of all range keys"),
        ({"pk": {"S": ""}, "sk": {"B": b"s"}}, "cannot contain an empty string value"),
        ({"pk": {"S": "p"}, "sk": {"B": b""}}, "cannot contain an empty binary value"),
        ({"pk": {"N": "1"}, "sk": {"B": b"s"}}, "Type mismatch for key pk"),
        ({"sk": {"B": b"s"}}, "Missing the key pk in the item"),
    ]
    for item, fragment in cases:
        with pytest.raises(ClientError) as e:
            ddb.put_item(TableName=table_name, Item=item)
        assert error_code(e.value) == "ValidationException", item
        assert fragment in e.value.response["Error"]["Message"], item


def test_key_must_match_schema(ddb, tbl):
    for key in ({"pk": {"N": "1"}}, {"pk": {"S": "a"}, "extra": {"S": "b"}}, {"other": {"S": "a"}}):
        with pytest.raises(ClientError) as e:
            ddb.get_item(TableName=tbl, Key=key)
        assert error_code(e.value) == "ValidationException"
        assert "The provided key element does not match the schema" in e.value.response["Error"]["Message"]


@pytest.mark.parametrize("value,fragment", [
    ({}, "Supplied AttributeValue is empty"),
    ({"S": "a", "N": "1"}, "more than one datatypes"),
    ({"SS": ["a", "a"]}, "contains duplicates"),
    ({"SS": []}, "may not be empty"),
    ({"NULL": False}, "Null attribute value types must have the value of true"),
])
def test_attribute_value_validation(ddb, tbl, value, fragment):
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=tbl, Item={"pk": {"S": "v"}, "a": value})
    assert error_code(e.value) == "ValidationException"
    assert fragment in e.value.response["Error"]["Message"]


def test_projection_on_get(ddb, tbl):
    ddb.put_item(TableName=tbl, Item={"pk": {"S": "p"}, "a": {"M": {"b": {"L": [{"N": "1"}, {"N": "2"}]}}},
                                      "c": {"S": "x"}})
    got = ddb.get_item(TableName=tbl, Key={"pk": {"S": "p"}}, ProjectionExpression="a.b[1], #c",
                       ExpressionAttributeNames={"#c": "c"})["Item"]
    assert got == {"a": {"M": {"b": {"L": [{"N": "2"}]}}}, "c": {"S": "x"}}


def test_binary_partition_key(ddb, table_name):
    create_table(ddb, table_name, hash_key=("pk", "B"))
    key = {"pk": {"B": base64.b64decode("AAECAwQ=")}}
    ddb.put_item(TableName=table_name, Item={**key, "v": {"S": "bin"}})
    assert ddb.get_item(TableName=table_name, Key=key)["Item"]["v"] == {"S": "bin"}
