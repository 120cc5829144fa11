"""TransactWriteItems / TransactGetItems: all-or-nothing, cancellation reasons, idempotency,
limits and DynamoDB's messages."""

import threading

import pytest
from botocore.exceptions import ClientError

from meridian_testlib import create_table, error_code


@pytest.fixture
def tbl(ddb, table_name):
    create_table(ddb, table_name)
    return table_name


def key(pk):
    return {"pk": {"S": pk}}


def get(ddb, tbl, pk):
    return ddb.get_item(TableName=tbl, Key=key(pk), ConsistentRead=True).get("Item")


def test_all_actions_apply_together(ddb, tbl):
    ddb.put_item(TableName=tbl, Item={"pk": {"S": "upd"}, "n": {"N": "1"}})
    ddb.put_item(TableName=tbl, Item={"pk": {"S": "del"}})
    ddb.put_item(TableName=tbl, Item={"pk": {"S": "chk"}, "ok": {"BOOL": True}})
    ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": tbl, "Item": {"pk": {"S": "new"}, "v": {"S": "x"}},
                 "ConditionExpression": "attribute_not_exists(pk)"}},
        {"Update": {"TableName": tbl, "Key": key("upd"), "UpdateExpression": "ADD n :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        {"Delete": {"TableName": tbl, "Key": key("del")}},
        {"ConditionCheck": {"TableName": tbl, "Key": key("chk"),
                            "ConditionExpression": "ok = :t",
                            "ExpressionAttributeValues": {":t": {"BOOL": True}}}},
    ])
    assert get(ddb, tbl, "new") == {"pk": {"S": "new"}, "v": {"S": "x"}}
    assert get(ddb, tbl, "upd")["n"] == {"N": "2"}
    assert get(ddb, tbl, "del") is None
    assert get(ddb, tbl, "chk") == {"pk": {"S": "chk"}, "ok": {"BOOL": True}}


