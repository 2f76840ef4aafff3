#!/usr/bin/env bash
# Curator + ZooKeeper Java client checks against Roost or Apache ZooKeeper (see run.py).
#
#   tests/clients/curator/run.sh                       # roost (ROOST_BIN), standalone then 3 members
#   tests/clients/curator/run.sh --target zookeeper    # the same checks against Apache ZooKeeper 3.8
#   tests/clients/curator/run.sh --size 3 --only failover_kill9_connected_member,reconnect_with_watches
#
# ROOST_TEST_TARGET=roost|zookeeper selects the target when --target is not given.
# Needs: openjdk-17-jdk-headless (javac), libcurator-recipes-java, libzookeeper-java, libguava-java,
# libslf4j-java, and for --target zookeeper the zookeeper package (server). Ports 24000-24999.
# Exit status 0 only when every check not in expected_failures.txt passed; last line
# `N passed, N failed`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Whole-run bound: both sizes take about 3-4 minutes; the driver bounds each size itself too.
exec timeout -k 15 "${CURATOR_RUN_TIMEOUT:-600}" python3 "$here/run.py" "$@"
