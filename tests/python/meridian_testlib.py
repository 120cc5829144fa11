"""Helpers for black-box tests: start the real `meridian` binary, drive it with boto3 or raw
signed HTTP, wait on conditions with deadlines."""

import json
import os
import re
import secrets
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get(
    "MERIDIAN_BIN",
    Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "debug" / "meridian",
))


def wait_until(cond, timeout=10.0, interval=0.02, what="condition"):
    """Polls `cond` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            v = cond()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last_exc = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last error: {last_exc}")


class Region:
    """One `meridian region` process on 127.0.0.1 with its own data dir."""

    def __init__(self, data_dir, name="r1", port=0, extra_args=(), host="127.0.0.1",
                 token_file=None):
        self.data_dir = Path(data_dir)
        self.name = name
        self.host = host
        self.port = port
        self.extra_args = list(extra_args)
        # With an admin token file, the region requires the token on /admin/* and get/post
        # present it; without, its admin endpoints answer loopback clients (these tests).
        self.token_file = token_file
        if token_file:
            self.extra_args += ["--admin-token-file", str(token_file)]
        self.proc = None
        self.log_path = self.data_dir.parent / f"{name}-{id(self)}.log"

    @property
    def endpoint(self):
        return f"http://{self.host}:{self.port}"

    def start(self, timeout=20.0):
        return self.launch(timeout).wait_ready(timeout)

    def launch(self, timeout=20.0):
        """Starts the process and waits until it listens (not until it is healthy)."""
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(BIN), "region", "--region", self.name, "--listen", f"{self.host}:{self.port}",
             "--data-dir", str(self.data_dir), *self.extra_args],
            stdout=subprocess.PIPE, stderr=log, text=True,
        )
        line = {}

        def read_first_line():
            line["v"] = self.proc.stdout.readline()

        t = threading.Thread(target=read_first_line, daemon=True)
        t.start()
        t.join(timeout)
        m = re.search(r"listening on http://([0-9.]+):(\d+)", line.get("v", ""))
        if not m:
            self.kill()
            raise AssertionError(f"region did not start: {line.get('v')!r}; log: {self.log()}")
        self.port = int(m.group(2))
        return self

    def wait_ready(self, timeout=20.0):
        """Waits until `/health` says serving (a replicating region first catches up)."""
        wait_until(lambda: self.health()[0] == 200, timeout=timeout, what="region health")
        return self

    def health(self):
        try:
            with urllib.request.urlopen(self.endpoint + "/health", timeout=2) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def admin_headers(self):
        if not self.token_file:
            return {}
        return {"Authorization": "Bearer " + Path(self.token_file).read_text().strip()}

    def get(self, path):
        req = urllib.request.Request(self.endpoint + path, headers=self.admin_headers())
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.read().decode()

    def post(self, path, timeout=5):
        req = urllib.request.Request(self.endpoint + path, method="POST", data=b"",
                                     headers=self.admin_headers())
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())

    def client(self, **kw):
        return client(self.endpoint, **kw)

    def kill(self):
        """SIGKILL: no chance to flush anything."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def terminate(self, timeout=15):
        """SIGTERM, and wait for a clean exit; returns the exit code."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(timeout=timeout)
        return self.proc.returncode if self.proc else None

    def log(self):
        try:
            return self.log_path.read_text()[-4000:]
        except OSError:
            return ""


def make_token_file(path):
    """An admin token file as `meridian up` makes one: random, mode 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    return path


def client(endpoint, key="meridian", secret="meridian", retries=0, timeout=30):
    return boto3.client(
        "dynamodb", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=key, aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": retries + 1, "mode": "standard"},
                      connect_timeout=5, read_timeout=timeout),
    )


def raw(endpoint, target, body, sign=True, key="meridian", secret="meridian", headers=None):
    """Sends a raw DynamoDB request (optionally SigV4-signed); returns (status, headers, json)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    h = {"Content-Type": "application/x-amz-json-1.0"}
    if target is not None:
        h["X-Amz-Target"] = f"DynamoDB_20120810.{target}"
    h.update(headers or {})
    req = botocore.awsrequest.AWSRequest(method="POST", url=endpoint + "/", data=data, headers=h)
    if sign:
        creds = botocore.credentials.Credentials(key, secret)
        botocore.auth.SigV4Auth(creds, "dynamodb", "us-east-1").add_auth(req)
    prepared = req.prepare()
    r = urllib.request.Request(endpoint + "/", data=data, method="POST", headers=dict(prepared.headers))
    try:
        with urllib.request.urlopen(r, timeout=30) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        payload = e.read()
        return e.code, dict(e.headers), json.loads(payload or b"{}")


def error_code(exc):
    return exc.response["Error"]["Code"]


def create_table(c, name, hash_key=("pk", "S"), range_key=None, **kw):
    ks = [{"AttributeName": hash_key[0], "KeyType": "HASH"}]
    ad = [{"AttributeName": hash_key[0], "AttributeType": hash_key[1]}]
    if range_key:
        ks.append({"AttributeName": range_key[0], "KeyType": "RANGE"})
        ad.append({"AttributeName": range_key[0], "AttributeType": range_key[1]})
    return c.create_table(TableName=name, KeySchema=ks, AttributeDefinitions=ad,
                          BillingMode="PAY_PER_REQUEST", **kw)
