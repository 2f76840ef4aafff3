#!/usr/bin/env python3
"""Hostile-client bench: Roost vs Apache ZooKeeper 3.8, side by side, raw ZooKeeper wire protocol.

Two clients that a server must survive without help from the client library:

1. Slow reader. /big holds 1,000,000 bytes. One session pipelines 1,500 getData(/big) requests and
   never reads a reply: a server that serialises every reply into memory grows by ~1.5 GB. We sample
   the server's VmRSS every 0.5 s for 10 s after the burst (max growth, MiB), close the socket and
   report the growth 3 s later, and check that a second client still gets /big within 2 s meanwhile.
2. Idle sockets. 200 TCP connections that never send a byte (not even a ConnectRequest). We count
   how many the server has closed after 5, 12 and 20 s (ZooKeeper's sessionless timeout is 10 s),
   and check that a fresh client can handshake + getData(/) while they are held open.

Each phase gets a fresh server. Both servers run standalone with maxClientCnxns=0 (the default 60
per address would refuse 140 of the 200 idle sockets and the fresh client, which is a different
test). ZooKeeper runs as the project's compat harness runs it (tests/compat/zkharness.py: -Xmx256m,
SerialGC, C1 only) plus -Djute.maxbuffer=4194304; Roost runs /tmp/roost-bin/roost as shipped (HTTP
port and navigator on). Before the RSS baseline one full getData(/big) warms the server up.

Caveat: ZooKeeper >= 3.6 caches serialised getData replies (zookeeper.maxResponseCacheSize, default
400), so its 1,500 queued replies to the same unchanged node share one 1 MB byte array. To see the
slow reader without that sharing: ZK_EXTRA_JVMFLAGS=-Dzookeeper.maxResponseCacheSize=0.

Usage: python3 bench/hostile/measure.py [--target roost|zookeeper|both]
Prints a Markdown table and writes bench/hostile/results.json.
"""
import argparse, json, os, shutil, signal, socket, struct, subprocess, sys, tempfile, threading, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
COMPAT = HERE.parent.parent / "tests" / "compat"
ROOST_BIN = os.environ.get("ROOST_BIN", "/tmp/roost-bin/roost")
BIG = 1_000_000
PORTS = iter(range(24000, 24101))


def free_port():
    for p in PORTS:
        try:
            with socket.socket() as s:
                return s.bind(("127.0.0.1", p)) or p
        except OSError:
            pass
    raise RuntimeError("no free port in 24000-24100")


# ---- wire protocol ------------------------------------------------------------------------------
def frame(b): return struct.pack(">i", len(b)) + b
def jstr(s): b = s.encode(); return struct.pack(">i", len(b)) + b
def getdata_req(xid, path): return frame(struct.pack(">ii", xid, 4) + jstr(path) + b"\0")
CONNECT_REQ = frame(struct.pack(">iqiqi", 0, 0, 30000, 0, 16) + b"\0" * 16 + b"\0")


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        if not (chunk := s.recv(n - len(buf))):
            raise ConnectionError("server closed the connection")
        buf += chunk
    return bytes(buf)


def recv_frame(s): return recv_exact(s, struct.unpack(">i", recv_exact(s, 4))[0])


