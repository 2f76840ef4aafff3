"""Shared helpers for the compatibility tests: ports, temp dirs, starting and stopping servers
(real Apache ZooKeeper from the Debian package, or roost), 4-letter words, and leftover cleanup.

Every process started through this module is registered and ended (SIGTERM, then SIGKILL) at
interpreter exit and by `Server.stop()`, so a failing test cannot leak servers. Processes are
always ended by pid, never by name.

Also a small CLI used by the shell runners:
    python3 zkharness.py kill-pidfile <file>     end the pids listed in <file> (if still alive)
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
ZK_CLI_SH = Path(os.environ.get("ZK_CLI_SH", "/usr/share/zookeeper/bin/zkCli.sh"))
CLI_MT = Path(os.environ.get("CLI_MT", "/usr/lib/zookeeper/bin/cli_mt"))
SUPER_DIGEST = "super:D/InIHSb7yEEbrWz8b9l71RjZJU="  # password "test", as kazoo's harness uses

# Value of ROOST_BIN that selects the self-check mode: a second Apache ZooKeeper stands in for
# roost, which validates that output normalisation makes two identical servers compare equal.
SELF_CHECK = "zookeeper"


class HarnessError(Exception):
    """A server could not be started or did not become ready."""


# --------------------------------------------------------------------------------------------
# Process registry: everything we start is ended at exit, by pid.

_LIVE: Dict[int, subprocess.Popen] = {}


def _end(proc: subprocess.Popen, grace: float = 5.0) -> None:
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=grace)
        except ProcessLookupError:
            pass
    _LIVE.pop(proc.pid, None)


@atexit.register
def _end_all() -> None:
    for proc in list(_LIVE.values()):
        _end(proc, grace=2.0)


def spawn(argv: Sequence[str], log_path: Path, env: Optional[dict] = None, **kw) -> subprocess.Popen:
    """Start a registered background process with stdout+stderr appended to log_path."""
    log = open(log_path, "ab")
    try:
        proc = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, **kw)
    finally:
        log.close()
    _LIVE[proc.pid] = proc
    return proc


def _is_server_process(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(b"QuorumPeerMain" in a or a.endswith(b"roost") for a in cmdline)


def kill_pidfile(path: Path) -> int:
    """End the processes whose pids are listed in `path` and that are still alive. Returns count."""
    if not path.exists():
        return 0
    ended = 0
    for line in path.read_text().split():
        try:
            pid = int(line)
        except ValueError:
            continue
        if not _is_server_process(pid):
            continue  # already gone (or the pid was reused by something that is not ours)
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        ended += 1
        for _ in range(50):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return ended


# --------------------------------------------------------------------------------------------
# Ports and readiness

def free_port() -> int:
    """A TCP port that was free a moment ago (bind to 0 and release)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def four_letter(port: int, word: str, host: str = "127.0.0.1", timeout: float = 5.0) -> str:
    """Send a four-letter word and return everything the server writes before closing."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(word.encode("ascii"))
        chunks = []
        while True:
            try:
                data = s.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode("utf-8", "replace")


def wait_serving(port: int, proc: subprocess.Popen, log_path: Path, timeout: float = 60.0) -> None:
    """Wait until the server answers `srvr` with a Mode line (i.e. it accepts sessions)."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise HarnessError(f"server exited with {proc.returncode}; log tail:\n{tail(log_path)}")
        try:
            last = four_letter(port, "srvr", timeout=2.0)
            if "Mode:" in last:
                return
        except OSError as e:
            last = repr(e)
        time.sleep(0.2)
    raise HarnessError(f"server on port {port} not serving after {timeout}s (last: {last!r});"
                       f" log tail:\n{tail(log_path)}")


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "<no log>"


# --------------------------------------------------------------------------------------------
# Servers

