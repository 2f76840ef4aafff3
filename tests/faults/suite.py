"""One fault-injection run: namespaces, ensemble, workload, seeded faults, checks, report.

    python3 suite.py --target roost --seed 1 --faults 10 --out test-output/faults

Exit status 0 when every enforced assertion held, 1 otherwise, 2 when the run itself broke.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import netns  # noqa: E402
from checker import check_history  # noqa: E402
from cluster import CLIENT_PORT, Cluster  # noqa: E402
from faults import FaultInjector, FaultRecord, LeaderMonitor, schedule  # noqa: E402
from history import CAS, OK, READ, WRITE, History, Op  # noqa: E402
from report import first_after, longest_gap, text_summary, write_json  # noqa: E402
from workload import (EPH_ROOT, REG_ROOT, ROOT, SESSION_TIMEOUT, UNIQ_ROOT, CreateWorker,  # noqa: E402
                      EphemeralHolder, RegisterWorker, Watcher, Worker, make_client, now, register_path)

KEYS = ["k0", "k1", "k2"]
RESUME_LIMIT_S = 1.0


logging.basicConfig(level=logging.ERROR)  # kazoo logs every reconnect (at INFO and WARNING)


# Faults that freeze or cut off their targets without closing the clients' connections: a client
# on a target waits for its own timeout (kazoo: a third of the session timeout per attempt) before
# it moves, whatever the servers do, so "writes resume" is measured on the other clients.
STALLS_ITS_CLIENTS = {"pause_leader", "isolate_leader_drop", "isolate_leader_reject", "partition_minority",
                      "partition_bridge", "flapping"}


def member_at(worker: Worker, t: float) -> Optional[str]:
    """The address `worker` was connected to at time `t` (None if it was not connected)."""
    state = None
    for when, what in worker.log.transitions:
        if when > t:
            break
        state = what
    return state.split()[1] if state and state.startswith("CONNECTED ") else None


def spread(hosts: str, k: int) -> str:
    """The connect string rotated by `k`: worker k prefers member k mod 3 (see `make_client`)."""
    members = hosts.split(",")
    k %= len(members)
    return ",".join(members[k:] + members[:k])

def log(msg: str) -> None:
    print(f"[faults {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def read_tree(member: int) -> Dict[str, tuple]:
    """Every node under ROOT as seen by one member, without sync: {path: (data, mzxid)}."""
    from kazoo.client import KazooClient
    c = KazooClient(hosts=f"{netns.member_ip(member)}:{CLIENT_PORT}", timeout=SESSION_TIMEOUT,
                    connection_retry={"max_tries": 3, "delay": 0.2})
    c.start(timeout=15)
    try:
        out: Dict[str, tuple] = {}
        stack = [ROOT]
        while stack:
            p = stack.pop()
            data, stat = c.get(p)
            out[p] = (data.decode(errors="replace"), stat.mzxid, stat.ephemeralOwner != 0)
            stack += [f"{p}/{ch}" for ch in c.get_children(p)]
        return out
    finally:
        c.stop()
        c.close()


def converge(cluster: Cluster, timeout: float = 30.0) -> dict:
    """Read every member's tree until they agree (a follower may lag for a moment)."""
    deadline = now() + timeout
    last: dict = {}
    while True:
        trees: Dict[int, Dict[str, tuple]] = {}
        errors = {}
        for m in cluster.members:
            try:
                trees[m] = read_tree(m)
            except Exception as e:  # noqa: BLE001
                errors[m] = repr(e)
        if not errors and all(trees[m] == trees[cluster.members[0]] for m in cluster.members):
            return {"converged": True, "nodes": len(trees[cluster.members[0]]), "tree": trees[cluster.members[0]]}
        diff = []
        if not errors:
            base = trees[cluster.members[0]]
            for m in cluster.members[1:]:
                for p in sorted(set(base) | set(trees[m])):
                    if base.get(p) != trees[m].get(p):
                        diff.append(f"{p}: m{cluster.members[0]}={base.get(p)} m{m}={trees[m].get(p)}")
        last = {"converged": False, "errors": errors, "diff": diff[:20], "diff_count": len(diff)}
        if now() > deadline:
            return last
        time.sleep(1.0)


