"""Helpers of the ZooKeeper <-> Roost migration tests: a real Apache ZooKeeper and Roost started on
chosen data directories and ports (restartable on the same address), a kazoo filler that makes every
kind of znode, and a full dump (data, every Stat field, ACLs, sessions with ephemerals, last zxid)
for comparing two servers."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections import namedtuple
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "compat"))

import zkharness as h  # noqa: E402
from kazoo.client import KazooClient  # noqa: E402
from kazoo.protocol.serialization import Create2, int_struct, long_struct  # noqa: E402
from kazoo.security import ACL, Id, make_digest_acl  # noqa: E402

SUPER_AUTH = ("digest", "super:test")  # h.SUPER_DIGEST is its digest
SYSPROPS = {
    "zookeeper.extendedTypesEnabled": "true",
    "zookeeper.DigestAuthenticationProvider.superDigest": h.SUPER_DIGEST,
}
SNAPPY_JAR = Path("/usr/share/java/snappy-java.jar")


def roost_bin() -> str:
    binary = h.roost_bin()
    if not os.access(binary, os.X_OK):
        raise h.HarnessError(f"roost binary not found at {binary}: run `cargo build --release`")
    return binary


@dataclass
class Proc:
    kind: str
    port: int
    cfg: Path
    proc: "subprocess.Popen"
    log: Path

    def stop(self) -> None:
        h._end(self.proc)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        h._LIVE.pop(self.proc.pid, None)


def write_cfg(path: Path, port: int, data_dir: Path, extra: Optional[Dict[str, str]] = None) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    cfg = {"tickTime": "2000", "dataDir": str(data_dir), "clientPort": str(port), "maxClientCnxns": "0",
           "admin.enableServer": "false", "4lw.commands.whitelist": "*", "maxSessionTimeout": "600000"}
    cfg.update(extra or {})
    path.write_text("".join(f"{k}={v}\n" for k, v in cfg.items()))
    return path


def start_zookeeper(workdir: Path, port: int, data_dir: Path, extra: Optional[Dict[str, str]] = None,
                    sysprops: Optional[Dict[str, str]] = None, wait: bool = True) -> Proc:
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = write_cfg(workdir / "zoo.cfg", port, data_dir, extra)
    log = workdir / "zookeeper.log"
    classpath = h.zk_classpath()
    if SNAPPY_JAR.exists():
        classpath += ":" + str(SNAPPY_JAR)
    props = dict(SYSPROPS, **(sysprops or {}))
    argv = ["java", "-cp", classpath, "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-Dlog4j.configuration=file:" + str(h.console_log4j(workdir))]
    argv += [f"-D{k}={v}" for k, v in props.items()]
    argv += ["org.apache.zookeeper.server.quorum.QuorumPeerMain", str(cfg)]
    proc = Proc("zookeeper", port, cfg, h.spawn(argv, log, cwd=str(workdir)), log)
    if wait:
        h.wait_serving(port, proc.proc, log, timeout=90)
    return proc


def start_roost(workdir: Path, port: int, data_dir: Path, extra: Optional[Dict[str, str]] = None,
                wait: bool = True) -> Proc:
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = write_cfg(workdir / "roost.cfg", port, data_dir, dict({"admin.serverPort": "0"}, **(extra or {})))
    log = workdir / "roost.log"
    argv = [roost_bin(), "--config", str(cfg)]
    for k, v in SYSPROPS.items():
        argv += ["-D", f"{k}={v}"]
    proc = Proc("roost", port, cfg, h.spawn(argv, log, cwd=str(workdir)), log)
    if wait:
        h.wait_serving(port, proc.proc, log, timeout=90)
    return proc


def roost_cmd(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    out = subprocess.run([roost_bin(), *args], capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(f"roost {' '.join(args)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out


# --------------------------------------------------------------------------------------------
# Kinds of node kazoo has no call for: containers and TTL nodes (create modes 4, 5, 6).

class CreateContainer(Create2):
    type = 19


class CreateTTL(namedtuple("CreateTTL", "path data acl flags ttl")):
    type = 21

    def serialize(self):
        b = Create2(self.path, self.data, self.acl, self.flags).serialize()
        b.extend(long_struct.pack(self.ttl))
        return b

    deserialize = Create2.deserialize


OPEN = [ACL(31, Id("world", "anyone"))]


def create_container(client: KazooClient, path: str, data: bytes = b"") -> str:
    result = client.handler.async_result()
    client._call(CreateContainer(path, data, OPEN, 4), result)
    return result.get(timeout=10)[0]


def create_ttl(client: KazooClient, path: str, ttl_ms: int, data: bytes = b"", sequence: bool = False) -> str:
    result = client.handler.async_result()
    client._call(CreateTTL(path, data, OPEN, 6 if sequence else 5, ttl_ms), result)
    return result.get(timeout=10)[0]


def connect(port: int, timeout: float = 30.0, **kw) -> KazooClient:
    client = KazooClient(hosts=f"127.0.0.1:{port}", timeout=timeout, auth_data=[SUPER_AUTH], **kw)
    client.start(timeout=30)
    return client


def fill(port: int, scale: int = 1) -> List[KazooClient]:
    """Every kind of znode, ACLs, deep and wide trees, binary data, and many txns (with deletes,
    setData/setACL, multis, failed writes). Returns clients holding ephemerals, still open."""
    admin = connect(port)
    admin.create("/app", b"root of the app")
    for i in range(3):
        admin.create("/app/seq-", f"s{i}".encode(), sequence=True)
    admin.create("/app/empty", b"")
    admin.create("/app/null", None)
    admin.create("/app/binary", bytes(range(256)) * 4)
    deep = "/deep"
    for i in range(40):
        deep += f"/d{i}"
    admin.create(deep, b"bottom", makepath=True)
    admin.create("/wide")
    for i in range(300 * scale):
        admin.create(f"/wide/n{i:05d}", str(i).encode() * (i % 7))
    for i in range(0, 300 * scale, 3):
        admin.delete(f"/wide/n{i:05d}")
    for i in range(1, 300 * scale, 3):
        admin.set(f"/wide/n{i:05d}", b"updated")
        admin.set(f"/wide/n{i:05d}", b"updated again")
    admin.create("/acl")
    admin.create("/acl/digest", b"secret", acl=[make_digest_acl("bob", "pw", all=True)])
    admin.create("/acl/world-read", b"r", acl=[ACL(1, Id("world", "anyone"))])
    admin.create("/acl/ip", b"ip", acl=[ACL(31, Id("ip", "127.0.0.1")), ACL(1, Id("ip", "10.0.0.0/8"))])
    admin.set_acls("/acl/ip", [ACL(31, Id("ip", "127.0.0.1"))])
    admin.set_acls("/acl/world-read", [ACL(3, Id("world", "anyone"))])
    create_container(admin, "/container")
    admin.create("/container/child", b"keeps it")
    create_ttl(admin, "/ttl", 3_600_000, b"lives an hour")
    create_ttl(admin, "/app/ttl-seq-", 3_600_000, sequence=True)
    tx = admin.transaction()
    tx.create("/multi-a", b"a")
    tx.create("/multi-b", b"b")
    tx.set_data("/app", b"changed in a multi")
    tx.commit()
    failed = admin.transaction()
    failed.create("/multi-never", b"x")
    failed.create("/app")  # exists: the whole multi fails, still logged
    failed.commit()
    try:
        admin.create("/app")  # a failed write consumes a zxid too
    except Exception:
        pass
    admin.ensure_path("/zookeeper/quota/wide")
    admin.create("/zookeeper/quota/wide/zookeeper_limits", b"count=100000,bytes=-1")
    admin.create("/zookeeper/quota/wide/zookeeper_stats", b"count=0,bytes=0")
    admin.create("/wide/after-quota", b"counted")
    holders = []
    for i in range(3):
        c = connect(port, timeout=60.0)
        c.create(f"/app/eph-{i}", f"owner {i}".encode(), ephemeral=True)
        c.create("/app/eph-seq-", b"", ephemeral=True, sequence=True)
        holders.append(c)
    closed = connect(port)
    closed.create("/app/gone-with-session", ephemeral=True)
    closed.stop()  # closeSession: its ephemeral goes
    admin.stop()
    return holders


def walk(client: KazooClient, path: str = "/"):
    yield path
    for child in sorted(client.get_children(path)):
        yield from walk(client, (path.rstrip("/") + "/" + child))


STAT_FIELDS = ("czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion", "ephemeralOwner",
               "dataLength", "numChildren", "pzxid")
_SESSION_LINE = re.compile(r"^\s*0x([0-9a-f]+):\s*$")


def dump(port: int, zxid_first: bool = False) -> Dict[str, object]:
    """The whole tree (data, every Stat field, ACLs), the sessions with ephemerals, and the last zxid.

    Reading takes a session, whose creation and close are txns too: the zxid is read after them
    (`zxid_first=False`, for a server about to be stopped and imported: its files hold them), or
    before them (`zxid_first=True`, for a server that just started on imported or exported files)."""
    zxid = last_zxid(port) if zxid_first else None
    client = connect(port)
    try:
        nodes = {}
        for path in walk(client):
            if path == "/zookeeper/config":
                continue  # rebuilt from the target's own membership (see docs/MIGRATION.md)
            data, stat = client.get(path)
            acls, _ = client.get_acls(path)
            nodes[path] = {
                "data": None if data is None else data.hex(),
                "stat": {f: getattr(stat, f if f != "ephemeralOwner" else "owner_session_id") or 0
                         for f in STAT_FIELDS},
                "acl": sorted((a.perms, a.id.scheme, a.id.id) for a in acls),
            }
    finally:
        client.stop()
        client.close()
    return {"nodes": nodes, "sessions": sessions_with_ephemerals(port), "zxid": zxid or last_zxid(port)}


def sessions_with_ephemerals(port: int) -> Dict[str, List[str]]:
    """`dump`'s "Sessions with Ephemerals" section: session id -> its ephemeral paths."""
    text = h.four_letter(port, "dump")
    sessions: Dict[str, List[str]] = {}
    current = None
    in_section = False
    for line in text.splitlines():
        if line.startswith("Sessions with Ephemerals"):
            in_section = True
            continue
        if not in_section:
            continue
        m = _SESSION_LINE.match(line)
        if m:
            current = m.group(1)
            sessions[current] = []
        elif line.strip().startswith("/") and current is not None:
            sessions[current].append(line.strip())
        elif line.strip() and not line.startswith((" ", "\t")):
            in_section = False
    return {k: sorted(v) for k, v in sessions.items()}