def zk_classpath() -> str:
    out = subprocess.run([str(HERE / "zk_classpath.sh")], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def roost_bin() -> str:
    """ROOST_BIN, else <cargo target dir>/release/roost. May return SELF_CHECK."""
    explicit = os.environ.get("ROOST_BIN")
    if explicit:
        return explicit
    target_dir = os.environ.get("CARGO_TARGET_DIR", str(REPO / "target"))
    return str(Path(target_dir) / "release" / "roost")


@dataclass
class Server:
    """One standalone server on 127.0.0.1:port with its own temp dir."""

    kind: str  # "zookeeper" or "roost"
    port: int
    workdir: Path
    proc: subprocess.Popen
    log_path: Path
    config: Dict[str, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        _end(self.proc)

    def log_tail(self, lines: int = 60) -> str:
        return tail(self.log_path, lines)


def write_zoo_cfg(workdir: Path, port: int, extra: Optional[Dict[str, str]] = None) -> Path:
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    cfg = {
        "tickTime": "2000",
        "dataDir": str(data),
        "clientPort": str(port),
        "maxClientCnxns": "0",
        "admin.enableServer": "false",
        "4lw.commands.whitelist": "*",
    }
    cfg.update(extra or {})
    path = workdir / "zoo.cfg"
    path.write_text("".join(f"{k}={v}\n" for k, v in cfg.items()))
    return path


def start_server(kind: str, config: Optional[Dict[str, str]] = None,
                 sysprops: Optional[Dict[str, str]] = None, timeout: float = 60.0) -> Server:
    """Start a standalone server of `kind` ("zookeeper" or "roost") and wait until it serves.

    `config` adds/overrides zoo.cfg keys; `sysprops` are Java system properties (passed as
    -Dk=v to Java, as `-D k=v` to roost). For kind="roost", ROOST_BIN=zookeeper starts a second
    Apache server instead (self-check mode).
    """
    config = dict(config or {})
    sysprops = dict(sysprops or {})
    workdir = Path(tempfile.mkdtemp(prefix=f"compat-{kind}-"))
    port = free_port()
    cfg_path = write_zoo_cfg(workdir, port, config)
    log_path = workdir / "server.log"
    real_kind = kind
    if kind == "roost" and roost_bin() == SELF_CHECK:
        real_kind = "zookeeper"
    if real_kind == "zookeeper":
        java = shutil.which("java", path=os.environ.get("PATH", "").replace(str(HERE / "zkshim"), ""))
        if not java:
            raise HarnessError("java not found")
        argv = [java, "-cp", zk_classpath(), "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-Dzookeeper.root.logger=INFO,CONSOLE", "-Dlog4j.configuration=file:" + str(console_log4j(workdir))]
        argv += [f"-D{k}={v}" for k, v in sysprops.items()]
        argv += ["org.apache.zookeeper.server.quorum.QuorumPeerMain", str(cfg_path)]
    elif real_kind == "roost":
        binary = roost_bin()
        if not os.access(binary, os.X_OK):
            raise HarnessError(f"roost binary not found at {binary}: run `cargo build --release` "
                               f"or set ROOST_BIN (ROOST_BIN={SELF_CHECK} runs the self-check)")
        argv = [binary, "--config", str(cfg_path)]
        for k, v in sysprops.items():
            argv += ["-D", f"{k}={v}"]
    else:
        raise HarnessError(f"unknown server kind {kind!r}")
    proc = spawn(argv, log_path, cwd=str(workdir))
    server = Server(kind, port, workdir, proc, log_path, config)
    try:
        wait_serving(port, proc, log_path, timeout=timeout)
    except BaseException:
        server.stop()
        raise
    return server


def console_log4j(workdir: Path) -> Path:
    """Writes a log4j.properties that logs to the console (the server.log capture); returns it."""
    path = workdir / "log4j.properties"
    path.write_text(
        "log4j.rootLogger=INFO, CONSOLE\n"
        "log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender\n"
        "log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout\n"
        "log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} - %-5p [%t:%C{1}@%L] - %m%n\n"
    )
    return path


def destroy(server: Server) -> None:
    server.stop()
    shutil.rmtree(server.workdir, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# CLI sessions and output normalisation

_NOISE = re.compile(r"^(SLF4J:|log4j:|Connecting to |Welcome to ZooKeeper!|JLine support is|Batch mode: )")
_DATE = re.compile(r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
                   r" +\d+ \d\d:\d\d:\d\d( [A-Z]{2,5})? \d{4}\b")
# zkCli prints "cZxid = 0x1e"; cli_mt prints "czxid=1e" (hex without a prefix).
_ZXID_FIELD = re.compile(r"\b([cmp]Zxid = 0x|[cmp]zxid=|Zxid: 0x)([0-9a-fA-F]+)\b")
_SESSION = re.compile(r"\b(ephemeralOwner = |session id: |session Id = )(0x)?([0-9a-fA-F]+)")
_SESSION_HEX = re.compile(r"\b0x[0-9a-f]{9,16}\b")
_MSEC = re.compile(r"^time = \d+ msec$")


class Canon:
    """Replaces values that legitimately differ between servers (zxids, session ids) by ordinals in
    order of first appearance, so equal values stay equal and distinct ones stay distinct."""

    def __init__(self) -> None:
        self.maps: Dict[str, Dict[str, str]] = {}

    def __call__(self, kind: str, value: str) -> str:
        table = self.maps.setdefault(kind, {})
        if value not in table:
            table[value] = f"<{kind}{len(table) + 1}>"
        return table[value]


def _sorted_list_line(line: str) -> str:
    # `ls` prints children as "[a, b]" in server hash order, which ZooKeeper does not specify.
    if line.startswith("[") and line.endswith("]") and len(line) > 2:
        return "[" + ", ".join(sorted(line[1:-1].split(", "))) + "]"
    return line


def normalize_lines(lines: List[str], canon: Canon) -> List[str]:
    out = []
    for line in lines:
        line = line.rstrip()
        # Blank lines carry no information and zkCli's async WATCHER blocks add racy ones.
        if not line.strip() or _NOISE.match(line) or _MSEC.match(line.strip()):
            continue
        line = _DATE.sub("<date>", line)
        line = _ZXID_FIELD.sub(lambda m: m.group(1) + canon("zxid", str(int(m.group(2), 16))), line)

        def _sid(m: "re.Match[str]") -> str:
            value = int(m.group(3), 16)
            return m.group(1) + ("0x0" if value == 0 else canon("sid", str(value)))

        line = _SESSION.sub(_sid, line)
        line = _SESSION_HEX.sub(lambda m: canon("sid", str(int(m.group(0), 16))), line)
        out.append(_sorted_list_line(line))
    return out


_WATCHER = re.compile(r"^WatchedEvent state:(\w+) type:(\w+) path:(.*)$")


def split_zkcli_events(text: str):
    """zkCli prints watch events asynchronously from its event thread, so their position among the
    command output is racy. Pull them out (keeping their relative order, which the server fixes)
    and drop the connection-state events (type None)."""
    rest, events = [], []
    for line in text.splitlines():
        m = _WATCHER.match(line.strip())
        if m:
            if m.group(2) != "None":
                events.append(line.strip())
            continue
        if line.strip() == "WATCHER::":
            continue
        rest.append(line)
    return rest, events


def run_group(argv: Sequence[str], stdin_text: Optional[str], timeout: float,
              env: Optional[dict] = None) -> subprocess.CompletedProcess:
    """Run a client to completion with stdout+stderr merged (one pipe keeps their order).

    It runs in its own process group: zkCli.sh starts java as a child (no exec), so on a timeout
    we must end the whole group, or the orphaned JVM keeps the pipe open and we hang."""
    proc = subprocess.Popen(list(argv), stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(stdin_text, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        raise HarnessError(f"{argv[0]} timed out after {timeout}s; output so far:\n{out}") from None
    return subprocess.CompletedProcess(list(argv), proc.returncode, out, None)


def zkcli_session(address: str, commands: List[str], timeout: float = 60.0) -> Dict[str, object]:
    """Run all `commands` in ONE zkCli.sh session (one JVM start) fed on stdin.

    Each command is followed by `stat /<marker>` whose "Node does not exist" line delimits its
    output, so the result maps every command to its own output lines.
    Returns {"chunks": [(command, [lines])...], "events": [event lines]}."""
    script = []
    for i, cmd in enumerate(commands):
        script += [cmd, f"stat /zkcli-marker-{i}"]
    script.append("quit")
    env = dict(os.environ, CLIENT_JVMFLAGS="-Xshare:auto -XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
    # zkCli prints errors on stderr; one shared pipe keeps their order relative to stdout
    # (the JVM flushes both on every println).
    proc = run_group(["bash", str(ZK_CLI_SH), "-server", address], "\n".join(script) + "\n",
                     timeout=timeout, env=env)
    return _chunk(proc, commands)


def _chunk(proc: subprocess.CompletedProcess, commands: List[str]) -> Dict[str, object]:
    rest, events = split_zkcli_events(proc.stdout)
    chunks: List = []
    current: List[str] = []
    idx = 0
    for line in rest:
        if line.strip() == f"Node does not exist: /zkcli-marker-{idx}":
            chunks.append((commands[idx], current))
            current = []
            idx += 1
            continue
        current.append(line)
    if idx != len(commands):
        chunks.append(("<incomplete: zkCli stopped early>", current))
    return {"chunks": chunks, "events": events}


def render_transcript(session: Dict[str, object], sort_cmds: Sequence[str] = ("ls -R", "getEphemerals", "whoami")) -> str:
    """Normalised, human-readable transcript: `$ command` headers, output, then the watch events."""
    canon = Canon()
    out: List[str] = []
    for cmd, lines in session["chunks"]:
        out.append(f"$ {cmd}")
        body = normalize_lines(list(lines), canon)
        if any(str(cmd).startswith(p) for p in sort_cmds):
            body = sorted(body)
        out += body
    out.append("--- watch events (order preserved) ---")
    out += normalize_lines(list(session["events"]), canon)
    return "\n".join(out) + "\n"


def cli_mt_run(address: str, command: str, timeout: float = 10.0) -> List[str]:
    """Run one command with the C client's cli_mt in batch mode (-c waits for the connection and the
    reply). Returns raw output lines (stdout+stderr merged, in order)."""
    proc = run_group([str(CLI_MT), "-h", address, "-c", command], None, timeout=timeout)
    return proc.stdout.splitlines()


def ci_mode() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def main(argv: List[str]) -> int:
    if len(argv) == 3 and argv[1] == "kill-pidfile":
        n = kill_pidfile(Path(argv[2]))
        if n:
            print(f"zkharness: ended {n} leftover server process(es)", file=sys.stderr)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
