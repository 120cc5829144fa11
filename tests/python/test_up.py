"""`meridian up` end to end: the real binary runs a control plane, three regions on their own
loopback addresses, the DNS server and the gateway as separate processes. The control plane is
then killed and the data plane keeps working (static stability); a region restarted meanwhile
serves from its cached config; the control plane comes back and a spec change reaches every
component; Ctrl-C stops everything."""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import dns.edns
import dns.message
import dns.query
import dns.rdatatype
import pytest
from botocore.config import Config

from meridian_testlib import BIN, wait_until

# Loopback networks unlikely to be used by other tests running at the same time.
NETS = {"us-east": 61, "eu-west": 62, "ap-southeast": 63}
COORDS = {"us-east": (38.9, -77.4, "NA"), "eu-west": (53.3, -6.3, "EU"),
          "ap-southeast": (1.35, 103.8, "AS")}


def free_port(hosts):
    """A TCP port free on every host in `hosts` (and UDP on the first)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind((hosts[0], 0))
            port = s.getsockname()[1]
        try:
            for h in hosts:
                with socket.socket() as s:
                    s.bind((h, port))
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind((hosts[0], port))
            return port
        except OSError:
            continue
    raise AssertionError("no free port")


def spec_text(ports, extra_tables=()):
    lines = ['name = "up-test"']
    for i, (name, net) in enumerate(NETS.items()):
        lat, lon, continent = COORDS[name]
        lines += [
            "[[regions]]", f'name = "{name}"', f"id = {i + 1}",
            f'address = "127.0.{net}.1"', f"port = {ports['region']}",
            f"replication_port = {ports['replication']}",
            f"lat = {lat}", f"lon = {lon}", f'continent = "{continent}"', "",
        ]
    lines += ["[links]", "default_one_way_ms = 5", "[[links.pairs]]",
              'between = ["us-east", "eu-west"]', "one_way_ms = 3", ""]
    for t in ("up_users", *extra_tables):
        lines += ["[[tables]]", f'name = "{t}"', 'partition_key = { name = "pk", type = "S" }', ""]
    lines += [
        "[control]", f'listen = "127.0.0.1:{ports["control"]}"', "poll_interval_ms = 300", "",
        "[dns]", f'listen = "127.0.0.1:{ports["dns"]}"',
        f'admin_listen = "127.0.0.1:{ports["dns_admin"]}"', "ttl_secs = 1",
        'default_region = "us-east"',
    ]
    for name, net in NETS.items():
        country = {"us-east": "US", "eu-west": "IE", "ap-southeast": "SG"}[name]
        lines += ["[[dns.networks]]", f'network = "127.0.{net}.0/24"', f'country = "{country}"']
    lines += [
        "", "[gateway]", f'listen = "127.0.0.1:{ports["gateway"]}"',
        f'admin_listen = "127.0.0.1:{ports["gateway_admin"]}"', 'region = "us-east"',
        'write_failover = "allow"', "",
        "[health]", "interval_ms = 100", "timeout_ms = 100", "fall = 2", "rise = 1", "",
        "[secrets]", 'replication = "test-secret-123"', "",
    ]
    return "\n".join(lines) + "\n"


def get_json(url, token=None, timeout=2.0):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as r:
        return json.loads(r.read())


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def client(endpoint):
    return boto3.client(
        "dynamodb", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="any", aws_secret_access_key="any",
        config=Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=3,
                      read_timeout=10),
    )


def meridian(*args, timeout=120):
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=timeout)


def dns_answer(addr, name, source=None):
    host, port = addr.rsplit(":", 1)
    q = dns.message.make_query(name, dns.rdatatype.A)
    r = dns.query.udp(q, host, port=int(port), timeout=2, source=source)
    return sorted(rr.address for rrset in r.answer for rr in rrset)


class Cluster:
    def __init__(self, tmp):
        self.tmp = Path(tmp)
        self.data = self.tmp / "data"
        hosts = [f"127.0.{n}.1" for n in NETS.values()]
        self.ports = {"region": free_port(hosts), "replication": free_port(hosts)}
        for k in ("control", "dns", "dns_admin", "gateway", "gateway_admin"):
            self.ports[k] = free_port(["127.0.0.1"])
        self.spec = self.tmp / "cluster.toml"
        self.spec.write_text(spec_text(self.ports))
        self.cluster_json = self.data / "cluster.json"
        self.log = open(self.tmp / "up.log", "w")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [str(BIN), "up", "--config", str(self.spec), "--data-dir", str(self.data)],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_until(self.ready, timeout=120, interval=0.2, what="meridian up: every component")
        return self

    def file(self):
        return json.loads(self.cluster_json.read_text())

    def token(self):
        return Path(self.file()["admin_token_file"]).read_text().strip()

    def get_json(self, url):
        """An admin GET, with the cluster's admin token (every admin endpoint requires it)."""
        return get_json(url, token=self.token())

    def ready(self):
        assert self.proc.poll() is None, f"meridian up exited: {self.logs()}"
        f = self.file()
        return (f["control"]["pid"] and f["dns"]["pid"] and f["gateway"]["pid"]
                and all(r["pid"] for r in f["regions"]) and f["gateway"]["status"] == "running"
                and self.get_json(f["dns"]["admin"] + "/admin/config")["version"])

    def logs(self):
        out = (self.tmp / "up.log").read_text()[-3000:]
        for p in sorted((self.data / "logs").glob("*.log")):
            out += f"\n--- {p.name}\n" + p.read_text()[-1500:]
        return out

    def pids(self):
        f = self.file()
        return [f["control"]["pid"], f["dns"]["pid"], f["gateway"]["pid"],
                *[r["pid"] for r in f["regions"]]]

    def stop(self):
        pids = [p for p in self.pids() if p]
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        finally:
            for p in pids:  # never leave strays behind, even on failure
                if alive(p):
                    os.kill(p, signal.SIGKILL)
            if self.proc.poll() is None:
                self.proc.kill()
        return pids


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("up")).start()
    yield c
    if c.proc.poll() is None:
        c.stop()


