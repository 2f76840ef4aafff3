"""Start a standalone server or an N-member ensemble of Roost or Apache ZooKeeper, for the
client-suite runners under tests/clients (Curator, go-zookeeper, aiozk, zk-shell).

Each member gets its own directory with a zoo.cfg and myid, exactly as an operator would write
them; Roost and ZooKeeper start from the same files. Process handling (logs, readiness, ending
by pid at exit) is tests/compat/zkharness.py's.

As a module:
    with Ensemble("roost", size=3, base_port=21000) as ens:
        ens.connect_string          # "127.0.0.1:21001,127.0.0.1:21002,127.0.0.1:21003"
        ens.kill(1)                 # SIGKILL member 1 (1-based, as in myid)
        ens.restart(1)

As a command (for shell runners); runs until SIGTERM/SIGINT, printing the connect string first:
    python3 ensemble.py --kind roost --size 3 --base-port 21000
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "compat"))

import zkharness  # noqa: E402  (path set above)


class Ensemble:
    """Members 1..size on 127.0.0.1; member i serves clients on base_port + i and uses
    base_port + 100 + i / base_port + 200 + i for quorum and election."""

    def __init__(self, kind: str, size: int = 1, base_port: int = 21000,
                 extra: Optional[Dict[str, str]] = None, workdir: Optional[Path] = None):
        if kind not in ("roost", "zookeeper"):
            raise ValueError(f"kind must be roost or zookeeper, not {kind!r}")
        self.kind = kind
        self.size = size
        self.base_port = base_port
        self.extra = dict(extra or {})
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=f"ensemble-{kind}-"))
        self.procs: Dict[int, object] = {}

    # -- layout ------------------------------------------------------------------------------

    def client_port(self, member: int) -> int:
        return self.base_port + member

    @property
    def members(self) -> List[int]:
        return list(range(1, self.size + 1))

    @property
    def connect_string(self) -> str:
        return ",".join(f"127.0.0.1:{self.client_port(m)}" for m in self.members)

    def _config(self, member: int) -> Path:
        mdir = self.workdir / f"m{member}"
        data = mdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        cfg = {
            "tickTime": "2000",
            "initLimit": "10",
            "syncLimit": "5",
            "dataDir": str(data),
            "clientPort": str(self.client_port(member)),
            "maxClientCnxns": "0",
            "admin.enableServer": "false",
            "4lw.commands.whitelist": "*",
        }
        if self.size > 1:
            (data / "myid").write_text(f"{member}\n")
            for m in self.members:
                cfg[f"server.{m}"] = f"127.0.0.1:{self.base_port + 100 + m}:{self.base_port + 200 + m}"
        cfg.update(self.extra)
        path = mdir / "zoo.cfg"
        path.write_text("".join(f"{k}={v}\n" for k, v in cfg.items()))
        return path

    def _argv(self, cfg: Path) -> List[str]:
        if self.kind == "roost":
            binary = zkharness.roost_bin()
            if not os.access(binary, os.X_OK):
                raise zkharness.HarnessError(f"roost binary not found at {binary} (set ROOST_BIN)")
            return [binary, "--config", str(cfg)]
        java = shutil.which("java", path=os.environ.get("PATH", "").replace(str(HERE.parent / "compat" / "zkshim"), ""))
        if not java:
            raise zkharness.HarnessError("java not found")
        log4j = zkharness.console_log4j(cfg.parent)
        return [java, "-cp", zkharness.zk_classpath(), "-Xmx512m", "-XX:+UseSerialGC",
                "-Dzookeeper.root.logger=INFO,CONSOLE", "-Dlog4j.configuration=file:" + str(log4j),
                "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(cfg)]

    # -- lifecycle ---------------------------------------------------------------------------

    def start_member(self, member: int) -> None:
        cfg = self._config(member)
        log = cfg.parent / "server.log"
        self.procs[member] = zkharness.spawn(self._argv(cfg), log, cwd=str(cfg.parent))

    def wait_member(self, member: int, timeout: float = 60.0) -> None:
        cfg = self.workdir / f"m{member}" / "zoo.cfg"
        zkharness.wait_serving(self.client_port(member), self.procs[member], cfg.parent / "server.log", timeout)

    def start(self, timeout: float = 60.0) -> "Ensemble":
        for m in self.members:
            self.start_member(m)
        for m in self.members:
            self.wait_member(m, timeout)
        return self

    def kill(self, member: int) -> None:
        """SIGKILL, as a crash: no goodbye to clients or peers."""
        proc = self.procs.get(member)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

    def restart(self, member: int, timeout: float = 60.0) -> None:
        self.kill(member)
        self.start_member(member)
        self.wait_member(member, timeout)

    def mode(self, member: int) -> str:
        """"leader", "follower", "standalone", ... or "" when it does not answer."""
        try:
            text = zkharness.four_letter(self.client_port(member), "srvr", timeout=2.0)
        except OSError:
            return ""
        for line in text.splitlines():
            if line.startswith("Mode:"):
                return line.split(":", 1)[1].strip()
        return ""

    def leader(self) -> Optional[int]:
        for m in self.members:
            if self.mode(m) == "leader":
                return m
        return None

    def log_tail(self, member: int, lines: int = 60) -> str:
        return zkharness.tail(self.workdir / f"m{member}" / "server.log", lines)

    def stop(self) -> None:
        for proc in self.procs.values():
            zkharness._end(proc)  # noqa: SLF001  (the harness's own graceful end)
        self.procs.clear()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "Ensemble":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=("roost", "zookeeper"), default=os.environ.get("ROOST_TEST_TARGET", "roost"))
    ap.add_argument("--size", type=int, default=1)
    ap.add_argument("--base-port", type=int, default=21000)
    args = ap.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with Ensemble(args.kind, args.size, args.base_port) as ens:
        print(ens.connect_string, flush=True)
        while not stop.is_set():
            time.sleep(0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
