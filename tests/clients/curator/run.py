#!/usr/bin/env python3
"""Curator + ZooKeeper Java client checks (CuratorChecks.java) against Roost or Apache ZooKeeper,
standalone and as a 3-member ensemble.

    run.py [--target roost|zookeeper] [--size 1|3|both] [--only name,name] [--list]

The target defaults to $ROOST_TEST_TARGET (else roost), the size to both. For each size this
starts the servers with tests/clients/ensemble.py (ports 24000-24999), compiles CuratorChecks.java
once into a cache under $TEST_OUTPUT_DIR/curator (javac against Debian's jars), runs it with the
connect string, and answers its control requests (kill -9 / start / restart a member). Each check
prints one PASS/FAIL line; a failure is followed by the Java client's WARN/ERROR log lines of that
check. The last line is `N passed, N failed` (plus `, N skipped` for expected failures).

Exit status 0 only when every check not listed in expected_failures.txt passed.
Logs: $TEST_OUTPUT_DIR/curator/<target>-size<N>/ (java.log, servers/m*/server.log) and
JUnit XML $TEST_OUTPUT_DIR/curator-<target>-size<N>.xml.
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple
from xml.sax.saxutils import escape, quoteattr

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(HERE.parent))

from ensemble import Ensemble  # noqa: E402
import zkharness  # noqa: E402  (ensemble.py put tests/compat on the path)

SOURCE = HERE / "CuratorChecks.java"
MAIN_CLASS = "CuratorChecks"
BASE_PORTS = {1: 24000, 3: 24300}
RUN_TIMEOUT = {1: 200.0, 3: 260.0}  # whole-run bound per size, seconds

# Debian's jars (apt: libcurator-recipes-java libzookeeper-java libguava-java libslf4j-java).
JAVA_DIR = Path(os.environ.get("CURATOR_JAVA_DIR", "/usr/share/java"))
COMPILE_JARS = ["curator-recipes", "curator-framework", "curator-client", "zookeeper", "zookeeper-jute",
                "guava", "slf4j-api"]
RUN_JARS = COMPILE_JARS + ["slf4j-simple"]  # the log backend: plain lines on stderr

# Server settings the checks rely on: TTL nodes need extendedTypesEnabled (Apache ZooKeeper turns
# the zoo.cfg key into the zookeeper.extendedTypesEnabled system property); containers and TTL nodes
# are reaped by a background check that runs every minute unless told otherwise (a Java system
# property in ZooKeeper, passed as -D to both servers).
ZOO_CFG_EXTRA = {"extendedTypesEnabled": "true"}
SYSPROPS = {"znode.container.checkIntervalMs": "1000"}

LOG_INTEREST = re.compile(r"\b(WARN|ERROR)\b|Xid out of order|\[check\]")


class CuratorEnsemble(Ensemble):
    """ensemble.Ensemble with Java system properties (-D) on each member's command line."""

    def __init__(self, *a, sysprops: Optional[Dict[str, str]] = None, **kw):
        super().__init__(*a, **kw)
        self.sysprops = dict(sysprops or {})

    def _argv(self, cfg: Path) -> List[str]:
        argv = super()._argv(cfg)
        if self.kind == "roost":
            for k, v in self.sysprops.items():
                argv += ["-D", f"{k}={v}"]
            return argv
        i = argv.index("org.apache.zookeeper.server.quorum.QuorumPeerMain")
        return argv[:i] + [f"-D{k}={v}" for k, v in self.sysprops.items()] + argv[i:]

    def alive(self, member: int) -> bool:
        proc = self.procs.get(member)
        return proc is not None and proc.poll() is None

    def member_of_port(self, port: int) -> int:
        for m in self.members:
            if self.client_port(m) == port:
                return m
        raise ValueError(f"port {port} is no member's")

    def stop_member(self, member: int) -> None:
        """SIGTERM and wait (SIGKILL after 5 s): a server's own orderly shutdown."""
        proc = self.procs.get(member)
        if proc is not None:
            zkharness._end(proc)  # noqa: SLF001  (the harness's graceful end, as Ensemble.stop uses)

    def ensure(self, member: int, timeout: float = 60.0) -> None:
        if not self.alive(member):
            self.start_member(member)
            self.wait_member(member, timeout)


