#!/usr/bin/env bash
# Builds the `roost:latest` image without any registry: the release binary from this
# machine plus the shared libraries it links (glibc's DNS and files lookups live inside
# libc.so.6 since glibc 2.34, so service names resolve inside Docker networks).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tag="${1:-roost:latest}"
bin="${ROOST_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/roost}"
if [ ! -x "$bin" ] || [ -z "${ROOST_BIN:-}" ]; then
    # ROOST_CARGO_FEATURES: the features the test command builds with (one build, not two).
    # shellcheck disable=SC2086
    (cd "$repo" && cargo build --release --bin roost ${ROOST_CARGO_FEATURES:-})
fi
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/data" "$ctx/rootfs/tmp" "$ctx/rootfs/etc"
cp "$bin" "$ctx/rootfs/usr/local/bin/roost"
# Every library the binary needs, at the same path inside the image.
ldd "$bin" | grep -o '/[^ ]*' | while read -r lib; do
    mkdir -p "$ctx/rootfs$(dirname "$lib")"
    cp -L "$lib" "$ctx/rootfs$lib"
done
echo "root:x:0:0:root:/:/usr/local/bin/roost" > "$ctx/rootfs/etc/passwd"
echo "hosts: files dns" > "$ctx/rootfs/etc/nsswitch.conf"
cp "$repo/docker/Dockerfile.local" "$ctx/Dockerfile"
docker build -q -t "$tag" "$ctx"
echo "built $tag"
