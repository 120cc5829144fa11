"""Active-active replication between real `meridian region` processes on loopback.

Every test starts its own small cluster (mesh or star), drives it with boto3, and waits on
conditions with bounded deadlines. Random choices come from a seed printed at the start of each
test (`MERIDIAN_TEST_SEED=N` replays it).
"""

import json
import os
import random
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from meridian_testlib import BIN, Region, create_table, wait_until

SECRET = "replication-test-secret"


def seeded(name):
    seed = int(os.environ.get("MERIDIAN_TEST_SEED", random.randrange(1 << 32)))
    print(f"{name}: seed {seed} (replay with MERIDIAN_TEST_SEED={seed})")
    return random.Random(seed)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """Several regions replicating to each other."""

    def __init__(self, tmp, names, topology="mesh", hub=None, secrets=None, lag_alarm_ms=None,
                 extra_args=(), anti_entropy=False):
        self.tmp = tmp
        # With anti-entropy, each region knows the others' API endpoints (fixed ports).
        self.http_ports = {n: free_port() for n in names} if anti_entropy else {}
        self.extra_args = list(extra_args)
        self.names = list(names)
        self.topology = topology
        self.hub = hub
        self.secrets = secrets or {}
        self.lag_alarm_ms = lag_alarm_ms
        self.repl_ports = {n: free_port() for n in self.names}
        self.regions = {}

    def args(self, name):
        a = ["--enable-fault-injection",
             "--replication-listen", f"127.0.0.1:{self.repl_ports[name]}",
             "--replication-secret", self.secrets.get(name, SECRET),
             "--topology", self.topology]
        if self.hub:
            a += ["--hub", self.hub]
        if self.lag_alarm_ms is not None:
            a += ["--lag-alarm-ms", str(self.lag_alarm_ms)]
        for other in self.names:
            if other != name:
                a += ["--peer", f"{other}=127.0.0.1:{self.repl_ports[other]}"]
                if other in self.http_ports:
                    a += ["--ae-peer", f"{other}=http://127.0.0.1:{self.http_ports[other]}"]
        return a + self.extra_args

    def start(self, name=None):
        """Starts the regions (all, or `name`) together, as `meridian up` does, then waits
        until each serves: a replicating region first catches up with its peers."""
        names = [name] if name else self.names
        for n in names:
            port = self.regions[n].port if n in self.regions else self.http_ports.get(n, 0)
            r = Region(self.tmp / n / "data", name=n, port=port, extra_args=self.args(n))
            self.regions[n] = r.launch()
        for n in names:
            self.regions[n].wait_ready()
        return self

    def stop(self):
        for r in self.regions.values():
            r.kill()

    def remove(self, name):
        """Stops region `name` and takes it out of every other region's peers (rolling
        restart); its data directory stays."""
        self.regions.pop(name).kill()
        self.names.remove(name)
        for n in self.names:
            self.regions[n].terminate()
            self.start(n)

    def rejoin(self, name):
        """Brings a removed region back with its old data: starts it, then adds it to every
        other region's peers (rolling restart)."""
        self.names.append(name)
        self.start(name)
        for n in self.names:
            if n != name:
                self.regions[n].terminate()
                self.start(n)

    def diagnose(self, table, keys):
        """Prints what each region holds of `keys` and its replication state (for failures)."""
        for n in self.names:
            got = {i["pk"]["S"] for i in self.scan(n, table)}
            st = self.status(n)
            print(n, len(got), "missing", sorted(keys - got)[:10], "extra", sorted(got - keys)[:5])
            print("   watermarks", st["watermarks"], "checkpoints", st["checkpoints"],
                  st["changelog"], st["snapshots"])
            for link in st["links"]:
                print("   ", link["peer"], link["direction"], link["connected"], link["acked_seq"],
                      link.get("last_error"))

    def add(self, name, restart):
        """Adds region `name` to the cluster: starts it (empty) and restarts each region of
        `restart`, one at a time, with the new peer in its flags (a rolling restart)."""
        self.names.append(name)
        self.repl_ports[name] = free_port()
        self.start(name)
        for n in restart:
            self.regions[n].terminate()
            self.start(n)

    def __getitem__(self, name):
        return self.regions[name]

    def client(self, name):
        return self.regions[name].client()

    def create_table(self, table, **kw):
        """Creates the table in the first region and waits until every region has it (table
        DDL replicates); where it never arrives, creates it there too."""
        create_table(self.client(self.names[0]), table, **kw)

        def has(n):
            try:
                return self.client(n).describe_table(TableName=table)["Table"]["TableStatus"] == "ACTIVE"
            except Exception:  # noqa: BLE001
                return False

        try:
            wait_until(lambda: all(has(n) for n in self.names), timeout=5, interval=0.1,
                       what=f"table {table} everywhere")
        except AssertionError:
            for n in self.names:
                if not has(n):
                    create_table(self.client(n), table, **kw)

    def status(self, name):
        return json.loads(self.regions[name].get("/admin/replication"))

    def scan(self, name, table):
        c = self.client(name)
        items, kw = [], {}
        while True:
            page = c.scan(TableName=table, ConsistentRead=True, **kw)
            items += page["Items"]
            if "LastEvaluatedKey" not in page:
                break
            kw = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
        return sorted(items, key=lambda i: json.dumps(i, sort_keys=True))

    def wait_converged(self, table, timeout=60, expect_count=None, names=None):
        names = names or self.names

        def same():
            scans = [self.scan(n, table) for n in names]
            if expect_count is not None and len(scans[0]) != expect_count:
                return False
            # an empty table only counts as converged when that is what the caller expects
            return all(s == scans[0] for s in scans[1:]) and (scans[0] or expect_count == 0)

        return wait_until(same, timeout=timeout, interval=0.25,
                          what=f"{table} identical in {names}")

    def changelog(self, name):
        return json.loads(self.regions[name].get("/admin/changelog?from=1&limit=100000"))["entries"]

    def link(self, name, peer, direction):
        for link in self.status(name)["links"]:
            if link["peer"] == peer and link["direction"] == direction:
                return link
        return None

    def all_links_up(self):
        expected = 0
        up = 0
        for n in self.names:
            for link in self.status(n)["links"]:
                expected += 1
                up += link["connected"]
        return expected > 0 and up == expected


@pytest.fixture
def cluster(tmp_path):
    made = []

    def make(names, **kw):
        c = Cluster(tmp_path, names, **kw).start()
        made.append(c)
        wait_until(c.all_links_up, timeout=30, interval=0.2, what="all links connected")
        return c

    yield make
    for c in made:
        c.stop()


def put(c, table, pk, value, **extra):
    item = {"pk": {"S": pk}, "v": {"S": value}}
    item.update(extra)
    c.put_item(TableName=table, Item=item)


def metric(region, name, labels):
    text = region.get("/metrics")
    pat = re.escape(name) + r"\{([^}]*)\} ([0-9.e+-]+)"
    for m in re.finditer(pat, text):
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(m.group(2))
    return None


def decided_from(region, peer):
    """Entries of `peer`'s stream that `region` applied or decided stale since it started — not
    the repeats its dedup watermark skipped."""
    return sum(metric(region, f"meridian_replication_{k}_entries_total", {"peer": peer}) or 0
               for k in ("applied", "stale"))


