"""How long a deleted table's purge takes: starts one region on loopback, loads N items
(~170 B each) into a table with BatchWriteItem, deletes the table and times the purge, until the
region logs "deleted table purged". Everything it starts is stopped at the end.

    python3 scripts/bench_purge.py [N]        (default 200000; MERIDIAN_BIN=path, default
                                               target/release/meridian)

Results: docs/benchmarks.md, "Dropping a table".
"""
import concurrent.futures as cf
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
BIN = os.environ.get("MERIDIAN_BIN", str(ROOT / "target" / "release" / "meridian"))
ENDPOINT_HOST = "127.0.9.1:8000"
TABLE = "purge-me"
WRITERS = 8


def client():
    return boto3.client("dynamodb", endpoint_url=f"http://{ENDPOINT_HOST}", region_name="us-east-1",
                        aws_access_key_id="meridian", aws_secret_access_key="meridian",
                        config=Config(retries={"max_attempts": 10}))


def load(n, first):
    c, value = client(), "x" * 150
    for start in range(first, n, 25 * WRITERS):
        reqs = [{"PutRequest": {"Item": {"pk": {"S": f"k{j}"}, "v": {"S": value}}}}
                for j in range(start, min(start + 25, n))]
        r = c.batch_write_item(RequestItems={TABLE: reqs})
        while r.get("UnprocessedItems"):
            r = c.batch_write_item(RequestItems=r["UnprocessedItems"])


def wait_for(what, cond, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise SystemExit(f"timed out after {timeout} s waiting for {what}")


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    d = tempfile.mkdtemp(prefix="meridian-bench-purge-")
    log_path = Path(d) / "region.log"
    with open(log_path, "w") as log:
        p = subprocess.Popen([BIN, "region", "--region", "r1", "--listen", ENDPOINT_HOST,
                              "--data-dir", f"{d}/store"], stdout=log, stderr=subprocess.STDOUT)
    try:
        c = client()

        def up():
            try:
                c.list_tables()
                return True
            except Exception:  # noqa: BLE001 - not listening yet
                return False

        wait_for("the region to answer", up, 30)
        c.create_table(TableName=TABLE, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                       AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                       BillingMode="PAY_PER_REQUEST")
        t0 = time.monotonic()
        with cf.ThreadPoolExecutor(WRITERS) as ex:
            list(ex.map(lambda k: load(n, k * 25), range(WRITERS)))
        print(f"loaded {n} items in {time.monotonic() - t0:.1f} s", flush=True)
        t1 = time.monotonic()
        c.delete_table(TableName=TABLE)
        wait_for("the purge", lambda: "deleted table purged" in log_path.read_text(), 900)
        print(f"purge of {n} items: {time.monotonic() - t1:.2f} s after DeleteTable", flush=True)
    finally:
        p.terminate()
        p.wait(timeout=30)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