def excused(expiry: float, records: List[FaultRecord]) -> bool:
    """An expiry is excused when, before it, the client was cut off from every majority-side member
    for at least a session timeout (here: no quorum existed, e.g. all members killed)."""
    for r in records:
        for a, b in r.no_quorum:
            if b - a >= SESSION_TIMEOUT and a <= expiry <= b + 2 * SESSION_TIMEOUT:
                return True
    return False


def run(args) -> int:
    target = args.target
    seed = args.seed
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    kinds = schedule(seed, args.faults)
    log(f"target={target} seed={seed} faults={kinds}  (replay: --seed {seed} --faults {args.faults})")
    kazoo_log = logging.FileHandler(out / f"{target}-seed{seed}.kazoo.log", mode="w")
    kazoo_log.setFormatter(logging.Formatter("%(relativeCreated)9.0f ms %(threadName)s %(levelname)s %(message)s"))
    kazoo_log.setLevel(logging.INFO)
    logging.getLogger("kazoo").addHandler(kazoo_log)
    logging.getLogger("kazoo").setLevel(logging.INFO)
    logging.getLogger("kazoo").propagate = False  # to the file only, not the console
    workdir = Path(tempfile.mkdtemp(prefix=f"rf-{target}-{seed}-"))
    cluster = Cluster(target, workdir)
    workers: List[Worker] = []
    monitor: Optional[LeaderMonitor] = None
    t0 = now()
    logging.getLogger("kazoo").info("suite t0 (report times are relative to this line)")
    try:
        netns.setup(cluster.members)
        for m in cluster.members:
            cluster.start(m)
        cluster.wait_serving(timeout=120)
        setup = make_client(cluster.connect_string)
        setup.start(timeout=30)
        for p in (ROOT, REG_ROOT, UNIQ_ROOT, EPH_ROOT):
            setup.ensure_path(p)
        for k in KEYS:
            setup.create(register_path(k), b"init")
        setup.stop()
        setup.close()

        history = History()
        hosts = cluster.connect_string
        regs = [RegisterWorker(i, spread(hosts, i), seed * 100 + i, KEYS, history) for i in range(4)]
        creators = [CreateWorker(i, spread(hosts, 4 + i), seed * 100 + 10 + i) for i in range(1)]
        holders = [EphemeralHolder(i, spread(hosts, 5 + i), seed * 100 + 20 + i) for i in range(2)]
        watchers = [Watcher(i, spread(hosts, 7 + i), seed * 100 + 30 + i, KEYS) for i in range(2)]
        workers = [*regs, *creators, *holders, *watchers]
        for w in workers:
            w.start_client()
        monitor = LeaderMonitor(cluster).start()
        for w in workers:
            w.start()
        time.sleep(3)
        injector = FaultInjector(cluster, monitor, seed, log)
        records: List[FaultRecord] = []
        for i, kind in enumerate(kinds):
            records.append(injector.run(i, kind))
            time.sleep(args.settle)
        # quiescence; the last fault's write-gap window ends here, not after the final checks
        workload_end = now()
        for w in workers:
            if not isinstance(w, Watcher):
                w.finish()
        time.sleep(1.0)
        final = make_client(hosts)
        final.start(timeout=30)
        for k in KEYS:  # linearizable final reads close each register's history
            op = Op(-1, k, READ, None, now())
            final.sync(register_path(k))
            data, stat = final.get(register_path(k))
            op.result, op.status, op.complete = (data.decode(), stat.version), OK, now()
            history.add(op)
        final.stop()
        final.close()
        for w in watchers:
            w.final_check()
            w.finish()
        conv = converge(cluster)
        monitor.stop()
        end = now()
        # -------------------------------------------------------------------- checks
        ops = history.snapshot()
        lin = check_history(ops, {k: ("init", 0) for k in KEYS}, max_steps=args.max_steps)
        tree = conv.get("tree", {})
        acked = [r for c in creators for r in c.records if r.status == OK]
        lost = [r.path for r in acked if r.path not in tree] if conv["converged"] else ["<no converged tree>"]
        phantom = [r.path for c in creators for r in c.records if r.error == "NodeExists"]
        expiries, excused_list = [], []
        for w in workers:
            for t in w.log.expiries:
                (excused_list if excused(t, records) else expiries).append({"client": w.name, "t": round(t - t0, 2)})
        lost_eph = []
        if conv["converged"]:
            for h in holders:
                if not h.log.expiries and h.path not in tree:
                    lost_eph.append(h.path)
        watch = {w.name: w.summary() for w in watchers}
        watch_violations = sum(len(s["violations"]) for s in watch.values())
        worker_errors = [e for w in workers for e in w.errors]
        acks = sorted([o.complete for o in ops if o.status == OK and o.kind in (WRITE, CAS) and o.client >= 0]
                      + [r.complete for r in acked])
        writer_acks = {w.name: sorted([o.complete for o in ops if o.status == OK and o.kind in (WRITE, CAS)
                                       and o.client == w.idx]) for w in regs}
        writer_acks.update({c.name: sorted(r.complete for r in c.records if r.status == OK) for c in creators})
        writers = regs + creators
        faults_out = []
        resumes = []
        for idx, r in enumerate(records):
            window_end = records[idx + 1].start if idx + 1 < len(records) else workload_end
            gap, gap_at = longest_gap(acks, r.start, window_end)
            exclude = r.leader_before if r.restart_at is None or r.kind != "kill_all" else None
            after = r.restart_at if r.kind == "kill_all" else r.start
            nl = monitor.first_stable_leader(after, exclude, until=window_end)
            entry = {"index": r.index, "kind": r.kind, "targets": r.targets, "leader_before": r.leader_before,
                     "start_s": round(r.start - t0, 2), "healed_after_s": round(r.end - r.start, 2),
                     "serving_after_s": round(r.settled - r.start, 2),
                     "longest_write_gap_s": round(gap, 3), "gap_began_s": round(gap_at - t0, 2), "notes": r.notes}
            if nl is not None:
                t_l, m_l = nl
                measured = writers
                if r.kind in STALLS_ITS_CLIENTS:
                    stalled = {netns.member_ip(m) for m in r.targets}
                    measured = [w for w in writers if member_at(w, r.start) not in stalled]
                w1 = min((a for w in measured for a in [first_after(writer_acks[w.name], t_l)] if a), default=None)
                entry.update(new_leader=m_l, new_leader_at_s=round(t_l - t0, 2),
                             first_write_after_s=round(w1 - t0, 3) if w1 else None,
                             resume_s=round(w1 - t_l, 3) if w1 else None,
                             resume_measured_on=[w.name for w in measured])
                if measured:
                    resumes.append((r.kind, entry["resume_s"]))
                else:
                    entry["notes"] = entry["notes"] + ["every writer was on a stalled member: resume not measured"]
            faults_out.append(entry)
        enforced_roost = target == "roost"
        bad_resume = [f"{k}: {v}" for k, v in resumes if v is None or v > RESUME_LIMIT_S]
        lin_bad = [x for x in lin if x.ok is not True]
        assertions = {
            "linearizable": {"ok": not lin_bad, "enforced": True,
                             "detail": "; ".join(f"{x.key}: {'ok' if x.ok else ('INCONCLUSIVE' if x.ok is None else 'VIOLATION')} "
                                                 f"({x.ops} ops, {x.steps} steps) {x.detail}" for x in lin)},
            "no_lost_acknowledged_writes": {"ok": not lost and not phantom, "enforced": True,
                                            "detail": f"{len(acked)} acknowledged creates, {len(lost)} missing, "
                                                      f"{len(phantom)} phantom; registers via final reads in the checker"},
            "converged": {"ok": conv["converged"], "enforced": True,
                          "detail": f"{conv.get('nodes', '?')} nodes equal on all members" if conv["converged"]
                          else f"{conv.get('diff_count')} differences: {conv.get('diff')} {conv.get('errors')}"},
            "no_sessions_expired_while_active": {"ok": not expiries and not lost_eph, "enforced": enforced_roost,
                                                 "detail": f"{len(expiries)} expired while active {expiries}, "
                                                           f"{len(excused_list)} excused (no quorum >= session timeout), "
                                                           f"ephemerals missing: {lost_eph}"},
            "writes_resume_within_1s_of_new_leader": {"ok": not bad_resume, "enforced": enforced_roost,
                                                      "detail": f"{len(resumes)} elections measured; over {RESUME_LIMIT_S}s: {bad_resume}"},
            # Reported, not gating, until the one miss seen in CI on 2026-12-03 is explained
            # (README.md, "Open finding"); FAULTS_ENFORCE_WATCHES=1 makes it gate.
            "watches_exactly_once_in_order": {"ok": watch_violations == 0,
                                              "enforced": enforced_roost and os.environ.get("FAULTS_ENFORCE_WATCHES") == "1",
                                              "detail": f"{watch_violations} violations; " + "; ".join(
                                                  f"{n}: {s['events']} events, {s['checked_epochs']}/{s['epochs']} epochs checked"
                                                  + (f", {s['violations'][:3]}" if s["violations"] else "")
                                                  for n, s in watch.items())},
            "no_worker_errors": {"ok": not worker_errors, "enforced": True, "detail": str(worker_errors[:5])},
        }
        result = {
            "target": target, "seed": seed, "faults_requested": args.faults, "schedule": kinds,
            "duration_s": end - t0,
            "ops": {"register": sum(1 for o in ops if o.client >= 0),
                    "register_ok": sum(1 for o in ops if o.status == OK and o.client >= 0),
                    "register_indeterminate": sum(1 for o in ops if o.status == "info"),
                    "creates_ok": len(acked)},
            "faults": faults_out,
            "assertions": assertions,
            "linearizability": [{"key": x.key, "ok": x.ok, "ops": x.ops, "steps": x.steps, "detail": x.detail,
                                 "stuck_op": x.stuck_op, "context": x.linearized_prefix} for x in lin],
            "watches": watch,
            "client_transitions": {w.name: [(round(t - t0, 2), s) for t, s in w.log.transitions] for w in workers},
            "leader_observations": [(round(t - t0, 2), m, md) for t, m, md in monitor.snapshot()
                                    if md in ("leader",)][::5],
        }
        stem = f"{target}-seed{seed}"
        write_json(out / f"{stem}.json", result)
        write_json(out / f"{stem}.history.json", {"t0": t0, "ops": [o.to_json() for o in ops]})
        text = text_summary(result)
        (out / f"{stem}.txt").write_text(text)
        print(text, flush=True)
        failed = [n for n, a in assertions.items() if a["enforced"] and not a["ok"]]
        if failed:
            save_logs(cluster, out / f"{stem}-logs")
            # The details go on this last line too: CI keeps only the tail of the output.
            details = "; ".join(f"{n}: {assertions[n]['detail']}" for n in failed)
            log(f"FAILED: {details} (server logs in {out / (stem + '-logs')})")
            return 1
        return 0
    finally:
        for w in workers:
            w.stop_event.set()
        if monitor is not None:
            monitor.stop()
        for w in workers:
            w.close()
        cluster.stop_all()
        if args.keep_logs:
            save_logs(cluster, out / f"{target}-seed{seed}-logs")
        netns.cleanup(cluster.members)
        shutil.rmtree(workdir, ignore_errors=True)


def save_logs(cluster: Cluster, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for m in cluster.members:
        if cluster.log_path(m).exists():
            shutil.copy(cluster.log_path(m), dest / f"m{m}.log")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", choices=("roost", "zookeeper"), default=os.environ.get("ROOST_TEST_TARGET", "roost"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--faults", type=int, default=10, help="number of faults (10 = every kind once)")
    ap.add_argument("--settle", type=float, default=3.0, help="seconds of calm after each fault is healed")
    ap.add_argument("--max-steps", type=int, default=50_000_000, help="checker search budget per key (~0.5 s per million steps)")
    ap.add_argument("--out", default=os.path.join(os.environ.get("TEST_OUTPUT_DIR", "test-output"), "faults"))
    ap.add_argument("--keep-logs", action="store_true", help="copy server logs to --out even on success")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("tests/faults needs root (network namespaces, iptables)", file=sys.stderr)
        return 2

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        return run(args)
    except KeyboardInterrupt as e:
        log(f"interrupted ({e}); cleaned up")
        return 130


if __name__ == "__main__":
    sys.exit(main())
