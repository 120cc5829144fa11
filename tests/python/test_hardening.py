"""Bad input loses nothing and stops nothing: nesting as deep as DynamoDB allows and no deeper,
numbers refused before any arithmetic, index keys within DynamoDB's limits (and an index
backfill that skips what cannot be a key), each against a real region over boto3."""

import os
import time

import pytest
from botocore.exceptions import ClientError

from meridian_testlib import Region, client, create_table, error_code, raw, wait_until


def nested(maps, leaf=None):
    """A value with `maps` maps around a string: nesting level maps + 1."""
    v = leaf or {"S": "deep"}
    for _ in range(maps):
        v = {"M": {"a": v}}
    return v



def open_sockets(pid):
    """How many sockets process `pid` holds open."""
    fds = os.listdir(f"/proc/{pid}/fd")
    return sum(os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
               for fd in fds if os.path.exists(f"/proc/{pid}/fd/{fd}"))

def test_items_nest_32_levels_and_no_deeper(ddb, table_name):
    create_table(ddb, table_name)
    deepest = nested(31)
    ddb.put_item(TableName=table_name, Item={"pk": {"S": "ok"}, "d": deepest})
    got = ddb.get_item(TableName=table_name, Key={"pk": {"S": "ok"}}, ConsistentRead=True)["Item"]
    assert got["d"] == deepest
    for too_deep in [nested(32), nested(31, {"L": [{"N": "1"}]})]:
        with pytest.raises(ClientError) as e:
            ddb.put_item(TableName=table_name, Item={"pk": {"S": "deep"}, "d": too_deep})
        assert error_code(e.value) == "ValidationException"
        assert "Nesting Levels have exceeded supported limits" in str(e.value)
    # an update that puts a value within the limit one level deeper is refused too
    with pytest.raises(ClientError) as e:
        ddb.update_item(TableName=table_name, Key={"pk": {"S": "ok"}},
                        UpdateExpression="SET d.a = :v",
                        ExpressionAttributeValues={":v": nested(31)})
    assert "Nesting Levels" in str(e.value)
    assert "Item" not in ddb.get_item(TableName=table_name, Key={"pk": {"S": "deep"}})
    assert ddb.get_item(TableName=table_name, Key={"pk": {"S": "ok"}},
                        ConsistentRead=True)["Item"]["d"] == deepest


def test_a_two_million_digit_number_is_refused_at_once(region, table_name):
    create_table(region.client(), table_name)
    body = {"TableName": table_name, "Item": {"pk": {"S": "n"}, "v": {"N": "7" * 2_000_000}}}
    started = time.monotonic()
    status, _, out = raw(region.endpoint, "PutItem", body)
    elapsed = time.monotonic() - started
    assert status == 400 and out["__type"].endswith("ValidationException"), out
    assert "38 significant digits" in out["message"]
    # the whole round trip of a 2 MB request on a debug build; the parse itself is linear
    assert elapsed < 2.0, f"refused after {elapsed:.3f} s"
    assert region.health()[0] == 200


