"""The audit log (`audit.enable=true`): the same operations through kazoo against Apache ZooKeeper
3.8 and Roost must produce the same audit lines, field by field (session ids normalised).

ZooKeeper writes its audit lines through its logger (here: into server.log); Roost writes
`<dataLogDir>/zookeeper_audit.log`. Both use `key=value` pairs separated by tabs. Roost also
audits authentication attempts (`operation=auth`), which ZooKeeper does not; those lines are
checked separately.
"""

import re
import time
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, NoNodeError
from kazoo.security import make_digest_acl

import zkharness as h

FIELD_LINE = re.compile(r"(session=0x[0-9a-f]+\t)?(user=[^\t]*\t)?(ip=[^\t]*\t)?operation=")


def audit_lines(server) -> list:
    """The key=value part of every audit line the server wrote so far."""
    if server.kind == "roost" and h.roost_bin() != h.SELF_CHECK:
        text = (server.workdir / "data" / "zookeeper_audit.log").read_text()
    else:
        text = Path(server.log_path).read_text()
    out = []
    for line in text.splitlines():
        m = FIELD_LINE.search(line)
        if m and "result=" in line:
            out.append(line[m.start():])
    return out


def normalise(lines: list) -> list:
    """Session ids become s1, s2... in order of appearance; server start/stop lines and the OS
    user (it differs between a JVM and a Rust process only in how it is found) are dropped."""
    sessions = {}

    def sess(m):
        sid = m.group(1)
        sessions.setdefault(sid, f"s{len(sessions) + 1}")
        return "session=" + sessions[sid]

    out = []
    for line in lines:
        if "operation=serverStart" in line or "operation=serverStop" in line:
            continue
        out.append(re.sub(r"session=(0x[0-9a-f]+)", sess, line))
    return out


def workload(address: str) -> None:
    zk = KazooClient(hosts=address, timeout=15)
    zk.start(timeout=15)
    try:
        zk.create("/audit", b"x")
        zk.create("/audit/eph", b"", ephemeral=True)
        zk.create("/audit/seq-", b"", sequence=True)
        zk.create("/audit/cont", b"", makepath=False)
        zk.set("/audit", b"y")
        try:
            zk.set("/audit", b"z", version=99)
        except BadVersionError:
            pass
        zk.set_acls("/audit/cont", [make_digest_acl("bob", "secret", all=True)])
        zk.delete("/audit/seq-0000000001")
        try:
            zk.delete("/audit/missing")
        except NoNodeError:
            pass
        t = zk.transaction()
        t.create("/audit/m1", b"")
        t.set_data("/audit/m1", b"v")
        t.check("/audit", 1)
        t.commit()
        t = zk.transaction()
        t.create("/audit/m2", b"")
        t.check("/audit", 42)
        t.commit()
    finally:
        zk.stop()
        zk.close()


def run(kind: str) -> list:
    server = h.start_server(kind, {"audit.enable": "true"})
    try:
        workload(server.address)
        deadline = time.time() + 10
        lines = audit_lines(server)
        while time.time() < deadline and not any("ephemeralZNodeDeletion" in x for x in lines):
            time.sleep(0.2)
            lines = audit_lines(server)
        return lines
    finally:
        h.destroy(server)


def test_audit_lines_match_zookeeper():
    zookeeper = normalise(run("zookeeper"))
    roost = normalise(run("roost"))
    roost_writes = [x for x in roost if "operation=auth" not in x]
    assert any("operation=create" in x for x in zookeeper), zookeeper
    assert roost_writes == zookeeper, "\n".join(
        ["--- zookeeper"] + zookeeper + ["--- roost"] + roost_writes)


def test_auth_attempts_are_audited():
    if h.roost_bin() == h.SELF_CHECK:
        pytest.skip("a Roost addition: ZooKeeper does not audit authentication")
    server = h.start_server("roost", {"audit.enable": "true"})
    try:
        zk = KazooClient(hosts=server.address, timeout=15, auth_data=[("digest", "alice:pw")])
        zk.start(timeout=15)
        zk.stop()
        zk.close()
        time.sleep(0.5)
        lines = audit_lines(server)
    finally:
        h.destroy(server)
    auth = [x for x in lines if "operation=auth" in x]
    assert auth and ("user=127.0.0.1,alice" in auth[0] or "user=alice,127.0.0.1" in auth[0]), lines
    assert auth[0].endswith("result=success"), lines
    assert "pw" not in "\n".join(lines), "a password reached the audit log"


def test_http_logins_are_audited():
    if h.roost_bin() == h.SELF_CHECK:
        pytest.skip("a Roost addition: the HTTP port's logins")
    import requests

    http_port = h.free_port()
    server = h.start_server("roost", {"audit.enable": "true", "admin.enableServer": "true",
                                      "admin.serverPort": str(http_port)})
    try:
        base = f"http://127.0.0.1:{http_port}"
        deadline = time.time() + 20
        while True:
            try:
                requests.get(base + "/api/v1/cluster", timeout=2)
                break
            except requests.RequestException:
                assert time.time() < deadline, "HTTP port never answered"
                time.sleep(0.2)
        r = requests.post(base + "/api/v1/auth", json={"digest": "carol:secret-pw"}, timeout=5)
        assert r.status_code == 200, r.text
        r = requests.get(base + "/api/v1/znodes/", headers={"ZK-Auth": "digest dave:other-pw"}, timeout=5)
        assert r.status_code == 200, r.text
        time.sleep(0.3)
        lines = audit_lines(server)
    finally:
        h.destroy(server)
    auth = [x for x in lines if "operation=auth" in x]
    assert any("carol" in x and "ip=127.0.0.1" in x and x.endswith("result=success") for x in auth), lines
    assert any("dave" in x for x in auth), lines
    assert "secret-pw" not in "\n".join(lines) and "other-pw" not in "\n".join(lines)
