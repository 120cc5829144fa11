"""Session tokens (read-your-writes across regions): a region answers every write with its mark
(`x-meridian-session: region:hlc`), refuses a request whose token it has not applied with a
retryable `ServiceUnavailableException` naming where the writes are (reads only: writes are
never held back), and the gateway remembers
each pinned user's latest token so that an SDK that knows nothing of tokens reads its own
writes after a failover. Replication is held back with the link fault hooks."""

import pytest

from meridian_testlib import client, raw, wait_until
from test_replication import Cluster
from traffic_testlib import Gateway, http

TABLE = "users"
NAMES = ["us-east", "eu-west"]


@pytest.fixture
def pair(tmp_path):
    c = Cluster(tmp_path, NAMES).start()
    try:
        wait_until(c.all_links_up, timeout=30, interval=0.2, what="all links connected")
        c.create_table(TABLE)
        yield c
    finally:
        c.stop()


def hold(c, held=True):
    """Stops (or restarts) replication between the two regions, both ways."""
    action = "pause" if held else "resume"
    c["us-east"].post(f"/admin/links/eu-west/{action}")
    c["eu-west"].post(f"/admin/links/us-east/{action}")
    wait_until(lambda: all(c.link(n, p, "in")["paused"] == held
                           for n, p in [("us-east", "eu-west"), ("eu-west", "us-east")]),
               timeout=10, what=f"links {action}d")


def put(endpoint, pk, v, token=None):
    headers = {"x-meridian-session": token} if token else None
    return raw(endpoint, "PutItem", {"TableName": TABLE, "Item": {"pk": {"S": pk}, "v": {"S": v}}},
               headers=headers)


def get(endpoint, pk, token=None, extra=None):
    headers = dict(extra or {})
    if token:
        headers["x-meridian-session"] = token
    return raw(endpoint, "GetItem", {"TableName": TABLE, "Key": {"pk": {"S": pk}}},
               headers=headers)


def test_a_region_serves_a_session_only_once_it_has_applied_it(pair):
    us, eu = pair["us-east"].endpoint, pair["eu-west"].endpoint
    hold(pair)
    status, headers, _ = put(eu, "bruno", "v1")
    assert status == 200
    token = headers["x-meridian-session"]
    origin, ts = token.split(":")
    assert origin == "eu-west" and int(ts) > 0
    # eu-west covers its own marks; us-east has not applied bruno's write: a retryable refusal
    # naming where the write is, never the stale answer
    assert get(eu, "bruno", token)[2]["Item"]["v"]["S"] == "v1"
    status, headers, body = get(us, "bruno", token)
    assert status == 503, body
    assert body["__type"].endswith("ServiceUnavailableException")
    assert headers["x-meridian-session-behind"] == "eu-west"
    assert "eu-west" in body["message"]
    # without a token the read is eventually consistent, as DynamoDB's
    assert get(us, "bruno")[2] == {}
    # writes are never held back by a token (they keep a failed-over user writable)
    status, headers, _ = put(us, "other", "x", token)
    assert status == 200 and headers["x-meridian-session"].startswith("us-east:")
    # a token the gateway remembered is honoured like the client's own
    assert get(us, "bruno", extra={"x-meridian-session-remembered": token})[0] == 503
    for bad in ["eu-west", "eu-west:x", "a b:1", ",".join(f"r{i}:1" for i in range(40))]:
        status, _, body = get(us, "bruno", bad)
        assert status == 400 and body["__type"].endswith("ValidationException"), (bad, body)
    refused = pair["us-east"].get("/metrics")
    assert "meridian_session_behind_total 2" in refused, refused
    hold(pair, held=False)
    wait_until(lambda: get(us, "bruno", token)[0] == 200, timeout=15, what="us-east applied it")
    assert get(us, "bruno", token)[2]["Item"]["v"]["S"] == "v1"
    # reads and writes without a token, and table operations, never ask
    assert raw(us, "DescribeTable", {"TableName": TABLE},
               headers={"x-meridian-session": "eu-west:99999999999999999"})[0] == 200


def gateway_config(c, write_failover="allow", nearest="us-east"):
    body = f'write_failover = "{write_failover}"\nrng_seed = 7\n[health]\ninterval_ms = 100\n'
    for n in NAMES:
        body += f'[[health.endpoints]]\nname = "{n}"\nhttp_url = "{c[n].endpoint}/health"\n'
    for n in NAMES:
        other = [o for o in NAMES if o != n][0]
        latency = 5 if n == nearest else 50
        body += (f'[[regions]]\nname = "{n}"\nendpoint = "{c[n].endpoint}"\n'
                 f'latency_ms = {latency}\nfailover_order = ["{other}"]\n')
    return body + """
[pinning]
users = { bruno = "DE" }
country_regions = { DE = "eu-west", US = "us-east" }
[pinning.tables.users]
partition_key = "pk"
"""


