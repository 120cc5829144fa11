"""Conformance fixes found by running an independent DynamoDB suite (see
docs/compatibility/dynamodb.md, "Measured against an independent suite"): UpdateItem's return
values, items an update must not create, legacy AttributeUpdates wording, update and condition
expression corner cases, number messages, CreateTable/DeleteTable shapes."""

import pytest
from botocore.exceptions import ClientError

from meridian_testlib import create_table, error_code


@pytest.fixture
def tbl(ddb, table_name):
    create_table(ddb, table_name)
    return table_name


def key(k):
    return {"pk": {"S": k}}


def get(ddb, tbl, k):
    return ddb.get_item(TableName=tbl, Key=key(k), ConsistentRead=True).get("Item")


def update(ddb, tbl, k, expr, values=None, **kw):
    args = dict(TableName=tbl, Key=key(k), UpdateExpression=expr, **kw)
    if values:
        args["ExpressionAttributeValues"] = values
    return ddb.update_item(**args)


def message(exc):
    return exc.value.response["Error"]["Message"]


N = lambda n: {"N": str(n)}  # noqa: E731
S = lambda s: {"S": s}  # noqa: E731


@pytest.mark.parametrize("rv,expr,values,want", [
    # only the written paths come back, nested as they are in the item
    ("UPDATED_OLD", "SET a.b = :v", {":v": S("new")}, {"a": {"M": {"b": S("old")}}}),
    ("UPDATED_NEW", "SET a.b = :v", {":v": S("new")}, {"a": {"M": {"b": S("new")}}}),
    ("UPDATED_OLD", "SET a.l[1] = :v", {":v": N(9)}, {"a": {"M": {"l": {"L": [N(2)]}}}}),
    ("UPDATED_NEW", "SET a.l[1] = :v, a.b = :w", {":v": N(9), ":w": S("x")},
     {"a": {"M": {"b": S("x"), "l": {"L": [N(9)]}}}}),
    # a REMOVE of an element that is not there writes nothing
    ("UPDATED_OLD", "REMOVE a.l[0], a.l[7]", None, {"a": {"M": {"l": {"L": [N(1)]}}}}),
    # a new nested attribute has no old value
    ("UPDATED_OLD", "SET a.fresh = :v", {":v": N(1)}, None),
    ("UPDATED_NEW", "SET a.fresh = :v", {":v": N(1)}, {"a": {"M": {"fresh": N(1)}}}),
    # an append past the end of a list is not at the written index
    ("UPDATED_NEW", "SET a.l[100] = :v", {":v": N(4)}, None),
], ids=["old-map", "new-map", "old-list", "new-two", "old-remove", "old-fresh", "new-fresh",
        "new-append"])
def test_return_values_show_only_the_written_paths(ddb, tbl, rv, expr, values, want):
    ddb.put_item(TableName=tbl, Item={"pk": S("k"), "other": S("o"), "a": {"M": {
        "b": S("old"), "l": {"L": [N(1), N(2), N(3)]}}}})
    out = update(ddb, tbl, "k", expr, values, ReturnValues=rv)
    assert out.get("Attributes") == want


@pytest.mark.parametrize("expr,values", [
    ("REMOVE a", None),
    ("REMOVE a.b, c[0]", None),
    ("DELETE s :v", {":v": {"SS": ["x"]}}),
], ids=["remove", "remove-nested", "delete-set"])
def test_removing_from_an_absent_item_does_not_create_it(ddb, tbl, expr, values):
    out = update(ddb, tbl, "ghost", expr, values, ReturnValues="ALL_NEW")
    assert "Attributes" not in out
    assert get(ddb, tbl, "ghost") is None


def test_legacy_deletes_do_not_create_but_empty_attribute_maps_do(ddb, tbl):
    ddb.update_item(TableName=tbl, Key=key("a"), AttributeUpdates={"x": {"Action": "DELETE"}})
    assert get(ddb, tbl, "a") is None
    ddb.update_item(TableName=tbl, Key=key("b"), AttributeUpdates={})
    assert get(ddb, tbl, "b") == key("b")
    # a SET with a REMOVE still creates the item
    update(ddb, tbl, "c", "REMOVE x SET y = :v", {":v": N(1)})
    assert get(ddb, tbl, "c") == {"pk": S("c"), "y": N(1)}


@pytest.mark.parametrize("existing,action,value", [
    ({"SS": ["a"]}, "ADD", N(2)),
    ({"SS": ["a"]}, "ADD", {"L": [S("b")]}),
    ({"L": [S("a")]}, "ADD", {"SS": ["b"]}),
    ({"N": "2"}, "ADD", {"SS": ["b"]}),
    ({"NS": ["1"]}, "DELETE", {"SS": ["b"]}),
    ({"M": {"a": N(1)}}, "DELETE", {"NS": ["1"]}),
], ids=["ss-add-n", "ss-add-l", "l-add-ss", "n-add-ss", "ns-delete-ss", "m-delete-ns"])
def test_legacy_type_clash_is_a_type_mismatch(ddb, tbl, existing, action, value):
    ddb.put_item(TableName=tbl, Item={"pk": S("k"), "a": existing})
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=tbl, Key=key("k"),
                        AttributeUpdates={"a": {"Action": action, "Value": value}})
    assert error_code(e.value) == "ValidationException"
    assert message(e) == "Type mismatch for attribute to update"


