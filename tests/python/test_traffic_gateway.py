"""`meridian gateway` in front of three real `meridian region` processes (no replication runs
here, so an item exists only where it was written): home-region pinning, kill -9 of the home
region under a steady read load with zero failed reads, the write-failover rule (refuse →
DynamoDB-format error; allow → written in the next region), and drain / weight by the admin
API."""

import threading
import time

import botocore.exceptions
import pytest

from meridian_testlib import Region, client, create_table, error_code, raw, wait_until
from traffic_testlib import Gateway, http

REGIONS = ("us-east", "eu-west", "ap-southeast")
USERS = {"alice": "eu-west", "bob": "us-east", "chen": "ap-southeast"}
TABLE = "users"


def config(regions, write_failover):
    # The regions here do not replicate, so no region could ever cover another's session
    # token: the gateway remembers none (test_session.py covers tokens over replication).
    body = (f'write_failover = "{write_failover}"\nrng_seed = 5\nsession_ttl_ms = 0\n'
            '[health]\n')
    for n in REGIONS:
        body += f'[[health.endpoints]]\nname = "{n}"\nhttp_url = "{regions[n].endpoint}/health"\n'
    latency = {"us-east": 5, "eu-west": 50, "ap-southeast": 150}
    failover = {"us-east": ["eu-west"], "eu-west": ["us-east"], "ap-southeast": ["us-east"]}
    for n in REGIONS:
        order = ", ".join(f'"{f}"' for f in failover[n])
        body += (f'[[regions]]\nname = "{n}"\nendpoint = "{regions[n].endpoint}"\n'
                 f'latency_ms = {latency[n]}\nfailover_order = [{order}]\n')
    body += """
[pinning]
users = { alice = "DE", bob = "US", chen = "SG" }
country_regions = { DE = "eu-west", US = "us-east", SG = "ap-southeast" }
[pinning.tables.users]
partition_key = "pk"
"""
    return body


def start_regions(base):
    rs = {n: Region(base / n, name=n).start() for n in REGIONS}
    for r in rs.values():
        create_table(r.client(), TABLE)
    return rs


@pytest.fixture
def regions(tmp_path):
    rs = start_regions(tmp_path / "regions")
    yield rs
    for r in rs.values():
        r.kill()


def start_gateway(tmp_path, regions, write_failover="refuse"):
    gw = Gateway(tmp_path / f"gw-{write_failover}", config(regions, write_failover)).start()
    wait_until(lambda: all(e["checks_healthy"] for e in
                           http("GET", gw.admin + "/admin/status")[1]["health"]["endpoints"].values()),
               what="first health checks")
    return gw


def served_by(c, **get):
    """GetItem through the gateway: (item or None, region that answered)."""
    resp = c.get_item(TableName=TABLE, **get)
    return resp.get("Item"), resp["ResponseMetadata"]["HTTPHeaders"].get("x-meridian-region")


def test_pinning_writes_each_user_only_in_its_home_region(tmp_path, regions):
    gw = start_gateway(tmp_path, regions)
    try:
        c = client(gw.endpoint)
        for user in USERS:
            resp = c.put_item(TableName=TABLE, Item={"pk": {"S": user}, "v": {"S": f"hello {user}"}})
            assert resp["ResponseMetadata"]["HTTPHeaders"]["x-meridian-region"] == USERS[user]
        # read back directly from each region: only the home region has the item
        for user, home in USERS.items():
            where = [n for n in REGIONS
                     if "Item" in regions[n].client().get_item(TableName=TABLE, Key={"pk": {"S": user}})]
            assert where == [home], (user, where)
            item, region = served_by(c, Key={"pk": {"S": user}})
            assert region == home and item["v"]["S"] == f"hello {user}"
        # pinned Query and UpdateItem go home too; an unknown user goes to the nearest region
        resp = c.query(TableName=TABLE, KeyConditionExpression="pk = :u",
                       ExpressionAttributeValues={":u": {"S": "chen"}})
        assert resp["Count"] == 1
        assert resp["ResponseMetadata"]["HTTPHeaders"]["x-meridian-region"] == "ap-southeast"
        resp = c.update_item(TableName=TABLE, Key={"pk": {"S": "alice"}},
                             UpdateExpression="SET n = :n", ExpressionAttributeValues={":n": {"N": "1"}})
        assert resp["ResponseMetadata"]["HTTPHeaders"]["x-meridian-region"] == "eu-west"
        assert served_by(c, Key={"pk": {"S": "stranger"}}) == (None, "us-east")
        # the request reached the region unchanged: the SigV4 signature still verified there
        status, headers, _ = raw(gw.endpoint, "GetItem", {"TableName": TABLE, "Key": {"pk": {"S": "bob"}}})
        assert status == 200 and headers["x-meridian-region"] == "us-east"
    finally:
        gw.stop()


