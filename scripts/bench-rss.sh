#!/usr/bin/env bash
# Memory of a Meridian region server holding many items: starts a release region server on a
# fresh data directory, bulk-loads ITEMS items of ~200 B with BatchWriteItem
# (`meridian bench load`), and reports the server's VmRSS / VmHWM (from /proc/<pid>/status)
# before the load, right after it, after SETTLE_SECS idle, and after a short GetItem + PutItem
# phase over the loaded keys (`meridian bench kv`), plus the size of the data directory.
#
#   scripts/bench-rss.sh            # 1,000,000 items; target: VmRSS <= 200 MB after loading
#
# Environment knobs (defaults in brackets):
#   ITEMS [1000000]  VALUE_BYTES [190] (-> 200 B items: "pk" + "k999999" + "v" + 190)  CONNECTIONS [8] (load connections)
#   SETTLE_SECS [10]  KV_SECS [10] (measured kv phases after the load; 0: skip)
#   MERIDIAN_BIN [target/release/meridian]  PORT [8610]
#   OUT_DIR [bench-out/rss]  report (rss.md, rss.json), load report, server log
#   KEEP_DATA [0]  1: keep the data directory (printed) instead of deleting it
#
# The server listens on 127.0.0.1 only and is stopped on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ITEMS="${ITEMS:-1000000}"
VALUE_BYTES="${VALUE_BYTES:-190}"
CONNECTIONS="${CONNECTIONS:-8}"
SETTLE_SECS="${SETTLE_SECS:-10}"
KV_SECS="${KV_SECS:-10}"
MERIDIAN_BIN="${MERIDIAN_BIN:-$ROOT/target/release/meridian}"
PORT="${PORT:-8610}"
OUT_DIR="${OUT_DIR:-$ROOT/bench-out/rss}"
KEEP_DATA="${KEEP_DATA:-0}"
LIMIT_MB=200

SERVER_PID=
DATA_DIR=

log() { printf '[bench-rss] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ -n "$DATA_DIR" && -d "$DATA_DIR" ]]; then
    if [[ "$KEEP_DATA" == 1 ]]; then log "data kept in $DATA_DIR"; else rm -rf -- "$DATA_DIR"; fi
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[[ -x "$MERIDIAN_BIN" ]] || die "$MERIDIAN_BIN not built (cargo build --release -p meridian)"
"$MERIDIAN_BIN" bench load --help >/dev/null 2>&1 \
  || die "$MERIDIAN_BIN has no 'bench load' (rebuild: cargo build --release -p meridian)"
if timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null; then
  die "127.0.0.1:$PORT is already in use"
fi
mkdir -p "$OUT_DIR"
DATA_DIR="$(mktemp -d "${TMPDIR:-/tmp}/bench-rss.XXXXXX")"
ENDPOINT="http://127.0.0.1:$PORT"

SERVER_CMD=("$MERIDIAN_BIN" region --region bench --listen "127.0.0.1:$PORT" --data-dir "$DATA_DIR/data")
log "starting: ${SERVER_CMD[*]}"
"${SERVER_CMD[@]}" >"$OUT_DIR/meridian.log" 2>&1 &
SERVER_PID=$!
deadline=$((SECONDS + 60))
until timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null; do
  kill -0 "$SERVER_PID" 2>/dev/null || die "server exited; see $OUT_DIR/meridian.log"
  ((SECONDS < deadline)) || die "port $PORT not open after 60 s"
  sleep 0.2
done

# status_kb FIELD: FIELD (VmRSS, VmHWM, RssAnon, RssFile) of the server, in kB.
status_kb() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$SERVER_PID/status"; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
du_mb() { du -sk "$DATA_DIR/data" | awk '{ printf "%.1f", $1 / 1024 }'; }

ROWS=()
JSON_ROWS=()
# sample WHEN: records the server's memory now.
sample() {
  local when=$1 rss hwm anon file
  rss="$(status_kb VmRSS)"; hwm="$(status_kb VmHWM)"
  anon="$(status_kb RssAnon)"; file="$(status_kb RssFile)"
  ROWS+=("| $when | $(mb "$rss") | $(mb "$hwm") | $(mb "$anon") | $(mb "$file") | $(du_mb) |")
  JSON_ROWS+=("{\"when\":\"$when\",\"vm_rss_kb\":$rss,\"vm_hwm_kb\":$hwm,\"rss_anon_kb\":$anon,\"rss_file_kb\":$file,\"data_dir_kb\":$(du -sk "$DATA_DIR/data" | cut -f1)}")
  log "$when: VmRSS $(mb "$rss") MB, VmHWM $(mb "$hwm") MB (anon $(mb "$anon"), file $(mb "$file")), data dir $(du_mb) MB"
}

sample "started (empty store)"

LOAD_CMD=("$MERIDIAN_BIN" bench load --endpoint "$ENDPOINT" --keys "$ITEMS"
  --value-bytes "$VALUE_BYTES" --connections "$CONNECTIONS" --label "Meridian region" --json)
log "loading: ${LOAD_CMD[*]}"
"${LOAD_CMD[@]}" | tee "$OUT_DIR/load.json"
AFTER_LOAD_RSS="$(status_kb VmRSS)"
sample "after loading $ITEMS items"

sleep "$SETTLE_SECS"
sample "after ${SETTLE_SECS} s idle"

KV_CMD=()
if ((KV_SECS > 0)); then
  KV_CMD=("$MERIDIAN_BIN" bench kv --endpoint "$ENDPOINT" --keys "$ITEMS" --value-bytes "$VALUE_BYTES"
    --connections 32 --duration-secs "$KV_SECS" --label "Meridian region (loaded)" --json)
  # kv writes keys k0, k1, ... then reads random keys among those it wrote, i.e. the first part
  # of the loaded key space; all of them exist.
  log "running: ${KV_CMD[*]}"
  "${KV_CMD[@]}" | tee "$OUT_DIR/kv-after-load.json"
  sample "after ${KV_SECS} s PutItem/GetItem (32 conns)"
fi

verdict="FAIL"
if (($(mb "$AFTER_LOAD_RSS" | cut -d. -f1) <= LIMIT_MB)); then verdict="PASS"; fi
items_per_sec="$(jq -r '.items_per_sec | floor' "$OUT_DIR/load.json" 2>/dev/null || echo '?')"
item_bytes="$(jq -r '.item_bytes' "$OUT_DIR/load.json" 2>/dev/null || echo '?')"
{
  echo "Meridian region server ($("$MERIDIAN_BIN" --version)), $(date -u +%Y-%m-%dT%H:%M:%SZ):"
  echo "$ITEMS items of ~$item_bytes B loaded with BatchWriteItem at $items_per_sec items/s."
  echo
  echo "| when | VmRSS MB | VmHWM MB | RssAnon MB | RssFile MB | data dir MB |"
  echo "|---|---:|---:|---:|---:|---:|"
  printf '%s\n' "${ROWS[@]}"
  echo
  echo "Target VmRSS <= $LIMIT_MB MB after loading: $verdict ($(mb "$AFTER_LOAD_RSS") MB)."
  echo
  echo "Commands:"
  echo
  echo "    ${SERVER_CMD[*]}"
  echo "    ${LOAD_CMD[*]}"
  if ((${#KV_CMD[@]})); then echo "    ${KV_CMD[*]}"; fi
} | tee "$OUT_DIR/rss.md"
(IFS=,; echo "{\"items\":$ITEMS,\"limit_mb\":$LIMIT_MB,\"verdict\":\"$verdict\",\"samples\":[${JSON_ROWS[*]}]}") >"$OUT_DIR/rss.json"
