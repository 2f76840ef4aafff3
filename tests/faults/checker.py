"""Linearizability checker for read/write/compare-and-set registers (per key).

The search is Wing & Gong's, with Lowe's memoisation (as in Knossos' "linear" and Porcupine): walk
the history's call/return events in time order; at a call, try to linearize that operation next
(apply it to the model); at a return whose operation has not been linearized yet, undo the most
recent choice. A configuration (set of linearized operations, model state) that was already
explored is never explored twice, which keeps histories of thousands of operations tractable when
concurrency is small.

Indeterminate operations (status INFO) have their return at +infinity: they may be linearized at
any point after their call, or never. The history is linearizable once every determinate operation
is linearized. Indeterminate reads constrain nothing and are dropped up front.

The register model is (value, version) as in ZooKeeper: every successful set increments the
version, and the client learns the new version, so an acknowledged write also pins how many writes
were linearized before it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Tuple

from history import CAS, FAIL, INFO, OK, READ, WRITE, Op

State = Tuple[object, int]  # (value, version)
INF = float("inf")


def step(state: State, op: Op) -> Optional[State]:
    """The model: the state after op, or None if op cannot return what it returned in `state`."""
    value, version = state
    if op.kind == READ:
        return state if tuple(op.result) == state else None
    if op.kind == WRITE:
        new = (op.arg, version + 1)
        if op.status == OK and op.result is not None and op.result != new[1]:
            return None
        return new
    if op.kind == CAS:
        expected, new_value = op.arg
        if op.status == FAIL:
            return state if version != expected else None
        if version != expected:
            return None  # for INFO this is "had no effect", which the search covers by omission
        new = (new_value, version + 1)
        if op.status == OK and op.result is not None and op.result != new[1]:
            return None
        return new
    raise ValueError(f"unknown op kind {op.kind}")


class _Node:
    __slots__ = ("op", "is_call", "time", "match", "prev", "next")

    def __init__(self, op: Optional[Op], is_call: bool, time: float):
        self.op = op
        self.is_call = is_call
        self.time = time
        self.match: Optional[_Node] = None
        self.prev: Optional[_Node] = None
        self.next: Optional[_Node] = None


@dataclass
class Result:
    key: str
    ok: Optional[bool]  # None = inconclusive (search budget exhausted)
    ops: int
    steps: int
    detail: str = ""
    stuck_op: Optional[dict] = None
    linearized_prefix: List[dict] = field(default_factory=list)


def check(ops: Iterable[Op], initial: State, key: str = "", max_steps: int = 2_000_000) -> Result:
    """Check one key's history against the register model starting at `initial`."""
    ops = [o for o in ops if not (o.kind == READ and o.status != OK)]
    ops = [o for o in ops if not (o.kind == WRITE and o.status == FAIL)]  # never happened
    n_det = sum(1 for o in ops if o.status != INFO)
    nodes: List[_Node] = []
    for i, o in enumerate(ops):
        call = _Node(o, True, o.invoke)
        ret = _Node(o, False, INF if o.status == INFO or o.complete is None else o.complete)
        call.match, ret.match = ret, call
        nodes += [call, ret]
    # calls before returns at equal times: the more permissive reading of "concurrent"
    nodes.sort(key=lambda n: (n.time, 0 if n.is_call else 1))
    head = _Node(None, True, -INF)
    prev = head
    for n in nodes:
        prev.next, n.prev = n, prev
        prev = n
    index = {id(o): i for i, o in enumerate(ops)}

    def lift(call: _Node) -> None:
        for n in (call, call.match):
            n.prev.next = n.next
            if n.next is not None:
                n.next.prev = n.prev

    def unlift(call: _Node) -> None:
        for n in (call.match, call):
            n.prev.next = n
            if n.next is not None:
                n.next.prev = n

    state: State = initial
    linearized = 0
    remaining = n_det
    stack: List[Tuple[_Node, State]] = []
    seen = set()
    steps = 0
    best_depth, best_stuck = -1, None
    entry = head.next
    while remaining > 0:
        steps += 1
        if steps > max_steps:
            return Result(key, None, len(ops), steps, f"search budget of {max_steps} steps exhausted")
        if entry is None:
            raise AssertionError("walked past the end with determinate operations left")
        if entry.is_call:
            new = step(state, entry.op)
            if new is not None:
                bit = 1 << index[id(entry.op)]
                cfg = (linearized | bit, new)
                if cfg not in seen:
                    seen.add(cfg)
                    stack.append((entry, state))
                    state, linearized = new, linearized | bit
                    if entry.op.status != INFO:
                        remaining -= 1
                    lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:
            if len(stack) > best_depth:
                best_depth, best_stuck = len(stack), entry.op
            if not stack:
                break
            entry, state = stack.pop()
            linearized &= ~(1 << index[id(entry.op)])
            if entry.op.status != INFO:
                remaining += 1
            unlift(entry)
            entry = entry.next
    if remaining == 0:
        return Result(key, True, len(ops), steps)
    prefix = _best_prefix(ops, best_stuck)
    return Result(key, False, len(ops), steps,
                  f"no linearization; deepest search stuck before {best_stuck.kind} by client "
                  f"{best_stuck.client} at {best_stuck.invoke:.3f}-{best_stuck.complete}",
                  stuck_op=best_stuck.to_json() if best_stuck else None, linearized_prefix=prefix)


def _best_prefix(ops: List[Op], stuck: Optional[Op]) -> List[dict]:
    """Operations around the stuck one, for the report (not a proof, just context)."""
    if stuck is None:
        return []
    lo, hi = stuck.invoke - 2.0, (stuck.complete or stuck.invoke) + 0.5
    near = [o for o in ops if o.invoke <= hi and (o.complete or INF) >= lo]
    near.sort(key=lambda o: o.invoke)
    return [o.to_json() for o in near[-40:]]


def check_history(ops: Iterable[Op], initial: Dict[str, State], max_steps: int = 2_000_000) -> List[Result]:
    """Partition by key (registers are independent objects) and check each."""
    by_key: Dict[str, List[Op]] = {}
    for o in ops:
        by_key.setdefault(o.key, []).append(o)
    return [check(by_key.get(k, []), initial[k], k, max_steps) for k in sorted(initial)]
