#!/usr/bin/env bash
# zk-shell 1.3.4's own test suite (from its PyPI sdist, fetched at run time) against Roost or Apache
# ZooKeeper. Its tests start their servers with kazoo's KazooTestHarness; the stand-in java in
# tests/compat/zkshim makes that start roost or the real ZooKeeper, as in tests/compat/run_kazoo.sh.
#
#   tests/clients/zkshell/run.sh                                 # roost, size 1 then 3
#   ROOST_TEST_TARGET=zookeeper tests/clients/zkshell/run.sh     # the same against Apache ZooKeeper
#   ZOOKEEPER_CLUSTER_SIZE=3 tests/clients/zkshell/run.sh        # or --size 3
#   tests/clients/zkshell/run.sh --size 1 -- -k acls             # extra pytest arguments after --
#
# Env: ROOST_BIN, TEST_OUTPUT_DIR (junit zkshell-<target>-<size>.xml), ZKSHELL_TEST_TIMEOUT (per
# test, 120 s), ZKSHELL_RUN_TIMEOUT (per size, 900 s), ZKSHELL_ARGS, ROOST_CLIENT_CACHE.
# Ports 23000-23024 (kazoo's ZOOKEEPER_PORT_OFFSET=23000). Exit 0 only when every test not listed in
# expected_failures.txt passed. The driver is shared with aiozk: tests/clients/aiozk/sdist_suite.py.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec timeout --kill-after=30 "${ZKSHELL_TOTAL_TIMEOUT:-2400}" python3 "$here/../aiozk/sdist_suite.py" zkshell "$@"