def test_malformed_spec_is_refused_before_anything_starts(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[regions]]\nname = "x1"\naddress = "127.0.1.1"\nlat = 1.0\nlon = 2.0\n'
                   'continent = "NA"\nflavour = "vanilla"\n')
    r = meridian("up", "--config", str(bad), "--data-dir", str(tmp_path / "d"), timeout=30)
    assert r.returncode != 0
    assert "line 7, column 1" in r.stderr and "unknown field `flavour`" in r.stderr, r.stderr
    assert not (tmp_path / "d" / "cluster.json").exists()


def test_up_runs_every_component_and_survives_the_control_plane(cluster):
    f = cluster.file()
    names = [r["name"] for r in f["regions"]]
    assert names == list(NETS)
    for r in f["regions"]:
        assert r["endpoint"] == f"http://127.0.{NETS[r['name']]}.1:{cluster.ports['region']}"
    assert f["gateway"]["endpoint"] == f"http://127.0.0.1:{cluster.ports['gateway']}"
    assert f["dns"]["addr"] == f"127.0.0.1:{cluster.ports['dns']}"
    assert f["dns"]["name"] == "dynamodb.meridian.test"
    assert f["control"]["endpoint"] == f"http://127.0.0.1:{cluster.ports['control']}"
    replication = f["replication"]
    # Replication problems are collected and asserted at the end, so that one broken link does
    # not hide what the rest of the scenario shows.
    problems = []

    def replicated(key, what):
        if not replication:
            return
        try:
            wait_until(lambda: everywhere(key), timeout=20, interval=0.1, what=what)
        except AssertionError as e:
            problems.append(str(e))

    # Every component runs spec version 1, fetched from the control plane.
    admins = [r["endpoint"] for r in f["regions"]] + [f["dns"]["admin"], f["gateway"]["admin"]]
    for a in admins:
        cfg = wait_until(lambda a=a: cluster.get_json(a + "/admin/config"), what=f"{a} config")
        assert (cfg["version"], cfg["source"]) == (1, "control"), (a, cfg)

    # The spec's table exists in every region; a write through the gateway reaches them all.
    for r in f["regions"]:
        wait_until(lambda r=r: client(r["endpoint"]).describe_table(TableName="up_users"),
                   timeout=15, what=f"table in {r['name']}")
    gw = client(f["gateway"]["endpoint"])
    gw.put_item(TableName="up_users", Item={"pk": {"S": "alice"}, "n": {"N": "1"}})

    def everywhere(key):
        found = [r["name"] for r in cluster.file()["regions"]
                 if "Item" in client(r["endpoint"]).get_item(
                     TableName="up_users", Key={"pk": {"S": key}}, ConsistentRead=True)]
        return found if len(found) == len(NETS) else None

    assert gw.get_item(TableName="up_users", Key={"pk": {"S": "alice"}})["Item"]
    replicated("alice", "alice replicated to every region")

    # DNS: a client of unknown location gets the default region; a "European" source address
    # (127.0.62.x is configured as Ireland) gets eu-west.
    assert dns_answer(f["dns"]["addr"], f["dns"]["name"]) == ["127.0.61.1"]
    assert dns_answer(f["dns"]["addr"], f["dns"]["name"], source="127.0.62.1") == ["127.0.62.1"]

    # Kill the control plane: reads, writes, replication and DNS carry on.
    control_pid = f["control"]["pid"]
    os.kill(control_pid, signal.SIGKILL)
    wait_until(lambda: not alive(control_pid), what="control plane dead")
    wait_until(lambda: cluster.file()["control"]["pid"] is None, what="cluster.json updated")
    gw.put_item(TableName="up_users", Item={"pk": {"S": "bob"}, "n": {"N": "2"}})
    assert gw.get_item(TableName="up_users", Key={"pk": {"S": "alice"}})["Item"]["n"] == {"N": "1"}
    replicated("bob", "bob replicated with the control plane down")
    assert dns_answer(f["dns"]["addr"], f["dns"]["name"], source="127.0.63.1") == ["127.0.63.1"]

    # Restart a region while the control plane is down: it serves from its cached config.
    old_pid = next(r["pid"] for r in cluster.file()["regions"] if r["name"] == "eu-west")
    r = meridian("fault", "restart", "eu-west", "--cluster", str(cluster.cluster_json))
    assert r.returncode == 0, r.stdout + r.stderr
    eu = next(r for r in cluster.file()["regions"] if r["name"] == "eu-west")
    assert eu["pid"] and eu["pid"] != old_pid and not alive(old_pid)
    cfg = cluster.get_json(eu["endpoint"] + "/admin/config")
    assert (cfg["version"], cfg["source"]) == (1, "cache"), cfg
    eu_client = client(eu["endpoint"])
    assert eu_client.describe_table(TableName="up_users")["Table"]["TableStatus"] == "ACTIVE"
    if replication and not problems:
        assert eu_client.get_item(TableName="up_users", Key={"pk": {"S": "alice"}})["Item"]
    eu_client.put_item(TableName="up_users", Item={"pk": {"S": "carol"}})
    replicated("carol", "carol replicated from the restarted region")

    # The control plane comes back; a spec change reaches every component.
    r = meridian("fault", "restart", "control", "--cluster", str(cluster.cluster_json))
    assert r.returncode == 0, r.stdout + r.stderr
    changed = cluster.tmp / "cluster-v2.toml"
    changed.write_text(spec_text(cluster.ports, extra_tables=("up_orders",)))
    r = meridian("apply", "-f", str(changed), "--cluster", str(cluster.cluster_json))
    assert r.returncode == 0 and "spec version 2" in r.stdout, r.stdout + r.stderr
    control = cluster.file()["control"]["endpoint"]

    def all_on_v2():
        comps = cluster.get_json(control + "/v1/status")["components"]
        want = {f"region/{n}" for n in NETS} | {"dns", "gateway"}
        return want <= set(comps) and all(comps[c]["version"] == 2 for c in want)

    wait_until(all_on_v2, timeout=20, interval=0.2, what="every component reports version 2")
    for a in admins:
        cfg = cluster.get_json(a + "/admin/config")
        assert (cfg["version"], cfg["source"]) == (2, "control"), (a, cfg)
    for reg in cluster.file()["regions"]:
        assert client(reg["endpoint"]).describe_table(TableName="up_orders")["Table"]

    # A refused spec changes nothing.
    bad = cluster.tmp / "bad.toml"
    bad.write_text(spec_text(cluster.ports).replace('name = "eu-west"', 'name = "us-east"'))
    r = meridian("apply", "-f", str(bad), "--cluster", str(cluster.cluster_json))
    assert r.returncode != 0 and "declared twice" in r.stderr and "line " in r.stderr
    assert cluster.get_json(control + "/v1/status")["latest_version"] == 2
    # So is a field a running cluster cannot apply (a region's port: DNS and the gateway would
    # route to a port nobody listens on), named with what it takes.
    port = cluster.ports["region"]
    moved = cluster.tmp / "moved.toml"
    moved.write_text(spec_text(cluster.ports, extra_tables=("up_orders",)).replace(
        f"port = {port}\n", f"port = {port + 1}\n", 1))
    r = meridian("apply", "-f", str(moved), "--cluster", str(cluster.cluster_json))
    assert r.returncode != 0, r.stdout
    assert "regions[0].port" in r.stderr and "meridian up --config" in r.stderr, r.stderr
    assert cluster.get_json(control + "/v1/status")["latest_version"] == 2

    # Operator views.
    r = meridian("status", "--json", "--cluster", str(cluster.cluster_json))
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["control"]["reachable"] and [x["health"] for x in st["regions"]] == ["serving"] * 3
    r = meridian("status", "--cluster", str(cluster.cluster_json))
    assert r.returncode == 0 and "eu-west" in r.stdout, r.stderr
    assert not problems, problems