def assert_each_change_decided_once(c, name, peers, start=None):
    """`name` decided every change each peer's stream carried to it exactly once: as many as
    the peer logged after `start[peer]` (0: everything). Holds where the peer's log carries
    only what ships to `name` (a mesh, or a star's hub towards a spoke that wrote nothing), and
    for a `name` that has not restarted (the counters are in memory)."""
    start = start or {}
    for peer in peers:
        want = c.status(peer)["head"] - start.get(peer, 0)
        wait_until(lambda: decided_from(c[name], peer) >= want, timeout=30, interval=0.1,
                   what=f"{name} decided {want} changes from {peer}")
        got = decided_from(c[name], peer)
        assert got == want, f"{name} decided {got} changes from {peer}, expected {want}"


def assert_logs_own_changes_only(c, name):
    """A region that forwards nothing logs exactly its own changes: each GTID once, its local
    sequences are its origin sequences, and nothing received is logged (or loops back)."""
    log = c.changelog(name)
    assert {e["origin"] for e in log} <= {name}, (name, {e["origin"] for e in log})
    seqs = [e["seq"] for e in log]
    assert seqs == [e["origin_seq"] for e in log] == list(range(1, len(log) + 1)), name
    return log


def test_writes_in_every_region_converge(cluster):
    rng = seeded("converge")
    c = cluster(["us", "eu", "ap"])
    c.create_table("users")
    expected = {}
    for n in c.names:
        cl = c.client(n)
        for i in range(25):
            pk = f"{n}-{i}"
            put(cl, "users", pk, f"v{rng.randrange(1000)}")
            expected[pk] = True
        # updates and deletes too
        cl.update_item(TableName="users", Key={"pk": {"S": f"{n}-0"}},
                       UpdateExpression="SET extra = :x", ExpressionAttributeValues={":x": {"N": "7"}})
        cl.delete_item(TableName="users", Key={"pk": {"S": f"{n}-1"}})
        del expected[f"{n}-1"]
    items = c.wait_converged("users", expect_count=len(expected))
    assert {i["pk"]["S"] for i in items} == set(expected)
    # reads carry the replication attributes, identical in every region
    for i in items:
        origin = i["pk"]["S"].split("-")[0]
        assert i["aws:rep:updateregion"] == {"S": origin}
        assert float(i["aws:rep:updatetime"]["N"]) > 1.6e9
    got = c.client("eu").get_item(TableName="users", Key={"pk": {"S": "us-0"}})["Item"]
    assert got["extra"] == {"N": "7"} and got["aws:rep:updateregion"] == {"S": "us"}
    # nothing loops: a mesh region logs only its own changes, one entry per change, and
    # decided each of the others' changes exactly once
    for n in c.names:
        item_changes = [e for e in assert_logs_own_changes_only(c, n)
                        if e["op"] in ("put", "delete")]
        assert len(item_changes) == 27, n
        assert_each_change_decided_once(c, n, [p for p in c.names if p != n])


def test_replication_attributes_are_read_only(cluster):
    c = cluster(["us", "eu"])
    c.create_table("attrs")
    cl = c.client("us")
    with pytest.raises(cl.exceptions.ClientError) as e:
        put(cl, "attrs", "a", "x", **{"aws:rep:updateregion": {"S": "eu"}})
    assert e.value.response["Error"]["Code"] == "ValidationException"
    put(cl, "attrs", "a", "x")
    c.wait_converged("attrs", expect_count=1)
    # the stored item (as shipped in the change log) does not contain them
    entry = [e for e in c.changelog("us") if e["table"] == "attrs" and e["op"] == "put"][0]
    assert set(entry["item"]) == {"pk", "v"}


def test_concurrent_conflicting_writes_converge_to_the_later_hlc(cluster):
    rng = seeded("conflicts")
    c = cluster(["us", "eu", "ap"])
    c.create_table("hot")
    keys = [f"k{i}" for i in range(15)]
    errors = []

    def writer(n):
        cl = c.client(n)
        order = keys[:]
        rng_local = random.Random(rng.randrange(1 << 30))
        try:
            for rnd in range(3):
                rng_local.shuffle(order)
                for k in order:
                    put(cl, "hot", k, f"{n}-{rnd}")
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in c.names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    items = c.wait_converged("hot", expect_count=len(keys))
    # the survivor of each key is the write with the greatest (HLC, region) of all regions
    writes = {}
    for n in c.names:
        for e in c.changelog(n):
            if e["table"] == "hot" and e["origin"] == n and e["op"] == "put":
                k = e["item"]["pk"]["S"]
                v = (e["version"]["ts"], e["version"]["region"], e["item"]["v"]["S"])
                writes[k] = max(writes.get(k, v), v)
    for i in items:
        ts, region, value = writes[i["pk"]["S"]]
        assert i["v"]["S"] == value
        assert i["aws:rep:updateregion"]["S"] == region

    # causality beats skewed wall clocks: eu runs 5 s behind, yet its write made after seeing
    # us's write wins everywhere
    c["eu"].post("/admin/clock/skew?ms=-5000")
    put(c.client("us"), "hot", "causal", "from-us")
    wait_until(lambda: c.client("eu").get_item(TableName="hot", Key={"pk": {"S": "causal"}}).get("Item"),
               timeout=30, what="us write reaches eu")
    put(c.client("eu"), "hot", "causal", "from-eu-later")
    items = c.wait_converged("hot", expect_count=len(keys) + 1)
    causal = [i for i in items if i["pk"]["S"] == "causal"][0]
    assert causal["v"]["S"] == "from-eu-later"
    c["eu"].post("/admin/clock/skew?ms=0")


def test_partition_with_writes_on_both_sides_then_heal(cluster):
    rng = seeded("partition")
    c = cluster(["us", "eu", "ap"])
    c.create_table("part")
    for n in c.names:
        put(c.client(n), "part", f"before-{n}", "x")
    c.wait_converged("part", expect_count=3)
    # cut us off from everyone (pausing on one side pauses both directions of the pair)
    for peer in ["eu", "ap"]:
        c["us"].post(f"/admin/links/{peer}/pause")
    wait_until(lambda: all(c.link("us", p, "in")["paused"] for p in ["eu", "ap"]), timeout=10,
               what="links paused")
    shared = [f"both-{i}" for i in range(10)]
    for k in shared:
        put(c.client("us"), "part", k, f"us-{rng.randrange(100)}")
        put(c.client("eu"), "part", k, f"eu-{rng.randrange(100)}")
    for i in range(10):
        put(c.client("us"), "part", f"us-only-{i}", "x")
        put(c.client("ap"), "part", f"ap-only-{i}", "x")
    # eu and ap still replicate to each other; us is isolated
    c.wait_converged("part", names=["eu", "ap"], expect_count=3 + 10 + 10)
    time.sleep(1.0)
    us_keys = {i["pk"]["S"] for i in c.scan("us", "part")}
    assert not any(k.startswith("ap-only") for k in us_keys)
    eu_keys = {i["pk"]["S"] for i in c.scan("eu", "part")}
    assert not any(k.startswith("us-only") for k in eu_keys)
    # heal
    for peer in ["eu", "ap"]:
        c["us"].post(f"/admin/links/{peer}/resume")
    c.wait_converged("part", expect_count=3 + 10 + 10 + 10)


