"""Query (key conditions, order, Limit, pagination, 1 MB pages) and Scan (pagination, segments)."""

import pytest
from botocore.exceptions import ClientError

from meridian_testlib import create_table, error_code, raw


@pytest.fixture
def nums(ddb, table_name):
    """Partition 'p' with numeric sort keys spanning negatives, decimals and large values."""
    create_table(ddb, table_name, range_key=("sk", "N"))
    values = ["-1000", "-2.5", "-1", "0", "0.001", "1", "2", "10", "99.5", "1e20"]
    for v in values:
        ddb.put_item(TableName=table_name, Item={"pk": {"S": "p"}, "sk": {"N": v}})
    ddb.put_item(TableName=table_name, Item={"pk": {"S": "other"}, "sk": {"N": "5"}})
    return table_name


def sks(items):
    return [float(i["sk"]["N"]) for i in items]


def q(ddb, tbl, cond, values, **kw):
    vals = {":p": {"S": "p"}, **values}
    return ddb.query(TableName=tbl, KeyConditionExpression=cond, ExpressionAttributeValues=vals, **kw)


def test_numeric_sort_order(ddb, nums):
    items = q(ddb, nums, "pk = :p", {})["Items"]
    assert sks(items) == sorted(sks(items)) and len(items) == 10
    rev = q(ddb, nums, "pk = :p", {}, ScanIndexForward=False)["Items"]
    assert sks(rev) == sorted(sks(items), reverse=True)


@pytest.mark.parametrize("cond,values,expected", [
    ("pk = :p AND sk = :a", {":a": {"N": "1"}}, [1]),
    ("pk = :p AND sk < :a", {":a": {"N": "0"}}, [-1000, -2.5, -1]),
    ("pk = :p AND sk <= :a", {":a": {"N": "0"}}, [-1000, -2.5, -1, 0]),
    ("pk = :p AND sk > :a", {":a": {"N": "10"}}, [99.5, 1e20]),
    ("pk = :p AND sk >= :a", {":a": {"N": "10"}}, [10, 99.5, 1e20]),
    ("pk = :p AND sk BETWEEN :a AND :b", {":a": {"N": "-1"}, ":b": {"N": "2"}}, [-1, 0, 0.001, 1, 2]),
    ("sk > :a AND pk = :p", {":a": {"N": "99"}}, [99.5, 1e20]),
])
def test_sort_key_conditions(ddb, nums, cond, values, expected):
    assert sks(q(ddb, nums, cond, values)["Items"]) == expected


def test_begins_with_on_strings_and_binary(ddb, table_name):
    create_table(ddb, table_name, range_key=("sk", "S"))
    for s in ["a", "ab", "abc", "abd", "b", "a\u00e9"]:
        ddb.put_item(TableName=table_name, Item={"pk": {"S": "p"}, "sk": {"S": s}})
    r = q(ddb, table_name, "pk = :p AND begins_with(sk, :x)", {":x": {"S": "ab"}})
    assert [i["sk"]["S"] for i in r["Items"]] == ["ab", "abc", "abd"]
    r = q(ddb, table_name, "pk = :p", {})
    assert [i["sk"]["S"] for i in r["Items"]] == sorted(["a", "ab", "abc", "abd", "b", "a\u00e9"],
                                                         key=lambda s: s.encode())


def test_binary_sort_keys_sort_unsigned(ddb, table_name):
    create_table(ddb, table_name, range_key=("sk", "B"))
    vals = [b"\xff", b"\x00", b"\x00\x00", b"\x7f", b"\x80", b"\x01\xff"]
    for v in vals:
        ddb.put_item(TableName=table_name, Item={"pk": {"S": "p"}, "sk": {"B": v}})
    got = [i["sk"]["B"] for i in q(ddb, table_name, "pk = :p", {})["Items"]]
    assert got == sorted(vals)
    r = q(ddb, table_name, "pk = :p AND begins_with(sk, :x)", {":x": {"B": b"\x00"}})
    assert [i["sk"]["B"] for i in r["Items"]] == [b"\x00", b"\x00\x00"]


def test_limit_and_pagination(ddb, nums):
    seen, start, pages = [], None, 0
    while True:
        kw = {"Limit": 3}
        if start:
            kw["ExclusiveStartKey"] = start
        r = q(ddb, nums, "pk = :p", {}, **kw)
        pages += 1
        assert r["Count"] <= 3
        seen += sks(r["Items"])
        start = r.get("LastEvaluatedKey")
        if not start:
            break
    assert seen == sks(q(ddb, nums, "pk = :p", {})["Items"])
    assert pages == 4  # 3 + 3 + 3 + 1


