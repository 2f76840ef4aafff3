#!/usr/bin/env python3
"""Benchmark (not a test): `roost import-zookeeper` on a big ZooKeeper data directory, beside
ZooKeeper's own restart on the same directory.

Generates, in ZooKeeper's formats (written here byte by byte: a snapshot and transaction logs with
their Adler-32 checksums, as ZooKeeper 3.8 writes them), a data directory holding --znodes znodes
in a snapshot followed by --txns logged txns (creates, setData and deletes in the usual mix), then
measures:
  * roost import-zookeeper: wall time and peak RSS (the import process);
  * roost starting on the imported directory until it serves;
  * Apache ZooKeeper (Debian's) starting on the generated directory until it serves, and its peak RSS.

    bench/import/run.py                          # 1,000,000 znodes + 1,000,000 txns (heavy: ~2 GB disk)
    bench/import/run.py --znodes 20000 --txns 20000   # a quick check that it works

Results are printed and written to bench/import/results-<znodes>-<txns>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "tests" / "compat"))
import zkharness as h  # noqa: E402

OPEN_ACL_KEY = 1  # the snapshot's ACL map holds one entry: world:anyone, all permissions
T0 = 1_760_000_000_000


def jstr(s: str) -> bytes:
    b = s.encode()
    return struct.pack(">i", len(b)) + b


def jbuf(b: bytes) -> bytes:
    return struct.pack(">i", len(b)) + b


def stat(czxid: int, cversion: int = 0) -> bytes:
    # czxid, mzxid, ctime, mtime, version, cversion, aversion, ephemeralOwner, pzxid
    return struct.pack(">qqqqiiiqq", czxid, czxid, T0, T0, 0, cversion, 0, 0, czxid)


def node_path(i: int) -> str:
    return f"/bench/d{i // 1000:04d}/n{i % 1000:03d}"


def write_snapshot(path: Path, znodes: int, snap_zxid: int) -> None:
    """snapshot.<zxid>: header, no sessions, one ACL, `/`, `/bench`, 1000-wide directories."""
    dirs = (znodes + 999) // 1000
    parts = [struct.pack(">iiq", 0x5A4B534E, 2, -1), struct.pack(">i", 0)]
    acl = struct.pack(">i", 1) + struct.pack(">i", 31) + jstr("world") + jstr("anyone")
    parts.append(struct.pack(">i", 1) + struct.pack(">q", OPEN_ACL_KEY) + acl)
    rec = lambda p, data, st: jstr(p) + jbuf(data) + struct.pack(">q", OPEN_ACL_KEY) + st  # noqa: E731
    zero = struct.pack(">qqqqiiiqq", 0, 0, 0, 0, 0, 0, 0, 0, 0)
    parts.append(rec("", b"", struct.pack(">qqqqiiiqq", 0, 0, 0, 0, 0, 2, 0, 0, 1)))
    parts.append(rec("/zookeeper", b"", zero))
    parts.append(rec("/zookeeper/quota", b"", zero))
    parts.append(rec("/bench", b"", stat(1, dirs)))
    for d in range(dirs):
        in_dir = min(1000, znodes - d * 1000)
        parts.append(rec(f"/bench/d{d:04d}", b"", stat(1, in_dir)))
        for j in range(in_dir):
            parts.append(rec(node_path(d * 1000 + j), b"x" * 64, stat(1)))
    parts.append(jstr("/"))
    body = b"".join(parts)
    seal = zlib.adler32(body)
    path.write_bytes(body + struct.pack(">q", seal) + jstr("/"))


def entry(zxid: int, txn_type: int, record: bytes) -> bytes:
    payload = struct.pack(">qiqqi", 0, 0, zxid, T0 + zxid, txn_type) + record
    return struct.pack(">qi", zlib.adler32(payload), len(payload)) + payload + b"B"


def write_logs(dirpath: Path, znodes: int, txns: int, first_zxid: int, per_file: int = 200_000) -> int:
    """log.<zxid> files of `per_file` txns each: per 10 txns, 6 setData, 2 creates, 2 deletes."""
    acl = struct.pack(">i", 1) + struct.pack(">i", 31) + jstr("world") + jstr("anyone")
    zxid = first_zxid
    created = 0
    dirs = (znodes + 999) // 1000  # /bench's child-create count in the snapshot
    version = {}
    done = 0
    while done < txns:
        name = dirpath / f"log.{zxid:x}"
        with open(name, "wb") as f:
            f.write(struct.pack(">iiq", 0x5A4B4C47, 2, 0))
            chunk = []
            for _ in range(min(per_file, txns - done)):
                k = done % 10
                if k < 6:
                    i = (done * 7919) % znodes
                    v = version.get(i, 0) + 1
                    version[i] = v
                    chunk.append(entry(zxid, 5, jstr(node_path(i)) + jbuf(b"y" * 64) + struct.pack(">i", v)))
                elif k < 8:
                    p = f"/bench/new{created:08d}"
                    created += 1
                    chunk.append(entry(zxid, 1, jstr(p) + jbuf(b"z" * 32) + acl + b"\x00" + struct.pack(">i", dirs + created)))
                else:
                    p = f"/bench/new{created - 1:08d}"
                    chunk.append(entry(zxid, 2, jstr(p)))
                zxid += 1
                done += 1
                if len(chunk) >= 10_000:
                    f.write(b"".join(chunk))
                    chunk = []
            f.write(b"".join(chunk))
            f.write(b"\0" * 4096)
    return zxid - 1


def peak_rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def time_server(argv, port: int, log: Path, cwd: Path, timeout: float = 1800):
    started = time.monotonic()
    proc = h.spawn(argv, log, cwd=str(cwd))
    h.wait_serving(port, proc, log, timeout=timeout)
    took = time.monotonic() - started
    rss = peak_rss_kb(proc.pid)
    h._end(proc)
    return took, rss


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--znodes", type=int, default=1_000_000)
    ap.add_argument("--txns", type=int, default=1_000_000)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the generated directories")
    args = ap.parse_args()
    roost = h.roost_bin()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-import-"))
    zk_data = work / "zk-data"
    v2 = zk_data / "version-2"
    v2.mkdir(parents=True, exist_ok=True)
    results = {"znodes": args.znodes, "txns": args.txns}
    try:
        t = time.monotonic()
        write_snapshot(v2 / "snapshot.1", args.znodes, 1)
        last = write_logs(v2, args.znodes, args.txns, 2)
        results["generate_s"] = round(time.monotonic() - t, 2)
        results["zk_dir_bytes"] = sum(p.stat().st_size for p in v2.iterdir())
        print(f"generated {args.znodes} znodes + {args.txns} txns (last zxid 0x{last:x}) in {results['generate_s']} s")

        target = work / "roost-data"
        t = time.monotonic()
        proc = subprocess.Popen([roost, "import-zookeeper", "--from", str(zk_data), "--to", str(target)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out = proc.stdout.read().decode(errors="replace")
        _, status, usage = os.wait4(proc.pid, 0)
        results["roost_import_s"] = round(time.monotonic() - t, 2)
        results["roost_import_peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)
        if os.waitstatus_to_exitcode(status) != 0:
            print(out)
            return 1
        print(out.strip())

        cfgdir = work / "cfg"
        cfgdir.mkdir(exist_ok=True)
        port = h.free_port()
        cfg = cfgdir / "roost.cfg"
        cfg.write_text(f"dataDir={target}\nclientPort={port}\nadmin.serverPort=0\n4lw.commands.whitelist=*\n")
        took, rss = time_server([roost, "--config", str(cfg)], port, cfgdir / "roost.log", cfgdir)
        results["roost_start_on_import_s"] = round(took, 2)
        results["roost_start_peak_rss_mb"] = round(rss / 1024, 1)

        port = h.free_port()
        zcfg = cfgdir / "zoo.cfg"
        zcfg.write_text(f"dataDir={zk_data}\nclientPort={port}\nadmin.enableServer=false\n"
                        "4lw.commands.whitelist=*\ntickTime=2000\n")
        argv = ["java", "-cp", h.zk_classpath(), "-Xmx4g", "-Dlog4j.configuration=file:" + str(h.console_log4j(cfgdir)),
                "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(zcfg)]
        took, rss = time_server(argv, port, cfgdir / "zookeeper.log", cfgdir)
        results["zookeeper_restart_s"] = round(took, 2)
        results["zookeeper_restart_peak_rss_mb"] = round(rss / 1024, 1)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=2))
    out_file = HERE / f"results-{args.znodes}-{args.txns}.json"
    out_file.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {out_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