def test_ids_are_unique_and_carry_the_region(cluster):
    f = cluster.file()
    seen = set()
    for i, r in enumerate(f["regions"]):
        body = cluster.get_json(r["endpoint"] + "/ids?count=500")
        ids = body["ids"]
        assert ids == sorted(ids) and len(set(ids)) == 500
        assert all((x >> 12) & 1023 == i + 1 for x in ids)
        seen.update(ids)
    assert len(seen) == 1500
    r = meridian("ids", "--region", "eu-west", "--count", "3", "--cluster",
                 str(cluster.cluster_json))
    assert r.returncode == 0, r.stderr
    ids = [int(x) for x in r.stdout.split()]
    assert len(ids) == 3 and ids == sorted(ids) and all((x >> 12) & 1023 == 2 for x in ids)


def test_drain_moves_dns_away(cluster):
    f = cluster.file()
    r = meridian("region", "drain", "eu-west", "--cluster", str(cluster.cluster_json))
    assert r.returncode == 0, r.stdout + r.stderr
    wait_until(lambda: dns_answer(f["dns"]["addr"], f["dns"]["name"], source="127.0.62.1")
               != ["127.0.62.1"], timeout=5, what="drained region leaves the DNS answer")
    r = meridian("region", "undrain", "eu-west", "--cluster", str(cluster.cluster_json))
    assert r.returncode == 0, r.stdout + r.stderr
    wait_until(lambda: dns_answer(f["dns"]["addr"], f["dns"]["name"], source="127.0.62.1")
               == ["127.0.62.1"], timeout=5, what="undrained region is back")