def test_a_counter_created_concurrently_in_two_regions_keeps_every_increment(cluster):
    # Found by `meridian drill counters`: creating an item with ADD used to stamp the counter
    # with the creating write's version, so two regions creating the same counter while
    # partitioned reset each other and one side's increments vanished.
    c = cluster(["us", "eu"])
    c.create_table("ctr")
    c["us"].post("/admin/links/eu/pause")
    wait_until(lambda: c.link("us", "eu", "in")["paused"], timeout=10, what="link paused")
    for name, n in [("us", 3), ("eu", 5)]:
        for _ in range(n):
            c.client(name).update_item(TableName="ctr", Key={"pk": {"S": "hits"}},
                                       UpdateExpression="ADD n :one",
                                       ExpressionAttributeValues={":one": {"N": "1"}})
    c["us"].post("/admin/links/eu/resume")
    c.wait_converged("ctr", expect_count=1)
    for name in c.names:
        got = c.client(name).get_item(TableName="ctr", Key={"pk": {"S": "hits"}},
                                      ConsistentRead=True)
        assert got["Item"]["n"]["N"] == "8", (name, got)
    # a delete still wins over the increments made before it, and a re-created counter
    # starts from zero everywhere
    c.client("us").delete_item(TableName="ctr", Key={"pk": {"S": "hits"}})
    c.wait_converged("ctr", expect_count=0)
    c.client("eu").update_item(TableName="ctr", Key={"pk": {"S": "hits"}},
                               UpdateExpression="ADD n :one",
                               ExpressionAttributeValues={":one": {"N": "1"}})
    c.wait_converged("ctr", expect_count=1)
    got = c.client("us").get_item(TableName="ctr", Key={"pk": {"S": "hits"}}, ConsistentRead=True)
    assert got["Item"]["n"]["N"] == "1"


def test_kill_9_mid_stream_loses_nothing_and_applies_nothing_twice(cluster):
    rng = seeded("kill9")
    c = cluster(["us", "eu", "ap"])
    c.create_table("crash")
    acked = {}
    stop = threading.Event()

    def writer(n):
        cl = c[n].client(retries=0, timeout=5)
        i = 0
        while not stop.is_set():
            pk = f"{n}-{i}"
            try:
                put(cl, "crash", pk, str(i))
                acked[pk] = str(i)
            except Exception:  # noqa: BLE001 - the region may be down: not acknowledged
                time.sleep(0.05)
                cl = c[n].client(retries=0, timeout=5)
            i += 1

    threads = [threading.Thread(target=writer, args=(n,), daemon=True) for n in ["us", "eu"]]
    for t in threads:
        t.start()
    for victim in ["ap", "us", "ap"]:  # a receiver, then a sender (which is also a receiver)
        time.sleep(0.5 + rng.random())
        c[victim].kill()
        time.sleep(rng.random())
        c.start(victim)
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    # writes whose answer was lost in a kill may exist too; every acknowledged one must
    def all_acked_everywhere():
        for n in c.names:
            got = {i["pk"]["S"]: i["v"]["S"] for i in c.scan(n, "crash")}
            missing = [k for k in acked if got.get(k) != acked[k]]
            if missing:
                raise AssertionError(f"{n} lacks {len(missing)} acknowledged writes, e.g. {missing[:5]}")
        return True

    wait_until(all_acked_everywhere, timeout=90, interval=0.5, what="every acknowledged write everywhere")
    c.wait_converged("crash", timeout=60)
    for n in c.names:
        assert_logs_own_changes_only(c, n)
    # eu was never killed, so its counters cover the whole run: it decided each change of us
    # and ap exactly once (what a restarted sender re-sent was skipped, not applied again)
    assert_each_change_decided_once(c, "eu", ["us", "ap"])
    print(f"kill9: {len(acked)} acknowledged writes, all present once everywhere")


def test_star_topology_of_four_regions(cluster):
    c = cluster(["hub", "s1", "s2", "s3"], topology="star", hub="hub")
    c.create_table("star")
    for n in c.names:
        for i in range(10):
            put(c.client(n), "star", f"{n}-{i}", n)
    items = c.wait_converged("star", expect_count=40)
    assert {i["aws:rep:updateregion"]["S"] for i in items} == set(c.names)
    # spokes link only to the hub
    for s in ["s1", "s2", "s3"]:
        peers = {link["peer"] for link in c.status(s)["links"]}
        assert peers == {"hub"}, (s, peers)
    assert {link["peer"] for link in c.status("hub")["links"]} == {"s1", "s2", "s3"}
    # the hub logs every change it forwards, each GTID once; a spoke only its own
    for n in c.names:
        gtids = [(e["origin"], e["origin_seq"]) for e in c.changelog(n) if e["op"] == "put"]
        assert len(gtids) == len(set(gtids)) == (40 if n == "hub" else 10), n
        if n != "hub":
            assert_logs_own_changes_only(c, n)


def test_a_peer_with_the_wrong_secret_is_refused(tmp_path):
    c = Cluster(tmp_path, ["us", "eu"], secrets={"eu": "not-the-secret"}).start()
    try:
        c.create_table("sec")
        put(c.client("us"), "sec", "from-us", "x")
        put(c.client("eu"), "sec", "from-eu", "x")
        wait_until(lambda: (metric(c["us"], "meridian_replication_refused_total", {"peer": "eu"}) or 0) > 0,
                   timeout=20, what="us refuses eu")
        wait_until(lambda: (metric(c["eu"], "meridian_replication_refused_total", {"peer": "us"}) or 0) > 0,
                   timeout=20, what="eu refuses us")
        assert "failed to prove the shared secret" in c["eu"].log()
        time.sleep(1.0)
        assert [i["pk"]["S"] for i in c.scan("us", "sec")] == ["from-us"]
        assert [i["pk"]["S"] for i in c.scan("eu", "sec")] == ["from-eu"]
        assert "replication peer refused" in c["us"].log()
        assert not any(link["connected"] for link in c.status("us")["links"])
    finally:
        c.stop()


def test_lag_metrics_and_the_alarm_rise_when_a_link_is_paused(cluster):
    c = cluster(["us", "eu"], lag_alarm_ms=400)
    c.create_table("lag")
    put(c.client("us"), "lag", "warm", "x")
    c.wait_converged("lag", expect_count=1)
    for direction in ["out", "in"]:
        assert metric(c["us"], "meridian_replication_lag_ms", {"peer": "eu", "direction": direction}) is not None
        assert metric(c["us"], "meridian_replication_lag_entries", {"peer": "eu", "direction": direction}) is not None
    wait_until(lambda: metric(c["us"], "meridian_replication_ack_rtt_ms", {"peer": "eu"}) is not None,
               timeout=10, what="rtt metric")
    c["us"].post("/admin/links/eu/pause")
    for i in range(20):
        put(c.client("us"), "lag", f"k{i}", "x")
    out = wait_until(lambda: (lambda link: link if link["alarm"] else None)(c.link("us", "eu", "out")),
                     timeout=15, what="sender-side alarm")
    assert out["state"] == "paused" and out["lag_entries"] >= 20 and out["lag_ms"] > 400
    wait_until(lambda: c.link("eu", "us", "in")["alarm"], timeout=15, what="receiver-side alarm")
    assert c.status("eu")["alarm"] is True
    assert metric(c["us"], "meridian_replication_lag_alarm", {"peer": "eu", "direction": "out"}) == 1
    assert metric(c["eu"], "meridian_replication_lag_alarm", {"peer": "us", "direction": "in"}) == 1
    c["us"].post("/admin/links/eu/resume")
    c.wait_converged("lag", expect_count=21)
    wait_until(lambda: not c.status("us")["alarm"] and not c.status("eu")["alarm"], timeout=15,
               what="alarm clears")
    st = c.status("eu")
    assert st["watermarks"]["us"] >= 21
    # every applied entry's lag was recorded; the 20 held back by the pause waited > 400 ms
    link = c.link("eu", "us", "in")
    lag = link["apply_lag_ms"]
    assert lag["count"] >= 21 and lag["max"] > 400 and lag["p50"] <= lag["p99"] <= lag["max"]
    # the same entries at receipt, before their apply (one status answer, so the same entries):
    # the pause's wait is there already, and no entry was received later than it was applied
    received = link["receive_lag_ms"]
    assert received["count"] == lag["count"] and received["max"] > 400
    assert received["p50"] <= lag["p50"] and received["max"] <= lag["max"]
    c["eu"].post("/admin/replication/reset-lag")
    link = c.link("eu", "us", "in")
    assert link["apply_lag_ms"]["count"] == 0 and link["receive_lag_ms"]["count"] == 0


