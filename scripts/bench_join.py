"""Adding a region to a loaded cluster: loads N items into a 3-region mesh (no change-log
retention, so the logs are purged and the new region cannot replay them), adds a 4th region by
a rolling restart, and reports how long its snapshot took and when all four were identical.

    python3 scripts/bench_join.py [N]        (default 200000; MERIDIAN_BIN=path, default
                                              target/release/meridian)

Results go to docs/benchmarks.md ("Adding a region"). Uses the test harness's cluster
(tests/python/test_replication.py), on loopback; everything it starts is stopped at the end.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = os.environ.setdefault("MERIDIAN_BIN", str(ROOT / "target" / "release" / "meridian"))
sys.path.insert(0, str(ROOT / "tests" / "python"))
from test_replication import Cluster  # noqa: E402
from meridian_testlib import wait_until  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
tmp = Path(tempfile.mkdtemp())
names = ["sa", "sb", "sc"]
c = Cluster(tmp, names, extra_args=["--changelog-retention-secs", "0", "--changelog-gc-interval-ms", "1000"]).start()
try:
    wait_until(c.all_links_up, timeout=30, interval=0.2, what="up")
    t0 = time.time()
    out = subprocess.run([BIN, "bench", "load", "--endpoint", c["sa"].endpoint,
                          "--keys", str(N), "--connections", "8", "--table", "bench"],
                         capture_output=True, text=True, timeout=900)
    print(out.stdout.strip()[-300:])
    wait_until(lambda: all(json.loads(c[n].get("/admin/ae/digest?table=bench"))["items"] == N for n in names),
               timeout=600, interval=1, what="loaded everywhere")
    print(f"loaded {N} items in 3 regions in {time.time()-t0:.1f} s")
    wait_until(lambda: all(c.status(n)["changelog"]["purged_through"] > N // 2 for n in names),
               timeout=120, interval=0.5, what="purged")
    t1 = time.time()
    c.add("sd", restart=names)
    st = wait_until(lambda: (lambda s: s if s["snapshots"]["installed"] else None)(c.status("sd")),
                    timeout=900, interval=0.5, what="snapshot installed")
    inst = st["snapshots"]["installed"][0]
    print("installed", inst, f"(add → installed {time.time()-t1:.1f} s incl. rolling restart)")
    wait_until(lambda: len({json.loads(c[n].get("/admin/ae/digest?table=bench"))["digest"] for n in c.names}) == 1,
               timeout=300, interval=1, what="digests equal")
    print(f"4 regions identical {time.time()-t1:.1f} s after the add")
    print("rss_kb sd", [l for l in open(f"/proc/{c['sd'].proc.pid}/status") if l.startswith("VmRSS")])
finally:
    c.stop()
