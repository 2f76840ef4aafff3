#!/usr/bin/env bash
# Runs kazoo's Kerberos tests (kazoo/tests/test_sasl.py::TestSASLGSSAPIAuthentication) against roost
# or Apache ZooKeeper, with a throw-away MIT KDC from kdc.sh.
#
#   ROOST_TEST_TARGET=roost|zookeeper tests/kerberos/run_kazoo_gssapi.sh [pytest args]
#
# The server is launched exactly as tests/compat/run_kazoo.sh launches it (kazoo's harness spawns
# `java ... QuorumPeerMain`, answered by the stand-in tests/compat/zkshim/java); ROOST_BIN points
# at the roost binary. What kazoo needs from the environment:
#   KRB5_TEST_ENV  the KDC directory: the tests skip without it, the harness writes
#                  keyTab="$KRB5_TEST_ENV/server.keytab" into the server's JAAS file, and the
#                  tests run `kinit -kt $KRB5_TEST_ENV/client.keytab client` themselves
#   KRB5_CONFIG    the client profile; the harness also passes it to the server as
#                  -Djava.security.krb5.conf
#   KRB5CCNAME     a ticket cache in the KDC directory, so kinit does not touch the user's own
#   ZOOKEEPER_JAAS_AUTH=gssapi  (the test class sets it too)
# plus the Python modules pure-sasl and kerberos (pykerberos), installed here with pip if missing
# (pykerberos builds against libkrb5-dev, installed with apt-get when missing and we are root).
#
# Exit status: pytest's (0 when both tests passed). Without KRB5_TEST_ENV, pure-sasl or kerberos
# kazoo would skip the tests, so this script fails instead if either test was skipped.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

py_has() { python3 -c "import $1" >/dev/null 2>&1; }

if ! py_has kerberos; then
    if ! command -v krb5-config >/dev/null || ! command -v gcc >/dev/null; then
        if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
            DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libkrb5-dev gcc >&2
        else
            echo "run_kazoo_gssapi.sh: pykerberos needs libkrb5-dev and gcc to build" >&2
            exit 1
        fi
    fi
    python3 -m pip install --quiet kerberos
fi
py_has puresasl || python3 -m pip install --quiet pure-sasl
py_has kerberos && py_has puresasl || {
    echo "run_kazoo_gssapi.sh: python modules kerberos and puresasl are still missing" >&2
    exit 1
}

kdc_dir="$(mktemp -d "${TMPDIR:-/tmp}/kazoo-kdc.XXXXXX")"
junit_dir="$(mktemp -d "${TMPDIR:-/tmp}/kazoo-gssapi-out.XXXXXX")"
cleanup() {
    "$here/kdc.sh" stop "$kdc_dir" >/dev/null || true
    rm -rf "$kdc_dir" "$junit_dir"
}
trap cleanup EXIT

"$here/kdc.sh" start "$kdc_dir"
# shellcheck source=/dev/null
. "$kdc_dir/env"
export ZOOKEEPER_JAAS_AUTH=gssapi

set +e
TEST_OUTPUT_DIR="$junit_dir" "$repo/tests/compat/run_kazoo.sh" -k TestSASLGSSAPIAuthentication -rs "$@"
rc=$?
set -e

# Both tests must have run: a skip means the Kerberos environment did not reach kazoo.
junit="$(ls "$junit_dir"/kazoo-*.xml 2>/dev/null | head -n1 || true)"
if [ "$rc" -eq 0 ] && [ -n "$junit" ]; then
    skipped="$(python3 - "$junit" <<'EOF'
import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
cases = root.iter("testcase")
print(sum(1 for c in cases if c.find("skipped") is not None))
EOF
)"
    if [ "$skipped" != 0 ]; then
        echo "run_kazoo_gssapi.sh: $skipped test(s) skipped; the Kerberos environment did not take effect" >&2
        rc=1
    fi
fi
if [ -n "${TEST_OUTPUT_DIR:-}" ] && [ -n "$junit" ]; then
    mkdir -p "$TEST_OUTPUT_DIR"
    cp "$junit" "$TEST_OUTPUT_DIR/kazoo-gssapi-${ROOST_TEST_TARGET:-roost}.xml"
fi
exit "$rc"