def test_a_live_config_change_keeps_drains_health_and_counters(cluster):
    """A spec version that changes the DNS TTL and the health interval is applied by the DNS
    server and the gateway while they run: same processes, a drain set by an operator stays,
    counters keep counting, and the new TTL is answered."""
    f = cluster.file()
    token = cluster.token()
    dns_admin, gw_admin = f["dns"]["admin"], f["gateway"]["admin"]

    def post(url):
        req = urllib.request.Request(url, method="POST", data=b"",
                                     headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status

    def metric(admin, name):
        with urllib.request.urlopen(urllib.request.Request(
                admin + "/metrics", headers={"Authorization": f"Bearer {token}"}), timeout=5) as r:
            text = r.read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(name))

    def ttl():
        host, port = f["dns"]["addr"].rsplit(":", 1)
        q = dns.message.make_query(f["dns"]["name"], dns.rdatatype.A)
        return dns.query.udp(q, host, port=int(port), timeout=2).answer[0].ttl

    client(f["gateway"]["endpoint"]).list_tables()
    ttl()
    assert post(dns_admin + "/admin/regions/ap-southeast/drain") == 200
    assert post(gw_admin + "/admin/regions/ap-southeast/drain") == 200
    before = {"dns": metric(dns_admin, "meridian_dns_queries_total"),
              "gateway": metric(gw_admin, "meridian_gateway_attempts_total")}
    assert all(v > 0 for v in before.values()), before
    pids = (f["dns"]["pid"], f["gateway"]["pid"])
    control = f["control"]["endpoint"]
    version = cluster.get_json(control + "/v1/status")["latest_version"]
    text = spec_text(cluster.ports, extra_tables=("up_orders",))
    assert "ttl_secs = 1\n" in text and "interval_ms = 100\n" in text
    live = cluster.tmp / "live.toml"
    live.write_text(text.replace("ttl_secs = 1\n", "ttl_secs = 7\n")
                    .replace("interval_ms = 100\n", "interval_ms = 150\n"))
    r = meridian("apply", "-f", str(live), "--cluster", str(cluster.cluster_json))
    assert r.returncode == 0 and f"spec version {version + 1}" in r.stdout, r.stdout + r.stderr

    def on_new():
        comps = cluster.get_json(control + "/v1/status")["components"]
        return all(comps[c]["version"] == version + 1 for c in ("dns", "gateway"))

    try:
        wait_until(on_new, timeout=20, interval=0.2, what="DNS and gateway on the new version")
        wait_until(lambda: ttl() == 7, timeout=5, what="the new TTL answered")
        f = cluster.file()
        assert (f["dns"]["pid"], f["gateway"]["pid"]) == pids
        for admin in (dns_admin, gw_admin):
            st = cluster.get_json(admin + "/admin/status")
            assert st["health"]["endpoints"]["ap-southeast"]["admin"] == "drain", (admin, st)
            assert st["checks"]["interval_ms"] == 150, st
        after = {"dns": metric(dns_admin, "meridian_dns_queries_total"),
                 "gateway": metric(gw_admin, "meridian_gateway_attempts_total")}
        assert all(after[k] >= before[k] for k in before), (before, after)
        logs = (cluster.data / "logs" / "dns.log").read_text()
        assert "new config applied while serving" in logs
    finally:
        post(dns_admin + "/admin/regions/ap-southeast/undrain")
        post(gw_admin + "/admin/regions/ap-southeast/undrain")


