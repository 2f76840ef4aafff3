#!/usr/bin/env python3
"""Minimal reproductions for go-zookeeper's TestNoQuorum (3 members, session timeout 4 s):
what a member that has lost its quorum does with a client's ConnectRequest, and what happens
to the session when the quorum comes back.

A 3-member ensemble from tests/clients/ensemble.py (client ports base+1..base+3). A session is
made on one member over raw frames (ConnectRequest exactly as go-zookeeper sends it: no readOnly
byte, timeOut 4000) and its socket dropped without closeSession, as go-zookeeper's is when its
server is killed. Then the two other members are SIGKILLed, and the session re-attaches.

  --case follower  the session's member is a follower. Prints how long the survivor takes to
                   answer a ConnectRequest after the kills (go-zookeeper needs a close within 4 s;
                   Apache ZooKeeper closes at once), then restarts one member and re-attaches.
  --case leader    the session's member is the leader. Waits 6 s (> the 4 s session timeout; the
                   client cannot heartbeat: nobody serves), restarts one follower and re-attaches
                   through the old leader only (the member go-zookeeper's client was on). Apache
                   ZooKeeper re-elects and renews every session's timeout, so the same session id
                   comes back.
  --case regain    TestNoQuorum's other path: the first leader is killed, a second leader is
                   elected, the session is made on it (a write the killed member misses), the
                   last follower is killed, 6 s pass (> the session timeout), and the first leader
                   (now behind) is restarted; it cannot win an election, so the second leader gets
                   its quorum back without one. The session re-attaches through that leader.
  --case leader-killed  TestDNSHostProviderReconnect's path: the session is on the leader, the leader
                   is SIGKILLed (the quorum stays: 2 of 3), and the client at once re-attaches
                   through a follower and sends a create; repeated until the create succeeds.

    python3 tests/clients/go/repro/no_quorum_connect.py --kind roost     --case follower
    python3 tests/clients/go/repro/no_quorum_connect.py --kind zookeeper --case leader
"""
import argparse
import socket
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from ensemble import Ensemble  # noqa: E402


def connect_frame(session_id: int = 0, passwd: bytes = b"\0" * 16, timeout_ms: int = 4000) -> bytes:
    body = struct.pack(">iqiq", 0, 0, timeout_ms, session_id) + struct.pack(">i", len(passwd)) + passwd
    return struct.pack(">i", len(body)) + body


def attempt(port: int, session_id: int = 0, passwd: bytes = b"\0" * 16, wait: float = 8.0):
    """(seconds, text, (sessionId, passwd) or None)"""
    t0 = time.monotonic()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=wait)
    except OSError as e:
        return time.monotonic() - t0, f"connect: {e.strerror}", None
    try:
        s.sendall(connect_frame(session_id, passwd))
        s.settimeout(wait)
        data = s.recv(4096)
    except socket.timeout:
        return time.monotonic() - t0, "no answer", None
    except OSError as e:
        return time.monotonic() - t0, f"error {e}", None
    finally:
        s.close()
    dt = time.monotonic() - t0
    if not data:
        return dt, "EOF (connection closed)", None
    proto, tmo, sid = struct.unpack(">iiq", data[4:20])
    kind = "EXPIRED (timeOut 0)" if tmo <= 0 else "session"
    return dt, f"ConnectResponse {kind} timeOut={tmo} sessionId=0x{sid:x}", (sid, data[24:40])


def regain(ens: Ensemble, first: int) -> int:
    ens.kill(first)
    print(f"SIGKILLed the leader, member {first}")
    t0 = time.monotonic()
    second = None
    while second is None and time.monotonic() - t0 < 20:
        time.sleep(0.2)
        second = next((m for m in ens.members if m != first and ens.mode(m) == "leader"), None)
    if second is None:
        print("no second leader within 20 s")
        return 1
    third = next(m for m in ens.members if m not in (first, second))
    print(f"member {second} leads after {time.monotonic() - t0:.2f}s")
    dt, what, sess = attempt(ens.client_port(second))
    print(f"session on member {second}: {what}")
    sid, pw = sess
    ens.kill(third)
    t1 = time.monotonic()
    print(f"SIGKILLed member {third}; member {second} is alone; waiting 6 s")
    time.sleep(6)
    ens.start_member(first)
    t2 = time.monotonic()
    print(f"t+{t2 - t1:.2f}s restarted member {first} (its log lacks the session's creation); "
          "re-attaching from 1.5 s on")
    time.sleep(1.5)  # the quorum is back well within this; a pending expiry retries every second
    last = None
    while time.monotonic() - t2 < 20:
        dt, what, _ = attempt(ens.client_port(second), sid, pw, wait=3.0)
        if what != last:
            print(f"  t+{time.monotonic() - t2:5.2f}s re-attach 0x{sid:x} on member {second} "
                  f"({ens.mode(second)}): {what} after {dt:.2f}s")
            last = what
        if what.startswith("ConnectResponse"):
            break
        time.sleep(0.25)
    print("modes", {m: ens.mode(m) for m in ens.members})
    return 0