def test_drop_and_delay_fault_hooks(cluster):
    c = cluster(["us", "eu"])
    c.create_table("faults")
    before = metric(c["us"], "meridian_replication_connects_total", {"peer": "eu", "direction": "out"})
    c["us"].post("/admin/links/eu/drop")
    wait_until(lambda: metric(c["us"], "meridian_replication_connects_total",
                              {"peer": "eu", "direction": "out"}) > before,
               timeout=20, what="link reconnects after a drop")
    c["us"].post("/admin/links/eu/delay?ms=800")
    t0 = time.monotonic()
    put(c.client("us"), "faults", "slow", "x")
    c.wait_converged("faults", expect_count=1)
    assert time.monotonic() - t0 >= 0.75
    c["us"].post("/admin/links/eu/delay?ms=0")
    t0 = time.monotonic()
    put(c.client("us"), "faults", "fast", "x")
    c.wait_converged("faults", expect_count=2)
    assert time.monotonic() - t0 < 5
    with pytest.raises(urllib.error.HTTPError):
        c["us"].post("/admin/links/nowhere/pause")


def test_duplicated_and_reordered_batches_are_neither_applied_twice_nor_lost(cluster):
    c = cluster(["us", "eu"])
    c.create_table("dupreorder")
    for hook in ["duplicate", "reorder"]:
        out = c["us"].post(f"/admin/links/eu/{hook}?on=true")
        assert out[hook] is True
    with pytest.raises(urllib.error.HTTPError):
        c["us"].post("/admin/links/eu/duplicate")  # needs ?on=
    labels = {"peer": "us"}
    applied_before = metric(c["eu"], "meridian_replication_applied_entries_total", labels) or 0
    client = c.client("us")
    # one key written over and over: a batch applied twice or out of order would leave an
    # older value behind
    for i in range(60):
        put(client, "dupreorder", f"k{i % 7}", f"v{i}", n={"N": str(i)})
    c.wait_converged("dupreorder", expect_count=7)
    eu = c.client("eu")
    for k in range(7):
        last = max(i for i in range(60) if i % 7 == k)
        got = eu.get_item(TableName="dupreorder", Key={"pk": {"S": f"k{k}"}}, ConsistentRead=True)
        assert got["Item"]["v"]["S"] == f"v{last}", (k, got)
    assert metric(c["eu"], "meridian_replication_repeated_batches_total", labels) > 0
    assert metric(c["eu"], "meridian_replication_gap_batches_total", labels) > 0
    # every shipped change was applied exactly once (repeats were acknowledged, not applied)
    applied = metric(c["eu"], "meridian_replication_applied_entries_total", labels)
    assert applied - applied_before == 60
    for hook in ["duplicate", "reorder"]:
        c["us"].post(f"/admin/links/eu/{hook}?on=false")
    put(client, "dupreorder", "after", "x")
    c.wait_converged("dupreorder", expect_count=8)


def test_counter_increments_from_every_region_all_count_across_a_kill_9(cluster):
    """ADD from every region at once (a counter CRDT): the final value is the exact sum of the
    acknowledged increments in every region, even with a region SIGKILLed and restarted while
    the others keep incrementing (resume + dedup: nothing lost, nothing applied twice)."""
    rng = seeded("counters")
    c = cluster(["ca", "cb", "cc"])
    c.create_table("counters")
    c.client("ca").put_item(TableName="counters", Item={"pk": {"S": "hot"}, "n": {"N": "0"}})
    wait_until(lambda: all("Item" in c.client(n).get_item(TableName="counters", Key={"pk": {"S": "hot"}})
                           for n in c.names), timeout=30, what="item everywhere")
    acked = {n: 0 for n in c.names}
    lock = threading.Lock()

    def incr(name, rounds):
        client = c.client(name)
        for _ in range(rounds):
            amount = rng.randint(-3, 9)
            client.update_item(TableName="counters", Key={"pk": {"S": "hot"}},
                               UpdateExpression="ADD n :a", ExpressionAttributeValues={":a": {"N": str(amount)}})
            with lock:
                acked[name] += amount

    first = [threading.Thread(target=incr, args=(n, 25)) for n in c.names]
    for t in first:
        t.start()
    for t in first:
        t.join(timeout=120)
    c["cb"].kill()  # between cb's increments; the others go on while it is down
    during = [threading.Thread(target=incr, args=(n, 25)) for n in ("ca", "cc")]
    for t in during:
        t.start()
    for t in during:
        t.join(timeout=120)
    c.start("cb")
    incr("cb", 10)
    expected = sum(acked.values())

    def exact_everywhere():
        values = [c.client(n).get_item(TableName="counters", Key={"pk": {"S": "hot"}})["Item"]["n"]["N"]
                  for n in c.names]
        return all(int(v) == expected for v in values)

    wait_until(exact_everywhere, timeout=60, interval=0.25, what=f"counter == {expected} in every region")
    c.wait_converged("counters")


def digest(region, table):
    return json.loads(region.get(f"/admin/ae/digest?table={table}"))["digest"]


