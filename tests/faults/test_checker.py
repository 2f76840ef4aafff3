"""Unit tests for the linearizability checker: small histories that must pass and ones that must
fail. Run: python3 -m pytest tests/faults/test_checker.py -q (well under a second)."""

from __future__ import annotations

import random

import pytest

from checker import check
from history import CAS, FAIL, INFO, OK, READ, WRITE, Op

INIT = ("init", 0)


def w(c, v, t0, t1, ver=None, status=OK):
    return Op(c, "k", WRITE, v, t0, None if status == INFO else t1, status, ver)


def r(c, v, ver, t0, t1):
    return Op(c, "k", READ, None, t0, t1, OK, (v, ver))


def cas(c, exp, v, t0, t1, status=OK, ver=None):
    return Op(c, "k", CAS, (exp, v), t0, None if status == INFO else t1, status, ver)


def ok(ops, init=INIT):
    res = check(ops, init, "k")
    assert res.ok is True, res.detail
    return res


def bad(ops, init=INIT):
    res = check(ops, init, "k")
    assert res.ok is False, "expected a violation"
    return res


# --- must pass -------------------------------------------------------------------------------

def test_empty_and_sequential():
    ok([])
    ok([w(1, "a", 0, 1, 1), r(2, "a", 1, 2, 3), w(1, "b", 4, 5, 2), r(2, "b", 2, 6, 7)])


def test_concurrent_write_read_either_value():
    ok([w(1, "a", 0, 10, 1), r(2, "init", 0, 1, 2)])
    ok([w(1, "a", 0, 10, 1), r(2, "a", 1, 1, 2)])


def test_concurrent_writes_any_order_consistent_with_versions():
    ok([w(1, "a", 0, 10, 2), w(2, "b", 0, 10, 1), r(3, "a", 2, 11, 12)])


def test_indeterminate_write_observed_later():
    ok([w(1, "a", 0, 1, status=INFO), r(2, "a", 1, 50, 51)])


def test_indeterminate_write_never_taking_effect():
    ok([w(1, "a", 0, 1, status=INFO), r(2, "init", 0, 50, 51), w(2, "b", 52, 53, 1), r(2, "b", 1, 54, 55)])


def test_indeterminate_write_takes_effect_late():
    # invoked at 0, observed absent at 5, present at 20: legal, it may land any time after invocation
    ok([w(1, "a", 0, 1, status=INFO), r(2, "init", 0, 5, 6), r(2, "a", 1, 20, 21)])


def test_cas_success_and_badversion():
    ok([cas(1, 0, "a", 0, 1, ver=1), cas(2, 0, "b", 2, 3, status=FAIL), r(3, "a", 1, 4, 5)])


def test_concurrent_cas_one_wins():
    ok([cas(1, 0, "a", 0, 10, ver=1), cas(2, 0, "b", 0, 10, status=FAIL), r(3, "a", 1, 11, 12)])


def test_indeterminate_cas_may_have_failed():
    ok([w(1, "x", 0, 1, 1), cas(2, 0, "b", 2, 3, status=INFO), r(3, "x", 1, 4, 5)])


def test_long_random_sequential_history_is_fast():
    rng = random.Random(7)
    ops, state, t = [], ("init", 0), 0.0
    for i in range(3000):
        c = rng.randrange(6)
        if rng.random() < 0.5:
            state = (f"v{i}", state[1] + 1)
            ops.append(w(c, state[0], t, t + 0.5, state[1]))
        else:
            ops.append(r(c, state[0], state[1], t, t + 0.5))
        t += 0.3  # overlapping neighbours
    res = ok(ops)
    assert res.steps < 100_000


# --- must fail -------------------------------------------------------------------------------

def test_stale_read():
    bad([w(1, "a", 0, 1, 1), r(2, "init", 0, 2, 3)])


def test_lost_write():
    # both writes acknowledged, the later read shows only the first: the second was lost
    bad([w(1, "a", 0, 1, 1), w(2, "b", 2, 3, 2), r(3, "a", 1, 4, 5)])


def test_lost_write_version_reuse():
    # two acknowledged writes reporting the same version: one of them was lost
    bad([w(1, "a", 0, 1, 1), w(2, "b", 2, 3, 1)])


def test_cas_anomaly_two_winners():
    bad([cas(1, 0, "a", 0, 10, ver=1), cas(2, 0, "b", 0, 10, ver=1)])


def test_cas_badversion_when_version_matched():
    bad([cas(1, 0, "a", 0, 1, status=FAIL)])


def test_read_of_never_written_value():
    bad([w(1, "a", 0, 1, 1), r(2, "zzz", 1, 2, 3)])


def test_real_time_ordering_violation():
    # w(a) completes before w(b) starts; a read after both must not see a
    bad([w(1, "a", 0, 1, 1), w(2, "b", 2, 3, 2), r(3, "a", 1, 10, 11)])
    # and reads may not go backwards in real time
    bad([w(1, "a", 0, 10, 1), r(2, "a", 1, 1, 2), r(3, "init", 0, 3, 4)])


def test_indeterminate_write_cannot_act_before_invocation():
    bad([r(2, "a", 1, 0, 1), w(1, "a", 5, 6, status=INFO)])


def test_budget_exhaustion_is_inconclusive_not_pass():
    ops = [w(c, f"v{c}", 0, 100, status=INFO) for c in range(14)] + [r(99, "nope", 3, 101, 102)]
    res = check(ops, INIT, "k", max_steps=500)
    assert res.ok is None
