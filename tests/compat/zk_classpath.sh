#!/usr/bin/env bash
# Prints a classpath that runs the Apache ZooKeeper server/CLI shipped by Debian's `zookeeper` package.
# zookeeper.jar's manifest pulls in its own dependencies (Class-Path); we add a logging backend
# (log4j 1.2 via slf4j-log4j12) so the log4j.properties kazoo writes takes effect, and the netty
# jars that Debian's manifest omits but the Netty connection factory (kazoo's harness uses it) needs.
# Override with ZOOKEEPER_REAL_CLASSPATH.
set -euo pipefail
if [ -n "${ZOOKEEPER_REAL_CLASSPATH:-}" ]; then
    printf '%s\n' "$ZOOKEEPER_REAL_CLASSPATH"
    exit 0
fi
jars=()
for d in /usr/share/java /usr/share/zookeeper /usr/share/zookeeper/lib; do
    for j in "$d"/zookeeper.jar "$d"/zookeeper-jute.jar "$d"/slf4j-api.jar "$d"/slf4j-log4j12.jar "$d"/log4j-1.2.jar \
             "$d"/netty-codec.jar "$d"/netty-resolver.jar "$d"/netty-transport-native-unix-common.jar; do
        [ -f "$j" ] && jars+=("$j")
    done
done
found=0
for j in "${jars[@]}"; do case "$j" in */zookeeper.jar) found=1 ;; esac; done
if [ "$found" = 0 ]; then
    echo "zk_classpath.sh: zookeeper.jar not found (apt-get install zookeeper)" >&2
    exit 1
fi
(IFS=:; printf '%s\n' "${jars[*]}")