def test_an_index_declared_in_the_spec_is_added_to_every_region(cluster):
    """A spec may declare global secondary indexes; one added to an existing table by
    `meridian apply` is built in every region, and changing it afterwards is refused."""
    f = cluster.file()
    control = f["control"]["endpoint"]
    version = cluster.get_json(control + "/v1/status")["latest_version"]
    table = 'name = "up_orders"\npartition_key = { name = "pk", type = "S" }\n'
    gsi = ('[[tables.global_secondary_indexes]]\nname = "by_owner"\n'
           'partition_key = { name = "owner", type = "S" }\nprojection = "KEYS_ONLY"\n')
    text = spec_text(cluster.ports, extra_tables=("up_orders",))
    live = cluster.tmp / "live.toml"
    if live.exists():  # keep what the previous test applied live
        text = live.read_text()
    assert table in text
    spec = cluster.tmp / "with-index.toml"
    spec.write_text(text.replace(table, table + gsi, 1))
    r = meridian("apply", "-f", str(spec), "--cluster", str(cluster.cluster_json))
    assert r.returncode == 0 and f"spec version {version + 1}" in r.stdout, r.stdout + r.stderr

    def built(endpoint):
        t = client(endpoint).describe_table(TableName="up_orders")["Table"]
        return [(i["IndexName"], i["IndexStatus"], i["Projection"]["ProjectionType"])
                for i in t.get("GlobalSecondaryIndexes", [])] == [("by_owner", "ACTIVE", "KEYS_ONLY")]

    for reg in f["regions"]:
        wait_until(lambda: built(reg["endpoint"]), timeout=30, interval=0.2,
                   what=f"by_owner built in {reg['name']}")
    regions = [client(r["endpoint"]) for r in f["regions"]]
    regions[0].put_item(TableName="up_orders", Item={"pk": {"S": "o1"}, "owner": {"S": "ann"}})
    wait_until(lambda: regions[-1].query(
        TableName="up_orders", IndexName="by_owner", KeyConditionExpression="#o = :o",
        ExpressionAttributeNames={"#o": "owner"},
        ExpressionAttributeValues={":o": {"S": "ann"}})["Count"] == 1,
        timeout=15, what="the index answers in another region")
    changed = cluster.tmp / "index-changed.toml"
    changed.write_text(spec.read_text().replace('projection = "KEYS_ONLY"', 'projection = "ALL"'))
    r = meridian("apply", "-f", str(changed), "--cluster", str(cluster.cluster_json))
    assert r.returncode != 0 and "index by_owner" in r.stderr, r.stdout + r.stderr