@pytest.mark.parametrize("topology", ["mesh", "star"])
def test_a_region_added_to_a_loaded_cluster_is_seeded_from_a_snapshot(cluster, topology):
    """A fourth region joins a loaded three-region cluster whose change logs were already
    garbage-collected, so replaying them from the start is impossible. It installs a consistent
    snapshot from a peer, then takes every origin's stream from the snapshot's watermarks while
    writes go on, and ends identical: same items, tombstones and digests, exact counters (no
    gap), and from each peer's stream exactly the changes after the snapshot's watermark,
    decided once each (nothing replayed, nothing applied twice)."""
    rng = seeded(f"join-{topology}")
    names = ["ja", "jb", "jc"]
    kw = {"topology": "star", "hub": "ja"} if topology == "star" else {}
    c = cluster(names, extra_args=["--changelog-retention-secs", "0",
                                   "--changelog-gc-interval-ms", "200"], **kw)
    c.create_table("joined")
    keys = set()
    for i in range(300):
        put(c.client(names[i % 3]), "joined", f"k{i}", f"v{i}")
        keys.add(f"k{i}")
    for i in range(0, 300, 7):
        c.client(names[i % 3]).delete_item(TableName="joined", Key={"pk": {"S": f"k{i}"}})
        keys.discard(f"k{i}")
    counter = 0
    for i in range(30):
        amount = rng.randint(1, 9)
        c.client(names[i % 3]).update_item(
            TableName="joined", Key={"pk": {"S": "ctr"}}, UpdateExpression="ADD n :a",
            ExpressionAttributeValues={":a": {"N": str(amount)}})
        counter += amount
    keys.add("ctr")
    c.wait_converged("joined", expect_count=len(keys))
    wait_until(lambda: all(c.status(n)["changelog"]["purged_through"] > 0 for n in names),
               timeout=30, interval=0.2, what="every change log purged")

    # writes go on in the old regions while the new one joins (a rolling restart adds it)
    stop = threading.Event()
    live = []

    def write_live():
        j = 0
        while not stop.is_set():
            try:
                put(c.client(names[j % 3]), "joined", f"live{j}", "x")
                live.append(f"live{j}")
            except Exception:  # noqa: BLE001 — the region is restarting; not acknowledged
                pass
            j += 1

    t = threading.Thread(target=write_live)
    t.start()
    try:
        c.add("jd", restart=names if topology == "mesh" else ["ja"])
        wait_until(c.all_links_up, timeout=60, interval=0.2, what="all links up with jd")
        wait_until(lambda: len(live) >= 50, timeout=30, what="writes during the join")
    finally:
        stop.set()
        t.join(timeout=60)
    keys.update(live)

    st = c.status("jd")
    assert st["changelog"]["bootstrap_pending"] is False
    installed = st["snapshots"]["installed"]
    assert installed and installed[0]["entries"] >= 300 - 43, installed
    try:
        items = c.wait_converged("joined", expect_count=len(keys), timeout=90)
    except AssertionError:
        c.diagnose("joined", keys)
        raise
    ctr = [i for i in items if i["pk"]["S"] == "ctr"][0]
    assert int(ctr["n"]["N"]) == counter
    wait_until(lambda: len({digest(c[n], "joined") for n in c.names}) == 1, timeout=30,
               what="equal digests (tombstones included) in all four regions")
    # what was written before the join reached jd only through the snapshot; the streams
    # carried the rest, each change once
    assert_each_change_decided_once(c, "jd", ["ja"] if topology == "star" else names,
                                    start=installed[0]["watermarks"])


def test_a_region_back_after_its_peers_purged_what_it_missed_is_stale_until_reseeded(cluster):
    """A region taken out of the cluster while the others go on writing, deleting and purging
    (change logs and tombstones) comes back with its old data. Its peers can no longer stream
    what it missed (`LogPurged`), and patching its data with a snapshot could resurrect items
    deleted meanwhile (their tombstones are gone), so it reports itself stale and the others
    are untouched. Restarted with an empty data directory it is seeded from a snapshot and
    converges, each change after the snapshot decided once."""
    c = cluster(["pa", "pb", "pc"], extra_args=["--changelog-retention-secs", "0",
                                                "--changelog-gc-interval-ms", "200"])
    c.create_table("back")
    for i in range(60):
        put(c.client(["pa", "pb", "pc"][i % 3]), "back", f"before{i}", "x")
    c.wait_converged("back", expect_count=60)
    c.remove("pc")
    wait_until(c.all_links_up, timeout=30, interval=0.2, what="pa and pb linked")
    for i in range(80):
        put(c.client(["pa", "pb"][i % 2]), "back", f"missed{i}", "y")
        if i % 4 == 0:
            c.client("pa").delete_item(TableName="back", Key={"pk": {"S": f"before{i}"}})
    heads = {n: c.status(n)["head"] for n in ("pa", "pb")}
    wait_until(lambda: all(c.status(n)["changelog"]["purged_through"] >= heads[n] for n in heads)
               and all(tombstones(c[n], "back") == 0 for n in heads),
               timeout=30, interval=0.2, what="pa and pb purged what pc missed")
    c.rejoin("pc")
    wait_until(lambda: set(c.status("pc")["snapshots"]["stale_from"]) == {"pa", "pb"},
               timeout=60, interval=0.2, what="pc reports itself stale")
    assert c.status("pc")["stale"] is True
    assert not c.status("pc")["snapshots"]["installed"]
    expected = 60 + 80 - 15  # before0, before4, … before56 deleted
    c.wait_converged("back", expect_count=expected, names=["pa", "pb"])

    c["pc"].terminate()
    shutil.rmtree(c.tmp / "pc" / "data")
    c.start("pc")
    wait_until(c.all_links_up, timeout=60, interval=0.2, what="pc linked again")
    st = c.status("pc")
    assert st["stale"] is False and st["snapshots"]["installed"], st["snapshots"]
    c.wait_converged("back", expect_count=expected, timeout=60)
    wait_until(lambda: len({digest(c[n], "back") for n in c.names}) == 1, timeout=30,
               what="equal digests in all three regions")
    assert_each_change_decided_once(c, "pc", ["pa", "pb"],
                                    start=st["snapshots"]["installed"][0]["watermarks"])


def tombstones(region, table):
    return json.loads(region.get(f"/admin/ae/digest?table={table}"))["tombstones"]


def gc_passes(region):
    m = re.search(r"^meridian_replication_gc_passes_total ([0-9.e+-]+)$", region.get("/metrics"), re.M)
    return float(m.group(1)) if m else 0


@pytest.mark.parametrize("topology", ["mesh", "star"])
def test_tombstones_are_purged_only_once_no_older_write_can_still_arrive(cluster, topology):
    """Deletes leave tombstones so that an older write still travelling cannot resurrect the
    item. With no retention, a tombstone is purged once the delete is delivered and every other
    region's older writes are applied here — not before. One region's stream runs 4 s late (in
    a star, a spoke's stream to the hub: the other spoke hears it only through the hub, which
    vouches in its heartbeats for what it has applied). The deleting region keeps the tombstone
    of an item the late region updated just before the delete, although every peer has
    acknowledged the delete, so the stale update still loses when it arrives. Afterwards every
    tombstone goes, and the item stays deleted."""
    if topology == "mesh":
        names, kw = ["ta", "tb", "tc"], {}
        deleter, late, late_to, witness = "ta", "tc", "ta", "tb"
    else:
        names, kw = ["sh", "s1", "s2"], {"topology": "star", "hub": "sh"}
        deleter, late, late_to, witness = "s1", "s2", "sh", None
    c = cluster(names, extra_args=["--changelog-retention-secs", "0",
                                   "--changelog-gc-interval-ms", "200"], **kw)
    table = f"tomb-{topology}"
    c.create_table(table)
    for i in range(20):
        put(c.client(deleter), table, f"k{i}", "v")
    c.wait_converged(table, expect_count=20)
    for i in range(10):
        c.client(late).delete_item(TableName=table, Key={"pk": {"S": f"k{i}"}})
    c.wait_converged(table, expect_count=10)
    wait_until(lambda: all(tombstones(c[n], table) == 0 for n in names), timeout=30,
               interval=0.2, what="settled tombstones purged everywhere")

    c[late].post(f"/admin/links/{late_to}/delay?ms=4000")  # this direction only
    put(c.client(late), table, "k15", "stale")
    if witness:  # the update is travelling: another region already has it
        wait_until(lambda: c.client(witness).get_item(
            TableName=table, Key={"pk": {"S": "k15"}}, ConsistentRead=True)["Item"]["v"]["S"] == "stale",
            timeout=30, what=f"{late}'s update at {witness}")
    c.client(deleter).delete_item(TableName=table, Key={"pk": {"S": "k15"}})  # the later write
    deleted_at = c.status(deleter)["head"]
    wait_until(lambda: min(c.status(deleter)["checkpoints"].values()) >= deleted_at, timeout=3,
               what=f"every peer acknowledged {deleter}'s delete")
    passes = gc_passes(c[deleter])
    wait_until(lambda: gc_passes(c[deleter]) >= passes + 3, timeout=3,
               what=f"three GC passes in {deleter}")
    assert tombstones(c[deleter], table) == 1, \
        f"{deleter} purged a tombstone an older write can still reach"

    c[late].post(f"/admin/links/{late_to}/delay?ms=0")
    c.wait_converged(table, expect_count=9)
    wait_until(lambda: all(tombstones(c[n], table) == 0 for n in names), timeout=30,
               interval=0.2, what="every tombstone purged")
    for n in names:
        got = c.client(n).get_item(TableName=table, Key={"pk": {"S": "k15"}}, ConsistentRead=True)
        assert "Item" not in got, (n, got)

