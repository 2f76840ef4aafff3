"""Operation records shared by the workload (which writes them) and the checker (which reads them).

Times are time.monotonic() seconds of the process that ran the workload. An operation whose
outcome is unknown (ConnectionLoss, a timeout, SessionExpired while in flight) is recorded with
status INFO and complete=None: it may have taken effect at any moment after its invocation, or
never.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any, List, Optional

OK = "ok"      # acknowledged by the server
FAIL = "fail"  # definitely did not take effect (e.g. BadVersion)
INFO = "info"  # indeterminate

READ, WRITE, CAS = "read", "write", "cas"


@dataclass
class Op:
    """One register operation.

    kind READ: result is (value, version) when ok.
    kind WRITE: arg is the value; result is the node's version after the write when ok.
    kind CAS: arg is (expected_version, value); result is the new version when ok; status FAIL
    means BadVersion (the node's version differed from the expected one at the linearization point).
    """

    client: int
    key: str
    kind: str
    arg: Any
    invoke: float
    complete: Optional[float] = None
    status: str = INFO
    result: Any = None
    error: str = ""
    id: int = -1

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class History:
    """A thread-safe append-only list of operations."""

    ops: List[Op] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, op: Op) -> Op:
        with self._lock:
            op.id = len(self.ops)
            self.ops.append(op)
        return op

    def snapshot(self) -> List[Op]:
        with self._lock:
            return list(self.ops)
