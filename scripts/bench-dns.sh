#!/usr/bin/env bash
# Traffic-plane benchmarks, every number in one run on this machine:
#   1. DNS queries/s with dnsperf: `meridian dns` and gdnsd side by side (rounds interleaved);
#   2. failover time after the same kill -9 of a region: Meridian (default checks) and gdnsd
#      (http_status plugin, default and tuned intervals), polled every 50 ms;
#   3. the gateway's added latency: `meridian bench kv` direct to a region and through
#      `meridian gateway`.
#
#   scripts/bench-dns.sh [seconds-per-dnsperf-run]          (default 10)
#
# Environment: MERIDIAN_BIN=path skips the release build and uses that binary;
# MERIDIAN_DNS_BASELINE=/path/to/older/binary adds its queries/s as a third row
# (run as `$MERIDIAN_DNS_BASELINE --config FILE`, e.g. the `dns-serve` example of an older
# commit); SKIP_GDNSD_DEFAULTS=1 skips the ~100 s default-interval gdnsd failover run.
# Installs what it needs (apt: dnsperf gdnsd; pip: dnspython) when missing. Results go to
# stdout and bench-out/traffic.md; paste them into docs/benchmarks.md ("Traffic plane").
# Everything started here is stopped on exit.
set -euo pipefail

SECS="${1:-10}"
ROUNDS="${ROUNDS:-3}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d)"
OUT="$ROOT/bench-out/traffic.md"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

need_apt=()
command -v dnsperf >/dev/null || need_apt+=(dnsperf)
command -v gdnsd >/dev/null || need_apt+=(gdnsd)
if ((${#need_apt[@]})); then
  echo "installing ${need_apt[*]} (apt)…"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
python3 -c "import dns.message" 2>/dev/null \
  || python3 -m pip install --quiet --disable-pip-version-check "dnspython==2.9.2"

if [[ -z "${MERIDIAN_BIN:-}" ]]; then
  echo "building meridian (release)…"
  cargo build --quiet --release -p meridian --manifest-path "$ROOT/Cargo.toml"
fi
BIN="${MERIDIAN_BIN:-$ROOT/target/release/meridian}"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MERIDIAN_PORT=$(free_port); GDNSD_PORT=$(free_port); BASE_PORT=$(free_port)

# --- 1. queries/s ---------------------------------------------------------------------------
zone_toml() { # port
  cat <<TOML
listen_udp = ["127.0.0.1:$1"]
listen_tcp = ["127.0.0.1:$1"]
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
}
zone_toml "$MERIDIAN_PORT" > "$WORK/meridian.toml"
zone_toml "$BASE_PORT" > "$WORK/baseline.toml"

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

"$BIN" dns --config "$WORK/meridian.toml" >"$WORK/meridian.log" 2>&1 & PIDS+=($!)
gdnsd -c "$WORK/gdnsd" start >"$WORK/gdnsd.log" 2>&1 & PIDS+=($!)
SERVERS=(meridian gdnsd)
declare -A PORT=([meridian]=$MERIDIAN_PORT [gdnsd]=$GDNSD_PORT [baseline]=$BASE_PORT)
if [[ -n "${MERIDIAN_DNS_BASELINE:-}" ]]; then
  "$MERIDIAN_DNS_BASELINE" --config "$WORK/baseline.toml" >"$WORK/baseline.log" 2>&1 & PIDS+=($!)
  SERVERS+=(baseline)
fi
sleep 2

for q in www lat; do echo "$q.bench.test A"; done > "$WORK/queries"
for s in "${SERVERS[@]}"; do # each server answers both names before it is measured
  dnsperf -s 127.0.0.1 -p "${PORT[$s]}" -d "$WORK/queries" -n 1 | grep -q "Queries completed:.*2 " \
    || { echo "$s does not answer"; cat "$WORK/$s.log"; exit 1; }
done
declare -A QPS LAT LOST
for round in $(seq "$ROUNDS"); do
  for s in "${SERVERS[@]}"; do
    dnsperf -s 127.0.0.1 -p "${PORT[$s]}" -d "$WORK/queries" -l "$SECS" -c 8 -T 1 -q 200 >"$WORK/$s.out" 2>&1
    q=$(awk '/Queries per second/ {print $4}' "$WORK/$s.out")
    QPS[$s]+="$q "; LAT[$s]+="$(awk '/Average Latency/ {print $4}' "$WORK/$s.out") "
    LOST[$s]+="$(awk '/Queries lost/ {print $3}' "$WORK/$s.out") "
    echo "round $round: $s $q q/s"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# --- 2. failover time ---------------------------------------------------------------------
echo "failover: killing a region under each DNS server…"
FAILOVER_ARGS=()
[[ -n "${SKIP_GDNSD_DEFAULTS:-}" ]] && FAILOVER_ARGS+=(--skip-gdnsd-defaults)
FAILOVER=$(python3 "$ROOT/scripts/bench_dns_failover.py" "$BIN" "$WORK/failover" "${FAILOVER_ARGS[@]}")

# --- 3. gateway added latency ---------------------------------------------------------------
echo "gateway: bench kv direct and through the gateway…"
R_PORT=$(free_port); GW_PORT=$(free_port)
"$BIN" region --region r1 --listen "127.0.0.1:$R_PORT" --data-dir "$WORK/gw-region" >"$WORK/gw-region.log" 2>&1 & PIDS+=($!)
cat > "$WORK/gateway.toml" <<TOML
listen = "127.0.0.1:$GW_PORT"
[[health.endpoints]]
name = "r1"
http_url = "http://127.0.0.1:$R_PORT/health"
[[regions]]
name = "r1"
endpoint = "http://127.0.0.1:$R_PORT"
TOML
"$BIN" gateway --config "$WORK/gateway.toml" >"$WORK/gateway.log" 2>&1 & PIDS+=($!)
sleep 2
KV=(--connections 16 --duration-secs "$SECS" --warmup-secs 2 --keys 10000)
DIRECT=$("$BIN" bench kv --endpoint "http://127.0.0.1:$R_PORT" --label "direct to the region" "${KV[@]}")
VIA=$("$BIN" bench kv --endpoint "http://127.0.0.1:$GW_PORT" --label "through meridian gateway" "${KV[@]}")

# --- report ---------------------------------------------------------------------------------
{
  echo "Run by \`scripts/bench-dns.sh $SECS\` on $(date -u +%Y-%m-%d), $(nproc) cores, loopback; $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo worktree) + working tree."
  echo
  echo "#### Queries/s (dnsperf $(dnsperf -h 2>&1 | awk '/^Version/ {print $2}'), 8 clients, 1 thread, ≤ 200 in flight, $SECS s × $ROUNDS interleaved rounds)"
  echo
  echo "| server | queries/s per round | median | avg latency (s), per round | lost |"
  echo "|---|---|---:|---|---|"
  for s in "${SERVERS[@]}"; do
    echo "| $s | ${QPS[$s]} | $(echo "${QPS[$s]}" | median) | ${LAT[$s]} | ${LOST[$s]} |"
  done
  echo
  echo "#### Failover time: kill -9 of the primary region → first changed answer (UDP poll every 50 ms)"
  echo
  echo "$FAILOVER"
  echo
  echo "#### Gateway added latency (\`meridian bench kv\`, 16 connections, same region, same run)"
  echo
  echo "$DIRECT"
  echo
  echo "$VIA"
} | tee "$OUT"
echo "wrote $OUT"