def test_reverse_pagination(ddb, nums):
    r1 = q(ddb, nums, "pk = :p", {}, Limit=4, ScanIndexForward=False)
    r2 = q(ddb, nums, "pk = :p", {}, Limit=4, ScanIndexForward=False, ExclusiveStartKey=r1["LastEvaluatedKey"])
    assert sks(r1["Items"] + r2["Items"]) == sorted(sks(q(ddb, nums, "pk = :p", {})["Items"]), reverse=True)[:8]


def test_filter_applies_after_limit_and_count(ddb, nums):
    # DynamoDB refuses a Query FilterExpression on a key attribute: filter on a non-key one.
    ddb.update_item(TableName=nums, Key={"pk": {"S": "p"}, "sk": {"N": "0.001"}},
                    UpdateExpression="SET v = :one", ExpressionAttributeValues={":one": {"N": "1"}})
    r = q(ddb, nums, "pk = :p", {":one": {"N": "1"}}, Limit=5, FilterExpression="v = :one")
    assert r["ScannedCount"] == 5
    assert sks(r["Items"]) == [0.001]
    assert r["Count"] == 1
    r = q(ddb, nums, "pk = :p", {}, Select="COUNT")
    assert r["Count"] == 10 and "Items" not in r


def test_one_megabyte_pages(ddb, table_name):
    create_table(ddb, table_name, range_key=("sk", "N"))
    blob = "x" * 100_000
    for i in range(25):  # ~2.5 MB in one partition
        ddb.put_item(TableName=table_name, Item={"pk": {"S": "p"}, "sk": {"N": str(i)}, "v": {"S": blob}})
    pages, total, start = 0, 0, None
    while True:
        kw = {"ExclusiveStartKey": start} if start else {}
        r = q(ddb, table_name, "pk = :p", {}, **kw)
        pages += 1
        total += r["Count"]
        assert r["Count"] <= 11
        start = r.get("LastEvaluatedKey")
        if not start:
            break
    assert total == 25 and pages == 3


def test_scan_pagination_and_segments(ddb, table_name):
    create_table(ddb, table_name)
    for i in range(200):
        ddb.put_item(TableName=table_name, Item={"pk": {"S": f"user{i}"}})
    all_keys = set()
    for page in ddb.get_paginator("scan").paginate(TableName=table_name, PaginationConfig={"PageSize": 17}):
        all_keys |= {i["pk"]["S"] for i in page["Items"]}
    assert len(all_keys) == 200
    seg_keys = []
    for s in range(4):
        for page in ddb.get_paginator("scan").paginate(TableName=table_name, Segment=s, TotalSegments=4,
                                                       PaginationConfig={"PageSize": 13}):
            seg_keys += [i["pk"]["S"] for i in page["Items"]]
    assert sorted(seg_keys) == sorted(all_keys)  # segments partition the table exactly
    assert all(0 < ddb.scan(TableName=table_name, Segment=s, TotalSegments=4)["Count"] < 200 for s in range(4))


@pytest.mark.parametrize("kw,fragment", [
    (dict(Segment=1), "TotalSegments parameter is required"),
    (dict(TotalSegments=2), "Segment parameter is required"),
    (dict(Segment=2, TotalSegments=2), "must be less than parameter TotalSegments"),
])
def test_scan_validation(ddb, nums, kw, fragment):
    with pytest.raises(ClientError) as e:
        ddb.scan(TableName=nums, **kw)
    assert error_code(e.value) == "ValidationException"
    assert fragment in e.value.response["Error"]["Message"]


def test_query_validation(ddb, nums):
    with pytest.raises(ClientError) as e:
        ddb.query(TableName=nums, KeyConditionExpression="sk = :a", ExpressionAttributeValues={":a": {"N": "1"}})
    assert error_code(e.value) == "ValidationException"
    with pytest.raises(ClientError) as e:
        q(ddb, nums, "pk = :p", {":unused": {"S": "x"}})
    assert "unused in expressions" in e.value.response["Error"]["Message"]


def test_limit_zero_refused_by_server(region, nums):
    # boto3 refuses Limit=0 on the client side, so send it raw
    status, _, body = raw(region.endpoint, "Scan", {"TableName": nums, "Limit": 0})
    assert status == 400 and body["__type"].endswith("#ValidationException")
    assert "Member must have value greater than or equal to 1" in body["message"]