def test_partition_heal_delay_skew(cluster):
    f = cluster.file()
    if not f["replication"]:
        pytest.skip("this build has no replication")
    cj = str(cluster.cluster_json)
    ep = {r["name"]: r["endpoint"] for r in f["regions"]}
    r = meridian("fault", "partition", "eu-west", "--cluster", cj)
    assert r.returncode == 0, r.stdout + r.stderr
    client(ep["us-east"]).put_item(TableName="up_users", Item={"pk": {"S": "during-partition"}})

    def seen(region):
        return "Item" in client(ep[region]).get_item(
            TableName="up_users", Key={"pk": {"S": "during-partition"}}, ConsistentRead=True)

    wait_until(lambda: seen("ap-southeast"), timeout=20, what="the other side still replicates")
    time.sleep(1.0)
    assert not seen("eu-west"), "a partitioned region received a change"
    r = meridian("fault", "heal", "--cluster", cj)
    assert r.returncode == 0, r.stdout + r.stderr
    wait_until(lambda: seen("eu-west"), timeout=20, what="healed region catches up")
    r = meridian("fault", "delay", "us-east", "eu-west", "20", "--cluster", cj)
    assert r.returncode == 0, r.stdout + r.stderr
    rep = cluster.get_json(ep["us-east"] + "/admin/replication")
    assert any(link["peer"] == "eu-west" and link["delay_ms"] == 20 for link in rep["links"])
    r = meridian("fault", "skew", "ap-southeast", "-1500", "--cluster", cj)
    assert r.returncode == 0, r.stdout + r.stderr
    # 1.5 s behind: the others' versions are beyond ap-southeast's maximum clock offset, so it
    # refuses them, and `status` warns about the skew and names the refusal
    client(ep["us-east"]).put_item(TableName="up_users", Item={"pk": {"S": "while-skewed"}})

    def warned():
        out = meridian("status", "--cluster", cj).stdout
        return out if ("ap-southeast's clock is" in out and "behind" in out
                       and "ap-southeast refuses us-east's batches: clock" in out) else None

    wait_until(warned, timeout=20, interval=0.5, what="status warns about the skewed clock")
    r = meridian("fault", "skew", "ap-southeast", "0", "--cluster", cj)
    assert r.returncode == 0, r.stdout + r.stderr