def test_kill9_home_region_under_read_load_fails_no_read_and_refuses_writes(tmp_path, regions):
    gw = start_gateway(tmp_path, regions, "refuse")
    try:
        # the item exists everywhere, so another region can serve alice's reads
        for r in regions.values():
            r.client().put_item(TableName=TABLE, Item={"pk": {"S": "alice"}, "v": {"S": "x"}})
        stop = threading.Event()
        results = {"ok": 0, "failed": [], "regions": set()}
        lock = threading.Lock()

        def reader():
            c = client(gw.endpoint, retries=0, timeout=10)
            while not stop.is_set():
                try:
                    item, region = served_by(c, Key={"pk": {"S": "alice"}})
                    assert item["v"]["S"] == "x"
                    with lock:
                        results["ok"] += 1
                        results["regions"].add(region)
                except Exception as e:  # noqa: BLE001 - every failure is reported
                    with lock:
                        results["failed"].append(repr(e))

        threads = [threading.Thread(target=reader) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        with lock:
            before = results["ok"]
        regions["eu-west"].kill()
        time.sleep(3.0)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        print(f"reads: {results['ok']} ok ({before} before the kill), failed: {len(results['failed'])}, "
              f"served by {sorted(results['regions'])}")
        assert results["failed"] == []
        assert results["ok"] > before + 20
        assert results["regions"] == {"eu-west", "us-east"}

        # writes of a user whose home is down are refused with a DynamoDB error...
        c = client(gw.endpoint, retries=0)
        with pytest.raises(botocore.exceptions.ClientError) as e:
            c.put_item(TableName=TABLE, Item={"pk": {"S": "alice"}, "v": {"S": "y"}})
        assert error_code(e.value) == "ServiceUnavailableException"
        assert "eu-west" in e.value.response["Error"]["Message"]
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        # ... and written nowhere
        assert regions["us-east"].client().get_item(TableName=TABLE, Key={"pk": {"S": "alice"}})["Item"]["v"]["S"] == "x"
        # other users are unaffected
        c.put_item(TableName=TABLE, Item={"pk": {"S": "bob"}, "v": {"S": "y"}})
    finally:
        gw.stop()


def test_write_failover_allow_writes_in_the_next_region(tmp_path, regions):
    gw = start_gateway(tmp_path, regions, "allow")
    try:
        regions["eu-west"].kill()
        c = client(gw.endpoint, retries=0)
        resp = c.put_item(TableName=TABLE, Item={"pk": {"S": "alice"}, "v": {"S": "moved"}})
        # eu-west's failover order names us-east
        assert resp["ResponseMetadata"]["HTTPHeaders"]["x-meridian-region"] == "us-east"
        got = regions["us-east"].client().get_item(TableName=TABLE, Key={"pk": {"S": "alice"}})
        assert got["Item"]["v"]["S"] == "moved"
        assert "Item" not in regions["ap-southeast"].client().get_item(TableName=TABLE, Key={"pk": {"S": "alice"}})
    finally:
        gw.stop()


def test_drain_and_weight_by_admin_api_shift_traffic(tmp_path, regions):
    gw = start_gateway(tmp_path, regions, "refuse")
    try:
        c = client(gw.endpoint, retries=0)
        for r in regions.values():
            r.client().put_item(TableName=TABLE, Item={"pk": {"S": "bob"}, "v": {"S": "x"}})
        assert served_by(c, Key={"pk": {"S": "stranger"}})[1] == "us-east"  # nearest
        status, body = http("POST", gw.admin + "/admin/regions/us-east/drain")
        assert status == 200 and body["status"]["admin"] == "drain"
        # unpinned requests go to the next nearest; bob's reads leave his drained home region,
        # his writes are refused (they may not move), nothing fails
        assert served_by(c, Key={"pk": {"S": "stranger"}})[1] == "eu-west"
        assert served_by(c, Key={"pk": {"S": "bob"}})[1] == "eu-west"
        with pytest.raises(botocore.exceptions.ClientError) as e:
            c.put_item(TableName=TABLE, Item={"pk": {"S": "bob"}, "v": {"S": "y"}})
        assert error_code(e.value) == "ServiceUnavailableException"
        status = http("GET", gw.admin + "/admin/status")[1]
        assert status["health"]["endpoints"]["us-east"]["admin"] == "drain"
        assert http("POST", gw.admin + "/admin/regions/us-east/undrain")[0] == 200
        assert served_by(c, Key={"pk": {"S": "stranger"}})[1] == "us-east"
        # a gradual shift: weight 30 keeps about 30% of the unpinned requests
        assert http("POST", gw.admin + "/admin/regions/us-east/weight/30")[0] == 200
        got = [served_by(c, Key={"pk": {"S": "stranger"}})[1] for _ in range(100)]
        assert 10 <= got.count("us-east") <= 50, got.count("us-east")
        assert set(got) <= {"us-east", "eu-west"}
        # pinned users stay home at a partial weight
        assert {served_by(c, Key={"pk": {"S": "bob"}})[1] for _ in range(10)} == {"us-east"}
        assert http("POST", gw.admin + "/admin/regions/us-east/weight/100")[0] == 200
        metrics = http("GET", gw.admin + "/metrics")[1]
        assert 'meridian_gateway_attempts_total{region="eu-west",outcome="ok"}' in metrics, metrics
        assert http("POST", gw.admin + "/admin/regions/mars/drain")[0] == 404
    finally:
        gw.stop()


def test_a_region_that_answers_503_leaves_routing_at_once_a_silent_one_after_fall(tmp_path, regions):
    """A 503 from a region's /health (draining, catching up) is its own answer: the gateway
    takes it out at the next check. A region that does not answer only after `fall` misses."""
    body = config(regions, "refuse").replace(
        "[health]\n", "[health]\ninterval_ms = 100\nfall = 40\nrise = 1\n", 1)
    gw = Gateway(tmp_path / "gw-fall", body).start()
    try:
        def healthy(name):
            return http("GET", gw.admin + "/admin/status")[1]["health"]["endpoints"][name][
                "checks_healthy"]

        wait_until(lambda: all(healthy(n) for n in REGIONS), what="first health checks")
        regions["us-east"].post("/admin/drain")
        t0 = time.monotonic()
        wait_until(lambda: healthy("us-east") is False, timeout=10, what="us-east out")
        assert time.monotonic() - t0 < 2.0  # 40 misses would take 4 s
        regions["us-east"].post("/admin/undrain")
        wait_until(lambda: healthy("us-east"), timeout=10, what="us-east back")
        # a silent region keeps its place for `fall` checks
        regions["ap-southeast"].kill()
        time.sleep(1.0)
        assert healthy("ap-southeast") is True
        wait_until(lambda: healthy("ap-southeast") is False, timeout=15, what="ap-southeast out")
    finally:
        gw.stop()


def test_a_user_whose_home_lacks_the_table_is_served_where_the_table_is(tmp_path, regions):
    """A table without a replica in bob's home (us-east): his reads and writes go to the
    nearest region that has it — write-failover "refuse" included, since a region without the
    table changed nothing — and a table that is nowhere gets DynamoDB's own error."""
    create_table(regions["eu-west"].client(), "solo")
    body = config(regions, "refuse") + '[pinning.tables.solo]\npartition_key = "pk"\n'
    gw = Gateway(tmp_path / "gw-solo", body).start()
    try:
        wait_until(lambda: all(e["checks_healthy"] for e in
                               http("GET", gw.admin + "/admin/status")[1]["health"]["endpoints"].values()),
                   what="first health checks")
        c = client(gw.endpoint)
        resp = c.put_item(TableName="solo", Item={"pk": {"S": "bob"}, "v": {"S": "1"}})
        assert resp["ResponseMetadata"]["HTTPHeaders"]["x-meridian-region"] == "eu-west"
        item, region = served_by_table(c, "solo", {"pk": {"S": "bob"}})
        assert (item, region) == ({"pk": {"S": "bob"}, "v": {"S": "1"}}, "eu-west")
        assert "Item" not in regions["us-east"].client().get_item(
            TableName=TABLE, Key={"pk": {"S": "bob"}})
        with pytest.raises(botocore.exceptions.ClientError) as e:
            c.get_item(TableName="nowhere", Key={"pk": {"S": "bob"}})
        assert error_code(e.value) == "ResourceNotFoundException"
        # bob's home still serves the tables it has
        c.put_item(TableName=TABLE, Item={"pk": {"S": "bob"}, "v": {"S": "home"}})
        assert served_by(c, Key={"pk": {"S": "bob"}})[1] == "us-east"
    finally:
        gw.stop()


def served_by_table(c, table, key):
    resp = c.get_item(TableName=table, Key=key)
    return resp.get("Item"), resp["ResponseMetadata"]["HTTPHeaders"].get("x-meridian-region")