def session(port, timeout=5.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(CONNECT_REQ)
    if len(recv_frame(s)) not in (36, 37, 38):
        raise ConnectionError("bad ConnectResponse")
    return s


def call(s, xid, op, body):
    s.sendall(frame(struct.pack(">ii", xid, op) + body))
    while True:  # skips watch events (xid -1); we set no watches
        rxid, _zxid, err = struct.unpack(">iqi", (r := recv_frame(s))[:16])
        if rxid == xid:
            return err, r[16:]


def create_big(port):
    acl = struct.pack(">ii", 1, 31) + jstr("world") + jstr("anyone")
    with session(port, 30) as s:
        err, _ = call(s, 1, 1, jstr("/big") + struct.pack(">i", BIG) + b"x" * BIG + acl + struct.pack(">i", 0))
        assert err == 0, f"create /big failed: {err}"


def get_big(port, timeout=10.0):
    """Fresh session, getData(/big), full reply read. Returns seconds (raises on failure)."""
    t0 = time.monotonic()
    with session(port, timeout) as s:
        err, body = call(s, 1, 4, jstr("/big") + b"\0")
        assert err == 0 and struct.unpack(">i", body[:4])[0] == BIG, f"getData /big: err {err}"
    return time.monotonic() - t0


# ---- servers ------------------------------------------------------------------------------------
def rss_mib(pid):
    try:
        return next(int(l.split()[1]) / 1024 for l in Path(f"/proc/{pid}/status").read_text().splitlines()
                    if l.startswith("VmRSS:"))
    except (OSError, StopIteration):  # the server died
        return None


class Server:
    def __init__(self, kind):
        self.kind, self.port = kind, free_port()
        self.dir = Path(tempfile.mkdtemp(prefix=f"hostile-{kind}-"))
        self.log, self.proc = self.dir / "server.log", None
        try:
            self._start(kind)
        except BaseException:
            self.stop()
            raise

    def _start(self, kind):
        (data := self.dir / "data").mkdir()
        if kind == "roost":
            argv = [ROOST_BIN, "--client-port", str(self.port), "--http-port", str(free_port()),
                    "--data-dir", str(data), "-D", "maxClientCnxns=0"]
        else:
            cfg = self.dir / "zoo.cfg"
            cfg.write_text(f"tickTime=2000\ndataDir={data}\nclientPort={self.port}\nmaxClientCnxns=0\n"
                           "admin.enableServer=false\n4lw.commands.whitelist=*\n")
            l4j = self.dir / "log4j.properties"
            l4j.write_text("log4j.rootLogger=INFO, C\nlog4j.appender.C=org.apache.log4j.ConsoleAppender\n"
                           "log4j.appender.C.layout=org.apache.log4j.PatternLayout\n")
            cp = subprocess.run(["bash", str(COMPAT / "zk_classpath.sh")], check=True,
                                capture_output=True, text=True).stdout.strip()
            # Like zkharness.py: real java (not the zkshim stand-in), same heap and JIT flags.
            java = shutil.which("java", path=os.environ.get("PATH", "").replace(str(COMPAT / "zkshim"), ""))
            argv = [java or "java", "-cp", cp, "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                    "-Djute.maxbuffer=4194304", f"-Dlog4j.configuration=file:{l4j}",
                    *os.environ.get("ZK_EXTRA_JVMFLAGS", "").split(),
                    "org.apache.zookeeper.server.ZooKeeperServerMain", str(cfg)]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         cwd=self.dir)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{kind} exited with {self.proc.returncode}; see log:\n"
                                   + self.log.read_text(errors="replace")[-3000:])
            try:
                return session(self.port, 2).close()
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{kind} not serving after 60 s")
                time.sleep(0.2)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- phases -------------------------------------------------------------------------------------
def slow_reader(srv):
    pid, out = srv.proc.pid, {}
    create_big(srv.port)
    get_big(srv.port)  # warm-up
    time.sleep(1)
    base = rss_mib(pid)
    s = session(srv.port, 10)
    try:
        s.sendall(b"".join(getdata_req(i + 1, "/big") for i in range(1500)))
        out["requests_sent"] = 1500
    except OSError as e:  # the server stopped reading and our send buffer filled
        out["requests_sent"] = f"partial ({e.__class__.__name__})"
    samples, probe = [], {}

    def probe_second_client():
        time.sleep(1)
        try:
            probe["latency_s"] = round(get_big(srv.port, timeout=10), 3)
        except Exception as e:
            probe["error"] = repr(e)

    (t := threading.Thread(target=probe_second_client)).start()
    for _ in range(20):  # every 0.5 s for 10 s
        time.sleep(0.5)
        samples.append(None if (r := rss_mib(pid)) is None else round(r - base, 1))
    t.join()
    s.close()
    time.sleep(3)
    after = rss_mib(pid) if srv.proc.poll() is None else None
    out.update(rss_base_mib=round(base, 1), rss_samples_growth_mib=samples,
               rss_max_growth_mib=max((x for x in samples if x is not None), default=None),
               rss_growth_after_close_mib=None if after is None else round(after - base, 1),
               server_alive=after is not None, second_client_ok=probe.get("latency_s", 99) <= 2.0,
               second_client_latency_s=probe.get("latency_s"), second_client_error=probe.get("error"))
    return out