def test_a_region_added_back_to_a_tables_replicas_is_backfilled(cluster):
    """UpdateTable ReplicaUpdates (global tables 2019.11.21): deleting a region's replica drops
    its copy; creating it again brings back every item, including those written while it was
    not a replica (their changes never reached it): it is seeded from a snapshot."""
    c = cluster(["ra", "rb", "rc"])
    c.create_table("reps")
    for i in range(30):
        put(c.client("ra"), "reps", f"a{i}", "x")
    c.wait_converged("reps", expect_count=30)

    def tables(n):
        return c.client(n).list_tables()["TableNames"]

    c.client("ra").update_table(TableName="reps", ReplicaUpdates=[{"Delete": {"RegionName": "rc"}}])
    wait_until(lambda: "reps" not in tables("rc"), timeout=30, what="rc dropped its replica")
    desc = c.client("rb").describe_table(TableName="reps")["Table"]
    assert {r["RegionName"] for r in desc["Replicas"]} == {"ra", "rb"}
    for i in range(30):
        put(c.client("rb"), "reps", f"b{i}", "y")
    c.wait_converged("reps", expect_count=60, names=["ra", "rb"])
    assert "reps" not in tables("rc")

    c.client("ra").update_table(TableName="reps", ReplicaUpdates=[{"Create": {"RegionName": "rc"}}])
    c.wait_converged("reps", expect_count=60, timeout=60)
    desc = c.client("rc").describe_table(TableName="reps")["Table"]
    assert {r["RegionName"] for r in desc["Replicas"]} == {"ra", "rb", "rc"}
    wait_until(lambda: any(s["peer"] == "ra" and s["entries"] >= 60
                           for s in c.status("rc")["snapshots"]["installed"]),
               timeout=30, what="rc installed a snapshot from ra")


def test_batches_that_arrive_together_are_applied_in_one_commit(cluster, tmp_path):
    # One entry per batch, and a paused link: on resume the sender streams a window of small
    # batches at once, and the receiver must take every batch already received into one apply
    # instead of one durable apply (fsync) per batch.
    cfg = tmp_path / "one-entry-batches.toml"
    cfg.write_text("[replication]\nbatch_entries = 1\n")
    c = cluster(["us", "eu"], extra_args=["--config", str(cfg)])
    c.create_table("gather")
    labels = {"peer": "us"}

    def counters():
        return tuple(metric(c["eu"], f"meridian_replication_{m}_total", labels) or 0
                     for m in ["received_batches", "applies", "applied_entries"])

    c["us"].post("/admin/links/eu/pause")
    client = c.client("us")
    for i in range(200):
        put(client, "gather", f"k{i}", f"v{i}")
    batches0, applies0, applied0 = counters()
    c["us"].post("/admin/links/eu/resume")
    c.wait_converged("gather", expect_count=200)
    batches, applies, applied = (a - b for a, b in zip(counters(), (batches0, applies0, applied0)))
    print(f"batches received {batches}, applies {applies}, entries applied {applied}")
    assert batches >= 200, batches
    assert applied == 200, applied
    assert applies < batches / 2, (applies, batches)


def test_a_version_too_far_ahead_is_refused_and_alarmed_until_the_clock_allows_it(cluster):
    # us runs 3 s ahead (more than the 500 ms maximum offset): eu refuses its batches whole,
    # names it in the link's alarm, stays healthy, and applies them once they are within the
    # offset — nothing lost, nothing applied early, eu's clock not dragged forward.
    c = cluster(["us", "eu"])
    c.create_table("skewed")
    put(c.client("us"), "skewed", "before", "x")
    c.wait_converged("skewed", expect_count=1)
    c["us"].post("/admin/clock/skew?ms=3000")
    put(c.client("us"), "skewed", "ahead", "x")
    link = wait_until(lambda: (lambda l: l if l.get("refused") else None)(c.link("eu", "us", "in")),
                      timeout=15, what="eu refuses us's batch")
    assert link["alarm"] is True and "clock" in link["refused"] and "ahead" in link["refused"], link
    assert c.status("eu")["alarm"] is True
    assert (metric(c["eu"], "meridian_replication_refused_batches_total",
                   {"peer": "us", "reason": "clock"}) or 0) >= 1
    assert c["eu"].health()[0] == 200
    assert [i["pk"]["S"] for i in c.scan("eu", "skewed")] == ["before"]
    # eu keeps writing with its own clock meanwhile
    put(c.client("eu"), "skewed", "local", "x")
    c["us"].post("/admin/clock/skew?ms=0")
    c.wait_converged("skewed", expect_count=3, timeout=30)
    wait_until(lambda: not c.link("eu", "us", "in").get("refused"), timeout=15,
               what="the refusal clears once a batch applies")


def test_fault_hooks_exist_only_with_fault_injection_on(tmp_path):
    port = free_port()
    r = Region(tmp_path / "data", name="plain",
               extra_args=["--replication-listen", f"127.0.0.1:{port}",
                           "--replication-secret", SECRET]).start()
    try:
        for path in ["/admin/clock/skew?ms=5000", "/admin/links/eu/pause"]:
            with pytest.raises(urllib.error.HTTPError) as e:
                r.post(path)
            assert e.value.code == 404
            assert "--enable-fault-injection" in e.value.read().decode()
        assert json.loads(r.get("/admin/replication"))["links"] == []
    finally:
        r.terminate()


def test_fault_hooks_are_bounded(cluster):
    c = cluster(["us", "eu"])
    for path in ["/admin/clock/skew?ms=3600001", "/admin/clock/skew?ms=-3600001",
                 "/admin/links/eu/delay?ms=60001"]:
        with pytest.raises(urllib.error.HTTPError) as e:
            c["us"].post(path)
        assert e.value.code == 400, path
    assert c["us"].post("/admin/clock/skew?ms=-3600000")["skew_ms"] == -3600000
    c["us"].post("/admin/clock/skew?ms=0")


def hello_frame(sender, to):
    """A replication `Hello` as a peer sends it (postcard: version 02, variant 0, two strings, a
    32-byte nonce), length-prefixed."""
    def string(s):
        b = s.encode()
        assert len(b) < 128
        return bytes([len(b)]) + b
    body = b"\x02\x00" + string(sender) + string(to) + os.urandom(32)
    return len(body).to_bytes(4, "big") + body


