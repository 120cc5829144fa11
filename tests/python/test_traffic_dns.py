"""`meridian dns` in front of three real `meridian region` processes: every routing policy for
clients on different continents (EDNS Client Subnet), over UDP and TCP; kill -9 a region and
the answer changes within 2 s; restart it and it returns after the recovery threshold; drain by
the admin API; malformed packets are answered without harm.

Client locations come from a CIDR table in the config, so these tests need no GeoIP download;
`test_the_built_in_geoip_table_locates_clients` uses the IP → country table built into the
binary."""

import os
import socket
import struct
import time

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import pytest

from meridian_testlib import Region, wait_until
from traffic_testlib import Dns, http, poll_until_changed

ZONE = "db.example.test."
# Client subnets per place, configured in [[geo.networks]].
US = ("198.51.100.0", 24)
BR = ("100.64.0.0", 24)
DE = ("203.0.113.0", 24)
JP = ("192.0.2.0", 24)
AU = ("100.64.1.0", 24)
# The address each region is announced with.
IP = {"us-east": "10.1.0.1", "eu-west": "10.2.0.1", "ap-southeast": "10.3.0.1"}
RISE = 4  # recovery threshold (consecutive good checks); interval/timeout/fall are defaults


def config(regions):
    us, eu, ap = (regions[n].endpoint for n in ("us-east", "eu-west", "ap-southeast"))
    return f"""
rng_seed = 7

[health]
rise = {RISE}
[[health.endpoints]]
name = "us-east"
http_url = "{us}/health"
expect_body = "serving"
[[health.endpoints]]
name = "eu-west"
http_url = "{eu}/health"
[[health.endpoints]]
name = "ap-southeast"
tcp_addr = "{ap.removeprefix('http://')}"

[[geo.networks]]
network = "198.51.100.0/24"
country = "US"
[[geo.networks]]
network = "100.64.0.0/24"
country = "BR"
[[geo.networks]]
network = "203.0.113.0/24"
country = "DE"
[[geo.networks]]
network = "192.0.2.0/24"
country = "JP"
[[geo.networks]]
network = "100.64.1.0/24"
country = "AU"

[[latency]]
continents = ["NA", "SA"]
latency_ms = {{ us-east = 10, eu-west = 80, ap-southeast = 200 }}
[[latency]]
continents = ["EU", "AF"]
latency_ms = {{ us-east = 80, eu-west = 10, ap-southeast = 150 }}
[[latency]]
latency_ms = {{ us-east = 150, eu-west = 160, ap-southeast = 20 }}

[[zones]]
origin = "{ZONE}"
ttl_secs = 5
ns = ["ns1"]
soa = {{ mname = "ns1", rname = "hostmaster", serial = 3, minimum_secs = 5 }}

[[zones.records]]
name = "simple"
type = "A"
targets = [
  {{ id = "us", values = ["{IP['us-east']}"], health_check = "us-east" }},
  {{ id = "eu", values = ["{IP['eu-west']}"], health_check = "eu-west" }},
  {{ id = "ap", values = ["{IP['ap-southeast']}"], health_check = "ap-southeast" }},
]

[[zones.records]]
name = "simple"
type = "AAAA"
targets = [{{ id = "us", values = ["2001:db8::1"], health_check = "us-east" }}]

[[zones.records]]
name = "failover"
type = "A"
policy = "failover"
ttl_secs = 1
targets = [
  {{ id = "p", values = ["{IP['us-east']}"], health_check = "us-east", failover = "primary" }},
  {{ id = "s", values = ["{IP['eu-west']}"], health_check = "eu-west", failover = "secondary" }},
]

[[zones.records]]
name = "weighted"
type = "A"
policy = "weighted"
targets = [
  {{ id = "us", values = ["{IP['us-east']}"], health_check = "us-east", weight = 3 }},
  {{ id = "eu", values = ["{IP['eu-west']}"], health_check = "eu-west", weight = 1 }},
]

[[zones.records]]
name = "latency"
type = "A"
policy = "latency"
targets = [
  {{ id = "us", values = ["{IP['us-east']}"], health_check = "us-east", region = "us-east" }},
  {{ id = "eu", values = ["{IP['eu-west']}"], health_check = "eu-west", region = "eu-west" }},
  {{ id = "ap", values = ["{IP['ap-southeast']}"], health_check = "ap-southeast", region = "ap-southeast" }},
]

[[zones.records]]
name = "geo"
type = "A"
policy = "geolocation"
targets = [
  {{ id = "na", values = ["{IP['us-east']}"], health_check = "us-east", location = {{ continent = "NA" }} }},
  {{ id = "de", values = ["{IP['eu-west']}"], health_check = "eu-west", location = {{ country = "DE" }} }},
  {{ id = "default", values = ["{IP['ap-southeast']}"], health_check = "ap-southeast", location = "default" }},
]

[[zones.records]]
name = "near"
type = "A"
policy = "geoproximity"
targets = [
  {{ id = "us", values = ["{IP['us-east']}"], health_check = "us-east", coordinates = {{ lat = 39.0, lon = -77.5 }} }},
  {{ id = "eu", values = ["{IP['eu-west']}"], health_check = "eu-west", coordinates = {{ lat = 53.3, lon = -6.3 }} }},
  {{ id = "ap", values = ["{IP['ap-southeast']}"], health_check = "ap-southeast", coordinates = {{ lat = 1.35, lon = 103.8 }} }},
]

[[zones.records]]
name = "multi"
type = "A"
policy = "multivalue"
targets = [
  {{ id = "us", values = ["{IP['us-east']}"], health_check = "us-east" }},
  {{ id = "eu", values = ["{IP['eu-west']}"], health_check = "eu-west" }},
  {{ id = "ap", values = ["{IP['ap-southeast']}"], health_check = "ap-southeast" }},
  {{ id = "m1", values = ["10.8.0.1"] }}, {{ id = "m2", values = ["10.8.0.2"] }},
  {{ id = "m3", values = ["10.8.0.3"] }}, {{ id = "m4", values = ["10.8.0.4"] }},
  {{ id = "m5", values = ["10.8.0.5"] }}, {{ id = "m6", values = ["10.8.0.6"] }},
]

[[zones.records]]
name = "@"
type = "TXT"
targets = [{{ id = "t", values = ["meridian"] }}]
"""


