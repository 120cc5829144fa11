#!/usr/bin/env python3
"""A noisy neighbour for benchmark runs: spins BUSY_MS, sleeps IDLE_MS, for SECS seconds.

    scripts/cpu-hog.py BUSY_MS IDLE_MS SECS

`scripts/cpu-hog.py 20 20 75` takes half of one core in 20 ms bursts, beside a fresh
`meridian bench lag` (docs/benchmarks.md, "Replication lag and catch-up"). Stops by itself.
"""
import sys
import time

busy, idle, secs = float(sys.argv[1]) / 1000, float(sys.argv[2]) / 1000, float(sys.argv[3])
end = time.monotonic() + secs
while time.monotonic() < end:
    until = time.monotonic() + busy
    while time.monotonic() < until:
        pass
    time.sleep(idle)