def classpath(names: List[str]) -> str:
    jars = []
    for n in names:
        j = JAVA_DIR / f"{n}.jar"
        if not j.exists():
            raise SystemExit(f"curator/run.py: {j} is missing (apt-get install libcurator-recipes-java "
                             f"libzookeeper-java libguava-java libslf4j-java)")
        jars.append(str(j))
    return ":".join(jars)


def compile_checks(cache_root: Path) -> Path:
    """javac once per source version; the classes live in a directory named by the source hash."""
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    out = cache_root / f"classes-{digest}"
    if (out / f"{MAIN_CLASS}.class").exists():
        return out
    javac = shutil.which("javac")
    if not javac:
        raise SystemExit("curator/run.py: javac not found (apt-get install openjdk-17-jdk-headless)")
    tmp = cache_root / f"classes-{digest}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    t0 = time.monotonic()
    proc = subprocess.run([javac, "-nowarn", "-d", str(tmp), "-cp", classpath(COMPILE_JARS), "--release", "17",
                           "-J-XX:+UseSerialGC", "-J-XX:TieredStopAtLevel=1", str(SOURCE)],
                          capture_output=True, text=True, timeout=180)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit("curator/run.py: javac failed")
    tmp.rename(out)
    for stale in cache_root.glob("classes-*"):  # builds of earlier versions of the source
        if stale != out:
            shutil.rmtree(stale, ignore_errors=True)
    print(f"compiled {SOURCE.name} in {time.monotonic() - t0:.1f}s -> {out}", flush=True)
    return out


def load_expected(path: Path) -> List[Tuple[str, Dict[str, str], str]]:
    """Lines `<check> [target=roost|zookeeper] [size=1|3] # reason`; the reason is mandatory."""
    entries = []
    if not path.exists():
        return entries
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        body, _, reason = line.partition("#")
        if not reason.strip():
            raise SystemExit(f"{path}:{n}: an expected failure needs a reason after '#'")
        words = body.split()
        conds = dict(w.split("=", 1) for w in words[1:])
        entries.append((words[0], conds, reason.strip()))
    return entries


def expected_reason(entries, name: str, target: str, size: int) -> Optional[str]:
    for check, conds, reason in entries:
        if check != name:
            continue
        if "target" in conds and conds["target"] != target:
            continue
        if "size" in conds and conds["size"] != str(size):
            continue
        return reason
    return None


_JAVA_PROCS: List[subprocess.Popen] = []


@atexit.register
def _end_java() -> None:
    for p in _JAVA_PROCS:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)


def log_sections(log: Path) -> Dict[str, List[str]]:
    """The Java log split by the `=== BEGIN name` / `=== END name` markers the program prints."""
    sections: Dict[str, List[str]] = {}
    current = None
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return sections
    for line in text.splitlines():
        if line.startswith("=== BEGIN "):
            current = line[len("=== BEGIN "):].strip()
            sections[current] = []
        elif line.startswith("=== END "):
            current = None
        elif current is not None:
            sections[current].append(line)
    return sections


def interesting(lines: List[str], limit: int = 12) -> List[str]:
    out, seen = [], set()
    for line in lines:
        if not LOG_INTEREST.search(line) or line.lstrip().startswith("at "):
            continue
        # Collapse repeats that differ only in the session id / timestamps.
        key = re.sub(r"0x[0-9a-f]+|\d+", "#", line)
        if key in seen:
            continue
        seen.add(key)
        out.append(line[:400])
        if len(out) >= limit:
            break
    return out