@pytest.fixture(scope="module")
def regions(tmp_path_factory):
    base = tmp_path_factory.mktemp("dns-regions")
    rs = {n: Region(base / n, name=n).start() for n in IP}
    yield rs
    for r in rs.values():
        r.kill()


@pytest.fixture(scope="module")
def server(regions, tmp_path_factory):
    d = Dns(tmp_path_factory.mktemp("dns"), config(regions)).start(ZONE)
    # Every endpoint checked and healthy before the policies are asserted.
    wait_until(lambda: all(e["checks_healthy"] for e in
                           http("GET", d.admin + "/admin/status")[1]["health"]["endpoints"].values()),
               what="first health checks")
    yield d
    d.stop()


def name(label):
    return f"{label}.{ZONE}"


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_every_policy_answers_per_client_location(server, tcp):
    a = lambda label, where: server.addresses(name(label), subnet=where, tcp=tcp)  # noqa: E731
    us, eu, ap = IP["us-east"], IP["eu-west"], IP["ap-southeast"]
    for where in (US, DE, JP):
        assert a("simple", where) == sorted([us, eu, ap])
        assert a("failover", where) == [us]
    # latency: the row of the client's continent
    assert [a("latency", w) for w in (US, BR, DE, JP, AU)] == [[us], [us], [eu], [ap], [ap]]
    # geolocation: country DE, continent NA, else the default
    assert [a("geo", w) for w in (US, DE, JP, BR)] == [[us], [eu], [ap], [ap]]
    # geoproximity: nearest region to the client's country centre
    assert [a("near", w) for w in (US, BR, DE, JP, AU)] == [[us], [us], [eu], [ap], [ap]]
    # multivalue: at most 8 of the 9 healthy records
    multi = a("multi", US)
    assert len(multi) == 8 and len(set(multi)) == 8
    # weighted 3:1: one address per answer, both seen
    seen = [tuple(a("weighted", US)) for _ in range(60)]
    assert all(len(s) == 1 for s in seen)
    assert seen.count((us,)) > seen.count((eu,)) > 0, seen
    # other types and the apex
    assert server.addresses(name("simple"), rdtype="AAAA", tcp=tcp) == ["2001:db8::1"]
    assert server.addresses(ZONE, rdtype="TXT", tcp=tcp) == ['"meridian"']