def test_failed_condition_cancels_everything_with_reasons(ddb, tbl):
    ddb.put_item(TableName=tbl, Item={"pk": {"S": "a"}, "n": {"N": "1"}})
    ddb.put_item(TableName=tbl, Item={"pk": {"S": "b"}, "n": {"N": "5"}})
    with pytest.raises(ClientError) as e:
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": tbl, "Item": {"pk": {"S": "c"}}}},
            {"Update": {"TableName": tbl, "Key": key("a"), "UpdateExpression": "SET n = :v",
                        "ExpressionAttributeValues": {":v": {"N": "100"}}}},
            {"ConditionCheck": {"TableName": tbl, "Key": key("b"),
                                "ConditionExpression": "n = :one",
                                "ExpressionAttributeValues": {":one": {"N": "1"}},
                                "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
        ])
    err = e.value.response
    assert error_code(e.value) == "TransactionCanceledException"
    assert err["Error"]["Message"] == (
        "Transaction cancelled, please refer cancellation reasons for specific reasons "
        "[None, None, ConditionalCheckFailed]")
    reasons = err["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["None", "None", "ConditionalCheckFailed"]
    assert reasons[2]["Message"] == "The conditional request failed"
    assert reasons[2]["Item"] == {"pk": {"S": "b"}, "n": {"N": "5"}}
    assert "Item" not in reasons[0] and "Message" not in reasons[0]
    # Nothing was applied.
    assert get(ddb, tbl, "c") is None
    assert get(ddb, tbl, "a")["n"] == {"N": "1"}


def test_reason_without_all_old_has_no_item(ddb, tbl):
    ddb.put_item(TableName=tbl, Item={"pk": {"S": "a"}})
    with pytest.raises(ClientError) as e:
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": tbl, "Item": {"pk": {"S": "a"}},
                     "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Put": {"TableName": tbl, "Item": {"pk": {"S": "b"}},
                     "ConditionExpression": "attribute_not_exists(pk)"}},
        ])
    reasons = e.value.response["CancellationReasons"]
    assert reasons == [
        {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"},
        {"Code": "None"},
    ]


def test_runtime_update_error_is_validation_error_reason(ddb, tbl):
    ddb.put_item(TableName=tbl, Item={"pk": {"S": "a"}, "s": {"S": "text"}})
    with pytest.raises(ClientError) as e:
        ddb.transact_write_items(TransactItems=[
            {"Update": {"TableName": tbl, "Key": key("a"), "UpdateExpression": "ADD s :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}}}},
            {"Put": {"TableName": tbl, "Item": {"pk": {"S": "b"}}}},
        ])
    reasons = e.value.response["CancellationReasons"]
    assert reasons[0]["Code"] == "ValidationError"
    assert reasons[0]["Message"]
    assert reasons[1] == {"Code": "None"}
    assert get(ddb, tbl, "b") is None


def test_multiple_operations_on_one_item_refused(ddb, tbl):
    with pytest.raises(ClientError) as e:
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": tbl, "Item": {"pk": {"S": "a"}}}},
            {"ConditionCheck": {"TableName": tbl, "Key": key("a"),
                                "ConditionExpression": "attribute_not_exists(pk)"}},
        ])
    assert error_code(e.value) == "ValidationException"
    assert e.value.response["Error"]["Message"] == (
        "Transaction request cannot include multiple operations on one item")


def test_limits_and_shape(ddb, tbl, region):
    from meridian_testlib import raw
    items = [{"Put": {"TableName": tbl, "Item": {"pk": {"S": f"k{i}"}}}} for i in range(101)]
    status, _, body = raw(region.endpoint, "TransactWriteItems", {"TransactItems": items})
    assert status == 400
    assert body["__type"] == "com.amazon.coral.validate#ValidationException"
    assert body["message"].startswith("1 validation error detected: Value '")
    assert body["message"].endswith(
        "at 'transactItems' failed to satisfy constraint: "
        "Member must have length less than or equal to 100")
    # 100 is fine.
    ddb.transact_write_items(TransactItems=items[:100])
    assert ddb.scan(TableName=tbl, Select="COUNT")["Count"] == 100

    status, _, body = raw(region.endpoint, "TransactWriteItems", {"TransactItems": []})
    assert "Member must have length greater than or equal to 1" in body["message"]

    status, _, body = raw(region.endpoint, "TransactWriteItems", {"TransactItems": [
        {"ConditionCheck": {"TableName": tbl, "Key": key("a")}}]})
    assert body["message"] == (
        "1 validation error detected: Value null at "
        "'transactItems.1.member.conditionCheck.conditionExpression' failed to satisfy "
        "constraint: Member must not be null")

    status, _, body = raw(region.endpoint, "TransactWriteItems", {"TransactItems": [
        {"Put": {"TableName": tbl, "Item": {"pk": {"S": "a"}}},
         "Delete": {"TableName": tbl, "Key": key("b")}}]})
    assert body["message"] == "TransactItems can only contain one of Check, Put, Update or Delete"


def test_missing_table_and_bad_expression_fail_whole_request(ddb, tbl):
    with pytest.raises(ClientError) as e:
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": "no_such_table", "Item": {"pk": {"S": "a"}}}}])
    assert error_code(e.value) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": tbl, "Item": {"pk": {"S": "a"}},
                     "ConditionExpression": "attribute_not_exists("}}])
    assert error_code(e.value) == "ValidationException"
    assert e.value.response["Error"]["Message"].startswith("Invalid ConditionExpression:")


