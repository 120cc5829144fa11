"""CreateTable, DescribeTable, ListTables (paginated), DeleteTable, and their validation."""

import pytest
from botocore.exceptions import ClientError

from meridian_testlib import create_table, error_code


def test_create_describe_delete(ddb, table_name):
    d = create_table(ddb, table_name, range_key=("sk", "N"))["TableDescription"]
    assert d["TableName"] == table_name
    assert d["TableStatus"] == "ACTIVE"
    assert d["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"},
                              {"AttributeName": "sk", "KeyType": "RANGE"}]
    assert d["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert d["TableArn"].endswith(f":table/{table_name}")
    t = ddb.describe_table(TableName=table_name)["Table"]
    assert t["ItemCount"] == 0 and t["TableStatus"] == "ACTIVE"
    ddb.put_item(TableName=table_name, Item={"pk": {"S": "a"}, "sk": {"N": "1"}})
    assert ddb.describe_table(TableName=table_name)["Table"]["ItemCount"] == 1
    deleted = ddb.delete_table(TableName=table_name)["TableDescription"]
    assert deleted["TableStatus"] == "DELETING"
    with pytest.raises(ClientError) as e:
        ddb.describe_table(TableName=table_name)
    assert error_code(e.value) == "ResourceNotFoundException"
    assert table_name in e.value.response["Error"]["Message"]


def test_recreated_table_starts_empty(ddb, table_name):
    create_table(ddb, table_name)
    ddb.put_item(TableName=table_name, Item={"pk": {"S": "old"}})
    ddb.delete_table(TableName=table_name)
    create_table(ddb, table_name)
    assert ddb.scan(TableName=table_name)["Count"] == 0


def test_create_existing_table_is_resource_in_use(ddb, table_name):
    create_table(ddb, table_name)
    with pytest.raises(ClientError) as e:
        create_table(ddb, table_name)
    assert error_code(e.value) == "ResourceInUseException"


def test_provisioned_throughput_is_reported(ddb, table_name):
    ddb.create_table(TableName=table_name,
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 7})
    pt = ddb.describe_table(TableName=table_name)["Table"]["ProvisionedThroughput"]
    assert (pt["ReadCapacityUnits"], pt["WriteCapacityUnits"]) == (5, 7)


def test_list_tables_paginates(ddb):
    names = [f"page_{i:02d}" for i in range(7)]
    for n in names:
        create_table(ddb, n)
    seen, start = [], None
    while True:
        kw = {"Limit": 3}
        if start:
            kw["ExclusiveStartTableName"] = start
        r = ddb.list_tables(**kw)
        assert len(r["TableNames"]) <= 3
        seen += r["TableNames"]
        start = r.get("LastEvaluatedTableName")
        if not start:
            break
    assert [n for n in seen if n.startswith("page_")] == names
    assert seen == sorted(seen)
    # the boto3 paginator agrees
    all_names = [n for p in ddb.get_paginator("list_tables").paginate(PaginationConfig={"PageSize": 2})
                 for n in p["TableNames"]]
    assert all_names == seen


@pytest.mark.parametrize("kwargs,fragment", [
    (dict(TableName="ab"), "Member must have length greater than or equal to 3"),
    (dict(TableName="bad name"), "Member must satisfy regular expression pattern"),
    (dict(KeySchema=[{"AttributeName": "pk", "KeyType": "RANGE"}]), "not a HASH key type"),
    (dict(AttributeDefinitions=[{"AttributeName": "other", "AttributeType": "S"}]),
     "Some index key attributes are not defined in AttributeDefinitions"),
    (dict(AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                {"AttributeName": "extra", "AttributeType": "S"}]),
     "Number of attributes in KeySchema does not exactly match"),
    (dict(AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "X"}]),
     "Member must satisfy enum value set: [B, N, S]"),
    (dict(BillingMode="PROVISIONED"), "ReadCapacityUnits and WriteCapacityUnits must both be specified"),
])
def test_create_table_validation(ddb, kwargs, fragment):
    args = dict(TableName="valid_name", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST")
    args.update(kwargs)
    with pytest.raises(ClientError) as e:
        ddb.create_table(**args)
    assert error_code(e.value) == "ValidationException"
    assert fragment in e.value.response["Error"]["Message"]


def test_missing_table_errors(ddb):
    for call in (lambda: ddb.get_item(TableName="missing_t", Key={"pk": {"S": "a"}}),
                 lambda: ddb.put_item(TableName="missing_t", Item={"pk": {"S": "a"}}),
                 lambda: ddb.query(TableName="missing_t", KeyConditionExpression="pk = :p",
                                   ExpressionAttributeValues={":p": {"S": "a"}}),
                 lambda: ddb.scan(TableName="missing_t"),
                 lambda: ddb.delete_table(TableName="missing_t")):
        with pytest.raises(ClientError) as e:
            call()
        assert error_code(e.value) == "ResourceNotFoundException"
