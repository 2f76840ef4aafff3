#!/bin/bash
# A/B of two roost binaries as 3-member ensembles (tests/clients/ensemble.py, HTTP on as shipped),
# ${BIN_PREFIX}old and ${BIN_PREFIX}new (default prefix /tmp/roost-bin/roost-), alternating, 2 rounds
# of roost-bench set and get against the leader, 32 sessions x 16 in flight, 5 s. Used on 2026-12-03
# for the cost of answering writers only once the commit notices are on the followers' sockets.
repo="$(cd "$(dirname "$0")/../.." && pwd)"
B="$repo/target/release/roost-bench"
base=29700
for round in 1 2; do
 for v in old new; do
  tmp=$(mktemp -d)
  ROOST_BIN=${BIN_PREFIX:-/tmp/roost-bin/roost-}$v python3 "$repo/tests/clients/ensemble.py" --kind roost --size 3 \
      --base-port $base >"$tmp/cs" 2>"$tmp/err" &
  ens=$!
  for _ in $(seq 60); do [ -s "$tmp/cs" ] && break; sleep 0.5; done
  leader=""
  for m in 1 2 3; do
    mode=$(python3 -c "import sys; sys.path.insert(0, '$repo/tests/compat'); import zkharness; print(zkharness.four_letter($base + $m, 'srvr'))" | awk '/^Mode:/ {print $2}')
    [ "$mode" = leader ] && leader=$((base + m))
  done
  for w in set get; do
    r=$($B $w --servers 127.0.0.1:$leader --sessions 32 --inflight 16 --duration 5 --warmup 1 --label $v-$w 2>/dev/null | python3 -c "import json,sys; d=json.load(sys.stdin); print(round(d['throughput']), 'ops/s p50', d['latency_us']['p50'], 'us p99', d['latency_us']['p99'], 'us')" 2>&1)
    echo "round $round $v $w (leader $leader): $r"
  done
  kill "$ens"; wait "$ens" 2>/dev/null; rm -rf "$tmp"; sleep 1
 done
done
