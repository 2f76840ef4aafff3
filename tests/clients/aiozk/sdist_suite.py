"""Run a Python ZooKeeper client's own test suite, taken from its PyPI sdist at run time, against
Roost or Apache ZooKeeper, standalone and as a 3-member ensemble.

Used by tests/clients/aiozk/run.sh and tests/clients/zkshell/run.sh:
    python3 sdist_suite.py aiozk|zkshell [--target roost|zookeeper] [--size N ...] [-- pytest args ...]

What it does, per suite:
  1. a virtualenv with the suite's pinned test dependencies (<suite dir>/requirements.txt), kept in
     $ROOST_CLIENT_CACHE (default ~/.cache/roost-client-suites) under a hash of that file;
  2. the pinned sdist, fetched with `pip download --no-binary :all:` into the same cache, checked
     against its sha256 and unpacked into a scratch directory (nothing of it is committed);
  3. for each size: the servers (aiozk: tests/clients/ensemble.py, steered by ZK_HOST/ZK_PORT;
     zk-shell: kazoo's own KazooTestHarness, steered by the stand-in java in tests/compat/zkshim
     exactly as tests/compat/run_kazoo.sh does), then pytest on the suite's tests with
     pytest-timeout per test, a whole-run timeout, junit XML in $TEST_OUTPUT_DIR and the
     expected-failures plugin xfail_list.py;
  4. a final line `<suite>: N passed, N failed, N skipped` over all sizes (an expected failure that
     failed counts as skipped, one that passed as passed). Exit 0 only when every run passed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent          # tests/clients/aiozk
CLIENTS = HERE.parent                           # tests/clients
REPO = CLIENTS.parent.parent
COMPAT = REPO / "tests" / "compat"
sys.path.insert(0, str(CLIENTS))
sys.path.insert(0, str(COMPAT))

import zkharness  # noqa: E402
from ensemble import Ensemble  # noqa: E402


@dataclass
class Suite:
    name: str                 # also the directory under tests/clients and the junit file prefix
    requirement: str          # the sdist, pinned
    sdist_sha256: str
    test_dir: str             # inside the unpacked sdist
    ini: List[str]            # `-o` options from the sdist's own pytest configuration that the tests need
    server: str               # "ensemble" (we start one) or "kazoo-harness" (the suite starts its own)
    port_base: int
    test_timeout: int         # pytest-timeout per test, seconds (env <NAME>_TEST_TIMEOUT)
    run_timeout: int          # whole pytest run per size, seconds (env <NAME>_RUN_TIMEOUT)
    deselect: List[Tuple[str, str]] = field(default_factory=list)  # (node id, why)

    @property
    def dir(self) -> Path:
        return CLIENTS / self.name


SUITES: Dict[str, Suite] = {
    "aiozk": Suite(
        name="aiozk",
        requirement="aiozk==0.32.0",
        sdist_sha256="a1eace00c5d3f035aaacdce6d90d328583435cd8651165c5370f4c0593789099",
        test_dir="aiozk/test",
        # aiozk's pytest.ini: asyncio_mode=auto (its tests are plain `async def`). Its addopts only add
        # coverage, which we leave out (the ini file itself is not read: -c /dev/null).
        ini=["asyncio_mode=auto"],
        server="ensemble",
        port_base=23500,      # members: client 23501-3, quorum 23601-3, election 23701-3
        test_timeout=60,
        run_timeout=900,
    ),
    "zkshell": Suite(
        name="zkshell",
        requirement="zk-shell==1.3.4",
        sdist_sha256="05828f0335d539f190c8981170487638b9e38b535121b66074a49c2d70a25ce6",
        test_dir="zk_shell/tests",
        ini=[],
        server="kazoo-harness",
        port_base=23000,      # kazoo's ZOOKEEPER_PORT_OFFSET: member i uses 23000+10(i-1) .. +4
        test_timeout=120,
        run_timeout=900,
        deselect=[
            # Connects to the internet name doesnt-exist.itevenworks.net:2181 and asserts the shell's
            # message; it never talks to the server under test, and this machine may only send
            # traffic to loopback.
            ("zk_shell/tests/test_connect.py::ConnectTestCase::test_start_bad_host",
             "reaches for an internet host; never talks to the server under test"),
        ],
    ),
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- preparation: venv and sdist -------------------------------------------------------------------

def cache_dir() -> Path:
    base = os.environ.get("ROOST_CLIENT_CACHE") or str(Path.home() / ".cache" / "roost-client-suites")
    p = Path(base)
    p.mkdir(parents=True, exist_ok=True)
    return p


def pip_env() -> Dict[str, str]:
    return dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")


def ensure_venv(suite: Suite) -> Path:
    """A virtualenv with exactly requirements.txt, reused while that file and the Python are unchanged."""
    reqs = suite.dir / "requirements.txt"
    key = hashlib.sha256(reqs.read_bytes() + sys.version.encode()).hexdigest()[:12]
    venv = cache_dir() / f"venv-{suite.name}-{key}"
    python = venv / "bin" / "python"
    if (venv / ".complete").exists() and python.exists():
        return python
    log(f"creating {venv} from {reqs.relative_to(REPO)}")
    tmp = Path(tempfile.mkdtemp(prefix=f"venv-{suite.name}-", dir=cache_dir()))
    try:
        subprocess.run([sys.executable, "-m", "venv", str(tmp)], check=True, stdin=subprocess.DEVNULL)
        # pip writes the venv's own path into its scripts; we only ever call `bin/python -m ...`, so
        # the rename below is harmless.
        subprocess.run([str(tmp / "bin" / "python"), "-m", "pip", "install", "-q", "-r", str(reqs)],
                       check=True, stdin=subprocess.DEVNULL, env=pip_env(), timeout=900)
        (tmp / ".complete").write_text(reqs.read_text())
        if venv.exists():
            shutil.rmtree(venv)
        tmp.rename(venv)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return python


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ensure_sdist(suite: Suite, python: Path) -> Path:
    sdists = cache_dir() / "sdists"
    sdists.mkdir(exist_ok=True)
    name, version = suite.requirement.split("==")
    stems = {name.replace("-", "_"), name}

    def cached() -> Optional[Path]:
        for stem in stems:
            p = sdists / f"{stem}-{version}.tar.gz"
            if p.exists() and sha256_of(p) == suite.sdist_sha256:
                return p
        return None

    found = cached()
    if found:
        return found
    log(f"pip download --no-deps --no-binary :all: {suite.requirement}")
    subprocess.run([str(python), "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                    "-d", str(sdists), suite.requirement],
                   check=True, stdin=subprocess.DEVNULL, env=pip_env(), timeout=300)
    found = cached()
    if not found:
        raise SystemExit(f"{suite.requirement}: downloaded sdist missing or sha256 is not {suite.sdist_sha256}")
    return found


def unpack(sdist: Path, into: Path) -> Path:
    with tarfile.open(sdist) as tar:
        try:
            tar.extractall(into, filter="data")
        except TypeError:   # Python before 3.11.4 has no extraction filters
            tar.extractall(into)
    (top,) = [p for p in into.iterdir() if p.is_dir()]
    return top


# -- servers ---------------------------------------------------------------------------------------

def zookeeper_version() -> str:
    """The version the installed Apache jar reports (Debian bookworm: 3.8.0), as run_kazoo.sh does."""
    out = subprocess.run(["java", "-cp", zkharness.zk_classpath(), "org.apache.zookeeper.version.VersionInfoMain"],
                         capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL).stdout
    m = re.search(r"version (\d[\d.]*\d)", out)
    return m.group(1) if m else "3.8.0"


def harness_env(suite: Suite, target: str, size: int, work: Path) -> Dict[str, str]:
    """kazoo's KazooTestHarness (zk-shell's ShellTestCase uses get_global_cluster) spawns
    `java ... QuorumPeerMain zoo.cfg`; zkshim/java first on PATH turns that into roost or the real
    ZooKeeper. The same variables as tests/compat/run_kazoo.sh."""
    return {
        "PATH": f"{COMPAT / 'zkshim'}:{os.environ.get('PATH', '')}",
        "ZOOKEEPER_CLUSTER_SIZE": str(size),
        "ZOOKEEPER_VERSION": os.environ.get("ZOOKEEPER_VERSION") or ("3.8.4" if target == "roost" else zookeeper_version()),
        "ZOOKEEPER_CLASSPATH": "provided-by-zkshim",
        "ZOOKEEPER_PORT_OFFSET": str(suite.port_base),
        "ZKSHIM_PIDFILE": str(work / "server.pids"),
    }


# -- one pytest run --------------------------------------------------------------------------------

def run_pytest(argv: List[str], env: Dict[str, str], cwd: Path, timeout: int) -> int:
    """pytest in its own process group; past the whole-run timeout it gets SIGINT (pytest then
    reports what ran and writes its junit file), and SIGKILL 60 s later."""
    proc = subprocess.Popen(argv, env=env, cwd=str(cwd), stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        log(f"whole-run timeout ({timeout} s): interrupting pytest")
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        return 124
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_size(suite: Suite, target: str, size: int, python: Path, src: Path, out_dir: Path,
             extra: List[str]) -> Tuple[int, Dict[str, int], float]:
    label = f"{suite.name}[target={target},size={size}]"
    work = Path(tempfile.mkdtemp(prefix=f"{suite.name}-{target}-{size}-"))
    junit = out_dir / f"{suite.name}-{target}-{size}.xml"
    junit.unlink(missing_ok=True)   # never count a previous run's file
    counts_file = work / "counts.json"
    env = dict(os.environ)
    env.update({
        "ROOST_TEST_TARGET": target,
        "ZOOKEEPER_CLUSTER_SIZE": str(size),
        "PYTHONPATH": str(HERE),                  # the xfail_list plugin
        "PYTHONDONTWRITEBYTECODE": "1",
        "SUITE_EXPECTED_FAILURES": str(suite.dir / "expected_failures.txt"),
        "SUITE_NODEID_PREFIX": suite.test_dir + "/",
        "SUITE_COUNTS_FILE": str(counts_file),
    })
    test_timeout = int(os.environ.get(f"{suite.name.upper()}_TEST_TIMEOUT", suite.test_timeout))
    run_timeout = int(os.environ.get(f"{suite.name.upper()}_RUN_TIMEOUT", suite.run_timeout))
    argv = [str(python), "-m", "pytest", suite.test_dir,
            # Nothing of the sdist's or our repo's pytest configuration is read; what the tests
            # need from the sdist's own configuration is repeated with -o.
            "-c", "/dev/null", "--rootdir", str(src),
            "-p", "no:cacheprovider", "-p", "xfail_list",
            f"--timeout={test_timeout}",
            "-o", "junit_family=xunit2", f"--junitxml={junit}",
            "-rfEX", "-q"]
    for opt in suite.ini:
        argv += ["-o", opt]
    for nodeid, _why in suite.deselect:
        argv += ["--deselect", nodeid]
    argv += extra

    ens = None
    started = time.monotonic()
    rc = 1
    try:
        if suite.server == "ensemble":
            ens = Ensemble(target, size=size, base_port=suite.port_base, workdir=work / "servers")
            ens.start()
            hosts = ens.connect_string.rsplit(":", 1)
            # aiozk's conftest connects to f"{ZK_HOST}:{ZK_PORT}"; a host list fits in that shape.
            env["ZK_HOST"], env["ZK_PORT"] = hosts[0], hosts[1]
            log(f"{label}: servers {ens.connect_string}")
        else:
            env.update(harness_env(suite, target, size, work))
            log(f"{label}: kazoo harness, ports {suite.port_base}.., ZOOKEEPER_VERSION={env['ZOOKEEPER_VERSION']}")
        log(f"{label}: pytest (per test {test_timeout} s, whole run {run_timeout} s), junit {junit}")
        rc = run_pytest(argv, env, src, run_timeout)
    finally:
        elapsed = time.monotonic() - started
        if ens is not None:
            if rc != 0:
                save_logs(ens, out_dir, f"{suite.name}-{target}-{size}")
            ens.stop()
        pidfile = work / "server.pids"
        if pidfile.exists():
            zkharness.kill_pidfile(pidfile)   # anything kazoo's atexit did not stop, by pid
        counts = json.loads(counts_file.read_text()) if counts_file.exists() else None
        shutil.rmtree(work, ignore_errors=True)
    if counts is None:
        # pytest did not reach its terminal summary (whole-run timeout, or a crash in the session's
        # teardown): take what the junit file says and count the unfinished run as one more failure.
        counts = junit_counts(junit)
        counts["failed"] = counts.get("failed", 0) + 1
        log(f"{label}: pytest ended without its summary (exit {rc}); counts from the junit file, plus one failure")
    elif rc != 0 and counts.get("failed", 0) + counts.get("error", 0) == 0:
        # interrupted by the whole-run timeout, a usage error, no tests collected ...: not a pass
        counts["failed"] = 1
        log(f"{label}: pytest exit {rc} with no failed test; counted as one failure")
    return rc, counts, elapsed


def junit_counts(junit: Path) -> Dict[str, int]:
    try:
        suites = list(ET.parse(junit).getroot().iter("testsuite"))
    except (OSError, ET.ParseError):  # no file, or a truncated one
        return {}
    n = {k: sum(int(t.get(k, 0)) for t in suites) for k in ("tests", "failures", "errors", "skipped")}
    return {"passed": n["tests"] - n["failures"] - n["errors"] - n["skipped"],
            "failed": n["failures"], "error": n["errors"], "skipped": n["skipped"]}


def save_logs(ens: Ensemble, out_dir: Path, stem: str) -> None:
    for m in ens.members:
        src = ens.workdir / f"m{m}" / "server.log"
        if src.exists():
            shutil.copy(src, out_dir / f"{stem}-server{m}.log")


# -- main ------------------------------------------------------------------------------------------

def parse_args(argv: List[str]):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("suite", choices=sorted(SUITES))
    ap.add_argument("--target", choices=("roost", "zookeeper"))
    ap.add_argument("--size", type=int, action="append", choices=(1, 3),
                    help="members per run; repeat for several runs (default: $ZOOKEEPER_CLUSTER_SIZE, else 1 then 3)")
    ours, pytest_args = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    args = ap.parse_args(ours)
    args.pytest_args = pytest_args
    return args


def main(argv: List[str]) -> int:
    # run.sh's whole-run `timeout` sends SIGTERM: unwind, so the finally blocks end pytest and the
    # servers by pid.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args = parse_args(argv)
    suite = SUITES[args.suite]
    target = args.target or os.environ.get("ROOST_TEST_TARGET") or "roost"
    if os.environ.get("ROOST_BIN") == "zookeeper":   # the compat tests' self-check mode means the same here
        target = "zookeeper"
    if target not in ("roost", "zookeeper"):
        print(f"ROOST_TEST_TARGET must be roost or zookeeper (got {target})", file=sys.stderr)
        return 2
    env_size = os.environ.get("ZOOKEEPER_CLUSTER_SIZE")
    sizes = args.size or ([int(env_size)] if env_size else [1, 3])
    if target == "roost":
        binary = zkharness.roost_bin()
        if not os.access(binary, os.X_OK):
            print(f"roost binary not found at {binary} (cargo build --release, or set ROOST_BIN)", file=sys.stderr)
            return 1
        os.environ["ROOST_BIN"] = str(Path(binary).resolve())
    out_dir = Path(os.environ.get("TEST_OUTPUT_DIR") or REPO / "test-output")
    out_dir.mkdir(parents=True, exist_ok=True)
    extra = args.pytest_args + os.environ.get(f"{suite.name.upper()}_ARGS", "").split()

    python = ensure_venv(suite)
    sdist = ensure_sdist(suite, python)
    scratch = Path(tempfile.mkdtemp(prefix=f"{suite.name}-src-"))
    total = {"passed": 0, "failed": 0, "skipped": 0}
    ok = True
    try:
        src = unpack(sdist, scratch)
        log(f"{suite.name}: {sdist.name} unpacked in {src}; target={target} sizes={sizes}")
        for nodeid, why in suite.deselect:
            log(f"{suite.name}: deselected {nodeid}: {why}")
        for size in sizes:
            rc, c, elapsed = run_size(suite, target, size, python, src, out_dir, extra)
            passed = c.get("passed", 0) + c.get("xpassed", 0)
            failed = c.get("failed", 0) + c.get("error", 0)
            skipped = c.get("skipped", 0) + c.get("xfailed", 0)
            print(f"RESULT {suite.name}[target={target},size={size}]: {passed} passed, {failed} failed, "
                  f"{skipped} skipped (xfailed={c.get('xfailed', 0)} xpassed={c.get('xpassed', 0)}) "
                  f"in {elapsed:.0f} s, pytest exit {rc}", flush=True)
            total["passed"] += passed
            total["failed"] += failed
            total["skipped"] += skipped
            ok = ok and rc == 0 and failed == 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"{suite.name}: {total['passed']} passed, {total['failed']} failed, {total['skipped']} skipped", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
