"""The wire protocol: error shapes, auth, load shedding, health, metrics, shutdown."""

import concurrent.futures
import datetime
import json
import subprocess
from unittest import mock
import zlib

import pytest
from botocore.exceptions import ClientError

from meridian_testlib import BIN, Region, create_table, error_code, raw


def test_malformed_json_is_serialization_exception(region):
    status, _, body = raw(region.endpoint, "PutItem", b'{"TableName": "x", ')
    assert status == 400
    assert body["__type"] == "com.amazon.coral.service#SerializationException"
    status, _, body = raw(region.endpoint, "GetItem", b"[1,2]")
    assert body["__type"] == "com.amazon.coral.service#SerializationException"


def test_wrong_member_type_is_serialization_exception(region):
    status, _, body = raw(region.endpoint, "DescribeTable", {"TableName": 5})
    assert status == 400 and body["__type"].endswith("#SerializationException")


def test_unknown_operation(region):
    status, _, body = raw(region.endpoint, "FlyToTheMoon", {})
    assert status == 400
    assert body["__type"] == "com.amazon.coral.service#UnknownOperationException"
    status, _, body = raw(region.endpoint, None, {})
    assert body["__type"] == "com.amazon.coral.service#UnknownOperationException"


def test_missing_required_member(region):
    status, _, body = raw(region.endpoint, "DescribeTable", {})
    assert status == 400
    assert body["__type"] == "com.amazon.coral.validate#ValidationException"
    assert "Value null at 'tableName' failed to satisfy constraint: Member must not be null" in body["message"]


def test_missing_table_type(region):
    status, _, body = raw(region.endpoint, "GetItem", {"TableName": "nope_nope", "Key": {"pk": {"S": "a"}}})
    assert body["__type"] == "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException"


def test_unsigned_request_is_refused(region):
    status, _, body = raw(region.endpoint, "ListTables", {}, sign=False)
    assert status == 400
    assert body["__type"] == "com.amazon.coral.service#MissingAuthenticationTokenException"


def test_crc32_header_matches_body(region):
    import urllib.request
    import botocore.auth, botocore.awsrequest, botocore.credentials
    req = botocore.awsrequest.AWSRequest(method="POST", url=region.endpoint + "/", data=b"{}",
                                         headers={"X-Amz-Target": "DynamoDB_20120810.ListTables",
                                                  "Content-Type": "application/x-amz-json-1.0"})
    botocore.auth.SigV4Auth(botocore.credentials.Credentials("a", "b"), "dynamodb", "us-east-1").add_auth(req)
    r = urllib.request.Request(region.endpoint + "/", data=b"{}", method="POST", headers=dict(req.prepare().headers))
    with urllib.request.urlopen(r) as resp:
        body = resp.read()
        assert int(resp.headers["x-amz-crc32"]) == zlib.crc32(body)
        assert resp.headers["Content-Type"] == "application/x-amz-json-1.0"


def test_health_and_metrics(region):
    c = region.client()
    create_table(c, "metrics_tbl")
    c.put_item(TableName="metrics_tbl", Item={"pk": {"S": "a"}})
    status, body = region.health()
    assert status == 200 and body["status"] == "serving"
    m = region.get("/metrics")
    assert 'meridian_requests_total{operation="PutItem",outcome="ok"}' in m
    assert "meridian_request_seconds_bucket" in m
    assert "meridian_commit_group_size_bucket" in m
    assert "meridian_fsync_seconds_bucket" in m
    assert "meridian_changelog_head" in m


def test_drain_makes_health_503(tmp_path):
    r = Region(tmp_path / "d").start()
    try:
        r.post("/admin/drain")
        assert r.health() == (503, {"status": "draining", "region": "r1"})
        r.post("/admin/undrain")
        assert r.health()[0] == 200
    finally:
        r.terminate()


def test_signature_verification_with_keys(tmp_path):
    r = Region(tmp_path / "d", extra_args=["--access-key", "AKIDTEST:s3cret"]).start()
    try:
        assert r.client(key="AKIDTEST", secret="s3cret").list_tables()["TableNames"] == []
        with pytest.raises(ClientError) as e:
            r.client(key="AKIDOTHER", secret="s3cret").list_tables()
        assert error_code(e.value) == "UnrecognizedClientException"
        with pytest.raises(ClientError) as e:
            r.client(key="AKIDTEST", secret="wrong").list_tables()
        assert error_code(e.value) == "InvalidSignatureException"
        # a correctly signed request made 20 minutes ago is too old
        stale = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=20)
        with mock.patch("botocore.auth.get_current_datetime", return_value=stale):
            status, _, body = raw(r.endpoint, "ListTables", {}, key="AKIDTEST", secret="s3cret")
        assert status == 400
        assert body["__type"] == "com.amazon.coral.service#InvalidSignatureException"
        assert "Signature expired" in body["message"]
    finally:
        r.terminate()


def test_meridian_clients_sign_what_the_server_verifies(tmp_path):
    """`meridian bench` (and every tool built on it) signs with meridian-sigv4, the code the
    server verifies with: against a region with keys, every request of a short kv run is
    accepted with the right secret and refused with a wrong one."""
    r = Region(tmp_path / "d", extra_args=["--access-key", "AKIDTEST:s3cret"]).start()
    try:
        def kv(secret):
            return subprocess.run(
                [str(BIN), "bench", "kv", "--endpoint", r.endpoint, "--access-key", "AKIDTEST",
                 "--secret-key", secret, "--connections", "3", "--threads", "2", "--duration-secs", "1",
                 "--warmup-secs", "0", "--keys", "100", "--json"],
                capture_output=True, text=True, timeout=60)

        ok = kv("s3cret")
        assert ok.returncode == 0, ok.stderr
        ops = {o["op"]: o for o in json.loads(ok.stdout)["ops"]}
        assert ops["PutItem"]["ok"] > 0 and ops["GetItem"]["ok"] > 0
        assert ops["PutItem"]["errors"] == ops["GetItem"]["errors"] == 0
        bad = kv("wrong")
        assert bad.returncode != 0
        assert "InvalidSignatureException" in bad.stderr
    finally:
        r.terminate()


def test_overload_is_shed_with_throttling(tmp_path):
    r = Region(tmp_path / "d", extra_args=["--max-in-flight", "1"]).start()
    try:
        c = r.client()
        create_table(c, "hot_tbl")
        big = {"pk": {"S": "k"}, "v": {"S": "x" * 300_000}}

        def one(i):
            status, _, body = raw(r.endpoint, "PutItem", {"TableName": "hot_tbl", "Item": {**big, "pk": {"S": f"k{i}"}}})
            return status, body.get("__type", "")

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            results = list(pool.map(one, range(64)))
        throttled = [b for s, b in results if s != 200]
        assert throttled, "expected some requests to be shed"
        assert all(t == "com.amazon.coral.availability#ThrottlingException" for t in throttled)
        assert sum(1 for s, _ in results if s == 200) >= 1
        assert 'meridian_throttled_total' in r.get("/metrics")
    finally:
        r.terminate()


def test_sigterm_shuts_down_cleanly_and_keeps_data(tmp_path):
    r = Region(tmp_path / "d").start()
    c = r.client()
    create_table(c, "keep_tbl")
    c.put_item(TableName="keep_tbl", Item={"pk": {"S": "a"}, "v": {"N": "1"}})
    assert r.terminate(timeout=15) == 0
    r2 = Region(tmp_path / "d").start()
    try:
        assert r2.client().get_item(TableName="keep_tbl", Key={"pk": {"S": "a"}})["Item"]["v"] == {"N": "1"}
    finally:
        r2.terminate()