def create_frame(xid: int, path: bytes) -> bytes:
    # create (op 1): path, data, acl [world:anyone ALL], flags 0
    acl = struct.pack(">ii", 1, 31) + struct.pack(">i", 5) + b"world" + struct.pack(">i", 6) + b"anyone"
    body = struct.pack(">ii", xid, 1) + struct.pack(">i", len(path)) + path + struct.pack(">i", 1) + b"x" + acl
    body += struct.pack(">i", 0)
    return struct.pack(">i", len(body)) + body


def leader_killed(ens: Ensemble, leader: int, restart: bool, delay: float) -> int:
    dt, what, sess = attempt(ens.client_port(leader))
    print(f"session on member {leader} (leader): {what}")
    sid, pw = sess
    follower = next(m for m in ens.members if m != leader)
    ens.kill(leader)
    t0 = time.monotonic()
    if restart:  # as the test does: Srv.Stop() (SIGKILL, wait) then Srv.Start() at once
        ens.start_member(leader)
    time.sleep(delay)
    print(f"SIGKILLed the leader, member {leader}{' and restarted it' if restart else ''}; "
          f"re-attaching through member {follower} after {delay * 1000:.0f} ms and creating /x")
    for i in range(1, 200):
        t = time.monotonic() - t0
        try:
            s = socket.create_connection(("127.0.0.1", ens.client_port(follower)), timeout=5)
            s.sendall(connect_frame(sid, pw))
            s.settimeout(5)
            d = s.recv(4096)
            if not d:
                print(f"  t+{t:5.3f}s #{i} ConnectRequest: EOF")
                s.close()
                time.sleep(0.1)
                continue
            tmo, rsid = struct.unpack(">iq", d[8:20])
            print(f"  t+{t:5.3f}s #{i} ConnectResponse timeOut={tmo} sessionId=0x{rsid:x}")
            s.sendall(create_frame(1, b"/x%d" % i))
            d = s.recv(4096)
            t = time.monotonic() - t0
            if not d:
                print(f"  t+{t:5.3f}s #{i}   create: EOF (connection closed with the create in flight)")
                s.close()
                time.sleep(0.1)
                continue
            xid, zxid, err = struct.unpack(">iqi", d[4:20])
            print(f"  t+{t:5.3f}s #{i}   create: reply xid={xid} err={err}")
            s.close()
            if err == 0:
                break
        except OSError as e:
            print(f"  t+{t:5.3f}s #{i} {e}")
            time.sleep(0.1)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", default="roost", choices=["roost", "zookeeper"])
    ap.add_argument("--case", default="follower", choices=["follower", "leader", "regain", "leader-killed"])
    ap.add_argument("--base-port", type=int, default=25500)
    ap.add_argument("--restart", action="store_true", help="leader-killed: restart the killed leader at once")
    ap.add_argument("--delay", type=float, default=0.0, help="leader-killed: seconds before re-attaching")
    ap.add_argument("--keep", help="keep the members' directories (logs) here")
    args = ap.parse_args()
    if args.keep:
        Path(args.keep).mkdir(parents=True, exist_ok=True)
    with Ensemble(args.kind, 3, args.base_port, workdir=Path(args.keep) if args.keep else None) as ens:
        time.sleep(2)
        leader = ens.leader()
        print(f"{args.kind}: modes", {m: ens.mode(m) for m in ens.members})
        if args.case == "regain":
            return regain(ens, leader)
        if args.case == "leader-killed":
            return leader_killed(ens, leader, args.restart, args.delay)
        home = leader if args.case == "leader" else next(m for m in ens.members if m != leader)
        others = [m for m in ens.members if m != home]
        dt, what, sess = attempt(ens.client_port(home))
        print(f"session on member {home} ({ens.mode(home)}): {what}")
        sid, pw = sess
        for m in others:
            ens.kill(m)
        t0 = time.monotonic()
        print(f"SIGKILLed members {others}; member {home} is alone")
        if args.case == "follower":
            for _ in range(3):
                dt, what, _ = attempt(ens.client_port(home), sid, pw)
                print(f"  t+{time.monotonic() - t0:5.2f}s re-attach 0x{sid:x} on member {home}: {what} after {dt:.2f}s")
            dt, what, _ = attempt(ens.client_port(home))
            print(f"  t+{time.monotonic() - t0:5.2f}s new session on member {home}: {what} after {dt:.2f}s")
            print(f"  srvr Mode of member {home}: {ens.mode(home)!r}")
        else:
            while time.monotonic() - t0 < 6.0:
                time.sleep(0.5)
            dt, what, _ = attempt(ens.client_port(home), sid, pw)
            print(f"  t+{time.monotonic() - t0:5.2f}s re-attach 0x{sid:x} on member {home}: {what} after {dt:.2f}s")
        back = others[0]
        ens.start_member(back)
        t1 = time.monotonic()
        print(f"restarted member {back}")
        last = None
        while time.monotonic() - t1 < 20:
            for m in ((home,) if args.case == "leader" else (home, back)):
                dt, what, _ = attempt(ens.client_port(m), sid, pw, wait=3.0)
                if what != last:
                    print(f"  t+{time.monotonic() - t1:5.2f}s re-attach 0x{sid:x} on member {m}: {what} after {dt:.2f}s")
                    last = what
                if what.startswith("ConnectResponse"):
                    return 0
            time.sleep(0.25)
    return 0


if __name__ == "__main__":
    sys.exit(main())
