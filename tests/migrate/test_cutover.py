"""Cutover with live clients, the way back (export to ZooKeeper), and a 3-member Roost ensemble
started from one imported member."""

import threading
from pathlib import Path

import migrate_harness as m
import zkharness as h
from kazoo.protocol.states import KazooState
from test_import import assert_same, zookeeper_filled


def test_live_client_keeps_its_session_ephemerals_and_watches(workdir):
    port = h.free_port()
    zk_data = workdir / "zk-data"
    zk = m.start_zookeeper(workdir / "zk", port, zk_data, {"snapCount": "100"})
    other = m.fill(port)
    live = m.connect(port, timeout=30.0)
    states = []
    live.add_listener(states.append)
    live.create("/live/eph", b"mine", ephemeral=True, makepath=True)
    live.create("/live/watched", b"v0")
    fired = threading.Event()
    live.get("/live/watched", watch=lambda event: fired.set())
    session_id, password = live.client_id
    _, eph_stat = live.get("/live/eph")
    assert eph_stat.owner_session_id == session_id
    before = m.dump(port)

    zk.stop()
    m.stop_clients_without_closing(other)
    m.wait_until(lambda: KazooState.SUSPENDED in states, 30, "the client to notice the stop")
    target = workdir / "roost-data"
    m.roost_cmd("import-zookeeper", "--from", str(zk_data), "--to", str(target))
    roost = m.start_roost(workdir / "roost", port, target)  # the same address
    try:
        m.wait_until(lambda: live.connected, 30, "the client to reconnect")
        assert KazooState.LOST not in states, states
        assert live.client_id == (session_id, password), "same session"
        data, stat = live.get("/live/eph")
        assert data == b"mine" and stat.owner_session_id == session_id
        assert stat.czxid == eph_stat.czxid
        # The watch set on ZooKeeper was re-registered with Roost (SetWatches) and fires there.
        writer = m.connect(port)
        try:
            writer.set("/live/watched", b"v1")
        finally:
            writer.stop()
        assert fired.wait(15), "the watch did not fire after the cutover"
        after = m.dump(port, zxid_first=True)
        # The live client's own ephemeral, the fill's and the zxid (before the write above) match.
        assert after["sessions"] == before["sessions"]
        # Closing the session deletes its ephemeral on Roost.
        live.stop()
        live.close()
        checker = m.connect(port)
        try:
            assert checker.exists("/live/eph") is None
        finally:
            checker.stop()
    finally:
        roost.stop()


def test_export_then_zookeeper_serves_the_same_dump(workdir):
    zk_data, _ = zookeeper_filled(workdir)
    target = workdir / "roost-data"
    m.roost_cmd("import-zookeeper", "--from", str(zk_data), "--to", str(target))
    roost = m.start_roost(workdir / "roost", h.free_port(), target)
    try:
        # Writes made on Roost go back too, including a Roost session with an ephemeral.
        client = m.connect(roost.port)
        client.create("/made-on-roost", b"\x00\x01roost", makepath=True)
        client.set("/app", b"set on roost")
        client.create("/app/seq-", b"", sequence=True)
        client.delete("/multi-a")
        holder = m.connect(roost.port, timeout=60.0)
        holder.create("/made-on-roost/eph", b"", ephemeral=True)
        client.stop()
        on_roost = m.dump(roost.port)
    finally:
        roost.stop()
    holder.stop()
    holder.close()
    out_dir = workdir / "back-to-zk"
    out = m.roost_cmd("export-zookeeper", "--from", str(target), "--to", str(out_dir))
    assert "exported" in out.stdout
    snaps = m.snapshot_files(out_dir)
    assert [p.name for p in snaps] == [f"snapshot.{on_roost['zxid']:x}"]
    port = h.free_port()
    zk = m.start_zookeeper(workdir / "zk-back", port, out_dir)
    try:
        assert_same(on_roost, m.dump(port, zxid_first=True))
    finally:
        zk.stop()
    # A second export into the same place is refused.
    again = m.roost_cmd("export-zookeeper", "--from", str(target), "--to", str(out_dir), check=False)
    assert again.returncode == 1 and "already holds" in again.stderr


def ensemble_cfgs(workdir: Path):
    """Client port, server lines and data dir (with myid) of each of 3 members."""
    servers = {f"server.{j}": f"127.0.0.1:{h.free_port()}:{h.free_port()}" for j in (1, 2, 3)}
    cfgs = {}
    for i in (1, 2, 3):
        data = workdir / f"m{i}" / "data"
        data.mkdir(parents=True)
        (data / "myid").write_text(f"{i}\n")
        cfgs[i] = (h.free_port(), servers, data)
    return cfgs


def test_ensemble_started_from_one_imported_member_converges(workdir):
    zk_data, before = zookeeper_filled(workdir)
    cfgs = ensemble_cfgs(workdir)
    # The import runs on member 1 with its own zoo.cfg (members and id come from it).
    port1, servers, data1 = cfgs[1]
    cfg1 = m.write_cfg(workdir / "m1" / "zoo.cfg", port1, data1, dict(servers, **{"admin.serverPort": "0"}))
    m.roost_cmd("import-zookeeper", "--from", str(zk_data), "--config", str(cfg1))
    procs = []
    try:
        for i in (1, 2, 3):
            port, servers, data = cfgs[i]
            procs.append(m.start_roost(workdir / f"m{i}", port, data, servers, wait=False))
        for proc in procs:
            h.wait_serving(proc.port, proc.proc, proc.log, timeout=120)
        # Every member's zxid first: each dump's own session is a txn on all of them.
        zxids = [m.last_zxid(proc.port) for proc in procs]
        dumps = [dict(m.dump(proc.port), zxid=zxid) for proc, zxid in zip(procs, zxids)]
        for after in dumps:
            # Only the leader lists sessions with ephemerals (as in ZooKeeper).
            problems = [p for p in m.diff_dumps(before, dict(after, sessions=before["sessions"]))]
            assert not problems, "\n".join(problems[:60])
        assert any(d["sessions"] == before["sessions"] for d in dumps), [d["sessions"] for d in dumps]
        # A write through member 3 reaches all of them.
        client = m.connect(procs[2].port)
        try:
            client.create("/after-import", b"x")
        finally:
            client.stop()
        for proc in procs:
            c = m.connect(proc.port)
            try:
                c.sync("/")
                assert c.exists("/after-import") is not None
            finally:
                c.stop()
    finally:
        for proc in procs:
            proc.stop()