def last_zxid(port: int) -> int:
    text = h.four_letter(port, "srvr")
    m = re.search(r"Zxid: 0x([0-9a-f]+)", text)
    assert m, text
    return int(m.group(1), 16)


def diff_dumps(a: Dict[str, object], b: Dict[str, object]) -> List[str]:
    problems = []
    na, nb = a["nodes"], b["nodes"]
    for path in sorted(set(na) | set(nb)):
        if path not in nb:
            problems.append(f"{path}: missing on the second server")
        elif path not in na:
            problems.append(f"{path}: only on the second server")
        elif na[path] != nb[path]:
            for key in ("data", "acl"):
                if na[path][key] != nb[path][key]:
                    problems.append(f"{path}: {key} {na[path][key]!r} != {nb[path][key]!r}")
            for f in STAT_FIELDS:
                if na[path]["stat"][f] != nb[path]["stat"][f]:
                    problems.append(f"{path}: {f} {na[path]['stat'][f]} != {nb[path]['stat'][f]}")
    if a["sessions"] != b["sessions"]:
        problems.append(f"sessions with ephemerals: {a['sessions']} != {b['sessions']}")
    if a["zxid"] != b["zxid"]:
        problems.append(f"last zxid: 0x{a['zxid']:x} != 0x{b['zxid']:x}")
    return problems


def stop_clients_without_closing(clients: List[KazooClient]) -> None:
    """Stops kazoo clients whose server is already down: no closeSession reaches any server, so
    their sessions stay open in the data directory."""
    for c in clients:
        c.stop()
        c.close()


def snapshot_files(data_dir: Path) -> List[Path]:
    return sorted((data_dir / "version-2").glob("snapshot.*"), key=lambda p: int(p.name.split(".")[1], 16))


def log_files(data_dir: Path) -> List[Path]:
    return sorted((data_dir / "version-2").glob("log.*"), key=lambda p: int(p.name.split(".")[1], 16))


def rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def wait_until(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")
