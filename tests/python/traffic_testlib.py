"""Helpers for the traffic-plane black-box tests: start `meridian dns` and `meridian gateway`
with a generated TOML config on 127.0.0.1, and send raw DNS queries (dnspython, no caching
resolver) with an EDNS Client Subnet naming where the client is."""

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import dns.edns
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from meridian_testlib import BIN, wait_until


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1 (the DNS server binds both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise AssertionError("no free port")


class Role:
    """One `meridian dns` or `meridian gateway` process started from a TOML config file."""

    def __init__(self, role, workdir, config_text):
        self.role = role
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.workdir / f"{role}-{id(self)}.toml"
        self.config_path.write_text(config_text)
        self.log_path = self.workdir / f"{role}-{id(self)}.log"
        self.proc = None

    def start(self, ready, timeout=20.0):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(BIN), self.role, "--config", str(self.config_path)],
                                     stdout=log, stderr=log)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.role} exited: {self.log()}")
            return ready()

        wait_until(up, timeout=timeout, what=f"{self.role} ready")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def log(self):
        try:
            return self.log_path.read_text()[-4000:]
        except OSError:
            return ""


def http(method, url, timeout=5):
    """(status, parsed JSON or text) of a small HTTP request."""
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode(errors="replace")


class Dns(Role):
    """`meridian dns` on a free 127.0.0.1 port (UDP and TCP) with an admin API."""

    def __init__(self, workdir, config_body):
        self.port = free_port()
        self.admin_port = free_port()
        head = (f'listen_udp = ["127.0.0.1:{self.port}"]\n'
                f'listen_tcp = ["127.0.0.1:{self.port}"]\n'
                f'admin_listen = "127.0.0.1:{self.admin_port}"\n')
        super().__init__("dns", workdir, head + config_body)

    def start(self, origin, timeout=20.0):
        def answers():
            r = self.query(origin, "SOA", tcp=False, timeout=0.5)
            return r.rcode() == dns.rcode.NOERROR
        return super().start(answers, timeout)

    @property
    def admin(self):
        return f"http://127.0.0.1:{self.admin_port}"

    def query(self, name, rdtype="A", subnet=None, tcp=False, timeout=1.0):
        """A raw query; `subnet` = ("203.0.113.0", 24) adds an EDNS Client Subnet option."""
        options = [dns.edns.ECSOption(subnet[0], subnet[1])] if subnet else []
        q = dns.message.make_query(name, rdtype, use_edns=0, options=options)
        send = dns.query.tcp if tcp else dns.query.udp
        return send(q, "127.0.0.1", port=self.port, timeout=timeout)

    def addresses(self, name, subnet=None, tcp=False, rdtype="A"):
        """The sorted addresses of the answer section."""
        r = self.query(name, rdtype, subnet=subnet, tcp=tcp)
        assert r.rcode() == dns.rcode.NOERROR, (name, dns.rcode.to_text(r.rcode()))
        want = dns.rdatatype.from_text(rdtype)
        return sorted(rd.to_text() for rrset in r.answer if rrset.rdtype == want for rd in rrset)


class Gateway(Role):
    """`meridian gateway` on a free 127.0.0.1 port with an admin API."""

    def __init__(self, workdir, config_body):
        self.port = free_port()
        self.admin_port = free_port()
        head = (f'listen = "127.0.0.1:{self.port}"\n'
                f'admin_listen = "127.0.0.1:{self.admin_port}"\n')
        super().__init__("gateway", workdir, head + config_body)

    def start(self, timeout=20.0):
        return super().start(lambda: http("GET", self.admin + "/admin/status")[0] == 200, timeout)

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin(self):
        return f"http://127.0.0.1:{self.admin_port}"


def poll_until_changed(probe, before, limit_s, interval=0.05):
    """Calls `probe` every `interval` s until its value differs from `before`; returns
    (seconds until then, new value). Fails after `limit_s` (+ one interval)."""
    start = time.monotonic()
    while True:
        try:
            now = probe()
        except Exception:  # noqa: BLE001 - a lost UDP answer is just retried
            now = before
        elapsed = time.monotonic() - start
        if now != before:
            return elapsed, now
        if elapsed > limit_s:
            raise AssertionError(f"still {before!r} after {elapsed:.2f}s")
        time.sleep(interval)
