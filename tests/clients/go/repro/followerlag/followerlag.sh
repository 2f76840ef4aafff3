#!/usr/bin/env bash
# Starts a 3-member ensemble (tests/clients/ensemble.py; Roost or Apache ZooKeeper) and runs
# main.go: create through the leader, read at once through a follower (TestBasicCluster's shape).
#   tests/clients/go/repro/followerlag/followerlag.sh roost|zookeeper [--as-test] [-n N]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kind="${1:-roost}"; shift || true
base="${GOZK_REPRO_BASE_PORT:-25500}"
tmp="$(mktemp -d)"
python3 "$here/../../../ensemble.py" --kind "$kind" --size 3 --base-port "$base" >"$tmp/cs" 2>"$tmp/err" &
ens=$!
trap 'kill "$ens" 2>/dev/null; wait "$ens" 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 120); do [ -s "$tmp/cs" ] && break; kill -0 "$ens" || { cat "$tmp/err"; exit 1; }; sleep 0.5; done
echo "$kind ensemble: $(cat "$tmp/cs")"
modes="$(python3 -c "
import sys; sys.path.insert(0, '$here/../../../../compat'); import zkharness
for m in (1, 2, 3):
    mode = [l.split(': ')[1] for l in zkharness.four_letter($base + m, 'srvr').splitlines() if l.startswith('Mode')]
    print(m, mode[0] if mode else '?')")"
echo "$modes"
# TestBasicCluster writes through member 1 and reads through member 2. Which of them leads depends
# on the server (Roost: member 1; ZooKeeper: usually member 3), so by default write through the
# leader and read through a follower on both; --as-test uses members 1 and 2 as the test does.
leader="$(awk '$2 == "leader" {print $1}' <<<"$modes")"
follower="$(awk '$2 == "follower" {print $1; exit}' <<<"$modes")"
w=$leader; r=$follower
if [ "${1:-}" = --as-test ]; then shift; w=1; r=2; fi
cd "$here" && GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= GOPROXY=off GOCACHE="$tmp/gocache" \
    go run main.go "$@" "127.0.0.1:$((base + w))" "127.0.0.1:$((base + r))"