def closed_by_peer(s, timeout=5.0):
    """Whether the server closes `s` within `timeout` (whatever it sent before closing)."""
    s.settimeout(timeout)
    try:
        while s.recv(4096):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def test_anonymous_connections_to_the_replication_port_are_bounded(cluster):
    c = cluster(["us", "eu"])
    c.create_table("anon")
    port = c.repl_ports["us"]
    # Before the handshake only small frames: a length prefix of 8 MiB closes the connection
    # at once instead of making the region buffer it.
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall((8 << 20).to_bytes(4, "big") + b"x" * 4096)
        assert closed_by_peer(s)
    # Names claimed by unknown callers never become metric labels.
    for i in range(20):
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(hello_frame(f"made-up-{i}", "us"))
            assert closed_by_peer(s)
    text = c["us"].get("/metrics")
    assert "made-up-" not in text
    assert (metric(c["us"], "meridian_replication_refused_total", {"peer": "?"}) or 0) >= 20
    # Idle anonymous connections beyond the cap (4 per peer + 16 = 20 here) are closed at once;
    # the authenticated link keeps replicating meanwhile.
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(30)]
    try:
        closed = sum(closed_by_peer(s, timeout=0.5) for s in idle)
        assert closed >= 10, closed
        put(c.client("eu"), "anon", "while-crowded", "x")
        c.wait_converged("anon", expect_count=1, timeout=20)
    finally:
        for s in idle:
            s.close()


def link_certs(tmp_path, ca, names):
    """PEM files of a link certificate per region name, issued by the trustme CA `ca`."""
    out = {}
    ca_file = tmp_path / "tls" / "ca.pem"
    ca_file.parent.mkdir(parents=True, exist_ok=True)
    ca.cert_pem.write_to_path(str(ca_file))
    for name in names:
        cert = ca.issue_cert(name, "127.0.0.1")
        chain, key = tmp_path / "tls" / f"{name}.pem", tmp_path / "tls" / f"{name}-key.pem"
        chain.write_bytes(b"".join(b.bytes() for b in cert.cert_chain_pems))
        cert.private_key_pem.write_to_path(str(key))
        os.chmod(key, 0o600)
        out[name] = ["--tls-cert", str(chain), "--tls-key", str(key), "--tls-ca", str(ca_file)]
    return out


class FlippingProxy:
    """Forwards TCP to `target`; once, after `after` bytes of one connection's client-to-server
    stream, it flips one bit of the next byte (an on-path attacker rewriting a frame)."""

    def __init__(self, target, after=8192):
        self.target, self.after = target, after
        self.flipped = False
        self.connections = 0
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.stopped = False
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while not self.stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            server = socket.create_connection(self.target)
            threading.Thread(target=self.pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self.pump, args=(server, client, False), daemon=True).start()

    def pump(self, src, dst, tamper):
        seen = 0
        try:
            while data := src.recv(65536):
                if tamper and not self.flipped and seen + len(data) > self.after:
                    i = max(0, self.after - seen)
                    data = data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1:]
                    self.flipped = True
                seen += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self):
        self.stopped = True
        self.listener.close()


def test_tls_links_refuse_a_tampered_frame_and_a_borrowed_certificate(tmp_path):
    import trustme
    certs = link_certs(tmp_path, trustme.CA(), ["us", "eu"])
    ports = {n: free_port() for n in ["us", "eu", "ap"]}

    # us must not wait a minute for ap (whose every link is refused) before its first snapshot
    quick = tmp_path / "quick-bootstrap.toml"
    quick.write_text("[replication]\nbootstrap_wait_secs = 1\n")

    def region(name, peers, tls):
        args = ["--config", str(quick), "--replication-listen", f"127.0.0.1:{ports[name]}",
                "--replication-secret", SECRET, *tls]
        for peer, port in peers.items():
            args += ["--peer", f"{peer}=127.0.0.1:{port}"]
        return Region(tmp_path / name / "data", name=name, extra_args=args).start()

    us = region("us", {"eu": ports["eu"], "ap": ports["ap"]}, certs["us"])
    proxy = FlippingProxy(("127.0.0.1", ports["us"]))
    # eu reaches us through the proxy; ap holds eu's certificate and key, not one of its own
    eu = region("eu", {"us": proxy.port}, certs["eu"])
    ap = region("ap", {"us": ports["us"]}, certs["eu"])
    try:
        create_table(us.client(), "tls")
        create_table(ap.client(), "tls")
        wait_until(lambda: "tls" in eu.client().list_tables()["TableNames"], timeout=20,
                   what="the table reaches eu over TLS")
        # values LZ4 cannot shrink much, so the link carries well over the proxy's 8 KiB
        rng = seeded("tls tamper")
        values = {f"k{i}": "%0150x" % rng.getrandbits(600) for i in range(300)}
        for k, v in values.items():
            put(eu.client(), "tls", k, v)
        put(ap.client(), "tls", "from-ap", "x")

        def applied_in_us():
            items = {i["pk"]["S"]: i["v"]["S"] for i in
                     us.client().scan(TableName="tls", ConsistentRead=True)["Items"]}
            return items if len(items) >= len(values) else None

        items = wait_until(applied_in_us, timeout=60, interval=0.25, what="eu's writes in us")
        assert proxy.flipped, "the proxy never changed a byte"
        assert proxy.connections >= 2, "the tampered connection was not dropped and reopened"
        assert items == values, "every value arrived exactly as written, none altered"
        assert "from-ap" not in items
        wait_until(lambda: "does not name the region it claims" in us.log(), timeout=20,
                   what="us refuses ap's borrowed certificate")
        assert (metric(us, "meridian_replication_refused_total", {"peer": "ap"}) or 0) >= 1
    finally:
        proxy.stop()
        for r in (ap, eu, us):
            r.terminate()


def damage_journal(data_dir, marker):
    """Flips one byte of `marker` (an item key written halfway through the workload) in the
    region's newest journal; returns the journal. The byte is inside an item, which the
    batch's checksum covers (a batch's sequence number is not: fjall's format leaves it
    unchecked, so a flip there goes unnoticed by fjall and by Meridian's scan alike)."""
    journals = sorted(data_dir.glob("*.jnl"), key=lambda p: int(p.stem))
    path = journals[-1]
    data = bytearray(path.read_bytes())
    at = data.find(marker)
    assert at > 0, f"{marker!r} not in {path}"
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def verify(data_dir):
    return subprocess.run([str(BIN), "region", "verify", "--data-dir", str(data_dir)],
                          capture_output=True, text=True, timeout=60)


def test_a_damaged_journal_refuses_to_start_and_recover_brings_the_lost_writes_back(cluster):
    c = cluster(["us", "eu", "ap"], anti_entropy=True)
    c.create_table("jrnl")
    cu = c.client("us")
    for i in range(300):
        put(cu, "jrnl", f"k{i}", str(i))
    c.wait_converged("jrnl", expect_count=300)
    head = c.status("us")["head"]
    # ten more writes no peer receives: acknowledged here only, so the damage takes them
    for peer in ("eu", "ap"):
        c["us"].post(f"/admin/links/{peer}/pause")
    for i in range(10):
        put(cu, "jrnl", f"unshipped{i}", "x")
    c["us"].kill()  # the journal keeps every write: no memtable was flushed
    path = damage_journal(c["us"].data_dir, b"k150")

    checked = verify(c["us"].data_dir)
    assert checked.returncode == 1 and "DAMAGED" in checked.stdout, checked
    refused = Region(c.tmp / "us" / "data", name="us", port=c.http_ports["us"],
                     extra_args=c.args("us"))
    with pytest.raises(AssertionError):
        refused.start()
    said = refused.log_path.read_text()
    assert f"journal {path} is damaged at byte" in said and "--recover" in said, said[-3000:]

    r = Region(c.tmp / "us" / "data", name="us", port=c.http_ports["us"],
               extra_args=c.args("us") + ["--recover"])
    c.regions["us"] = r.start(timeout=30)  # healthy once every peer said what it holds
    rec = c.status("us")["recovery"]
    assert rec["state"] == "finished", rec
    assert rec["skipped"][1] == head and rec["recovered_from_peers"] > 0, rec
    assert rec["gone"] == 10, rec
    # anti-entropy brings back every item the damage took
    wait_until(lambda: len(c.scan("us", "jrnl")) == 300, timeout=60, interval=0.5,
               what="us holds all 300 items again")
    # new writes of us get sequences after what the peers hold: none is dropped as a repeat
    for i in range(20):
        put(cu, "jrnl", f"new{i}", "after")
    c.wait_converged("jrnl", expect_count=320)
    assert c.status("eu")["watermarks"]["us"] == head + 20
    c["us"].terminate()
    checked = verify(c["us"].data_dir)
    assert checked.returncode == 0 and "journal  ok" in checked.stdout, checked