def test_response_echoes_client_subnet_scope_and_is_authoritative(server):
    r = server.query(name("latency"), subnet=DE)
    assert r.flags & dns.flags.AA
    (ecs,) = [o for o in r.options if isinstance(o, dns.edns.ECSOption)]
    assert (ecs.address, ecs.srclen, ecs.scopelen) == ("203.0.113.0", 24, 24)
    # a location-independent answer is valid for everyone: scope 0
    r = server.query(name("simple"), subnet=DE)
    (ecs,) = [o for o in r.options if isinstance(o, dns.edns.ECSOption)]
    assert ecs.scopelen == 0
    assert r.answer and all(rr.ttl <= 5 for rr in r.answer)  # low TTLs bound failover time


def test_negative_answers(server):
    r = server.query(name("nope"))
    assert r.rcode() == dns.rcode.NXDOMAIN and r.authority and r.flags & dns.flags.AA
    r = server.query(name("simple"), "MX")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer and r.authority  # NODATA + SOA
    r = server.query("other.example.")
    assert r.rcode() == dns.rcode.REFUSED


def test_malformed_packets_are_answered_without_harm(server):
    port = server.port
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1.0)
    try:
        # a valid header announcing one question, followed by garbage: FORMERR with our id
        s.sendto(struct.pack(">HHHHHH", 0xBEEF, 0x0100, 1, 0, 0, 0) + b"\xff\x01garbage", ("127.0.0.1", port))
        reply, _ = s.recvfrom(4096)
        rid, flags = struct.unpack(">HH", reply[:4])
        assert rid == 0xBEEF and flags & 0x8000 and flags & 0x000F == dns.rcode.FORMERR
        # shorter than a header, random bytes, a response packet, a huge label count: no crash
        for junk in (b"", b"\x00", b"\x12\x34\x56", os.urandom(11), os.urandom(512), os.urandom(1400),
                     struct.pack(">HHHHHH", 1, 0x8000, 1, 0, 0, 0) + b"\x00\x00\x01\x00\x01",
                     struct.pack(">HHHHHH", 2, 0x0100, 0xFFFF, 0xFFFF, 0, 0) + b"\xc0\x0c" * 100):
            s.sendto(junk, ("127.0.0.1", port))
    finally:
        s.close()
    # TCP: a length prefix promising more than is sent, then garbage in a frame
    with socket.create_connection(("127.0.0.1", port), timeout=2) as t:
        t.sendall(struct.pack(">H", 40) + os.urandom(40) + struct.pack(">H", 500) + b"abc")
    # ... and the server still answers both transports.
    assert server.addresses(name("failover"), subnet=US) == [IP["us-east"]]
    assert server.addresses(name("failover"), subnet=US, tcp=True) == [IP["us-east"]]


def test_drain_weight_and_undrain_by_admin_api(server):
    us, eu = IP["us-east"], IP["eu-west"]
    status, body = http("POST", server.admin + "/admin/regions/us-east/drain")
    assert status == 200 and body["status"]["admin"] == "drain", body
    try:
        # drained: latency and failover move to the next choice, weighted only picks eu-west
        assert server.addresses(name("latency"), subnet=US) == [eu]
        assert server.addresses(name("failover"), subnet=US) == [eu]
        assert {tuple(server.addresses(name("weighted"))) for _ in range(20)} == {(eu,)}
        assert http("POST", server.admin + "/admin/regions/us-east/undrain")[0] == 200
        assert server.addresses(name("latency"), subnet=US) == [us]
        # gradual shift: weight 50 sends about half of the US clients elsewhere
        assert http("POST", server.admin + "/admin/regions/us-east/weight/50")[0] == 200
        got = [server.addresses(name("latency"), subnet=US)[0] for _ in range(100)]
        assert 20 <= got.count(us) <= 80, got.count(us)
        assert http("POST", server.admin + "/admin/regions/us-east/weight/101")[0] == 400
        assert http("POST", server.admin + "/admin/regions/nowhere/drain")[0] == 404
    finally:
        http("POST", server.admin + "/admin/regions/us-east/weight/100")
        http("POST", server.admin + "/admin/regions/us-east/undrain")
    assert server.addresses(name("latency"), subnet=US) == [us]
    metrics = http("GET", server.admin + "/metrics")[1]
    assert 'meridian_health_endpoint_up{endpoint="us-east"} 1' in metrics
    assert "meridian_dns_queries_total" in metrics


