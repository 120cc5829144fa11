"""Tags, DescribeEndpoints, DescribeLimits, UpdateTable (billing) and ReturnConsumedCapacity."""

import pytest
from botocore.exceptions import ClientError

from meridian_testlib import create_table, error_code, raw


@pytest.fixture
def tbl(ddb, table_name):
    create_table(ddb, table_name)
    return table_name


def arn_of(ddb, tbl):
    return ddb.describe_table(TableName=tbl)["Table"]["TableArn"]


# --- tags -------------------------------------------------------------------------------------

def test_tag_untag_list(ddb, tbl):
    arn = arn_of(ddb, tbl)
    assert arn.startswith("arn:aws:dynamodb:") and arn.endswith(":000000000000:table/" + tbl)
    assert ddb.list_tags_of_resource(ResourceArn=arn)["Tags"] == []
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": "team", "Value": "core"},
                                            {"Key": "env", "Value": "dev"}])
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": "env", "Value": "prod"}])
    tags = ddb.list_tags_of_resource(ResourceArn=arn)["Tags"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("env", "prod"), ("team", "core")]
    ddb.untag_resource(ResourceArn=arn, TagKeys=["team", "absent"])
    assert ddb.list_tags_of_resource(ResourceArn=arn)["Tags"] == [{"Key": "env", "Value": "prod"}]


def test_tags_at_create_table(ddb, table_name):
    create_table(ddb, table_name, Tags=[{"Key": "a", "Value": "1"}])
    arn = arn_of(ddb, table_name)
    assert ddb.list_tags_of_resource(ResourceArn=arn)["Tags"] == [{"Key": "a", "Value": "1"}]


def test_tag_errors(ddb, region, tbl):
    arn = arn_of(ddb, tbl)
    cases = [
        ("TagResource", {"Tags": [{"Key": "a", "Value": "b"}]}, "Invalid TableArn"),
        ("TagResource", {"ResourceArn": "a:b:c:d:e:f/g", "Tags": [{"Key": "a", "Value": "b"}]},
         "Invalid TableArn: Invalid ResourceArn provided as input a:b:c:d:e:f/g"),
        ("TagResource", {"ResourceArn": arn},
         "1 validation error detected: Value null at 'tags' failed to satisfy constraint: "
         "Member must not be null"),
        ("TagResource", {"ResourceArn": arn, "Tags": []},
         "Atleast one Tag needs to be provided as Input."),
        ("TagResource", {"ResourceArn": arn, "Tags": [{"Key": "k" * 129, "Value": "v"}]},
         "The Tag Key provided is invalid, Key: " + "k" * 129),
        ("TagResource", {"ResourceArn": arn, "Tags": [{"Key": "k"}]},
         "The Tag Value provided is invalid, Value: null"),
        ("TagResource", {"ResourceArn": arn, "Tags": [{"Key": "d", "Value": "1"},
                                                      {"Key": "d", "Value": "2"}]},
         "Duplicate Tag Keys provided as input: Duplicate Tag Key found d"),
        ("UntagResource", {"ResourceArn": arn, "TagKeys": []},
         "Atleast one Tag Key needs to be provided as Input."),
        ("UntagResource", {"ResourceArn": arn},
         "1 validation error detected: Value null at 'tagKeys' failed to satisfy constraint: "
         "Member must not be null"),
        ("ListTagsOfResource", {}, "Invalid TableArn"),
    ]
    for target, body, message in cases:
        status, _, out = raw(region.endpoint, target, body)
        assert status == 400, (target, body)
        assert out["__type"] == "com.amazon.coral.validate#ValidationException", (target, out)
        assert out["message"] == message, (target, body)


def test_tag_limit(ddb, tbl):
    arn = arn_of(ddb, tbl)
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
    with pytest.raises(ClientError) as e:
        ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": "one-more", "Value": "v"}])
    assert e.value.response["Error"]["Message"] == (
        "Number of Tags exceed the current limit for the provided ResourceArn")
    assert len(ddb.list_tags_of_resource(ResourceArn=arn)["Tags"]) == 50


