#!/usr/bin/env bash
# Queries/s of Meridian's DNS server and gdnsd side by side, measured with dnsperf on loopback.
#
#   scripts/bench-dns.sh [seconds-per-run]      (default 10)
#
# Needs: apt-get install dnsperf gdnsd. Both servers answer the same zone (an A record with
# three addresses) on 127.0.0.1; each run uses the same dnsperf settings. Results are printed
# and written to docs/benchmarks-traffic.md. Everything started here is stopped on exit.
set -euo pipefail

SECS="${1:-10}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d)"
MERIDIAN_PORT=15391
GDNSD_PORT=15392
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

command -v dnsperf >/dev/null || { echo "dnsperf missing: apt-get install dnsperf" >&2; exit 1; }
command -v gdnsd >/dev/null || { echo "gdnsd missing: apt-get install gdnsd" >&2; exit 1; }

echo "building meridian-dns (release)…"
cargo build --quiet --release -p meridian-dns --example dns-serve --manifest-path "$ROOT/Cargo.toml"
BIN="$ROOT/target/release/examples/dns-serve"

cat > "$WORK/meridian.toml" <<TOML
listen_udp = ["127.0.0.1:$MERIDIAN_PORT"]
listen_tcp = ["127.0.0.1:$MERIDIAN_PORT"]
[[zones]]
origin = "bench.test."
ttl_secs = 5
ns = ["ns1"]
soa = { mname = "ns1", rname = "hostmaster", serial = 1 }
[[zones.records]]
name = "www"
type = "A"
targets = [
  { id = "a", values = ["192.0.2.1"] },
  { id = "b", values = ["192.0.2.2"] },
  { id = "c", values = ["192.0.2.3"] },
]
[[zones.records]]
name = "lat"
type = "A"
policy = "latency"
targets = [
  { id = "a", values = ["192.0.2.1"], region = "a" },
  { id = "b", values = ["192.0.2.2"], region = "b" },
]
[[latency]]
latency_ms = { a = 10, b = 20 }
TOML

mkdir -p "$WORK/gdnsd/zones" "$WORK/gdnsd/run" "$WORK/gdnsd/state"
cat > "$WORK/gdnsd/config" <<CONF
options => {
  listen => [ 127.0.0.1:$GDNSD_PORT ]
  run_dir => $WORK/gdnsd/run
  state_dir => $WORK/gdnsd/state
}
CONF
cat > "$WORK/gdnsd/zones/bench.test" <<ZONE
\$TTL 5
@    SOA ns1 hostmaster 1 3600 600 86400 5
@    NS  ns1
ns1  A   192.0.2.53
www  A   192.0.2.1
www  A   192.0.2.2
www  A   192.0.2.3
lat  A   192.0.2.1
ZONE

"$BIN" --config "$WORK/meridian.toml" >"$WORK/meridian.log" 2>&1 & PIDS+=($!)
gdnsd -c "$WORK/gdnsd" start >"$WORK/gdnsd.log" 2>&1 & PIDS+=($!)
sleep 2

for q in www lat; do echo "$q.bench.test A"; done > "$WORK/queries"
run() { # name port → queries/s
  dnsperf -s 127.0.0.1 -p "$2" -d "$WORK/queries" -l "$SECS" -c 8 -T 1 -q 200 2>&1 \
    | tee "$WORK/$1.out" | awk '/Queries per second/ {print $4}'
}
# Each server answered correctly before measuring.
dnsperf -s 127.0.0.1 -p $MERIDIAN_PORT -d "$WORK/queries" -n 1 | grep -q "Queries completed:.*2 " || { cat "$WORK/meridian.log"; exit 1; }
dnsperf -s 127.0.0.1 -p $GDNSD_PORT -d "$WORK/queries" -n 1 | grep -q "Queries completed:.*2 " || { cat "$WORK/gdnsd.log"; exit 1; }

M=$(run meridian $MERIDIAN_PORT)
G=$(run gdnsd $GDNSD_PORT)
M_LAT=$(awk '/Average Latency/ {print $4}' "$WORK/meridian.out")
G_LAT=$(awk '/Average Latency/ {print $4}' "$WORK/gdnsd.out")
M_LOST=$(awk '/Queries lost/ {print $3}' "$WORK/meridian.out")
G_LOST=$(awk '/Queries lost/ {print $3}' "$WORK/gdnsd.out")

printf '%-10s %12s %14s %8s\n' server "queries/s" "avg latency s" lost
printf '%-10s %12s %14s %8s\n' meridian "$M" "$M_LAT" "$M_LOST"
printf '%-10s %12s %14s %8s\n' gdnsd "$G" "$G_LAT" "$G_LOST"

cat > "$ROOT/docs/benchmarks-traffic.md" <<MD
# Traffic plane benchmarks

## DNS queries/s: Meridian vs gdnsd

Run by \`scripts/bench-dns.sh $SECS\` on $(date -u +%Y-%m-%d), $(nproc) cores, loopback UDP.
dnsperf $(dnsperf -h 2>&1 | awk '/^Version/ {print $2}' || true) with 8 clients, 1 thread, at most
200 queries in flight, ${SECS} s per server, query mix: \`www.bench.test A\` (simple policy, three
addresses) and \`lat.bench.test A\` (latency policy; gdnsd serves a static record). Both servers
run during the whole script and are measured one after the other, on the same two cores as
dnsperf itself, so absolute numbers are low; the ratio is what matters.

| server | version | queries/s | average latency (s) | lost |
|---|---|---:|---:|---:|
| Meridian (meridian-dns, release) | $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo worktree) | $M | $M_LAT | $M_LOST |
| gdnsd (Debian) | $(gdnsd -h 2>&1 | awk '/^gdnsd version/ {print $3}') | $G | $G_LAT | $G_LOST |

Not measured yet: failover time of both with the same kill, and the gateway's added latency
(p50/p99) against direct access.
MD
echo "wrote docs/benchmarks-traffic.md"