def test_expression_type_clash_keeps_its_own_message(ddb, tbl):
    ddb.put_item(TableName=tbl, Item={"pk": S("k"), "a": S("x")})
    with pytest.raises(ClientError) as e:
        update(ddb, tbl, "k", "ADD a :v", {":v": N(1)})
    assert message(e) == "An operand in the update expression has an incorrect data type"


def test_appends_past_the_end_land_in_index_order(ddb, tbl):
    ddb.put_item(TableName=tbl, Item={"pk": S("k"), "l": {"L": [S("x")]}})
    update(ddb, tbl, "k", "SET l[84] = :a, l[37] = :b, l[17] = :c, l[50] = :d",
           {":a": S("a"), ":b": S("b"), ":c": S("c"), ":d": S("d")})
    assert get(ddb, tbl, "k")["l"] == {"L": [S("x"), S("c"), S("b"), S("d"), S("a")]}


@pytest.mark.parametrize("expr", ["SET _a = :v", "SET _ = :v", "SET a = _f(b)"],
                         ids=["name", "bare", "function"])
def test_a_bare_word_cannot_start_with_underscore(ddb, tbl, expr):
    with pytest.raises(ClientError) as e:
        update(ddb, tbl, "k", expr, {":v": N(1)} if ":v" in expr else None)
    assert message(e).startswith('Invalid UpdateExpression: Syntax error; token: "_"')


@pytest.mark.parametrize("f", ["if_not_exists(a, :v)", "list_append(a, :v)"],
                         ids=["if_not_exists", "list_append"])
def test_if_not_exists_and_list_append_are_refused_in_a_condition(ddb, tbl, f):
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=tbl, Item=key("k"), ConditionExpression=f"{f} = :v",
                     ExpressionAttributeValues={":v": N(1)})
    fname = f.split("(")[0]
    assert message(e) == ("Invalid ConditionExpression: The function is not allowed in a "
                          f"condition expression; function: {fname}")


def test_size_of_a_number_attribute_is_a_false_condition(ddb, tbl):
    ddb.put_item(TableName=tbl, Item={"pk": S("k"), "n": N(5), "t": {"BOOL": True}})
    for cond in ["size(n) = :one", "size(t) = :one", "size(n) > :one"]:
        with pytest.raises(ClientError) as e:
            update(ddb, tbl, "k", "SET z = :one", {":one": N(1)}, ConditionExpression=cond)
        assert error_code(e.value) == "ConditionalCheckFailedException"
    update(ddb, tbl, "k", "SET z = :one", {":one": N(1)}, ConditionExpression="size(n) <> :one")
    assert get(ddb, tbl, "k")["z"] == N(1)


@pytest.mark.parametrize("text", ["dog", "NaN", "Infinity", " 1"])
def test_a_non_number_is_refused_in_dynamodb_words(ddb, tbl, text):
    with pytest.raises(ClientError) as e:
        update(ddb, tbl, "k", "SET a = :v", {":v": {"N": text}})
    assert message(e) == ("ExpressionAttributeValues contains invalid value: The parameter cannot "
                          f"be converted to a numeric value: {text} for key :v")


def test_an_imprecise_sum_is_an_overflow(ddb, tbl):
    with pytest.raises(ClientError) as e:
        update(ddb, tbl, "k", "SET a = :big - :one", {":big": {"N": "1E50"}, ":one": N(1)})
    assert message(e).startswith("Number overflow.")


def test_repeated_attribute_definition_names_the_attribute(ddb, table_name):
    with pytest.raises(ClientError) as e:
        ddb.create_table(TableName=table_name, BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": "xyz", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "xyz", "AttributeType": "S"},
                                               {"AttributeName": "xyz", "AttributeType": "N"}])
    assert message(e) == "Attribute Name is duplicated: xyz"


def test_delete_table_returns_the_short_description(ddb, table_name):
    create_table(ddb, table_name, range_key=("sk", "S"),
                 GlobalSecondaryIndexes=[{"IndexName": "by_sk", "Projection": {"ProjectionType": "ALL"},
                                          "KeySchema": [{"AttributeName": "sk", "KeyType": "HASH"}]}])
    d = ddb.delete_table(TableName=table_name)["TableDescription"]
    assert d["TableName"] == table_name and d["TableStatus"] == "DELETING"
    assert "TableId" in d and "TableArn" in d and "BillingModeSummary" in d
    for absent in ["CreationDateTime", "KeySchema", "AttributeDefinitions",
                   "GlobalSecondaryIndexes", "LocalSecondaryIndexes"]:
        assert absent not in d
