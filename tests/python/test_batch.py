"""BatchGetItem and BatchWriteItem."""

import pytest
from botocore.exceptions import ClientError

from meridian_testlib import create_table, error_code


@pytest.fixture
def tbl(ddb, table_name):
    create_table(ddb, table_name)
    return table_name


def test_batch_write_then_batch_get(ddb, tbl):
    puts = [{"PutRequest": {"Item": {"pk": {"S": f"k{i}"}, "v": {"N": str(i)}}}} for i in range(25)]
    r = ddb.batch_write_item(RequestItems={tbl: puts})
    assert r["UnprocessedItems"] == {}
    keys = [{"pk": {"S": f"k{i}"}} for i in range(25)] + [{"pk": {"S": "absent"}}]
    got = ddb.batch_get_item(RequestItems={tbl: {"Keys": keys}})
    assert r["UnprocessedItems"] == {}
    assert sorted(int(i["v"]["N"]) for i in got["Responses"][tbl]) == list(range(25))
    assert got["UnprocessedKeys"] == {}
    dels = [{"DeleteRequest": {"Key": {"pk": {"S": f"k{i}"}}}} for i in range(10)]
    ddb.batch_write_item(RequestItems={tbl: dels})
    got = ddb.batch_get_item(RequestItems={tbl: {"Keys": keys, "ProjectionExpression": "v"}})
    assert sorted(int(i["v"]["N"]) for i in got["Responses"][tbl]) == list(range(10, 25))
    assert all(set(i) == {"v"} for i in got["Responses"][tbl])


def test_batch_spans_tables(ddb, table_name):
    a, b = table_name + "_a", table_name + "_b"
    create_table(ddb, a)
    create_table(ddb, b)
    ddb.batch_write_item(RequestItems={
        a: [{"PutRequest": {"Item": {"pk": {"S": "1"}}}}],
        b: [{"PutRequest": {"Item": {"pk": {"S": "2"}}}}],
    })
    got = ddb.batch_get_item(RequestItems={a: {"Keys": [{"pk": {"S": "1"}}]}, b: {"Keys": [{"pk": {"S": "2"}}]}})
    assert len(got["Responses"][a]) == 1 and len(got["Responses"][b]) == 1


def test_batch_write_limit_and_duplicates(ddb, tbl):
    puts = [{"PutRequest": {"Item": {"pk": {"S": f"k{i}"}}}} for i in range(26)]
    with pytest.raises(ClientError) as e:
        ddb.batch_write_item(RequestItems={tbl: puts})
    assert error_code(e.value) == "ValidationException"
    assert "less than or equal to 25" in e.value.response["Error"]["Message"]
    dup = [{"PutRequest": {"Item": {"pk": {"S": "same"}}}}] * 2
    with pytest.raises(ClientError) as e:
        ddb.batch_write_item(RequestItems={tbl: dup})
    assert "contains duplicates" in e.value.response["Error"]["Message"]
    # nothing of a refused batch was written
    assert ddb.scan(TableName=tbl)["Count"] == 0


def test_batch_get_limit_and_duplicates(ddb, tbl):
    keys = [{"pk": {"S": f"k{i}"}} for i in range(101)]
    with pytest.raises(ClientError) as e:
        ddb.batch_get_item(RequestItems={tbl: {"Keys": keys}})
    assert error_code(e.value) == "ValidationException"
    assert "Too many items requested for the BatchGetItem call" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        ddb.batch_get_item(RequestItems={tbl: {"Keys": [{"pk": {"S": "a"}}] * 2}})
    assert "contains duplicates" in e.value.response["Error"]["Message"]


def test_batch_missing_table(ddb):
    with pytest.raises(ClientError) as e:
        ddb.batch_get_item(RequestItems={"no_such_table": {"Keys": [{"pk": {"S": "a"}}]}})
    assert error_code(e.value) == "ResourceNotFoundException"
