#!/bin/bash
# A/B of two roost binaries, ${BIN_PREFIX}old and ${BIN_PREFIX}new (default prefix /tmp/roost-bin/roost-), standalone as shipped
# (HTTP on), alternating, 2 rounds of roost-bench get/set, 32 sessions x 16 in flight, 5 s. Used on
# 2026-12-03 to measure the cost of the client-port flow control (see the session note).
B="$(cd "$(dirname "$0")/../.." && pwd)/target/release/roost-bench"
for round in 1 2; do
 for v in old new; do
  d=$(mktemp -d); ${BIN_PREFIX:-/tmp/roost-bin/roost-}$v --client-port 24501 --http-port 24502 --data-dir $d >/dev/null 2>&1 &
  pid=$!; sleep 1.5
  for w in get set; do
    r=$($B $w --servers 127.0.0.1:24501 --sessions 32 --inflight 16 --duration 5 --warmup 1 --label $v-$w 2>/dev/null | python3 -c "import json,sys; d=json.load(sys.stdin); print(round(d['throughput']), 'ops/s p50', d['latency_us']['p50'], 'us p99', d['latency_us']['p99'], 'us')" 2>&1)
    echo "round $round $v $w: $r"
  done
  kill -9 $pid; wait $pid 2>/dev/null; rm -rf $d
 done
done
