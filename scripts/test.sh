#!/usr/bin/env bash
# Runs Meridian's whole test suite on a fresh machine: installs what the tests need, then the
# Rust tests (unit, property, contract) and the black-box tests that drive the real binary with
# boto3 over loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> installing test dependencies (pip: tests/python/requirements.txt)"
python3 -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt

# A deliberately broken build (cargo features `broken-apply`: replication applies changes in
# arrival order, no dedup, no last-writer-wins; `broken-sessions`: session tokens are never
# enforced), kept as `meridian-broken`: the drill tests show the drills catch both. Built first,
# so the real binary is what `target/debug/meridian` is after.
echo "==> building the deliberately broken binary (meridian-broken, test-only)"
target_dir=${CARGO_TARGET_DIR:-target}
cargo build --quiet -p meridian --features broken-apply,broken-sessions
cp "$target_dir/debug/meridian" "$target_dir/debug/meridian-broken"

echo "==> building the meridian binary"
cargo build --quiet -p meridian

echo "==> Rust tests"
cargo test --quiet --workspace

echo "==> black-box tests (real binary, boto3, loopback)"
python3 -m pytest tests/python -q --timeout 600 -p no:cacheprovider
