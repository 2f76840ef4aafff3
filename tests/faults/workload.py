"""Concurrent kazoo clients driving the ensemble while faults happen, recording what they saw.

Each worker owns one KazooClient whose connect string names all three members, so kazoo moves to
another member when its current one fails. Workers:

- RegisterWorker: set / set-with-version (CAS) / sync+get on a few register keys -> History.
- CreateWorker: creates uniquely named nodes; every acknowledged create must exist at the end.
- EphemeralHolder: holds an ephemeral node and keeps its session busy.
- Watcher: a persistent watch (ZooKeeper 3.6+ addWatch) on every register, checked per connection
  epoch (see Watcher's docstring for exactly what is checkable).

Every client records its state transitions (CONNECTED / SUSPENDED / LOST with times); a LOST is a
session expiry, judged later against the fault log by the suite.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict, namedtuple
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (BadVersionError, ConnectionLoss, KazooException, NodeExistsError,
                              SessionExpiredError)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.serialization import int_struct, write_string
from kazoo.protocol.states import Callback, EventType

from history import CAS, FAIL, INFO, OK, READ, WRITE, History, Op

ROOT = "/rf"
REG_ROOT = ROOT + "/reg"
UNIQ_ROOT = ROOT + "/uniq"
EPH_ROOT = ROOT + "/eph"
SESSION_TIMEOUT = 8.0
OP_TIMEOUT = 15.0  # longer than a session, so a result is only missing when kazoo gives up
INDETERMINATE = (ConnectionLoss, SessionExpiredError, KazooTimeoutError)


def now() -> float:
    return time.monotonic()


def make_client(hosts: str) -> KazooClient:
    """Reconnect quickly (capped 0.5 s backoff) so that the 'writes resume' measurement reflects the
    servers, not a client backing off for seconds. Hosts are tried in the given order (first the
    worker's own member, see `suite.spread`), so that the workers stay spread over the members: with
    kazoo's random choice every writer was once on the member that a fault then froze, and no write
    could resume before kazoo gave up on it, whatever the servers did."""
    return KazooClient(hosts=hosts, timeout=SESSION_TIMEOUT, randomize_hosts=False,
                       connection_retry={"max_tries": -1, "delay": 0.1, "backoff": 1.5, "max_delay": 0.5},
                       command_retry=None)


def register_path(key: str) -> str:
    return f"{REG_ROOT}/{key}"


@dataclass
class ClientLog:
    name: str
    transitions: List[Tuple[float, str]] = field(default_factory=list)
    session_ids: List[int] = field(default_factory=list)

    @property
    def expiries(self) -> List[float]:
        return [t for t, s in self.transitions if s.startswith(KazooState.LOST)]


class Worker(threading.Thread):
    """Base: owns a client, records its state transitions, runs `body` until stopped."""

    def __init__(self, name: str, hosts: str, seed: int):
        super().__init__(name=name, daemon=True)
        self.hosts = hosts
        self.rng = random.Random(seed)
        self.stop_event = threading.Event()
        self.log = ClientLog(name)
        self.client = make_client(hosts)
        self.client.add_listener(self._on_state)
        self.errors: List[str] = []

    def _on_state(self, state: str) -> None:
        entry = (now(), state)
        if state == KazooState.CONNECTED:
            # which member: evidence for slow reconnects (the listener runs in kazoo's connection
            # thread right after the handshake, so the socket is the new one)
            try:
                peer = self.client._connection._socket.getpeername()[0]  # noqa: SLF001
                entry = (entry[0], f"{state} {peer}")
            except Exception:  # noqa: BLE001  (diagnostic only)
                pass
        self.log.transitions.append(entry)

    def connected(self) -> bool:
        return self.client.state == KazooState.CONNECTED

    def start_client(self) -> None:
        self.client.start(timeout=30)

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                if not self.connected():
                    time.sleep(0.05)
                    continue
                self.body()
        except Exception as e:  # noqa: BLE001  (a crashed worker is reported, not hidden)
            self.errors.append(f"{self.name} crashed: {e!r}")

    def body(self) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        self.stop_event.set()
        self.join(timeout=OP_TIMEOUT + 10)
        if self.is_alive():
            self.errors.append(f"{self.name} did not stop")

    def close(self) -> None:
        try:
            self.client.stop()
            self.client.close()
        except Exception:  # noqa: BLE001
            pass


class RegisterWorker(Worker):
    def __init__(self, idx: int, hosts: str, seed: int, keys: List[str], history: History,
                 pause: Tuple[float, float] = (0.02, 0.08)):
        super().__init__(f"reg{idx}", hosts, seed)
        self.idx, self.keys, self.history, self.pause = idx, keys, history, pause
        self.seq = 0
        self.last_version: Dict[str, int] = defaultdict(int)

    def body(self) -> None:
        key = self.rng.choice(self.keys)
        path = register_path(key)
        roll = self.rng.random()
        self.seq += 1
        value = f"c{self.idx}-{self.seq}"
        if roll < 0.35:
            op = Op(self.idx, key, WRITE, value, now())
            self._do(op, lambda: self.client.set_async(path, value.encode()).get(timeout=OP_TIMEOUT).version)
        elif roll < 0.55:
            expected = self.last_version[key]
            op = Op(self.idx, key, CAS, (expected, value), now())
            self._do(op, lambda: self.client.set_async(path, value.encode(), version=expected)
                     .get(timeout=OP_TIMEOUT).version)
        else:
            op = Op(self.idx, key, READ, None, now())

            def read():
                self.client.sync_async(path).get(timeout=OP_TIMEOUT)
                data, stat = self.client.get_async(path).get(timeout=OP_TIMEOUT)
                self.last_version[key] = stat.version
                return (data.decode(), stat.version)
            self._do(op, read)
        time.sleep(self.rng.uniform(*self.pause))

    def _do(self, op: Op, fn) -> None:
        try:
            op.result = fn()
            op.status = OK
            op.complete = now()
            if op.kind in (WRITE, CAS):
                self.last_version[op.key] = op.result
        except BadVersionError:
            op.status, op.complete = FAIL, now()
        except INDETERMINATE as e:
            op.status, op.error = INFO, type(e).__name__
        except KazooException as e:
            op.status, op.error = INFO, f"unexpected {type(e).__name__}"
            self.errors.append(f"{self.name}: {op.kind} {op.key}: unexpected {e!r}")
        self.history.add(op)


@dataclass
class CreateRecord:
    path: str
    invoke: float
    complete: Optional[float]
    status: str
    error: str = ""


class CreateWorker(Worker):
    def __init__(self, idx: int, hosts: str, seed: int):
        super().__init__(f"create{idx}", hosts, seed)
        self.idx = idx
        self.seq = 0
        self.records: List[CreateRecord] = []

    def body(self) -> None:
        self.seq += 1
        path = f"{UNIQ_ROOT}/w{self.idx}-{self.seq:06d}"
        t0 = now()
        try:
            self.client.create_async(path, path.encode()).get(timeout=OP_TIMEOUT)
            self.records.append(CreateRecord(path, t0, now(), OK))
        except NodeExistsError:
            # never attempted before under this name: a phantom create
            self.records.append(CreateRecord(path, t0, now(), FAIL, "NodeExists"))
        except INDETERMINATE as e:
            self.records.append(CreateRecord(path, t0, None, INFO, type(e).__name__))
        except KazooException as e:
            self.records.append(CreateRecord(path, t0, None, INFO, repr(e)))
            self.errors.append(f"{self.name}: create {path}: unexpected {e!r}")
        time.sleep(self.rng.uniform(0.03, 0.1))


class EphemeralHolder(Worker):
    """Holds EPH_ROOT/h<idx> as an ephemeral and pings the server (exists) every 0.5 s, so its
    session is active the whole run. After an expiry it re-creates the node in its new session."""

    def __init__(self, idx: int, hosts: str, seed: int):
        super().__init__(f"eph{idx}", hosts, seed)
        self.path = f"{EPH_ROOT}/h{idx}"
        self.need_create = True

    def _on_state(self, state: str) -> None:
        super()._on_state(state)
        if state == KazooState.LOST:
            self.need_create = True

    def body(self) -> None:
        try:
            if self.need_create:
                try:
                    self.client.create_async(self.path, b"held", ephemeral=True).get(timeout=OP_TIMEOUT)
                except NodeExistsError:
                    pass  # our own create that came back as ConnectionLoss, or the old session's node
                self.need_create = False
            self.client.exists_async(self.path).get(timeout=OP_TIMEOUT)
        except INDETERMINATE:
            pass
        time.sleep(0.5)


# ---------------------------------------------------------------------------------------------
# Persistent watches


class AddWatch(namedtuple("AddWatch", "path watcher mode")):
    """ZooKeeper 3.6+ addWatch (opcode 106); kazoo 2.11 has no API for it. mode 0 = PERSISTENT."""

    type = 106

    def serialize(self) -> bytearray:
        b = bytearray()
        b.extend(write_string(self.path))
        b.extend(int_struct.pack(self.mode))
        return b

    @classmethod
    def deserialize(cls, buffer, offset):
        return True


class _PersistentDataWatchers(defaultdict):
    """kazoo pops a path's data watchers when an event arrives (one-shot semantics); for paths with
    a persistent watch the watcher must stay registered, so pop() returns without removing."""

    def __init__(self, persistent: set, *args):
        super().__init__(set, *args)
        self.persistent = persistent

    def pop(self, path, default=None):  # type: ignore[override]
        if path in self.persistent and path in self:
            return set(self[path])
        return super().pop(path, default)


@dataclass
class Epoch:
    """One connection's lifetime, as seen by the watcher's event thread."""

    number: int
    start: float
    registered: bool = False
    v_prev: Dict[str, int] = field(default_factory=dict)   # highest version read before the epoch
    v_base: Dict[str, int] = field(default_factory=dict)   # version read right after addWatch
    v_max: Dict[str, int] = field(default_factory=dict)    # highest version read in the epoch
    events: Dict[str, int] = field(default_factory=lambda: defaultdict(int))
    end: Optional[float] = None


class Watcher(Worker):
    """Persistent watches on every register, checked per connection epoch.

    kazoo 2.11 does not re-register watches after a reconnect (no SetWatches), so each connection
    starts with nothing registered; the watcher itself re-adds the persistent watches at the start
    of each epoch, then reads each register (v_base). ZooKeeper sends a watch event for a change
    before any read response that reflects it, and all of this runs in kazoo's single event thread
    where state changes are enqueued as markers in arrival order. So within one epoch, for a key:

    - no duplicates / phantoms: events <= v_max - v_prev (each event is a distinct change newer
      than anything read before the epoch began);
    - no gaps: events >= v_max - v_base (every change after the watch was registered and up to the
      highest version read in the epoch was delivered before the epoch ended);
    - order: versions (and mzxids) read after events never go backwards, across epochs too.

    Changes made while no connection existed (between epochs) are legitimately not delivered.
    """

    def __init__(self, idx: int, hosts: str, seed: int, keys: List[str]):
        super().__init__(f"watch{idx}", hosts, seed)
        self.keys = keys
        self.paths = {register_path(k): k for k in keys}
        self.epochs: List[Epoch] = []
        self.current: Optional[Epoch] = None
        self.violations: List[str] = []
        self.high_version: Dict[str, int] = defaultdict(int)
        self.high_mzxid: Dict[str, int] = defaultdict(int)
        self.final_done = threading.Event()
        self.total_events = 0

    # everything below except _on_state runs in kazoo's event thread, in arrival order
    def _on_state(self, state: str) -> None:
        super()._on_state(state)
        self.client.handler.dispatch_callback(Callback("watch", self._marker, (state, now())))

    def _marker(self, state: str, t: float) -> None:
        self._close_epoch(t)
        if state == KazooState.CONNECTED:
            self._open_epoch(t)

    def _close_epoch(self, t: float) -> None:
        ep = self.current
        if ep is None:
            return
        ep.end = t
        self.current = None
        if not ep.registered:
            return
        for key in self.keys:
            n, lo = ep.events.get(key, 0), ep.v_max[key] - ep.v_base[key]
            if n < lo:
                self.violations.append(
                    f"{self.name} epoch {ep.number} {key}: {n} events but versions {ep.v_base[key]}->"
                    f"{ep.v_max[key]} changed after the watch was registered (missed {lo - n})")

    def _open_epoch(self, t: float) -> None:
        ep = Epoch(len(self.epochs) + 1, t)
        self.epochs.append(ep)
        self.current = ep
        persistent = set(self.paths)
        if not isinstance(self.client._data_watchers, _PersistentDataWatchers):  # noqa: SLF001
            self.client._data_watchers = _PersistentDataWatchers(persistent, self.client._data_watchers)  # noqa: SLF001
        try:
            for path, key in self.paths.items():
                ep.v_prev[key] = self.high_version[key]
                res = self.client.handler.async_result()
                self.client._call(AddWatch(path, self._event, 0), res)  # noqa: SLF001
                res.get(timeout=OP_TIMEOUT)
            for path, key in self.paths.items():
                _, stat = self.client.get_async(path).get(timeout=OP_TIMEOUT)
                ep.v_base[key] = ep.v_max[key] = stat.version
                self._observe(key, stat)
            ep.registered = True
        except INDETERMINATE:
            pass  # connection went away again; the next marker closes this epoch unchecked

    def _observe(self, key: str, stat) -> None:
        if stat.version < self.high_version[key] or stat.mzxid < self.high_mzxid[key]:
            self.violations.append(
                f"{self.name} {key}: read went backwards: version {stat.version} mzxid {stat.mzxid:#x} after "
                f"version {self.high_version[key]} mzxid {self.high_mzxid[key]:#x}")
        self.high_version[key] = max(self.high_version[key], stat.version)
        self.high_mzxid[key] = max(self.high_mzxid[key], stat.mzxid)

    def _event(self, event) -> None:
        ep = self.current
        key = self.paths.get(event.path)
        if ep is None or key is None or event.type != EventType.CHANGED:
            return
        self.total_events += 1
        ep.events[key] += 1
        if not ep.registered:
            return
        try:
            _, stat = self.client.get_async(event.path).get(timeout=OP_TIMEOUT)
        except INDETERMINATE:
            return
        self._observe(key, stat)
        ep.v_max[key] = max(ep.v_max[key], stat.version)
        n, hi = ep.events[key], ep.v_max[key] - ep.v_prev[key]
        if n > hi:
            self.violations.append(
                f"{self.name} epoch {ep.number} {key}: {n} events for {hi} changes (versions "
                f"{ep.v_prev[key]}->{ep.v_max[key]}): duplicate or phantom event")

    def body(self) -> None:
        time.sleep(0.2)  # all the work happens in the event thread

    def final_check(self) -> None:
        """After quiescence: read every register once more in the event thread, then close the
        epoch from a marker queued behind any events that read may have raced with."""
        def final_read():
            ep = self.current
            if ep is not None and ep.registered:
                try:
                    for path, key in self.paths.items():
                        _, stat = self.client.get_async(path).get(timeout=OP_TIMEOUT)
                        self._observe(key, stat)
                        ep.v_max[key] = max(ep.v_max[key], stat.version)
                except INDETERMINATE:
                    pass
            self.client.handler.dispatch_callback(Callback("watch", close, ()))

        def close():
            self._close_epoch(now())
            self.final_done.set()

        self.client.handler.dispatch_callback(Callback("watch", final_read, ()))
        self.final_done.wait(timeout=30)

    def summary(self) -> dict:
        return {
            "epochs": len(self.epochs),
            "events": self.total_events,
            "checked_epochs": sum(1 for e in self.epochs if e.registered),
            "violations": list(self.violations),
        }