def test_index_keys_over_dynamodbs_limits_are_refused(ddb, table_name):
    ddb.create_table(
        TableName=table_name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "g", "AttributeType": "S"},
                              {"AttributeName": "s", "AttributeType": "S"}],
        GlobalSecondaryIndexes=[{
            "IndexName": "by_g",
            "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"},
                          {"AttributeName": "s", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"}}],
        BillingMode="PAY_PER_REQUEST")
    for attr, size, limit in [("g", 70_000, 2048), ("g", 2049, 2048), ("s", 1025, 1024)]:
        item = {"pk": {"S": "k"}, "g": {"S": "g"}, "s": {"S": "s"}}
        item[attr] = {"S": "x" * size}
        with pytest.raises(ClientError) as e:
            ddb.put_item(TableName=table_name, Item=item)
        assert error_code(e.value) == "ValidationException"
        assert (f"Size limit exceeded for Index Key {attr} Actual Size: {size} bytes "
                f"Max Size: {limit} bytes IndexName: by_g") in str(e.value)
    ddb.put_item(TableName=table_name,
                 Item={"pk": {"S": "k"}, "g": {"S": "x" * 2048}, "s": {"S": "y" * 1024}})
    got = ddb.query(TableName=table_name, IndexName="by_g",
                    KeyConditionExpression="g = :g",
                    ExpressionAttributeValues={":g": {"S": "x" * 2048}})["Items"]
    assert [i["pk"]["S"] for i in got] == ["k"]


def test_an_index_added_over_unusable_values_skips_them_and_the_region_survives(tmp_path):
    # An item whose value is too long to be an index key, then a GSI over that attribute:
    # the backfill skips the item (DynamoDB's index key violation), the index becomes ACTIVE,
    # and the region keeps serving — and starts again on the same data.
    region = Region(tmp_path / "data").start()
    try:
        ddb = region.client()
        create_table(ddb, "tbl")
        ddb.put_item(TableName="tbl", Item={"pk": {"S": "long"}, "g": {"S": "x" * 70_000}})
        ddb.put_item(TableName="tbl", Item={"pk": {"S": "short"}, "g": {"S": "ok"}})
        ddb.update_table(
            TableName="tbl",
            AttributeDefinitions=[{"AttributeName": "g", "AttributeType": "S"}],
            GlobalSecondaryIndexUpdates=[{"Create": {
                "IndexName": "by_g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"}}}])

        def active():
            idx = ddb.describe_table(TableName="tbl")["Table"]["GlobalSecondaryIndexes"][0]
            return idx["IndexStatus"] == "ACTIVE"

        wait_until(active, timeout=20, what="index backfilled")
        assert region.health()[0] == 200
        keys = [i["pk"]["S"] for i in ddb.scan(TableName="tbl", IndexName="by_g")["Items"]]
        assert keys == ["short"]
        assert "index key violations" in region.log()
        assert region.terminate() == 0
        region.start()
        assert ddb.get_item(TableName="tbl", Key={"pk": {"S": "long"}})["Item"]["g"]["S"] == "x" * 70_000
    finally:
        region.kill()


def test_slow_bodies_do_not_starve_signed_requests(tmp_path):
    # 40 clients announce a 1 MiB body and send a few bytes of it; with 4 requests allowed in
    # flight, a signed client is still served at once (a request takes its in-flight permit
    # only once its body is here), and a body over the size limit is refused unread.
    import socket
    region = Region(tmp_path / "data", extra_args=["--max-in-flight", "4"]).start()
    slow = []
    try:
        ddb = region.client()
        create_table(ddb, "tbl")
        host, port = region.host, region.port
        for _ in range(40):
            s = socket.create_connection((host, port))
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.0\r\n"
                      b"X-Amz-Target: DynamoDB_20120810.PutItem\r\n"
                      b"Content-Length: 1048576\r\n\r\n{\"TableName\"")
            slow.append(s)
        started = time.monotonic()
        for i in range(20):
            ddb.put_item(TableName="tbl", Item={"pk": {"S": f"k{i}"}})
            assert ddb.get_item(TableName="tbl", Key={"pk": {"S": f"k{i}"}})["Item"]
        assert time.monotonic() - started < 5, "signed requests waited behind slow bodies"
        with socket.create_connection((host, port)) as s:
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: DynamoDB_20120810.PutItem\r\n"
                      b"Content-Length: 999999999\r\n\r\n")
            s.settimeout(5)
            head = s.recv(4096)
            assert head.startswith(b"HTTP/1.1 400") and b"Request size exceeded" in head, head
        assert region.health()[0] == 200
    finally:
        for s in slow:
            s.close()
        region.kill()


def test_slow_headers_and_idle_connections_are_bounded(tmp_path):
    # 100 clients open connections and never finish a request head. The region accepts at most
    # --max-connections of them at a time (no descriptor exhaustion for the store), closes each
    # after --header-timeout-ms, and a signed client that queues behind them is served.
    import socket
    region = Region(tmp_path / "data",
                    extra_args=["--max-connections", "32", "--header-timeout-ms", "1000"]).start()
    stalled = []
    try:
        ddb = region.client()
        create_table(ddb, "tbl")
        for _ in range(100):
            s = socket.create_connection((region.host, region.port))
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
            stalled.append(s)

        peak = max(open_sockets(region.proc.pid) for _ in range(10))
        assert peak <= 32 + 8, f"{peak} sockets open: the connection cap did not hold"
        started = time.monotonic()
        ddb.put_item(TableName="tbl", Item={"pk": {"S": "queued"}})
        assert time.monotonic() - started < 15
        # every stalled head is cut: the region closes them without an answer or with a 408
        for s in stalled:
            s.settimeout(15)
            try:
                while s.recv(4096):
                    pass
            except (ConnectionResetError, socket.timeout) as e:
                assert not isinstance(e, socket.timeout), "a stalled connection stayed open"
        assert region.health()[0] == 200
        assert ddb.get_item(TableName="tbl", Key={"pk": {"S": "queued"}})["Item"]
    finally:
        for s in stalled:
            s.close()
        region.kill()


