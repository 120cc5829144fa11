"""Crash safety: concurrent writers, SIGKILL at random moments, restart. Every acknowledged
write must be there, and the change log must have no gap and no duplicate."""

import json
import os
import random
import threading
import time

from meridian_testlib import Region, create_table

ROUNDS = int(os.environ.get("MERIDIAN_CRASH_ROUNDS", "20"))
WRITERS = 6


def test_kill9_loses_no_acknowledged_write(tmp_path):
    seed = int(os.environ.get("MERIDIAN_SEED", random.randrange(1 << 30)))
    print(f"crash test seed={seed} rounds={ROUNDS}")
    rng = random.Random(seed)
    data = tmp_path / "data"
    acked = {}  # key -> value acknowledged
    r = Region(data).start()
    create_table(r.client(), "crash_tbl")
    for rnd in range(ROUNDS):
        stop = threading.Event()
        lock = threading.Lock()

        def writer(w, endpoint=r.endpoint):
            c = Region.__new__(Region)
            from meridian_testlib import client
            cl = client(endpoint, retries=0, timeout=5)
            i = 0
            while not stop.is_set():
                key = f"r{rnd}-w{w}-{i}"
                try:
                    cl.put_item(TableName="crash_tbl", Item={"pk": {"S": key}, "v": {"N": str(i)}})
                except Exception:  # the server died mid-request: not acknowledged
                    return
                with lock:
                    acked[key] = i
                i += 1

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.05, 0.6))  # the fault: kill at a random moment under load
        r.kill()
        stop.set()
        for t in threads:
            t.join(timeout=30)
        r = Region(data, port=r.port).start()

    c = r.client()
    # every acknowledged write is present
    missing = []
    keys = list(acked)
    for i in range(0, len(keys), 100):
        chunk = keys[i:i + 100]
        got = c.batch_get_item(RequestItems={"crash_tbl": {"Keys": [{"pk": {"S": k}} for k in chunk]}})
        present = {it["pk"]["S"]: int(it["v"]["N"]) for it in got["Responses"]["crash_tbl"]}
        missing += [k for k in chunk if present.get(k) != acked[k]]
    assert not missing, f"seed={seed}: {len(missing)} acknowledged writes lost, e.g. {missing[:5]}"
    assert len(acked) > ROUNDS * WRITERS, "the test did not write enough to mean anything"

    # the change log: sequences 1..head without gaps, each acknowledged put logged exactly once
    entries, start = [], 1
    while True:
        page = json.loads(r.get(f"/admin/changelog?from={start}&limit=5000"))
        entries += page["entries"]
        if not page["entries"]:
            break
        start = page["entries"][-1]["seq"] + 1
    seqs = [e["seq"] for e in entries]
    assert seqs == list(range(1, len(seqs) + 1)), f"seed={seed}: change log has a gap"
    assert seqs[-1] == page["head"]
    logged = {}
    for e in entries:
        if e["op"] != "put":
            continue  # the CreateTable entry
        k = e["item"]["pk"]["S"]
        logged[k] = logged.get(k, 0) + 1
    assert all(n == 1 for n in logged.values()), f"seed={seed}: duplicate change-log entries"
    assert all(k in logged for k in acked), f"seed={seed}: acknowledged write missing from change log"
    print(f"seed={seed}: {len(acked)} acknowledged writes, {len(entries)} change-log entries, all present")
    r.terminate()