def test_a_region_restored_from_an_old_backup_continues_after_what_its_peers_hold(cluster):
    """A region whose log is behind what its peers hold of it (here: its data directory restored
    from a backup) would number its next writes with sequences the peers already hold, and they
    would drop them as repeats. It recovers instead: no local write until every peer said how
    far it holds the region's changes, then sequences after theirs and anti-entropy."""
    c = cluster(["us", "eu", "ap"], anti_entropy=True)
    c.create_table("restore")
    cu = c.client("us")
    for i in range(50):
        put(cu, "restore", f"old{i}", "x")
    c.wait_converged("restore", expect_count=50)
    c["us"].terminate()
    backup = c.tmp / "us-backup"
    shutil.copytree(c["us"].data_dir, backup)
    c.start("us")
    cu = c.client("us")
    for i in range(50):
        put(cu, "restore", f"later{i}", "x")
    c.wait_converged("restore", expect_count=100)
    head = c.status("us")["head"]
    c["us"].terminate()
    shutil.rmtree(c["us"].data_dir)
    shutil.copytree(backup, c["us"].data_dir)
    c.start("us")

    def finished():
        rec = c.status("us")["recovery"]
        return rec if rec and rec["state"] == "finished" else None

    rec = wait_until(finished, timeout=30, interval=0.2, what="us recovered")
    assert rec["skipped"][1] == head, rec
    wait_until(lambda: len(c.scan("us", "restore")) == 100, timeout=60, interval=0.5,
               what="us holds the items written after the backup again")
    for i in range(20):
        put(cu, "restore", f"new{i}", "x")
    c.wait_converged("restore", expect_count=120)
    assert c.status("eu")["watermarks"]["us"] == head + 20


def test_a_world_readable_link_key_is_refused(tmp_path):
    import trustme
    tls = link_certs(tmp_path, trustme.CA(), ["us"])["us"]
    key = Path(tls[tls.index("--tls-key") + 1])
    os.chmod(key, 0o644)
    r = Region(tmp_path / "us" / "data", name="us",
               extra_args=["--replication-listen", f"127.0.0.1:{free_port()}",
                           "--replication-secret", SECRET, *tls])
    with pytest.raises(AssertionError):
        r.start()
    said = r.log_path.read_text()
    assert "readable by every user" in said and f"chmod 600 {key}" in said, said[-2000:]


def test_background_workers_are_listed_with_their_state_and_counted(cluster):
    c = cluster(["us", "eu"])
    r = c["us"]

    def workers():
        return {w["name"]: w for w in json.loads(r.get("/admin/workers"))["workers"]}

    # the change-log collector steps on its interval; the others wait for work
    wait_until(lambda: workers()["changelog-gc"]["steps"] >= 2, what="changelog-gc steps")
    w = workers()
    assert set(w) == {"table-purge", "index-builder", "ttl-expirer", "changelog-gc",
                      "log-recovery", "recovery-repair", "catch-up"}, w
    for name, one in w.items():
        assert one["state"] in ("waiting", "working"), (name, one)
        assert one["failures"] == 0 and one["last_error"] is None, (name, one)
    assert w["changelog-gc"]["last_step_unix_ms"] > time.time() * 1000 - 60_000
    # dropping a table is work for the purge worker
    ddb = r.client()
    create_table(ddb, "dropped")
    ddb.put_item(TableName="dropped", Item={"pk": {"S": "a"}})
    before = workers()["table-purge"]["steps"]
    ddb.delete_table(TableName="dropped")
    wait_until(lambda: workers()["table-purge"]["steps"] > before, what="table purge step")
    text = r.get("/metrics")
    m = re.search(r'^meridian_worker_steps_total\{worker="changelog-gc"\} (\d+)$', text, re.M)
    assert m and int(m.group(1)) >= 2, text
    assert re.search(r'^meridian_worker_failures_total\{worker="changelog-gc"\} 0$', text, re.M), text


def gauge(region, name):
    m = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", region.get("/metrics"), re.M)
    return float(m.group(1)) if m else None


def write_batch(c, table, prefix, n):
    for start in range(0, n, 25):
        c.batch_write_item(RequestItems={table: [
            {"PutRequest": {"Item": {"pk": {"S": f"{prefix}{i}"}, "v": {"S": "x"}}}}
            for i in range(start, min(start + 25, n))]})


def test_a_region_that_comes_back_reports_catching_up_until_it_holds_what_its_peer_held(cluster):
    c = cluster(["us", "eu"])
    c.create_table("back")
    write_batch(c.client("us"), "back", "old", 50)
    c.wait_converged("back", expect_count=50)
    # the gauge follows the gate within the catch-up worker's period (250 ms)
    wait_until(lambda: gauge(c["eu"], "meridian_replication_catching_up") == 0, timeout=5,
               what="eu's gauge says serving")
    # eu is down while us takes more writes; then us holds its link to eu back
    c["eu"].kill()
    write_batch(c.client("us"), "back", "new", 500)
    c["us"].post("/admin/links/eu/pause")
    c["eu"].launch()
    body = wait_until(lambda: (lambda h: h[1] if h[1].get("status") == "catching_up" else None)(
        c["eu"].health()), timeout=20, what="eu reports catching_up")
    assert body["waiting_for"] == ["us"], body
    assert c["eu"].health()[0] == 503
    wait_until(lambda: gauge(c["eu"], "meridian_replication_catching_up") == 1, timeout=5,
               what="eu's gauge says catching up")
    # it still answers requests sent to it directly, from what it has
    assert len(c.scan("eu", "back")) == 50
    # once its link delivers, it serves — and then holds everything us had
    c["us"].post("/admin/links/eu/resume")
    wait_until(lambda: c["eu"].health()[0] == 200, timeout=30, what="eu serving")
    assert len(c.scan("eu", "back")) == 550
    wait_until(lambda: gauge(c["eu"], "meridian_replication_catching_up") == 0, timeout=5,
               what="gauge back to 0")


def test_without_the_catch_up_gate_a_region_serves_as_soon_as_it_listens(tmp_path):
    c = Cluster(tmp_path, ["us", "eu"], extra_args=["--no-catch-up-gate"]).start()
    try:
        c.create_table("ungated")
        c["eu"].kill()
        write_batch(c.client("us"), "ungated", "k", 100)
        c["us"].post("/admin/links/eu/pause")
        c["eu"].launch()
        assert c["eu"].health()[0] == 200
        assert len(c.scan("eu", "ungated")) == 0
    finally:
        c.stop()