def test_kill9_region_changes_answers_within_2s_and_it_returns_after_recovery(server, regions):
    us, eu, ap = IP["us-east"], IP["eu-west"], IP["ap-southeast"]
    failover = lambda: tuple(server.addresses(name("failover"), subnet=US))  # noqa: E731
    assert failover() == (us,)
    victim = regions["us-east"]
    port = victim.port
    victim.kill()
    elapsed, now = poll_until_changed(failover, (us,), limit_s=3.0)
    print(f"kill -9 us-east: failover answer changed after {elapsed:.3f}s")
    assert now == (eu,)
    assert elapsed <= 2.0, f"failover took {elapsed:.3f}s"
    # the dead region dropped out of every policy
    assert server.addresses(name("simple")) == sorted([eu, ap])
    assert server.addresses(name("latency"), subnet=US) == [eu]
    assert server.addresses(name("geo"), subnet=US) == [ap]  # NA target down → default
    assert server.addresses(name("near"), subnet=US) == [eu]
    assert us not in server.addresses(name("multi"))
    assert {tuple(server.addresses(name("weighted"))) for _ in range(20)} == {(eu,)}
    assert server.addresses(name("failover"), subnet=US, tcp=True) == [eu]

    # Restart on the same port: the answer returns only after RISE consecutive good checks.
    restarted = Region(victim.data_dir, name="us-east", port=port).start()
    regions["us-east"] = restarted
    healthy_at = time.monotonic()
    elapsed, now = poll_until_changed(failover, (eu,), limit_s=5.0)
    print(f"us-east back: answer returned {elapsed:.3f}s after its /health was 200")
    assert now == (us,)
    # at least RISE-1 further check intervals (250 ms default) after the first good check
    assert elapsed >= (RISE - 1) * 0.25 - 0.1, elapsed
    assert time.monotonic() - healthy_at < 5.0
    assert server.addresses(name("simple")) == sorted([us, eu, ap])


def geo_zone(geo=""):
    return f"""
[geo]
{geo}
[[zones]]
origin = "{ZONE}"
ns = ["ns1"]
soa = {{ mname = "ns1", rname = "hostmaster" }}
[[zones.records]]
name = "geo"
type = "A"
policy = "geolocation"
targets = [
  {{ id = "na", values = ["{IP['us-east']}"], location = {{ continent = "NA" }} }},
  {{ id = "eu", values = ["{IP['eu-west']}"], location = {{ continent = "EU" }} }},
  {{ id = "as", values = ["{IP['ap-southeast']}"], location = {{ continent = "AS" }} }},
  {{ id = "default", values = ["{IP['us-east']}"], location = "default" }},
]
"""


def test_the_built_in_geoip_table_locates_clients(tmp_path):
    """No GeoIP files configured and nothing installed: the table built into the binary locates
    client subnets (the README's "client in Europe" example among them)."""
    d = Dns(tmp_path, geo_zone()).start(ZONE)
    try:
        cases = {"81.2.69.0": "eu-west",   # GB, the README's example
                 "8.8.8.0": "us-east",     # US
                 "133.0.0.0": "ap-southeast",  # JP
                 "217.0.0.0": "eu-west"}   # DE
        for ip, region in cases.items():
            assert d.addresses(name("geo"), subnet=(ip, 24)) == [IP[region]], (ip, region)
    finally:
        d.stop()


def test_a_geoip_file_replaces_the_built_in_table(tmp_path):
    """`geoip_v4_path` names a tor-geoipdb file (`start,end,CC` over integer addresses): it is
    used instead of the built-in table, and a missing one stops the server with an error."""
    def n(ip):
        return struct.unpack(">I", socket.inet_aton(ip))[0]

    path = tmp_path / "geoip"
    # 81.2.69.0/24 is GB in the built-in table; here it is JP, so the answer shows which is used
    path.write_text(f"# test file\n{n('81.2.69.0')},{n('81.2.69.255')},JP\n"
                    f"{n('8.8.8.0')},{n('8.8.8.255')},DE\n")
    d = Dns(tmp_path / "with-file", geo_zone(f'geoip_v4_path = "{path}"')).start(ZONE)
    try:
        assert d.addresses(name("geo"), subnet=("81.2.69.0", 24)) == [IP["ap-southeast"]]
        assert d.addresses(name("geo"), subnet=("8.8.8.0", 24)) == [IP["eu-west"]]
        # not in the file: unknown location, the default answer
        assert d.addresses(name("geo"), subnet=("133.0.0.0", 24)) == [IP["us-east"]]
    finally:
        d.stop()
    missing = tmp_path / "nowhere" / "geoip"
    d = Dns(tmp_path / "missing", geo_zone(f'geoip_v4_path = "{missing}"'))
    with pytest.raises(AssertionError, match="dns exited"):
        d.start(ZONE, timeout=10)
    assert f"reading {missing}: No such file" in d.log_path.read_text()