def run_size(target: str, size: int, out_root: Path, classes: Path, only: Optional[str],
             expected) -> List[Dict[str, object]]:
    run_dir = out_root / f"{target}-size{size}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    java_log = run_dir / "java.log"
    label = f"{target} size={size}"
    results: List[Dict[str, object]] = []
    t_start = time.monotonic()
    ens = CuratorEnsemble(target, size=size, base_port=BASE_PORTS[size], extra=ZOO_CFG_EXTRA,
                          workdir=run_dir / "servers", sysprops=SYSPROPS)
    try:
        try:
            ens.start(timeout=90)
        except zkharness.HarnessError as e:
            print(f"FAIL [{label}] <servers did not start>: {e}", flush=True)
            return [{"name": "<startup>", "status": "FAIL", "secs": 0.0, "reason": str(e)}]
        servers = [f"127.0.0.1:{ens.client_port(m)}" for m in ens.members]
        print(f"--- {label}: {','.join(servers)} (started in {time.monotonic() - t_start:.1f}s)", flush=True)
        argv = ["java", "-cp", f"{classes}:{classpath(RUN_JARS)}", "-Xmx256m", "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1", "-Dorg.slf4j.simpleLogger.showDateTime=true",
                "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
                MAIN_CLASS, "--servers", ",".join(servers)]
        if only:
            argv += ["--only", only]
        with open(java_log, "wb") as logf:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=logf,
                                    text=True, bufsize=1)
        _JAVA_PROCS.append(proc)
        lines: "queue.Queue[Optional[str]]" = queue.Queue()

        def pump() -> None:
            for line in proc.stdout:
                lines.put(line.rstrip("\n"))
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + RUN_TIMEOUT[size]
        plan: List[str] = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                print(f"[{label}] whole-run timeout ({RUN_TIMEOUT[size]:.0f}s): ending the Java program", flush=True)
                proc.kill()
                break
            try:
                line = lines.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            if line is None:
                break
            if line.startswith("PLAN"):
                plan = line.split()[1:]
            elif line.startswith("CTL "):
                reply = control(ens, line[4:])
                proc.stdin.write(reply + "\n")
                proc.stdin.flush()
            elif line.startswith("RESULT "):
                parts = line.split(" ", 4)
                status, name, secs = parts[1], parts[2], float(parts[3])
                reason = parts[4] if len(parts) > 4 else ""
                results.append({"name": name, "status": status, "secs": secs, "reason": reason})
                xf = expected_reason(expected, name, target, size) if status == "FAIL" else None
                tag = "FAIL" if status == "FAIL" and not xf else ("XFAIL" if xf else "PASS")
                print(f"{tag} [{label}] {name} ({secs:.1f}s){(': ' + reason) if reason.strip() else ''}", flush=True)
            elif line == "DONE":
                pass
            else:
                print(f"[{label}] {line}", flush=True)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        reported = {r["name"] for r in results}
        for name in plan:
            if name not in reported:
                results.append({"name": name, "status": "FAIL", "secs": 0.0, "reason": "not run (the program stopped)"})
                print(f"FAIL [{label}] {name}: not run (the program stopped)", flush=True)
        if not plan:
            results.append({"name": "<java>", "status": "FAIL", "secs": 0.0,
                            "reason": f"the Java program printed no plan; see {java_log}"})
            print(f"FAIL [{label}] <java>: no plan; log tail:\n{zkharness.tail(java_log, 30)}", flush=True)
        # Context for failures: the Java client's own warnings during that check.
        sections = log_sections(java_log)
        for r in results:
            if r["status"] == "FAIL":
                extra = interesting(sections.get(str(r["name"]), []))
                r["log"] = extra
                if extra:
                    print(f"    java log during {r['name']}:", flush=True)
                    for x in extra:
                        print(f"      {x}", flush=True)
    finally:
        ens.stop()
    print(f"--- {label}: {time.monotonic() - t_start:.1f}s; logs in {run_dir}", flush=True)
    return results