def status_of(method, url, token=None, body=b""):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    req = urllib.request.Request(url, method=method, headers=headers,
                                 data=body if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_every_admin_endpoint_refuses_callers_without_the_token(cluster):
    # `up` made one admin token (a 0600 file named in cluster.json); every admin endpoint of
    # every component refuses a request without it or with another, and nothing changes.
    f = cluster.file()
    token_file = Path(f["admin_token_file"])
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = cluster.token()
    region = f["regions"][0]["endpoint"]
    other = f["regions"][1]["name"]
    item = {"entries": []}
    attempts = [
        ("GET", region + "/admin/changelog?from=1&limit=10"),
        ("GET", region + "/admin/ae/digest?table=up_users"),
        ("GET", region + "/admin/ae/bucket?table=up_users&bucket=0"),
        ("POST", region + "/admin/ae/apply?table=up_users"),
        ("POST", region + f"/admin/anti-entropy?peer={other}"),
        ("POST", region + "/admin/clock/skew?ms=3000"),
        ("POST", region + f"/admin/links/{other}/pause"),
        ("POST", region + "/admin/drain"),
        ("GET", region + "/admin/replication"),
        ("GET", region + "/admin/config"),
        ("GET", region + "/admin/workers"),
        ("GET", f["control"]["endpoint"] + "/v1/specs/latest"),
        ("POST", f["control"]["endpoint"] + "/v1/specs"),
        ("GET", f["control"]["endpoint"] + "/v1/status"),
        ("GET", f["dns"]["admin"] + "/admin/status"),
        ("POST", f["dns"]["admin"] + "/admin/regions/us-east/drain"),
        ("GET", f["gateway"]["admin"] + "/admin/status"),
        ("POST", f["gateway"]["admin"] + "/admin/regions/us-east/down"),
        ("GET", f["up"]["endpoint"] + "/v1/cluster"),
        ("POST", f["up"]["endpoint"] + "/v1/restart/eu-west"),
    ]
    for method, url in attempts:
        body = json.dumps(item).encode()
        assert status_of(method, url, body=body) == 401, (method, url)
        assert status_of(method, url, token="not-the-token", body=body) == 401, (method, url)
    # nothing was paused, drained, skewed or restarted by them
    links = cluster.get_json(region + "/admin/replication")["links"]
    assert all(not l["paused"] for l in links), links
    assert cluster.get_json(f["dns"]["admin"] + "/admin/status")
    pids = cluster.pids()
    # the data API, health and metrics stay open; the gateway forwards only the data API
    assert status_of("GET", region + "/health") == 200
    assert status_of("GET", region + "/metrics") == 200
    assert status_of("GET", f["control"]["endpoint"] + "/health") == 200
    for path in ["/admin/changelog?from=1", "/admin/clock/skew?ms=1", "/metrics"]:
        assert status_of("GET", f["gateway"]["endpoint"] + path, token=token) == 404
    # with the token they answer
    assert status_of("GET", region + "/admin/changelog?from=1&limit=1", token=token) == 200
    workers = {w["name"] for w in cluster.get_json(region + "/admin/workers")["workers"]}
    assert workers == {"table-purge", "index-builder", "ttl-expirer", "changelog-gc",
                       "log-recovery", "recovery-repair", "catch-up", "config-agent"}, workers
    assert status_of("GET", f["control"]["endpoint"] + "/v1/status", token=token) == 200
    assert status_of("GET", f["up"]["endpoint"] + "/v1/cluster", token=token) == 200
    assert cluster.pids() == pids
    # anti-entropy runs only against configured peers, named — never a URL from the request
    r = status_of("POST", region + "/admin/anti-entropy?peer=http://127.0.0.1:9", token=token)
    assert r == 400
    r = meridian("status", "--json", "--cluster", str(cluster.cluster_json))
    assert r.returncode == 0 and json.loads(r.stdout)["control"]["reachable"], r.stderr


def test_no_secret_is_on_a_command_line(cluster):
    # The spec's replication secret reaches the regions through their environment, not argv,
    # which every user of the machine can read (`ps`).
    assert "test-secret-123" in cluster.spec.read_text()
    for pid in [p for p in cluster.pids() if p]:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        assert "test-secret-123" not in cmdline and "--replication-secret" not in cmdline, cmdline
    # the links still authenticate (a link an earlier test's clock skew refused may be
    # reconnecting: wait for it)
    def all_connected():
        for r in cluster.file()["regions"]:
            links = cluster.get_json(r["endpoint"] + "/admin/replication")["links"]
            if not links or not all(l["connected"] for l in links):
                return False
        return True

    wait_until(all_connected, timeout=20, interval=0.2, what="every link connected")


def test_the_control_plane_keeps_secrets_to_itself(cluster):
    # Specs are served without [secrets]: to every admin client, to the DNS server and the
    # gateway (their persisted last-applied spec), to the regions' agents. The control plane
    # keeps them in a file only its owner may read.
    f = cluster.file()
    control = f["control"]["endpoint"]
    latest = cluster.get_json(control + "/v1/specs/latest")
    assert "test-secret-123" not in latest["spec"] and "[secrets]" not in latest["spec"]
    assert "[[regions]]" in latest["spec"]
    first = cluster.get_json(control + "/v1/specs/1")
    assert "test-secret-123" not in first["spec"]
    applied = list(cluster.data.rglob("applied.toml"))
    assert len(applied) >= 2, applied  # DNS, gateway (and the regions' agents)
    for a in applied:
        assert "test-secret-123" not in a.read_text(), a
    kept = cluster.data / "control" / "secrets" / f"{latest['version']:08}.toml"
    assert "test-secret-123" in kept.read_text()
    assert kept.stat().st_mode & 0o777 == 0o600


def test_ctrl_c_stops_everything(cluster):
    started = time.monotonic()
    pids = cluster.stop()
    assert time.monotonic() - started < 15
    assert cluster.proc.returncode == 0, cluster.logs()
    assert pids and not [p for p in pids if alive(p)]


EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("cluster*.toml"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_layout_starts_and_replicates(example, tmp_path):
    """`meridian up --config examples/…` starts every component of the layout, and a write in
    one region is read in every other."""
    import tomllib
    spec = tomllib.loads(example.read_text())
    table = spec["tables"][0]
    data = tmp_path / "data"
    log = open(tmp_path / "up.log", "w")
    proc = subprocess.Popen([str(BIN), "up", "--config", str(example), "--data-dir", str(data)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    cluster_json = data / "cluster.json"

    def up_log():
        text = (tmp_path / "up.log").read_text()[-3000:]
        for p in sorted((data / "logs").glob("*.log")):
            text += f"\n--- {p.name}\n" + p.read_text()[-1500:]
        return text

    def ready():
        assert proc.poll() is None, f"meridian up exited: {up_log()}"
        if not cluster_json.exists():
            return False
        f = json.loads(cluster_json.read_text())
        return (all(r["pid"] for r in f["regions"]) and f["gateway"]["status"] == "running"
                and f["dns"]["pid"])

    try:
        wait_until(ready, timeout=120, interval=0.2, what=f"meridian up {example.name}")
        f = json.loads(cluster_json.read_text())
        regions = [r["endpoint"] for r in f["regions"]]
        assert len(regions) == len(spec["regions"])
        key = {table["partition_key"]["name"]: {table["partition_key"]["type"]: "1"}}
        if "sort_key" in table:
            key[table["sort_key"]["name"]] = {table["sort_key"]["type"]: "1"}
        first = client(regions[0])
        wait_until(lambda: table["name"] in first.list_tables()["TableNames"], timeout=30,
                   what="the declared table")
        first.put_item(TableName=table["name"], Item={**key, "note": {"S": example.name}})
        for endpoint in regions[1:]:
            other = client(endpoint)
            wait_until(lambda: other.get_item(TableName=table["name"], Key=key,
                                              ConsistentRead=True).get("Item"),
                       timeout=30, what=f"the write read at {endpoint}")
        europe = spec.get("dns", {}).get("continents", {}).get("EU")
        if europe:
            # the README's "client in Europe" (81.2.69.0/24 is in GB), located by the table
            # built into the binary: nothing is installed for it
            want = [r["address"] for r in spec["regions"] if r["name"] == europe]
            q = dns.message.make_query(spec["dns"]["name"], dns.rdatatype.A, use_edns=0,
                                       options=[dns.edns.ECSOption("81.2.69.0", 24)])
            host, port = spec["dns"]["listen"].rsplit(":", 1)
            r = dns.query.udp(q, host, port=int(port), timeout=2)
            assert sorted(rr.address for rrset in r.answer for rr in rrset) == want, r
    finally:
        pids = []
        if cluster_json.exists():
            f = json.loads(cluster_json.read_text())
            pids = [p for p in [f["control"]["pid"], f["dns"]["pid"], f["gateway"]["pid"],
                                *[r["pid"] for r in f["regions"]]] if p]
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        finally:
            for p in pids:
                if alive(p):
                    os.kill(p, signal.SIGKILL)
            if proc.poll() is None:
                proc.kill()