def idle_sockets(srv, n=200):
    socks = [socket.create_connection(("127.0.0.1", srv.port), timeout=5) for _ in range(n)]
    t0, closed, out = time.monotonic(), set(), {}
    for s in socks:
        s.setblocking(False)
    try:
        time.sleep(1)
        try:
            with session(srv.port, 5) as c:
                t1 = time.monotonic()
                err, _ = call(c, 1, 4, jstr("/") + b"\0")
                out["fresh_client_ok"], out["fresh_client_getdata_s"] = err == 0, round(time.monotonic() - t1, 4)
        except Exception as e:
            out["fresh_client_ok"], out["fresh_client_error"] = False, repr(e)
        for mark in (5, 12, 20):
            time.sleep(max(0.0, t0 + mark - time.monotonic()))
            for i, s in enumerate(socks):
                try:
                    if s.recv(1, socket.MSG_PEEK) == b"":
                        closed.add(i)
                except BlockingIOError:
                    pass
                except OSError:  # ECONNRESET and friends
                    closed.add(i)
            out[f"closed_after_{mark}s"] = len(closed)
    finally:
        for s in socks:
            s.close()
    return out


def run_target(kind):
    res = {}
    for name, phase in (("slow_reader", slow_reader), ("idle_sockets", idle_sockets)):
        srv = None
        try:
            srv = Server(kind)
            res[name] = phase(srv)
        except Exception as e:
            res[name] = {"error": repr(e)[:2000]}
        finally:
            if srv:
                srv.stop()
    return res


ROWS = [("Slow reader: max RSS growth in 10 s (MiB)", "slow_reader", "rss_max_growth_mib"),
        ("Slow reader: RSS growth 3 s after close (MiB)", "slow_reader", "rss_growth_after_close_mib"),
        ("Slow reader: second client getData /big < 2 s", "slow_reader", "second_client_ok"),
        ("Slow reader: second client latency (s)", "slow_reader", "second_client_latency_s"),
        ("Slow reader: server still running", "slow_reader", "server_alive"),
        ("Idle sockets closed after 5 s (of 200)", "idle_sockets", "closed_after_5s"),
        ("Idle sockets closed after 12 s", "idle_sockets", "closed_after_12s"),
        ("Idle sockets closed after 20 s", "idle_sockets", "closed_after_20s"),
        ("Idle sockets: fresh client handshake + getData", "idle_sockets", "fresh_client_ok")]


def fmt(ph, key):
    v = ph.get(key)
    return "error" if "error" in ph else "n/a" if v is None else "yes" if v is True else "no" if v is False else str(v)


def table(results):
    lines = ["| Measure | " + " | ".join(results) + " |", "|---|" + "---|" * len(results)]
    for label, phase, key in ROWS:
        lines.append(f"| {label} | " + " | ".join(fmt(r.get(phase, {}), key) for r in results.values()) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", choices=("roost", "zookeeper", "both"), default="both")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the finally blocks stop the servers
    kinds = ["roost", "zookeeper"] if args.target == "both" else [args.target]
    results = {k: run_target(k) for k in kinds}
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    for k, phase, ph in ((k, p, ph) for k, r in results.items() for p, ph in r.items() if "error" in ph):
        print(f"\n{k} {phase} failed: {ph['error']}", file=sys.stderr)


if __name__ == "__main__":
    main()