def control(ens: CuratorEnsemble, cmd: str) -> str:
    try:
        verb, port_s = cmd.split()
        port = int(port_s)
        if verb == "ensure":
            for m in ens.members:
                ens.ensure(m)
            return "OK"
        if verb == "leader":
            leader = ens.leader()
            return f"OK {ens.client_port(leader)}" if leader else "ERR no member reports Mode: leader"
        member = ens.member_of_port(port)
        if verb == "kill":
            ens.kill(member)
        elif verb == "start":
            ens.ensure(member)
        elif verb == "restart":
            ens.restart(member)
        elif verb == "stop":
            ens.stop_member(member)
        elif verb == "graceful-restart":
            ens.stop_member(member)
            ens.ensure(member)
        else:
            return f"ERR unknown control verb {verb}"
        return "OK"
    except Exception as e:  # noqa: BLE001  (reported to the Java side as the check's failure)
        return f"ERR {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


def write_junit(path: Path, suite: str, results: List[Dict[str, object]], target: str, size: int, expected) -> None:
    cases = []
    failures = 0
    for r in results:
        name = str(r["name"])
        body = ""
        if r["status"] == "FAIL":
            xf = expected_reason(expected, name, target, size)
            if xf:
                body = f"<skipped message={quoteattr('expected failure: ' + xf)}/>"
            else:
                failures += 1
                detail = "\n".join(r.get("log", []))
                body = f"<failure message={quoteattr(str(r['reason']))}>{escape(detail)}</failure>"
        cases.append(f'  <testcase classname="{suite}" name={quoteattr(name)} time="{float(r["secs"]):.2f}">{body}</testcase>')
    path.write_text(f'<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="{suite}" tests="{len(results)}" '
                    f'failures="{failures}">\n' + "\n".join(cases) + "\n</testsuite>\n")


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so atexit ends servers and the JVM
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", choices=("roost", "zookeeper"), default=os.environ.get("ROOST_TEST_TARGET", "roost"))
    ap.add_argument("--size", choices=("1", "3", "both"), default=os.environ.get("CURATOR_SIZE", "both"))
    ap.add_argument("--only", help="comma-separated check names")
    ap.add_argument("--expected-failures", default=str(HERE / "expected_failures.txt"))
    args = ap.parse_args()
    target = args.target
    if target == "roost" and zkharness.roost_bin() == zkharness.SELF_CHECK:
        target = "zookeeper"  # ROOST_BIN=zookeeper: the self-check convention of tests/compat
    sizes = [1, 3] if args.size == "both" else [int(args.size)]
    out_dir = Path(os.environ.get("TEST_OUTPUT_DIR", str(REPO / "test-output")))
    out_root = out_dir / "curator"
    out_root.mkdir(parents=True, exist_ok=True)
    if target == "roost":
        binary = zkharness.roost_bin()
        if not os.access(binary, os.X_OK):
            print(f"curator/run.py: roost binary not found at {binary} (set ROOST_BIN)", file=sys.stderr)
            return 1
        # Three servers on a shared 2-core machine do better with one tokio worker each (README).
        os.environ.setdefault("TOKIO_WORKER_THREADS", "1")
    expected = load_expected(Path(args.expected_failures))
    t0 = time.monotonic()
    classes = compile_checks(out_root)
    passed = failed = skipped = 0
    for size in sizes:
        results = run_size(target, size, out_root, classes, args.only, expected)
        write_junit(out_dir / f"curator-{target}-size{size}.xml", f"curator.{target}.size{size}", results,
                    target, size, expected)
        for r in results:
            if r["status"] == "PASS":
                passed += 1
            elif expected_reason(expected, str(r["name"]), target, size):
                skipped += 1
            else:
                failed += 1
    print(f"curator checks: target={target} sizes={','.join(map(str, sizes))} in {time.monotonic() - t0:.0f}s", flush=True)
    print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""), flush=True)
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
