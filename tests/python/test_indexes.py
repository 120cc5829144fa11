"""Secondary indexes: GSIs and LSIs at CreateTable, Query/Scan on them, projections, sparse
indexes, maintenance on update/delete, and validation."""

import pytest
from botocore.exceptions import ClientError

from meridian_testlib import error_code


@pytest.fixture
def orders(ddb, table_name):
    ddb.create_table(
        TableName=table_name,
        KeySchema=[{"AttributeName": "customer", "KeyType": "HASH"},
                   {"AttributeName": "order", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "customer", "AttributeType": "S"},
                              {"AttributeName": "order", "AttributeType": "N"},
                              {"AttributeName": "status", "AttributeType": "S"},
                              {"AttributeName": "amount", "AttributeType": "N"}],
        GlobalSecondaryIndexes=[
            {"IndexName": "by_status", "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"},
                                                     {"AttributeName": "amount", "KeyType": "RANGE"}],
             "Projection": {"ProjectionType": "KEYS_ONLY"}},
            {"IndexName": "by_status_all", "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}],
             "Projection": {"ProjectionType": "ALL"}},
        ],
        LocalSecondaryIndexes=[
            {"IndexName": "by_amount", "KeySchema": [{"AttributeName": "customer", "KeyType": "HASH"},
                                                    {"AttributeName": "amount", "KeyType": "RANGE"}],
             "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["note"]}},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    rows = [("alice", 1, "open", "30", "a1"), ("alice", 2, "shipped", "10", "a2"),
            ("alice", 3, "open", "20", "a3"), ("bob", 1, "open", "5", "b1"), ("bob", 2, None, "7", "b2")]
    for c, o, s, t, note in rows:
        item = {"customer": {"S": c}, "order": {"N": str(o)}, "amount": {"N": t}, "note": {"S": note},
                "secret": {"S": "x"}}
        if s:
            item["status"] = {"S": s}
        ddb.put_item(TableName=table_name, Item=item)
    return table_name


def test_describe_reports_indexes(ddb, orders):
    t = ddb.describe_table(TableName=orders)["Table"]
    assert {i["IndexName"] for i in t["GlobalSecondaryIndexes"]} == {"by_status", "by_status_all"}
    assert all(i["IndexStatus"] == "ACTIVE" for i in t["GlobalSecondaryIndexes"])
    assert t["LocalSecondaryIndexes"][0]["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["note"]}


def test_gsi_query_keys_only_in_sort_order(ddb, orders):
    r = ddb.query(TableName=orders, IndexName="by_status", KeyConditionExpression="#s = :s",
                  ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={":s": {"S": "open"}})
    assert [i["amount"]["N"] for i in r["Items"]] == ["5", "20", "30"]
    assert all(set(i) == {"customer", "order", "status", "amount"} for i in r["Items"])  # KEYS_ONLY


def test_gsi_sort_condition_and_pagination(ddb, orders):
    kw = dict(TableName=orders, IndexName="by_status", KeyConditionExpression="#s = :s AND amount <= :t",
              ExpressionAttributeNames={"#s": "status"},
              ExpressionAttributeValues={":s": {"S": "open"}, ":t": {"N": "20"}})
    assert [i["amount"]["N"] for i in ddb.query(**kw)["Items"]] == ["5", "20"]
    p1 = ddb.query(Limit=1, **kw)
    p2 = ddb.query(Limit=1, ExclusiveStartKey=p1["LastEvaluatedKey"], **kw)
    assert set(p1["LastEvaluatedKey"]) == {"customer", "order", "status", "amount"}
    assert [i["amount"]["N"] for i in p1["Items"] + p2["Items"]] == ["5", "20"]


def test_sparse_index_and_all_projection(ddb, orders):
    r = ddb.scan(TableName=orders, IndexName="by_status_all")
    assert r["Count"] == 4  # bob/2 has no status: not in the index
    assert all("secret" in i for i in r["Items"])


def test_lsi_include_projection_and_fetch_all(ddb, orders):
    r = ddb.query(TableName=orders, IndexName="by_amount", KeyConditionExpression="customer = :c",
                  ExpressionAttributeValues={":c": {"S": "alice"}}, ScanIndexForward=False)
    assert [i["amount"]["N"] for i in r["Items"]] == ["30", "20", "10"]
    assert all("note" in i and "secret" not in i for i in r["Items"])
    r = ddb.query(TableName=orders, IndexName="by_amount", KeyConditionExpression="customer = :c",
                  ExpressionAttributeValues={":c": {"S": "alice"}}, Select="ALL_ATTRIBUTES")
    assert all("secret" in i for i in r["Items"])


def test_updates_and_deletes_move_index_entries(ddb, orders):
    key = {"customer": {"S": "alice"}, "order": {"N": "2"}}
    ddb.update_item(TableName=orders, Key=key, UpdateExpression="SET #s = :o",
                    ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={":o": {"S": "open"}})
    q = dict(TableName=orders, IndexName="by_status", KeyConditionExpression="#s = :s",
             ExpressionAttributeNames={"#s": "status"})
    assert ddb.query(ExpressionAttributeValues={":s": {"S": "open"}}, **q)["Count"] == 4
    assert ddb.query(ExpressionAttributeValues={":s": {"S": "shipped"}}, **q)["Count"] == 0
    ddb.delete_item(TableName=orders, Key=key)
    assert ddb.query(ExpressionAttributeValues={":s": {"S": "open"}}, **q)["Count"] == 3
    ddb.update_item(TableName=orders, Key={"customer": {"S": "bob"}, "order": {"N": "1"}},
                    UpdateExpression="REMOVE #s", ExpressionAttributeNames={"#s": "status"})
    assert ddb.query(ExpressionAttributeValues={":s": {"S": "open"}}, **q)["Count"] == 2


def test_index_key_type_mismatch_is_refused(ddb, orders):
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=orders, Item={"customer": {"S": "c"}, "order": {"N": "1"}, "status": {"N": "1"}})
    assert error_code(e.value) == "ValidationException"
    assert "Type mismatch for Index Key status Expected: S Actual: N IndexName: by_status" in e.value.response["Error"]["Message"]


def test_unknown_index_and_bad_select(ddb, orders):
    with pytest.raises(ClientError) as e:
        ddb.query(TableName=orders, IndexName="nope", KeyConditionExpression="customer = :c",
                  ExpressionAttributeValues={":c": {"S": "a"}})
    assert "The table does not have the specified index: nope" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        ddb.query(TableName=orders, IndexName="by_status", Select="ALL_ATTRIBUTES", KeyConditionExpression="#s = :s",
                  ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={":s": {"S": "open"}})
    assert "projection type is not ALL" in e.value.response["Error"]["Message"]


@pytest.mark.parametrize("lsi,fragment", [
    ({"IndexName": "lsi1", "KeySchema": [{"AttributeName": "other", "KeyType": "HASH"},
                                       {"AttributeName": "sk", "KeyType": "RANGE"}],
      "Projection": {"ProjectionType": "ALL"}}, "same leading hash key"),
    ({"IndexName": "lsi1", "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                                       {"AttributeName": "sk", "KeyType": "RANGE"}],
      "Projection": {"ProjectionType": "KEYS_ONLY", "NonKeyAttributes": ["a"]}}, "NonKeyAttributes is specified"),
])
def test_index_validation(ddb, table_name, lsi, fragment):
    with pytest.raises(ClientError) as e:
        ddb.create_table(TableName=table_name,
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "t", "KeyType": "RANGE"}],
                         AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "t", "sk", "other")],
                         LocalSecondaryIndexes=[lsi], BillingMode="PAY_PER_REQUEST")
    assert error_code(e.value) == "ValidationException"
    assert fragment in e.value.response["Error"]["Message"]


