#!/usr/bin/env python3
"""Failover time of Meridian's DNS server and of gdnsd after the same kill -9.

    python3 scripts/bench_dns_failover.py MERIDIAN_BIN WORKDIR [--trials N] [--skip-gdnsd-defaults]

One `meridian region` on 127.0.0.1 is the primary of a failover record (answer 127.0.0.1;
the secondary answers 127.0.0.2). Each DNS server health-checks its `/health` over HTTP:
Meridian with its default checks, gdnsd with its `http_status` plugin and simplefo, once with
gdnsd's default intervals and once tuned to its fastest. The region is killed with SIGKILL and
the record is queried over UDP every 50 ms (dnspython, raw queries) until the answer changes;
the time from the kill to the first changed answer is printed as a markdown table."""

import argparse
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import dns.message
import dns.query

PRIMARY, SECONDARY = "127.0.0.1", "127.0.0.2"
POLL_S = 0.05


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answer(port):
    q = dns.message.make_query("fo.bench.test.", "A")
    try:
        r = dns.query.udp(q, "127.0.0.1", port=port, timeout=0.2)
    except Exception:  # noqa: BLE001 - a lost answer counts as "no answer yet"
        return None
    return tuple(sorted(rd.to_text() for rrset in r.answer for rd in rrset))


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    sys.exit(f"timed out waiting for {what}")


class RegionProc:
    def __init__(self, binary, work, port):
        self.binary, self.work, self.port = binary, work, port
        self.proc = None

    def start(self):
        log = open(self.work / "region.log", "ab")
        self.proc = subprocess.Popen(
            [self.binary, "region", "--region", "r1", "--listen", f"127.0.0.1:{self.port}",
             "--data-dir", str(self.work / "region-data")], stdout=log, stderr=log)

        def healthy():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"GET /health HTTP/1.0\r\n\r\n")
                    return b" 200 " in s.recv(100)
            except OSError:
                return False
        wait_for(healthy, 30, "region health")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def meridian_dns(binary, work, dns_port, region_port):
    cfg = work / "meridian-dns.toml"
    cfg.write_text(f"""
listen_udp = ["127.0.0.1:{dns_port}"]
listen_tcp = ["127.0.0.1:{dns_port}"]
[[health.endpoints]]
name = "r1"
http_url = "http://127.0.0.1:{region_port}/health"
[[zones]]
origin = "bench.test."
ttl_secs = 1
ns = ["ns1"]
soa = {{ mname = "ns1", rname = "hostmaster" }}
[[zones.records]]
name = "fo"
type = "A"
policy = "failover"
targets = [
  {{ id = "p", values = ["{PRIMARY}"], health_check = "r1", failover = "primary" }},
  {{ id = "s", values = ["{SECONDARY}"], failover = "secondary" }},
]
""")
    log = open(work / "meridian-dns.log", "ab")
    return [subprocess.Popen([binary, "dns", "--config", str(cfg)], stdout=log, stderr=log)]


def gdnsd(work, dns_port, region_port, timing):
    d = work / "gdnsd"
    (d / "zones").mkdir(parents=True, exist_ok=True)
    for sub in ("run", "state"):
        (d / sub).mkdir(exist_ok=True)
    (d / "config").write_text(f"""
options => {{
  listen => [ 127.0.0.1:{dns_port} ]
  run_dir => {d / 'run'}
  state_dir => {d / 'state'}
}}
service_types => {{
  region => {{
    plugin => http_status
    port => {region_port}
    url_path => /health
    {timing}
  }}
}}
plugins => {{
  simplefo => {{
    fo => {{ primary => {PRIMARY}, secondary => {SECONDARY}, service_types => [ region ] }}
  }}
}}
""")
    (d / "zones" / "bench.test").write_text("""$TTL 1
@    SOA ns1 hostmaster 1 3600 600 86400 1
@    NS  ns1
ns1  A   192.0.2.53
fo   DYNA simplefo!fo
""")
    log = open(work / "gdnsd.log", "ab")
    # gdnsd checks the secondary address too, on the same port: give it a healthy /health,
    # or both are down and simplefo keeps answering the primary.
    (d / "www").mkdir(exist_ok=True)
    (d / "www" / "health").write_text("serving")
    secondary = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", SECONDARY,
                                  "--directory", str(d / "www"), str(region_port)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return [secondary, subprocess.Popen(["gdnsd", "-c", str(d), "start"], stdout=log, stderr=log)]


def measure(name, start_server, binary, work, trials, limit_s):
    """Kills the region `trials` times; returns the seconds until the answer changed."""
    region_port, dns_port = free_port(), free_port()
    region = RegionProc(binary, work, region_port)
    region.start()
    servers = start_server(dns_port, region_port)
    times = []
    try:
        wait_for(lambda: answer(dns_port) == (PRIMARY,), 60, f"{name} answering the primary")
        for trial in range(trials):
            if trial:
                region.start()
                wait_for(lambda: answer(dns_port) == (PRIMARY,), limit_s * 3, f"{name} recovery")
            time.sleep(3)  # steady state: a few check rounds with the region up
            region.kill()
            t0 = time.monotonic()
            while answer(dns_port) == (PRIMARY,):
                if time.monotonic() - t0 > limit_s:
                    sys.exit(f"{name}: answer unchanged {limit_s} s after the kill")
                time.sleep(POLL_S)
            elapsed = time.monotonic() - t0
            times.append(elapsed)
            print(f"  {name}: trial {trial + 1}: {elapsed:.3f} s", file=sys.stderr, flush=True)
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=10)
        if region.proc.poll() is None:
            region.kill()
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("workdir")
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--skip-gdnsd-defaults", action="store_true")
    a = ap.parse_args()
    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    version = subprocess.run(["gdnsd", "-h"], capture_output=True, text=True).stderr
    gdnsd_version = (re.search(r"gdnsd version (\S+)", version) or [None, "?"])[1]

    runs = [("Meridian (defaults: interval 250 ms, timeout 200 ms, fall 3)",
             lambda dp, rp: meridian_dns(a.binary, work, dp, rp), a.trials, 10)]
    tuned = "interval => 2\n    timeout => 1\n    down_thresh => 1\n    ok_thresh => 1\n    up_thresh => 1"
    runs.append((f"gdnsd {gdnsd_version} http_status, tuned (interval 2 s, timeout 1 s, down_thresh 1)",
                 lambda dp, rp: gdnsd(work / "tuned", dp, rp, tuned), a.trials, 20))
    if not a.skip_gdnsd_defaults:
        runs.append((f"gdnsd {gdnsd_version} http_status, defaults (interval 10 s, down_thresh 10)",
                     lambda dp, rp: gdnsd(work / "defaults", dp, rp, ""), 1, 300))
    print("| server and checks | trials | kill → first changed answer: median (min–max) |")
    print("|---|---:|---|")
    for name, start, trials, limit in runs:
        times = measure(name, start, a.binary, work, trials, limit)
        print(f"| {name} | {len(times)} | {statistics.median(times):.2f} s "
              f"({min(times):.2f}–{max(times):.2f} s) |", flush=True)


if __name__ == "__main__":
    main()
