#!/usr/bin/env bash
# Runs kazoo's own test suite (pytest --pyargs kazoo.tests) against roost or against real ZooKeeper.
#
# kazoo's harness can only spawn servers with `java ... QuorumPeerMain <zoo.cfg>`, so we put the
# stand-in launcher tests/compat/zkshim/java first on PATH; it starts the server chosen by
# ROOST_TEST_TARGET (roost | zookeeper). See TESTING.md for every variable.
#
# Exit status: 0 when every test not listed in kazoo_expected_failures.txt passed.
# Extra arguments are passed to pytest (e.g. `-k test_lock` or `-x`).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

target="${ROOST_TEST_TARGET:-roost}"
# ROOST_BIN=zookeeper is the self-check mode of the CLI tests; mean the same thing here.
if [ "${ROOST_BIN:-}" = zookeeper ]; then target=zookeeper; fi
size="${ZOOKEEPER_CLUSTER_SIZE:-1}"
out_dir="${TEST_OUTPUT_DIR:-$repo/test-output}"
mkdir -p "$out_dir"

case "$target" in
    roost)
        # Our server's envi reports zookeeper.version=3.8.4-roost; kazoo's CI-only test_build.py
        # asserts that this matches ZOOKEEPER_VERSION.
        default_version=3.8.4
        bin="${ROOST_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/roost}"
        if [ ! -x "$bin" ]; then
            echo "run_kazoo.sh: roost binary not found at $bin (cargo build --release, or set ROOST_BIN)" >&2
            exit 1
        fi
        export ROOST_BIN="$bin"
        ;;
    zookeeper)
        # The version the installed Apache jar reports in envi (Debian bookworm: 3.8.0).
        cp="$("$here/zk_classpath.sh")"
        default_version="$(java -cp "$cp" org.apache.zookeeper.version.VersionInfoMain 2>/dev/null \
            | sed -n 's/.*version \([0-9][0-9.]*[0-9]\).*/\1/p' | head -n1)"
        if [ -z "$default_version" ]; then
            echo "run_kazoo.sh: cannot determine the installed ZooKeeper version" >&2
            exit 1
        fi
        ;;
    *)
        echo "run_kazoo.sh: ROOST_TEST_TARGET must be roost or zookeeper (got $target)" >&2
        exit 2
        ;;
esac

export ROOST_TEST_TARGET="$target"
export ZOOKEEPER_CLUSTER_SIZE="$size"
export ZOOKEEPER_VERSION="${ZOOKEEPER_VERSION:-$default_version}"
# kazoo globs jars from ZOOKEEPER_PATH unless ZOOKEEPER_CLASSPATH is set; the shim ignores it.
export ZOOKEEPER_CLASSPATH="${ZOOKEEPER_CLASSPATH:-provided-by-zkshim}"
export ZOOKEEPER_PORT_OFFSET="${ZOOKEEPER_PORT_OFFSET:-20000}"
export PATH="$here/zkshim:$PATH"
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"

junit="$out_dir/kazoo-$target-$size.xml"
echo "kazoo suite: target=$target cluster_size=$size ZOOKEEPER_VERSION=$ZOOKEEPER_VERSION" \
     "ports=$ZOOKEEPER_PORT_OFFSET.. junit=$junit"

# Run from a scratch dir so no project pytest config or conftest leaks into kazoo's tests.
work="$(mktemp -d "${TMPDIR:-/tmp}/kazoo-run.XXXXXX")"
# The shim records the pid of every server it execs here, so leftovers can be ended precisely.
export ZKSHIM_PIDFILE="$work/server.pids"
cleanup() {
    # kazoo stops its servers via atexit; end any straggler that this run's shim started.
    python3 "$here/zkharness.py" kill-pidfile "$ZKSHIM_PIDFILE" || true
    rm -rf "$work"
}
trap cleanup EXIT

set +e
# hypothesis (pulled in by schemathesis for the OpenAPI check) auto-loads a pytest plugin that
# keeps a `TreeNode` object alive; kazoo's TreeCache leak test counts objects by that class name.
(cd "$work" && python3 -m pytest --pyargs kazoo.tests \
    -c /dev/null --rootdir "$work" \
    -p no:cacheprovider -p no:hypothesispytest -p no:schemathesis -p kazoo_xfail \
    --timeout="${KAZOO_TEST_TIMEOUT:-180}" \
    -o junit_family=xunit2 --junitxml="$junit" \
    -rfEX -q "$@")
rc=$?
set -e

exit "$rc"