def test_the_gateway_bounds_connections_heads_and_bodies(tmp_path):
    # The gateway's public port has the region's bounds: a connection cap, a header timeout,
    # a body timeout and a byte budget for the bodies being received at once.
    import socket
    from traffic_testlib import Gateway
    region = Region(tmp_path / "region", name="us-east").start()
    # body_timeout_ms outlasts the budget checks below (the held bodies keep their claims)
    body = ("max_connections = 32\nheader_timeout_ms = 1000\nbody_timeout_ms = 8000\n"
            f"body_budget_bytes = {8 << 20}\n[health]\n"
            f'[[health.endpoints]]\nname = "us-east"\nhttp_url = "{region.endpoint}/health"\n'
            f'[[regions]]\nname = "us-east"\nendpoint = "{region.endpoint}"\n')
    gw = Gateway(tmp_path / "gw", body).start()
    held = []
    try:
        ddb = client(gw.endpoint)
        create_table(ddb, "tbl")

        def slow_body(size):
            s = socket.create_connection(("127.0.0.1", gw.port))
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: DynamoDB_20120810.PutItem\r\n"
                      + f"Content-Length: {size}\r\n\r\n".encode() + b"{\"TableName\"")
            return s

        def answer(s, timeout=5):
            s.settimeout(timeout)
            return s.recv(4096)

        # 7 MiB of announced bodies fit the 8 MiB budget; a 2 MiB body more does not, and is
        # answered at once, before any of it is sent. Until the gateway has taken up all 7 held
        # bodies it waits for the probe's body instead (the probe gives up after 1 s), and a
        # probe that got in first can crowd a held body out: then start over.
        def throttled():
            with socket.create_connection(("127.0.0.1", gw.port)) as s:
                s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: DynamoDB_20120810.PutItem"
                          + f"\r\nContent-Length: {2 << 20}\r\n\r\n".encode())
                try:
                    head = answer(s, timeout=1)
                except socket.timeout:
                    return False
                return head.startswith(b"HTTP/1.1 400") and b"ThrottlingException" in head

        def pending(s):
            s.setblocking(False)
            try:
                return not s.recv(1, socket.MSG_PEEK)
            except BlockingIOError:
                return True
            finally:
                s.setblocking(True)

        def budget_full():
            for s in held:
                s.close()
            held[:] = [slow_body(1 << 20) for _ in range(7)]
            return throttled() and all(pending(s) for s in held)

        wait_until(budget_full, timeout=30, interval=0.2, what="a body beyond the budget throttled")
        # small signed requests still fit, and are served at once
        started = time.monotonic()
        for i in range(10):
            ddb.put_item(TableName="tbl", Item={"pk": {"S": f"k{i}"}})
        assert time.monotonic() - started < 5
        # a body that never completes is cut after body_timeout_ms
        head = answer(held[0], timeout=20)
        assert head.startswith(b"HTTP/1.1 400") and b"not received within" in head, head
        with socket.create_connection(("127.0.0.1", gw.port)) as s:
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n")
            head = answer(s)
            assert head.startswith(b"HTTP/1.1 400") and b"SerializationException" in head, head
        for s in held:
            s.close()
        held.clear()

        # 100 heads that never finish: at most 32 connections at a time, each cut after 1 s
        for _ in range(100):
            s = socket.create_connection(("127.0.0.1", gw.port))
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
            held.append(s)
        peak = max(open_sockets(gw.proc.pid) for _ in range(10))
        assert peak <= 32 + 12, f"{peak} sockets open: the connection cap did not hold"
        started = time.monotonic()
        ddb.put_item(TableName="tbl", Item={"pk": {"S": "queued"}})
        assert time.monotonic() - started < 15
        assert ddb.get_item(TableName="tbl", Key={"pk": {"S": "queued"}})["Item"]
    finally:
        for s in held:
            s.close()
        gw.stop()
        region.kill()