def served(c, pk):
    resp = c.get_item(TableName=TABLE, Key={"pk": {"S": pk}})
    return resp.get("Item", {}).get("v", {}).get("S"), resp["ResponseMetadata"]["HTTPHeaders"][
        "x-meridian-region"]


def test_a_pinned_user_reads_their_own_writes_after_failback_with_a_plain_sdk(pair, tmp_path):
    """bruno (home eu-west) writes v1 at home; eu-west is drained, bruno's v2 goes to
    us-east; eu-west comes back before it has v2 (replication held): the gateway's remembered
    token sends bruno's reads to us-east until eu-west has applied v2, then home again."""
    gw = Gateway(tmp_path / "gw", gateway_config(pair)).start()
    try:
        def status():
            return http("GET", gw.admin + "/admin/status")[1]["health"]["endpoints"]

        wait_until(lambda: all(e["checks_healthy"] for e in status().values()),
                   what="first health checks")
        sdk = client(gw.endpoint)
        sdk.put_item(TableName=TABLE, Item={"pk": {"S": "bruno"}, "v": {"S": "v1"}})
        wait_until(lambda: "Item" in pair.client("us-east").get_item(
            TableName=TABLE, Key={"pk": {"S": "bruno"}}), what="v1 replicated")
        hold(pair)
        assert http("POST", gw.admin + "/admin/regions/eu-west/drain")[0] == 200
        resp = sdk.put_item(TableName=TABLE, Item={"pk": {"S": "bruno"}, "v": {"S": "v2"}})
        assert resp["ResponseMetadata"]["HTTPHeaders"]["x-meridian-region"] == "us-east"
        assert "x-meridian-session" in resp["ResponseMetadata"]["HTTPHeaders"]
        assert http("POST", gw.admin + "/admin/regions/eu-west/undrain")[0] == 200
        wait_until(lambda: status()["eu-west"]["admin"] != "drain", what="undrained")
        # home again, but eu-west still holds v1: the read is served where v2 is
        for _ in range(5):
            assert served(sdk, "bruno") == ("v2", "us-east")
        metrics = http("GET", gw.admin + "/metrics")[1]
        assert 'outcome="session_behind_retried"' in metrics, metrics
        assert "meridian_gateway_session_users 1" in metrics, metrics
        # the origin unreachable too: a clear retryable error, not v1
        pair["us-east"].kill()
        with pytest.raises(Exception) as e:
            sdk.get_item(TableName=TABLE, Key={"pk": {"S": "bruno"}})
        assert "ServiceUnavailable" in str(e.value) and "us-east" in str(e.value), e.value
        pair.start("us-east")
        hold(pair, held=False)
        wait_until(lambda: served(sdk, "bruno") == ("v2", "eu-west"), timeout=20,
                   what="bruno served at home once eu-west applied v2")
    finally:
        gw.stop()


def test_a_client_token_through_the_gateway_and_signed_headers(pair, tmp_path):
    """An unpinned client carries its own token (signed, forwarded unchanged): its nearest
    region (eu-west) has not applied the write it made directly in us-east, so us-east
    answers; a bad token is the region's ValidationException."""
    gw = Gateway(tmp_path / "gw", gateway_config(pair, nearest="eu-west")).start()
    try:
        wait_until(lambda: all(e["checks_healthy"] for e in http(
            "GET", gw.admin + "/admin/status")[1]["health"]["endpoints"].values()),
                   what="first health checks")
        hold(pair)
        status, headers, _ = put(pair["us-east"].endpoint, "stranger", "fresh")
        token = headers["x-meridian-session"]
        status, headers, body = get(gw.endpoint, "stranger", token)
        assert status == 200 and body["Item"]["v"]["S"] == "fresh"
        assert headers["x-meridian-region"] == "us-east"
        status, headers, body = get(gw.endpoint, "stranger")
        assert (status, body, headers["x-meridian-region"]) == (200, {}, "eu-west")
        status, _, body = get(gw.endpoint, "stranger", "not a token")
        assert status == 400 and body["__type"].endswith("ValidationException")
        # a token whose marks no region covers: the gateway says so, retryably
        status, _, body = get(gw.endpoint, "stranger", "mars:5")
        assert status == 503 and "mars" in body["message"], body
    finally:
        gw.stop()
