"""Launch, kill, pause and restart the members of a 3-member Roost or Apache ZooKeeper ensemble,
each inside its own network namespace (see netns.py).

Both targets start from the same zoo.cfg keys an operator would write, as tests/clients/ensemble.py
does; the ZooKeeper command line and classpath come from tests/compat (zkharness.py, read-only).
Every process is started by us, tracked by pid, and reaped; nothing is ever ended by name.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import netns

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "compat"))
import zkharness  # noqa: E402  (read-only reuse: ZooKeeper's classpath)

CLIENT_PORT = 2181
PEER_PORT = 2888
ELECTION_PORT = 3888
DEFAULT_ROOST_BIN = "/tmp/roost-bin/roost"


def roost_bin() -> str:
    return os.environ.get("ROOST_BIN") or DEFAULT_ROOST_BIN


def four_letter(member: int, word: str, timeout: float = 1.0) -> str:
    """Send a 4-letter word to a member's client port; returns "" when it does not answer."""
    try:
        with socket.create_connection((netns.member_ip(member), CLIENT_PORT), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(word.encode("ascii"))
            chunks = []
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
        return b"".join(chunks).decode("utf-8", "replace")
    except OSError:
        return ""


def parse_mode(srvr: str) -> str:
    for line in srvr.splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return ""


@dataclass
class Timing:
    """Server timing knobs, the same for both targets. tickTime 1000 ms lets sessions of 8 s
    (kazoo's timeout) be negotiated (min 2, max 20 ticks) and makes a leader that lost its quorum
    step down within syncLimit ticks."""

    tick_ms: int = 1000
    init_limit: int = 10
    sync_limit: int = 3


class Cluster:
    def __init__(self, kind: str, workdir: Path, members: List[int] = [1, 2, 3], timing: Timing = Timing()):
        if kind not in ("roost", "zookeeper"):
            raise ValueError(kind)
        self.kind = kind
        self.workdir = workdir
        self.members = list(members)
        self.timing = timing
        self.procs: Dict[int, subprocess.Popen] = {}
        self.paused: set = set()
        self._classpath: Optional[str] = None

    @property
    def connect_string(self) -> str:
        return ",".join(f"{netns.member_ip(m)}:{CLIENT_PORT}" for m in self.members)

    def member_dir(self, m: int) -> Path:
        return self.workdir / f"m{m}"

    def log_path(self, m: int) -> Path:
        return self.member_dir(m) / "server.log"

    def _config(self, m: int) -> Path:
        mdir = self.member_dir(m)
        data = mdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        (data / "myid").write_text(f"{m}\n")
        cfg = {
            "tickTime": str(self.timing.tick_ms),
            "initLimit": str(self.timing.init_limit),
            "syncLimit": str(self.timing.sync_limit),
            "dataDir": str(data),
            "clientPort": str(CLIENT_PORT),
            "maxClientCnxns": "0",
            "4lw.commands.whitelist": "*",
        }
        if self.kind == "zookeeper":
            cfg["admin.enableServer"] = "false"
        else:
            cfg["admin.serverPort"] = "8080"  # each member has its own IP, so no clash
        for o in self.members:
            cfg[f"server.{o}"] = f"{netns.member_ip(o)}:{PEER_PORT}:{ELECTION_PORT};{CLIENT_PORT}"
        path = mdir / "zoo.cfg"
        path.write_text("".join(f"{k}={v}\n" for k, v in cfg.items()))
        return path

    def _argv(self, cfg: Path) -> List[str]:
        if self.kind == "roost":
            binary = roost_bin()
            if not os.access(binary, os.X_OK):
                raise RuntimeError(f"roost binary not found at {binary} (set ROOST_BIN)")
            return [binary, "--config", str(cfg)]
        if self._classpath is None:
            self._classpath = zkharness.zk_classpath()
        log4j = zkharness.console_log4j(cfg.parent)
        java = shutil.which("java") or "java"
        return [java, "-cp", self._classpath, "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-Dzookeeper.root.logger=INFO,CONSOLE", "-Dlog4j.configuration=file:" + str(log4j),
                "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(cfg)]

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, m: int) -> None:
        if m in self.procs and self.procs[m].poll() is None:
            return
        cfg = self._config(m)
        env = dict(os.environ)
        env.setdefault("TOKIO_WORKER_THREADS", "1")  # README: several servers on few cores
        with open(self.log_path(m), "ab") as log:
            log.write(f"\n==== start {time.strftime('%H:%M:%S')} ====\n".encode())
            log.flush()
            # `ip netns exec` execs the command, so the pid is the server's own pid
            self.procs[m] = subprocess.Popen(["ip", "netns", "exec", netns.member_ns(m), *self._argv(cfg)],
                                             stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             cwd=str(cfg.parent), env=env)
        self.paused.discard(m)

    def alive(self, m: int) -> bool:
        p = self.procs.get(m)
        return p is not None and p.poll() is None

    def kill(self, m: int) -> None:
        """SIGKILL, as a crash, and reap."""
        p = self.procs.get(m)
        if p is None:
            return
        if p.poll() is None:
            if m in self.paused:
                os.kill(p.pid, signal.SIGCONT)
            p.kill()
            p.wait(timeout=15)
        self.paused.discard(m)

    def terminate(self, m: int, grace: float = 10.0) -> None:
        """SIGTERM (an orderly stop), SIGKILL after `grace`."""
        p = self.procs.get(m)
        if p is None or p.poll() is not None:
            return
        if m in self.paused:
            self.resume(m)
        p.terminate()
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=15)

    def pause(self, m: int) -> None:
        p = self.procs.get(m)
        if p is not None and p.poll() is None:
            os.kill(p.pid, signal.SIGSTOP)
            self.paused.add(m)

    def resume(self, m: int) -> None:
        p = self.procs.get(m)
        if p is not None and p.poll() is None:
            os.kill(p.pid, signal.SIGCONT)
        self.paused.discard(m)

    def stop_all(self) -> None:
        for m in list(self.procs):
            try:
                self.kill(m)
            except Exception:  # noqa: BLE001  (best effort at teardown; the netns cleanup follows)
                pass

    # -- observation ----------------------------------------------------------------------------

    def mode(self, m: int, timeout: float = 1.0) -> str:
        return parse_mode(four_letter(m, "srvr", timeout))

    def leader(self) -> Optional[int]:
        for m in self.members:
            if self.alive(m) and m not in self.paused and self.mode(m) == "leader":
                return m
        return None

    def wait_serving(self, members: Optional[List[int]] = None, timeout: float = 90.0) -> int:
        """Wait until the given members answer srvr as leader/follower and one is leader.
        Returns the leader. Raises TimeoutError with log tails otherwise."""
        members = members or self.members
        deadline = time.monotonic() + timeout
        modes: Dict[int, str] = {}
        while time.monotonic() < deadline:
            modes = {m: self.mode(m) for m in members}
            leaders = [m for m, md in modes.items() if md == "leader"]
            if len(leaders) == 1 and all(md in ("leader", "follower") for md in modes.values()):
                return leaders[0]
            for m in members:
                p = self.procs.get(m)
                if p is not None and p.poll() is not None:
                    raise RuntimeError(f"member {m} exited with {p.returncode}:\n{self.log_tail(m)}")
            time.sleep(0.3)
        tails = "\n".join(f"--- member {m} ---\n{self.log_tail(m, 25)}" for m in members)
        raise TimeoutError(f"ensemble not serving after {timeout}s: {modes}\n{tails}")

    def log_tail(self, m: int, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path(m).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "<no log>"
