#!/usr/bin/env bash
# CPU per PutItem of a region server and of the load generator, over a window of the put phase.
#
#   scripts/bench-cpu.sh [SERVER_BIN] [GENERATOR_BIN]
#
# Starts one fresh region (127.0.0.1:$PORT, a temporary data directory), runs `bench kv` against
# it (CONNS connections, 20 s: 10 s of PutItem then 10 s of GetItem, after a 2 s warm-up), and
# reads /proc/PID/stat of both processes (and /proc/PID/task/*/stat of the server's threads) at
# 3.5 s and 9.5 s — inside the put phase. Puts in the window come from the server's
# meridian_commit_group_size_sum. Prints puts/s, µs of CPU per put for each side, and the cores
# each of the server's threads used. Loopback only; stops everything it started.
#
# With LOAD_RATE set (items/s), the generator is instead `bench load` at that pace (4
# connections, BatchWriteItem of 25, LOAD_KEYS items, default 200000): the written region of
# `meridian bench lag`/`catchup` without its peers. Items in the window then come from the
# server's meridian_changes_total, and "put" in the output means one item.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN=${1:-$ROOT/target/release/meridian}
GEN=${2:-$BIN}
CONNS=${CONNS:-32}
PORT=${PORT:-8611}
D=$(mktemp -d)
"$BIN" region --region r1 --listen "127.0.0.1:$PORT" --data-dir "$D/data" >"$D/region.log" 2>&1 &
P=$!
cleanup() { kill "$P" 2>/dev/null || true; wait "$P" 2>/dev/null || true; rm -rf "$D"; }
trap cleanup EXIT
for _ in $(seq 100); do curl -sf "127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
if [[ -n ${LOAD_RATE:-} ]]; then
  COUNTER=meridian_changes_total
  "$GEN" bench load --endpoint "http://127.0.0.1:$PORT" --connections 4 --rate "$LOAD_RATE" \
    --keys "${LOAD_KEYS:-200000}" >"$D/load.txt" &
else
  COUNTER=meridian_commit_group_size_sum
  "$GEN" bench kv --endpoint "http://127.0.0.1:$PORT" --connections "$CONNS" --duration-secs 20 \
    --warmup-secs 2 --keys 100000 --json >"$D/kv.json" &
fi
B=$!
sample() { # $1: suffix
  for t in /proc/$P/task/*; do echo "$(cat "$t/comm" | tr ' ' _) $(awk '{print $14+$15}' "$t/stat")"; done >"$D/threads.$1"
  echo "$(awk '{print $14+$15}' /proc/$P/stat) $(awk '{print $14+$15}' /proc/$B/stat) \
$(curl -s "127.0.0.1:$PORT/metrics" | awk -v c="$COUNTER" '$1 == c {print $2}') $(date +%s.%N)" >"$D/proc.$1"
}
sleep 3.5; sample 1
sleep 6; sample 2
wait "$B"
python3 - "$D" "$(basename "$BIN")" <<'PY'
import collections, sys
d, name = sys.argv[1], sys.argv[2]
s1, g1, n1, t1 = map(float, open(f"{d}/proc.1").read().split())
s2, g2, n2, t2 = map(float, open(f"{d}/proc.2").read().split())
n, dt = n2 - n1, t2 - t1
def threads(f):
    c = collections.Counter()
    for line in open(f):
        k, v = line.rsplit(" ", 1)
        c[k] += int(v)
    return c
a, b = threads(f"{d}/threads.1"), threads(f"{d}/threads.2")
busy = sorted(((b[k] - a[k]) / 100 / dt, k) for k in b if b[k] - a[k] > 0)[::-1]
print(f"{name}: puts/s {n / dt:.0f}; server {(s2 - s1) * 1e4 / n:.1f} us/put ({(s2 - s1) / 100 / dt:.2f} cores); "
      f"generator {(g2 - g1) * 1e4 / n:.1f} us/put ({(g2 - g1) / 100 / dt:.2f} cores)")
print("  server threads (cores): " + ", ".join(f"{k} {c:.2f}" for c, k in busy))
PY
if [[ -n ${LOAD_RATE:-} ]]; then cat "$D/load.txt"; fi
