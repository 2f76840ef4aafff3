#!/usr/bin/env bash
# aiozk 0.32.0's own test suite (from its PyPI sdist, fetched at run time) against Roost or Apache
# ZooKeeper, standalone and as a 3-member ensemble started by tests/clients/ensemble.py.
#
#   tests/clients/aiozk/run.sh                                   # roost, size 1 then 3
#   ROOST_TEST_TARGET=zookeeper tests/clients/aiozk/run.sh       # the same against Apache ZooKeeper
#   ZOOKEEPER_CLUSTER_SIZE=3 tests/clients/aiozk/run.sh          # or --size 3
#   tests/clients/aiozk/run.sh --size 1 -- -k test_lock -x       # extra pytest arguments after --
#
# Env: ROOST_BIN, TEST_OUTPUT_DIR (junit aiozk-<target>-<size>.xml), AIOZK_TEST_TIMEOUT (per test,
# 60 s), AIOZK_RUN_TIMEOUT (per size, 900 s), AIOZK_ARGS, ROOST_CLIENT_CACHE (venv + sdist cache).
# Ports 23501-23503, 23601-23603, 23701-23703. Exit 0 only when every test not listed in
# expected_failures.txt passed. See sdist_suite.py.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec timeout --kill-after=30 "${AIOZK_TOTAL_TIMEOUT:-2400}" python3 "$here/sdist_suite.py" aiozk "$@"
