"""Leader write, then an immediate read through a follower, with raw ZooKeeper frames (no client
library between the reply and the next request, so the window is as narrow as it gets).

    python3 rawlag.py --kind roost|zookeeper [--rounds 3] [--writes 300]

Prints, per round and follower, how many of the creates the follower did not show yet. A
measurement, not a test: ZooKeeper promises nothing here without `sync`.
"""

import argparse
import socket
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
import ensemble  # noqa: E402


def frame(body: bytes) -> bytes:
    return struct.pack(">i", len(body)) + body


def zk_string(s: str) -> bytes:
    b = s.encode()
    return struct.pack(">i", len(b)) + b


def recv_exact(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("closed")
        out += chunk
    return out


def recv_frame(sock: socket.socket) -> bytes:
    (n,) = struct.unpack(">i", recv_exact(sock, 4))
    return recv_exact(sock, n)


def connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # protocolVersion, lastZxidSeen, timeOut, sessionId, passwd, readOnly
    s.sendall(frame(struct.pack(">iqiq", 0, 0, 10000, 0) + struct.pack(">i", 16) + b"\0" * 16 + b"\0"))
    recv_frame(s)
    return s


class Conn:
    def __init__(self, port: int):
        self.sock = connect(port)
        self.xid = 0

    def call(self, op: int, body: bytes) -> int:
        self.xid += 1
        self.sock.sendall(frame(struct.pack(">ii", self.xid, op) + body))
        while True:
            reply = recv_frame(self.sock)
            xid, _zxid, err = struct.unpack(">iqi", reply[:16])
            if xid == self.xid:
                return err


OPEN_ACL = struct.pack(">i", 1) + struct.pack(">i", 31) + zk_string("world") + zk_string("anyone")


def create(c: Conn, path: str) -> int:
    return c.call(1, zk_string(path) + struct.pack(">i", 1) + b"0" + OPEN_ACL + struct.pack(">i", 0))


def exists(c: Conn, path: str) -> int:
    return c.call(3, zk_string(path) + b"\0")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", default="roost")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--writes", type=int, default=300)
    ap.add_argument("--base-port", type=int, default=27600)
    a = ap.parse_args()
    with ensemble.Ensemble(a.kind, 3, base_port=a.base_port) as ens:
        leader = None
        for _ in range(300):
            leader = ens.leader()
            if leader:
                break
            time.sleep(0.1)
        followers = [m for m in ens.members if m != leader]
        w = Conn(ens.client_port(leader))
        readers = [Conn(ens.client_port(f)) for f in followers]
        create(w, "/lag")
        for r in range(a.rounds + 1):  # round 0 warms up
            missed = [0] * len(readers)
            for i in range(a.writes):
                p = f"/lag/r{r}-{i}"
                create(w, p)
                for k, rd in enumerate(readers):
                    if exists(rd, p) != 0:
                        missed[k] += 1
            if r:
                print(f"{a.kind} round {r}: missed " + ", ".join(f"m{f}: {m}/{a.writes}" for f, m in zip(followers, missed)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
