"""The fault kinds, the seeded schedule, and the leader monitor.

A schedule is a list of fault kinds drawn from the seed; every random choice a fault makes (which
member, how long) comes from an RNG seeded by (seed, fault index), so `--seed N` replays the same
sequence. Faults that target "the leader" act on whichever member is leader at that moment.
Every fault ends healed: processes running and resumed, firewall rules flushed.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import netns
from cluster import Cluster
from workload import SESSION_TIMEOUT, now

KINDS = [
    "kill_leader",            # kill -9 the leader, restart it after a while
    "kill_random",            # kill -9 a random member, restart it
    "kill_all",               # kill -9 every member, restart them all
    "pause_leader",           # SIGSTOP the leader for longer than a session timeout, SIGCONT
    "isolate_leader_drop",    # iptables DROP between the leader and its peers
    "isolate_leader_reject",  # the same with REJECT --reject-with tcp-reset
    "partition_minority",     # a random member vs the other two (minority/majority)
    "partition_bridge",       # A and C cannot talk, B talks to both
    "flapping",               # one member's links go down and up every 0.3-1.5 s
    "restart_random",         # orderly restart (SIGTERM, start) of a random member
]


def schedule(seed: int, count: int) -> List[str]:
    """`count` fault kinds: whole shuffled rounds of KINDS, so count >= len(KINDS) covers all."""
    rng = random.Random(seed)
    out: List[str] = []
    while len(out) < count:
        round_ = list(KINDS)
        rng.shuffle(round_)
        out += round_
    return out[:count]


class LeaderMonitor:
    """Polls every member's `srvr` every 100 ms (one thread per member, so a paused member only
    slows its own poller) and keeps (time, member, mode) observations."""

    def __init__(self, cluster: Cluster, interval: float = 0.1):
        self.cluster = cluster
        self.interval = interval
        self.obs: List[Tuple[float, int, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._poll, args=(m,), daemon=True, name=f"mon{m}")
                         for m in cluster.members]

    def start(self) -> "LeaderMonitor":
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)

    def _poll(self, m: int) -> None:
        while not self._stop.is_set():
            t = now()
            mode = self.cluster.mode(m, timeout=0.5)
            with self._lock:
                self.obs.append((t, m, mode))
            self._stop.wait(max(0.0, self.interval - (now() - t)))

    def snapshot(self) -> List[Tuple[float, int, str]]:
        with self._lock:
            return sorted(self.obs)

    def current_leader(self, within: float = 1.0) -> Optional[int]:
        cutoff = now() - within
        latest: Dict[int, Tuple[float, str]] = {}
        for t, m, mode in self.snapshot():
            if t >= cutoff:
                latest[m] = (t, mode)
        leaders = [m for m, (_, mode) in latest.items() if mode == "leader"]
        return leaders[0] if len(leaders) == 1 else None

    def first_stable_leader(self, after: float, exclude: Optional[int], stable: float = 1.0,
                            until: Optional[float] = None) -> Optional[Tuple[float, int]]:
        """First time > after at which a member other than `exclude` answers "leader" and keeps
        answering so for `stable` seconds (or until its observations end): the moment a new leader
        is observable. Brief stale claims (a resumed old leader) do not count."""
        obs = [o for o in self.snapshot() if o[0] > after and (until is None or o[0] <= until)]
        by_member: Dict[int, List[Tuple[float, str]]] = {}
        for t, m, mode in obs:
            by_member.setdefault(m, []).append((t, mode))
        for t, m, mode in obs:
            if mode != "leader" or m == exclude:
                continue
            later = [md for (tt, md) in by_member[m] if t <= tt <= t + stable]
            if all(md == "leader" for md in later):
                return t, m
        return None


@dataclass
class FaultRecord:
    index: int
    kind: str
    start: float
    end: float = 0.0            # healed
    settled: float = 0.0        # ensemble serving again after the heal
    targets: List[int] = field(default_factory=list)
    leader_before: Optional[int] = None
    restart_at: Optional[float] = None   # kill_all / restarts: when the processes came back
    no_quorum: List[Tuple[float, float]] = field(default_factory=list)  # no majority could serve
    notes: List[str] = field(default_factory=list)


class FaultInjector:
    def __init__(self, cluster: Cluster, monitor: LeaderMonitor, seed: int, log: Callable[[str], None]):
        self.cluster = cluster
        self.monitor = monitor
        self.seed = seed
        self.log = log

    def leader(self) -> int:
        """The current leader (from the monitor, else a direct poll); waits up to 30 s."""
        deadline = now() + 30
        while now() < deadline:
            m = self.monitor.current_leader() or self.cluster.leader()
            if m is not None:
                return m
            time.sleep(0.2)
        raise TimeoutError("no leader to target")

    def run(self, index: int, kind: str) -> FaultRecord:
        rng = random.Random(self.seed * 1000 + index)
        members = self.cluster.members
        leader = self.leader()
        rec = FaultRecord(index, kind, now(), leader_before=leader)
        c = self.cluster
        hold = rng.uniform(8.0, 11.0)
        if kind in ("kill_leader", "kill_random"):
            m = leader if kind == "kill_leader" else rng.choice(members)
            rec.targets = [m]
            c.kill(m)
            time.sleep(rng.uniform(5.0, 8.0))
            rec.restart_at = now()
            c.start(m)
        elif kind == "kill_all":
            rec.targets = list(members)
            for m in rng.sample(members, len(members)):
                c.kill(m)
            down = now()
            time.sleep(rng.uniform(2.0, 4.0))
            rec.restart_at = now()
            for m in members:
                c.start(m)
            c.wait_serving(timeout=90)
            rec.no_quorum.append((down, now()))
        elif kind == "pause_leader":
            rec.targets = [leader]
            c.pause(leader)
            time.sleep(SESSION_TIMEOUT + rng.uniform(2.0, 4.0))
            c.resume(leader)
        elif kind in ("isolate_leader_drop", "isolate_leader_reject"):
            rec.targets = [leader]
            netns.isolate(leader, members, reject=kind.endswith("reject"))
            time.sleep(hold)
            netns.heal(members)
        elif kind == "partition_minority":
            m = rng.choice(members)
            rec.targets = [m]
            rec.notes.append("target is the leader" if m == leader else "target is a follower")
            netns.isolate(m, members)
            time.sleep(hold)
            netns.heal(members)
        elif kind == "partition_bridge":
            b = rng.choice(members)
            a, cc = [m for m in members if m != b]
            rec.targets = [a, b, cc]
            rec.notes.append(f"{a} and {cc} cut, {b} bridges; leader was {leader}")
            netns.cut(a, cc)
            time.sleep(hold)
            netns.heal(members)
        elif kind == "flapping":
            m = rng.choice(members)
            rec.targets = [m]
            end = now() + hold
            flips = 0
            while now() < end:
                netns.isolate(m, members)
                time.sleep(rng.uniform(0.3, 1.5))
                netns.heal(members)
                time.sleep(rng.uniform(0.3, 1.5))
                flips += 1
            rec.notes.append(f"{flips} down/up cycles")
        elif kind == "restart_random":
            m = rng.choice(members)
            rec.targets = [m]
            c.terminate(m)
            time.sleep(rng.uniform(1.0, 3.0))
            rec.restart_at = now()
            c.start(m)
        else:
            raise ValueError(kind)
        rec.end = now()
        c.wait_serving(timeout=90)
        rec.settled = now()
        self.log(f"fault {index} {kind} targets={rec.targets} leader_before={leader} "
                 f"healed after {rec.end - rec.start:.1f}s, serving after {rec.settled - rec.start:.1f}s")
        return rec
