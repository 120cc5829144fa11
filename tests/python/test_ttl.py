"""UpdateTimeToLive / DescribeTimeToLive and the background expirer (deletes observed by
polling with a deadline, never by a fixed sleep)."""

import json
import time

import pytest
from botocore.exceptions import ClientError

from meridian_testlib import create_table, error_code, wait_until


@pytest.fixture
def tbl(ddb, table_name):
    create_table(ddb, table_name)
    return table_name


def enable(ddb, tbl, attr="exp"):
    return ddb.update_time_to_live(
        TableName=tbl, TimeToLiveSpecification={"AttributeName": attr, "Enabled": True})


def test_describe_and_update(ddb, tbl):
    assert ddb.describe_time_to_live(TableName=tbl)["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "DISABLED"}
    out = enable(ddb, tbl)
    assert out["TimeToLiveSpecification"] == {"AttributeName": "exp", "Enabled": True}
    assert ddb.describe_time_to_live(TableName=tbl)["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED", "AttributeName": "exp"}

    with pytest.raises(ClientError) as e:
        enable(ddb, tbl)
    assert error_code(e.value) == "ValidationException"
    assert e.value.response["Error"]["Message"] == "TimeToLive is already enabled"

    with pytest.raises(ClientError) as e:
        ddb.update_time_to_live(
            TableName=tbl, TimeToLiveSpecification={"AttributeName": "other", "Enabled": False})
    assert e.value.response["Error"]["Message"] == (
        "TimeToLive is active on a different AttributeName: current AttributeName is exp")

    out = ddb.update_time_to_live(
        TableName=tbl, TimeToLiveSpecification={"AttributeName": "exp", "Enabled": False})
    assert out["TimeToLiveSpecification"] == {"AttributeName": "exp", "Enabled": False}
    assert ddb.describe_time_to_live(TableName=tbl)["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "DISABLED"}
    with pytest.raises(ClientError) as e:
        ddb.update_time_to_live(
            TableName=tbl, TimeToLiveSpecification={"AttributeName": "exp", "Enabled": False})
    assert e.value.response["Error"]["Message"] == "TimeToLive is already disabled"


def test_missing_table(ddb):
    for call in (
        lambda: ddb.describe_time_to_live(TableName="no_such_table"),
        lambda: ddb.update_time_to_live(
            TableName="no_such_table",
            TimeToLiveSpecification={"AttributeName": "exp", "Enabled": True}),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert error_code(e.value) == "ResourceNotFoundException"


def test_missing_specification(region, tbl):
    from meridian_testlib import raw
    _, _, body = raw(region.endpoint, "UpdateTimeToLive", {"TableName": tbl})
    assert body["message"] == (
        "1 validation error detected: Value null at 'timeToLiveSpecification' failed to "
        "satisfy constraint: Member must not be null")


def changelog(region):
    return json.loads(region.get("/admin/changelog?from=1&limit=100000"))["entries"]


def test_expired_items_are_deleted_and_logged(ddb, region, tbl):
    now = int(time.time())
    enable(ddb, tbl)
    ddb.put_item(TableName=tbl, Item={"pk": {"S": "old"}, "exp": {"N": str(now - 10)}})
    ddb.put_item(TableName=tbl, Item={"pk": {"S": "future"}, "exp": {"N": str(now + 3600)}})
    ddb.put_item(TableName=tbl, Item={"pk": {"S": "none"}})
    ddb.put_item(TableName=tbl, Item={"pk": {"S": "str"}, "exp": {"S": str(now - 10)}})
    ddb.put_item(TableName=tbl, Item={"pk": {"S": "ancient"}, "exp": {"N": str(now - 6 * 366 * 86400)}})

    def gone():
        return "Item" not in ddb.get_item(TableName=tbl, Key={"pk": {"S": "old"}})
    wait_until(gone, timeout=15, interval=0.1, what="expired item to be deleted")

    entries = [e for e in changelog(region) if e["table"] == tbl and e["op"] == "ttl-delete"]
    assert len(entries) == 1
    left = {i["pk"]["S"] for i in ddb.scan(TableName=tbl)["Items"]}
    assert left == {"future", "none", "str", "ancient"}


def test_item_soon_to_expire_goes_within_deadline(ddb, tbl):
    enable(ddb, tbl)
    ddb.put_item(TableName=tbl, Item={"pk": {"S": "soon"}, "exp": {"N": str(int(time.time()) + 2)}})
    assert "Item" in ddb.get_item(TableName=tbl, Key={"pk": {"S": "soon"}})
    wait_until(lambda: "Item" not in ddb.get_item(TableName=tbl, Key={"pk": {"S": "soon"}}),
               timeout=15, interval=0.1, what="item to expire")


def test_extended_ttl_survives(ddb, tbl):
    """An item whose TTL is moved to the future before the expirer sees it stays."""
    enable(ddb, tbl)
    now = int(time.time())
    ddb.put_item(TableName=tbl, Item={"pk": {"S": "keep"}, "exp": {"N": str(now + 3600)}})
    ddb.put_item(TableName=tbl, Item={"pk": {"S": "probe"}, "exp": {"N": str(now - 1)}})
    wait_until(lambda: "Item" not in ddb.get_item(TableName=tbl, Key={"pk": {"S": "probe"}}),
               timeout=15, interval=0.1, what="probe to expire")
    assert "Item" in ddb.get_item(TableName=tbl, Key={"pk": {"S": "keep"}})


def test_disabled_ttl_deletes_nothing(ddb, region, tbl):
    now = int(time.time())
    ddb.put_item(TableName=tbl, Item={"pk": {"S": "old"}, "exp": {"N": str(now - 10)}})
    # A second table with TTL on, as a witness that the expirer has run meanwhile.
    witness = tbl + "_w"
    create_table(ddb, witness)
    enable(ddb, witness)
    ddb.put_item(TableName=witness, Item={"pk": {"S": "w"}, "exp": {"N": str(now - 10)}})
    wait_until(lambda: "Item" not in ddb.get_item(TableName=witness, Key={"pk": {"S": "w"}}),
               timeout=15, interval=0.1, what="witness to expire")
    assert "Item" in ddb.get_item(TableName=tbl, Key={"pk": {"S": "old"}})
