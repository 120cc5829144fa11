#!/usr/bin/env python3
"""The gateway's added latency with session tokens on, side by side in one run.

    scripts/bench_session.py NEW_BIN [OLD_BIN] [--secs N] [--rounds R]

One region and one gateway (pinning by the `x-meridian-user` header, user `bench` at home in
the region) per binary, on loopback. In interleaved rounds, `meridian bench kv` (16
connections) runs through the gateway of NEW_BIN as the pinned user — every PutItem answer's
token is remembered and every GetItem carries it, checked by the region — and as an unpinned
client (no token), and, when OLD_BIN is given (a build without session tokens), through its
gateway too. Prints the p50/p99 of each op per configuration and the medians over the rounds.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, deadline=30):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"{url} did not answer within {deadline} s")


def start(binary, work, name):
    """A region and a gateway of `binary`; returns (gateway endpoint, processes)."""
    d = work / name
    d.mkdir()
    rport, gport = free_port(), free_port()
    region = subprocess.Popen([binary, "region", "--region", "r1", "--listen",
                               f"127.0.0.1:{rport}", "--data-dir", str(d / "data")],
                              stdout=open(d / "region.log", "w"), stderr=subprocess.STDOUT)
    (d / "gateway.toml").write_text(f"""listen = "127.0.0.1:{gport}"
[[health.endpoints]]
name = "r1"
http_url = "http://127.0.0.1:{rport}/health"
[[regions]]
name = "r1"
endpoint = "http://127.0.0.1:{rport}"
[pinning]
user_header = "x-meridian-user"
users = {{ bench = "US" }}
country_regions = {{ US = "r1" }}
""")
    gateway = subprocess.Popen([binary, "gateway", "--config", str(d / "gateway.toml")],
                               stdout=open(d / "gateway.log", "w"), stderr=subprocess.STDOUT)
    wait_http(f"http://127.0.0.1:{rport}/health")
    time.sleep(1.0)  # the gateway's first health checks
    return f"http://127.0.0.1:{gport}", [region, gateway]


def kv(binary, endpoint, secs, headers=()):
    cmd = [binary, "bench", "kv", "--endpoint", endpoint, "--connections", "16",
           "--duration-secs", str(secs), "--warmup-secs", "2", "--keys", "10000", "--json"]
    for h in headers:
        cmd += ["--header", h]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    report = json.loads(out)
    for op in report["ops"]:
        if op["errors"]:
            sys.exit(f"{endpoint} {headers}: {op['errors']} errors, first: {op['first_error']}")
    return {op["op"]: op for op in report["ops"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("new")
    ap.add_argument("old", nargs="?")
    ap.add_argument("--secs", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-session-"))
    procs = []
    try:
        new_gw, p = start(a.new, work, "new")
        procs += p
        configs = [("tokens on (pinned user)", a.new, new_gw, ["x-meridian-user:bench"]),
                   ("no token (unpinned)", a.new, new_gw, [])]
        if a.old:
            old_gw, p = start(a.old, work, "old")
            procs += p
            configs.append(("before session tokens", a.old, old_gw, []))
        results = {label: [] for label, *_ in configs}
        for r in range(a.rounds):
            for label, binary, gw, headers in configs:
                results[label].append(kv(binary, gw, a.secs, headers))
                print(f"round {r + 1} {label}: " + ", ".join(
                    f"{op} p50 {v['p50_us']} µs" for op, v in results[label][-1].items()),
                    file=sys.stderr)
        print(f"Run by `scripts/bench_session.py` on {time.strftime('%Y-%m-%d', time.gmtime())}, "
              f"{os.cpu_count()} cores, {a.rounds} interleaved rounds of {a.secs} s, 16 connections")
        print()
        print("| configuration | PutItem p50 (µs), per round | median | GetItem p50 (µs), per round "
              "| median | GetItem p99 median |")
        print("|---|---|---:|---|---:|---:|")
        for label, runs in results.items():
            put = [r["PutItem"]["p50_us"] for r in runs]
            get = [r["GetItem"]["p50_us"] for r in runs]
            get99 = [r["GetItem"]["p99_us"] for r in runs]
            print(f"| {label} | {', '.join(map(str, put))} | {statistics.median(put)} | "
                  f"{', '.join(map(str, get))} | {statistics.median(get)} | "
                  f"{statistics.median(get99)} |")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=15)


if __name__ == "__main__":
    main()