def test_idempotent_retry_does_not_reapply(ddb, tbl):
    ddb.put_item(TableName=tbl, Item={"pk": {"S": "ctr"}, "n": {"N": "0"}})
    items = [{"Update": {"TableName": tbl, "Key": key("ctr"), "UpdateExpression": "ADD n :one",
                         "ExpressionAttributeValues": {":one": {"N": "1"}}}}]
    ddb.transact_write_items(TransactItems=items, ClientRequestToken="tok-1")
    ddb.transact_write_items(TransactItems=items, ClientRequestToken="tok-1")
    assert get(ddb, tbl, "ctr")["n"] == {"N": "1"}
    # Without a token (or with another one) it applies again.
    ddb.transact_write_items(TransactItems=items, ClientRequestToken="tok-2")
    assert get(ddb, tbl, "ctr")["n"] == {"N": "2"}
    # Same token, different request.
    other = [{"Put": {"TableName": tbl, "Item": {"pk": {"S": "zzz"}}}}]
    with pytest.raises(ClientError) as e:
        ddb.transact_write_items(TransactItems=other, ClientRequestToken="tok-1")
    assert error_code(e.value) == "IdempotentParameterMismatchException"
    assert get(ddb, tbl, "zzz") is None


def test_concurrent_retries_with_one_token_apply_once(region, tbl):
    c = region.client()
    c.put_item(TableName=tbl, Item={"pk": {"S": "ctr"}, "n": {"N": "0"}})
    items = [{"Update": {"TableName": tbl, "Key": key("ctr"), "UpdateExpression": "ADD n :one",
                         "ExpressionAttributeValues": {":one": {"N": "1"}}}}]
    errors = []

    def send():
        try:
            region.client().transact_write_items(TransactItems=items, ClientRequestToken="same")
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert get(c, tbl, "ctr")["n"] == {"N": "1"}


def test_cancelled_transaction_can_be_retried_with_its_token(ddb, tbl):
    items = [{"Put": {"TableName": tbl, "Item": {"pk": {"S": "x"}},
                      "ConditionExpression": "attribute_exists(pk)"}}]
    for _ in range(2):
        with pytest.raises(ClientError) as e:
            ddb.transact_write_items(TransactItems=items, ClientRequestToken="retry-me")
        assert error_code(e.value) == "TransactionCanceledException"


def test_client_request_token_length(ddb, tbl):
    with pytest.raises(ClientError) as e:
        ddb.transact_write_items(
            TransactItems=[{"Put": {"TableName": tbl, "Item": {"pk": {"S": "a"}}}}],
            ClientRequestToken="x" * 37)
    assert "Member must have length less than or equal to 36" in \
        e.value.response["Error"]["Message"]


def test_transact_get_items(ddb, tbl, table_name):
    ddb.put_item(TableName=tbl, Item={"pk": {"S": "a"}, "x": {"N": "1"}, "y": {"S": "why"}})
    ddb.put_item(TableName=tbl, Item={"pk": {"S": "b"}, "x": {"N": "2"}})
    out = ddb.transact_get_items(TransactItems=[
        {"Get": {"TableName": tbl, "Key": key("a"), "ProjectionExpression": "#y",
                 "ExpressionAttributeNames": {"#y": "y"}}},
        {"Get": {"TableName": tbl, "Key": key("missing")}},
        {"Get": {"TableName": tbl, "Key": key("b")}},
    ], ReturnConsumedCapacity="TOTAL")
    assert out["Responses"] == [
        {"Item": {"y": {"S": "why"}}},
        {},
        {"Item": {"pk": {"S": "b"}, "x": {"N": "2"}}},
    ]
    assert out["ConsumedCapacity"] == [
        {"TableName": tbl, "CapacityUnits": 6.0, "ReadCapacityUnits": 6.0}]
    with pytest.raises(ClientError) as e:
        ddb.transact_get_items(TransactItems=[{"Get": {"TableName": "nope_nope", "Key": key("a")}}])
    assert error_code(e.value) == "ResourceNotFoundException"


def test_transact_write_consumed_capacity(ddb, tbl):
    out = ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": tbl, "Item": {"pk": {"S": "a"}, "big": {"S": "x" * 1500}}}},
        {"Put": {"TableName": tbl, "Item": {"pk": {"S": "b"}}}},
    ], ReturnConsumedCapacity="TOTAL")
    assert out["ConsumedCapacity"] == [
        {"TableName": tbl, "CapacityUnits": 6.0, "WriteCapacityUnits": 6.0}]