def test_update_table_adds_backfilled_gsi_and_deletes_it(ddb, table_name):
    from meridian_testlib import create_table, wait_until
    create_table(ddb, table_name)
    for i in range(700):
        item = {"pk": {"S": f"k{i}"}}
        if i % 7 == 0:
            item["color"] = {"S": "red" if i % 2 else "blue"}
        ddb.put_item(TableName=table_name, Item=item)
    d = ddb.update_table(
        TableName=table_name,
        AttributeDefinitions=[{"AttributeName": "color", "AttributeType": "S"}],
        GlobalSecondaryIndexUpdates=[{"Create": {
            "IndexName": "by_color", "KeySchema": [{"AttributeName": "color", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"}}}],
    )["TableDescription"]
    assert d["GlobalSecondaryIndexes"][0]["IndexStatus"] in ("CREATING", "ACTIVE")

    def active():
        t = ddb.describe_table(TableName=table_name)["Table"]
        return t["GlobalSecondaryIndexes"][0]["IndexStatus"] == "ACTIVE"

    wait_until(active, timeout=30, what="index backfill")
    ddb.put_item(TableName=table_name, Item={"pk": {"S": "late"}, "color": {"S": "red"}})
    counts = {c: ddb.query(TableName=table_name, IndexName="by_color", KeyConditionExpression="color = :c",
                           ExpressionAttributeValues={":c": {"S": c}})["Count"] for c in ("red", "blue")}
    assert counts == {"red": 50 + 1, "blue": 50}
    ddb.update_table(TableName=table_name, GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "by_color"}}])
    assert "GlobalSecondaryIndexes" not in ddb.describe_table(TableName=table_name)["Table"]
    with pytest.raises(ClientError) as e:
        ddb.query(TableName=table_name, IndexName="by_color", KeyConditionExpression="color = :c",
                  ExpressionAttributeValues={":c": {"S": "red"}})
    assert "does not have the specified index" in e.value.response["Error"]["Message"]
