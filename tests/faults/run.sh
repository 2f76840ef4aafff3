#!/usr/bin/env bash
# Fault-injection suite (CI stage). Needs root: network namespaces and iptables.
#
#   tests/faults/run.sh                              roost, fixed seeds, about 3-4 minutes
#   ROOST_TEST_TARGET=zookeeper tests/faults/run.sh  the same against Apache ZooKeeper 3.8
#   tests/faults/run.sh --soak                       about an hour of seeds (or FAULTS_SOAK=1)
#   tests/faults/run.sh --seed 7 [--faults 10]       replay one seed
#
# Env: ROOST_BIN (default target/release/roost of this checkout), TEST_OUTPUT_DIR
# (default test-output; reports go to $TEST_OUTPUT_DIR/faults), FAULTS_SEEDS (space-separated seeds
# for the normal mode, default "1"), FAULTS_SOAK_SECONDS (default 3600).
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
TARGET="${ROOST_TEST_TARGET:-roost}"
OUT="${TEST_OUTPUT_DIR:-$REPO/test-output}/faults"
SOAK="${FAULTS_SOAK:-0}"
SEEDS="${FAULTS_SEEDS:-1}"
FAULTS=10
ONE_SEED=""
while [ $# -gt 0 ]; do
    case "$1" in
        --soak) SOAK=1 ;;
        --seed) ONE_SEED="$2"; shift ;;
        --faults) FAULTS="$2"; shift ;;
        --target) TARGET="$2"; shift ;;
        *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

die() { echo "tests/faults: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "needs root (ip netns, iptables)"
for tool in ip iptables python3; do command -v "$tool" >/dev/null || die "$tool not found"; done
python3 -c "import kazoo, pytest" 2>/dev/null || die "python3 needs kazoo and pytest (scripts/test-all deps installs them)"
case "$TARGET" in
    roost)
        export ROOST_BIN="${ROOST_BIN:-$REPO/target/release/roost}"
        [ -x "$ROOST_BIN" ] || die "roost binary not found at $ROOST_BIN (set ROOST_BIN)" ;;
    zookeeper)
        [ -d /usr/share/zookeeper ] || die "Apache ZooKeeper not installed (apt-get install zookeeper)"
        command -v java >/dev/null || die "java not found" ;;
    *) die "unknown target $TARGET" ;;
esac
mkdir -p "$OUT"

echo "== checker unit tests"
(cd "$HERE" && timeout 120 python3 -m pytest -q -p no:cacheprovider test_checker.py) || exit 1

run_seed() {  # seed -> exit status of the suite; each run is bounded by timeout(1)
    echo "== $TARGET seed $1 ($FAULTS faults)"
    timeout --signal=TERM --kill-after=30 900 python3 "$HERE/suite.py" --target "$TARGET" --seed "$1" \
        --faults "$FAULTS" --out "$OUT"
}

status=0
failed=()
if [ -n "$ONE_SEED" ]; then
    run_seed "$ONE_SEED" || { status=1; failed+=("$ONE_SEED"); }
elif [ "$SOAK" = 1 ]; then
    end=$(( $(date +%s) + ${FAULTS_SOAK_SECONDS:-3600} ))
    seed=$(( $(date +%s) % 100000 ))
    while [ "$(date +%s)" -lt "$end" ]; do
        run_seed "$seed" || { status=1; failed+=("$seed"); }
        seed=$((seed + 1))
    done
else
    for seed in $SEEDS; do
        run_seed "$seed" || { status=1; failed+=("$seed"); }
    done
fi
if [ "$status" != 0 ]; then
    echo "tests/faults: FAILED for $TARGET, seeds: ${failed[*]} (replay: tests/faults/run.sh --seed N; reports in $OUT)"
else
    echo "tests/faults: all assertions held for $TARGET (reports in $OUT)"
fi
exit "$status"