def test_tags_of_missing_table(ddb, tbl):
    arn = arn_of(ddb, tbl).replace(tbl, "no_such_table")
    for call in (lambda: ddb.list_tags_of_resource(ResourceArn=arn),
                 lambda: ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": "a", "Value": "b"}]),
                 lambda: ddb.untag_resource(ResourceArn=arn, TagKeys=["a"])):
        with pytest.raises(ClientError) as e:
            call()
        assert error_code(e.value) == "ResourceNotFoundException"
        assert e.value.response["Error"]["Message"] == (
            f"Requested resource not found: ResourcArn: {arn} not found")


# --- endpoints, limits --------------------------------------------------------------------------

def test_describe_endpoints(ddb, region):
    out = ddb.describe_endpoints()
    assert out["Endpoints"] == [{"Address": f"127.0.0.1:{region.port}",
                                 "CachePeriodInMinutes": 1440}]


def test_describe_limits(ddb):
    out = ddb.describe_limits()
    for k in ("AccountMaxReadCapacityUnits", "AccountMaxWriteCapacityUnits",
              "TableMaxReadCapacityUnits", "TableMaxWriteCapacityUnits"):
        assert out[k] > 0


# --- UpdateTable ------------------------------------------------------------------------------

def test_update_billing_mode_and_throughput(ddb, tbl):
    out = ddb.update_table(TableName=tbl, BillingMode="PROVISIONED",
                           ProvisionedThroughput={"ReadCapacityUnits": 5,
                                                  "WriteCapacityUnits": 7})
    d = out["TableDescription"]
    assert d["TableStatus"] == "ACTIVE"
    assert d["ProvisionedThroughput"]["ReadCapacityUnits"] == 5
    assert d["ProvisionedThroughput"]["WriteCapacityUnits"] == 7
    d = ddb.describe_table(TableName=tbl)["Table"]
    assert d["ProvisionedThroughput"]["WriteCapacityUnits"] == 7
    assert "BillingModeSummary" not in d or d["BillingModeSummary"]["BillingMode"] == "PROVISIONED"

    ddb.update_table(TableName=tbl, ProvisionedThroughput={"ReadCapacityUnits": 10,
                                                           "WriteCapacityUnits": 7})
    assert ddb.describe_table(TableName=tbl)["Table"]["ProvisionedThroughput"][
        "ReadCapacityUnits"] == 10

    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName=tbl, ProvisionedThroughput={"ReadCapacityUnits": 10,
                                                               "WriteCapacityUnits": 7})
    assert e.value.response["Error"]["Message"].startswith(
        "The provisioned throughput for the table will not change.")

    ddb.update_table(TableName=tbl, BillingMode="PAY_PER_REQUEST")
    d = ddb.describe_table(TableName=tbl)["Table"]
    assert d["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert d["ProvisionedThroughput"]["ReadCapacityUnits"] == 0


def test_update_table_errors(ddb, tbl):
    def msg(**kw):
        with pytest.raises(ClientError) as e:
            ddb.update_table(TableName=tbl, **kw)
        assert error_code(e.value) == "ValidationException"
        return e.value.response["Error"]["Message"]

    assert msg().startswith("At least one of ProvisionedThroughput, BillingMode")
    assert msg(BillingMode="PROVISIONED") == (
        "One or more parameter values were invalid: ProvisionedThroughput must be specified "
        "when BillingMode is PROVISIONED")
    assert msg(BillingMode="PAY_PER_REQUEST",
               ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}) == (
        "One or more parameter values were invalid: Neither ReadCapacityUnits nor "
        "WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST")
    m = msg(StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
    assert "StreamSpecification is not supported by Meridian" in m
    with pytest.raises(ClientError) as e:
        ddb.update_table(TableName="no_such_table", BillingMode="PAY_PER_REQUEST")
    assert error_code(e.value) == "ResourceNotFoundException"


# --- ReturnConsumedCapacity -------------------------------------------------------------------

def test_consumed_capacity_on_item_ops(ddb, tbl):
    big = {"pk": {"S": "a"}, "blob": {"S": "x" * 3000}}
    out = ddb.put_item(TableName=tbl, Item=big, ReturnConsumedCapacity="TOTAL")
    assert out["ConsumedCapacity"] == {"TableName": tbl, "CapacityUnits": 3.0,
                                       "WriteCapacityUnits": 3.0}
    out = ddb.put_item(TableName=tbl, Item={"pk": {"S": "b"}}, ReturnConsumedCapacity="INDEXES")
    assert out["ConsumedCapacity"]["CapacityUnits"] == 1.0
    assert out["ConsumedCapacity"]["Table"] == {"CapacityUnits": 1.0, "WriteCapacityUnits": 1.0}
    out = ddb.put_item(TableName=tbl, Item={"pk": {"S": "c"}}, ReturnConsumedCapacity="NONE")
    assert "ConsumedCapacity" not in out
    out = ddb.put_item(TableName=tbl, Item={"pk": {"S": "c"}})
    assert "ConsumedCapacity" not in out

    out = ddb.get_item(TableName=tbl, Key={"pk": {"S": "a"}}, ReturnConsumedCapacity="TOTAL")
    assert out["ConsumedCapacity"]["CapacityUnits"] == 0.5
    out = ddb.get_item(TableName=tbl, Key={"pk": {"S": "a"}}, ConsistentRead=True,
                       ReturnConsumedCapacity="TOTAL")
    assert out["ConsumedCapacity"]["CapacityUnits"] == 1.0

    out = ddb.update_item(TableName=tbl, Key={"pk": {"S": "a"}}, UpdateExpression="SET n = :n",
                          ExpressionAttributeValues={":n": {"N": "1"}},
                          ReturnConsumedCapacity="TOTAL")
    assert out["ConsumedCapacity"]["CapacityUnits"] == 3.0
    out = ddb.delete_item(TableName=tbl, Key={"pk": {"S": "a"}}, ReturnConsumedCapacity="TOTAL")
    assert out["ConsumedCapacity"]["CapacityUnits"] == 3.0

    out = ddb.scan(TableName=tbl, ReturnConsumedCapacity="TOTAL")
    assert out["ConsumedCapacity"] == {"TableName": tbl, "CapacityUnits": 0.5,
                                       "ReadCapacityUnits": 0.5}
    out = ddb.query(TableName=tbl, KeyConditionExpression="pk = :p",
                    ExpressionAttributeValues={":p": {"S": "b"}}, ConsistentRead=True,
                    ReturnConsumedCapacity="TOTAL")
    assert out["ConsumedCapacity"]["CapacityUnits"] == 1.0

    out = ddb.batch_write_item(RequestItems={tbl: [
        {"PutRequest": {"Item": {"pk": {"S": "x"}}}},
        {"PutRequest": {"Item": {"pk": {"S": "y"}}}},
    ]}, ReturnConsumedCapacity="TOTAL")
    assert out["ConsumedCapacity"] == [{"TableName": tbl, "CapacityUnits": 2.0,
                                        "WriteCapacityUnits": 2.0}]
    out = ddb.batch_get_item(RequestItems={tbl: {"Keys": [{"pk": {"S": "x"}},
                                                          {"pk": {"S": "y"}}]}},
                             ReturnConsumedCapacity="TOTAL")
    assert out["ConsumedCapacity"] == [{"TableName": tbl, "CapacityUnits": 1.0,
                                        "ReadCapacityUnits": 1.0}]


def test_bad_return_consumed_capacity(ddb, tbl):
    with pytest.raises(ClientError) as e:
        ddb.put_item(TableName=tbl, Item={"pk": {"S": "a"}}, ReturnConsumedCapacity="ALL")
    assert e.value.response["Error"]["Message"] == (
        "1 validation error detected: Value 'ALL' at 'returnConsumedCapacity' failed to "
        "satisfy constraint: Member must satisfy enum value set: [INDEXES, TOTAL, NONE]")
