"""Reproduction for zk-shell's test_create_tree and test_json_valid_recursive on Roost: the order of
the names in a getChildren reply (opcode 8).

    python3 tests/clients/zkshell/repro_child_order.py --kind roost       # ['invalid', 'one', 'two', 'valid']
    python3 tests/clients/zkshell/repro_child_order.py --kind zookeeper   # ['valid', 'invalid', 'two', 'one']

Apache ZooKeeper 3.8.0 keeps a node's children in a java.util.HashSet created with capacity 8 and
returns them in its iteration order: by bucket (h ^ h >>> 16) & (capacity - 1) of String.hashCode(),
then in insertion order within a bucket ("valid", "invalid": bucket 0; "two": 5; "one": 7). Roost
returns them sorted. zk-shell's `tree` and `json_valid recursive=true` print children in reply order,
and the two tests assert ZooKeeper's order: "two" before "one", "valid" before "invalid".
Raw frames, standard library only; one standalone server on port 23801.
"""

import argparse
import socket
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ensemble import Ensemble  # noqa: E402


def ustr(x: str) -> bytes:
    b = x.encode()
    return struct.pack(">i", len(b)) + b


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", choices=("roost", "zookeeper"), default="roost")
    kind = ap.parse_args().kind
    with Ensemble(kind, size=1, base_port=23800) as ens:
        s = socket.create_connection(("127.0.0.1", ens.client_port(1)), timeout=5)

        def send(b: bytes) -> None:
            s.sendall(struct.pack(">i", len(b)) + b)

        def recv() -> bytes:
            n = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
            return s.recv(n, socket.MSG_WAITALL)

        send(struct.pack(">iqiqi16s?", 0, 0, 10000, 0, 16, b"\0" * 16, False))  # ConnectRequest
        recv()
        xid = 0

        def req(op: int, body: bytes) -> bytes:
            nonlocal xid
            xid += 1
            send(struct.pack(">ii", xid, op) + body)
            reply = recv()
            _rxid, _zxid, err = struct.unpack(">iqi", reply[:16])
            assert err == 0, (op, err)
            return reply[16:]

        acl = struct.pack(">ii", 1, 31) + ustr("world") + ustr("anyone")
        for p in ["/order", "/order/one", "/order/two", "/order/valid", "/order/invalid"]:
            req(1, ustr(p) + struct.pack(">i", -1) + acl + struct.pack(">i", 0))  # create, persistent
        body = req(8, ustr("/order") + b"\0")  # getChildren, no watch
        n, off, names = struct.unpack(">i", body[:4])[0], 4, []
        for _ in range(n):
            ln = struct.unpack(">i", body[off:off + 4])[0]
            names.append(body[off + 4:off + 4 + ln].decode())
            off += 4 + ln
        print(f"{kind}: created one, two, valid, invalid; getChildren(/order) -> {names}")
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
