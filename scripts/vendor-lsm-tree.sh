#!/usr/bin/env bash
# Recreates vendor/lsm-tree from crates.io: lsm-tree at the version below, with Meridian's
# patches (docs/design/patches/, listed in vendor/README.md) applied in order and upstream's
# [dev-dependencies] removed (its benches and tests need crates Meridian does not build).
#
#   scripts/vendor-lsm-tree.sh           rewrite vendor/lsm-tree
#   scripts/vendor-lsm-tree.sh --check   fail if vendor/lsm-tree is not exactly that (CI runs it)
#
# Needs cargo and access to the crates.io registry, nothing else.
set -euo pipefail

VERSION=3.1.10
PATCHES=(version-lock writeback quiet)

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The pristine crate, fetched the way cargo fetches any dependency.
mkdir -p "$work/fetch/src"
echo 'fn main() {}' > "$work/fetch/src/main.rs"
cat > "$work/fetch/Cargo.toml" <<EOF
[package]
name = "fetch"
version = "0.0.0"
edition = "2021"

[dependencies]
lsm-tree = "=$VERSION"

[workspace]
EOF
(cd "$work/fetch" && cargo vendor --quiet --versioned-dirs "$work/crates" > /dev/null)

out="$work/lsm-tree"
cp -r "$work/crates/lsm-tree-$VERSION" "$out"
rm -f "$out/.cargo-checksum.json" "$out/.cargo_vcs_info.json"
rm -rf "$out/benches" "$out/tests"

# Upstream's [dev-dependencies.*] tables: each runs from its header to the next blank line.
awk '/^\[dev-dependencies/ { skip = 1; next } skip && /^$/ { skip = 0; next } !skip' \
    "$out/Cargo.toml" > "$out/Cargo.toml.new"
mv "$out/Cargo.toml.new" "$out/Cargo.toml"

for p in "${PATCHES[@]}"; do
    (cd "$out" && patch -p1 --quiet --no-backup-if-mismatch \
        < "$repo/docs/design/patches/lsm-tree-$VERSION-$p.patch")
done

if [[ "${1:-}" == "--check" ]]; then
    if ! diff -r -q "$out" "$repo/vendor/lsm-tree"; then
        echo "vendor/lsm-tree is not lsm-tree $VERSION with the patches ${PATCHES[*]}:" >&2
        echo "recreate it with scripts/vendor-lsm-tree.sh (or add the missing patch)" >&2
        exit 1
    fi
    echo "vendor/lsm-tree is lsm-tree $VERSION with the patches ${PATCHES[*]}"
else
    rm -rf "$repo/vendor/lsm-tree"
    cp -r "$out" "$repo/vendor/lsm-tree"
    echo "vendor/lsm-tree recreated: lsm-tree $VERSION with the patches ${PATCHES[*]}"
fi
