"""Round trips with the real Apache ZooKeeper (Debian's 3.8): fill it through kazoo with every kind of
znode and many txns after its last snapshot, stop it, `roost import-zookeeper`, start Roost, and
compare full dumps; compressed snapshots, a torn log tail and a damaged byte."""

import shutil
from pathlib import Path

import pytest

import migrate_harness as m
import zkharness as h


def zookeeper_filled(workdir: Path, sysprops=None, snap_count: int = 200):
    """A ZooKeeper data dir with open sessions, several snapshots and a long log after the last one;
    returns (data dir, dump taken just before the stop)."""
    port = h.free_port()
    data = workdir / "zk-data"
    zk = m.start_zookeeper(workdir / "zk", port, data, {"snapCount": str(snap_count)}, sysprops)
    holders = m.fill(port)
    before = m.dump(port)
    zk.stop()
    m.stop_clients_without_closing(holders)
    return data, before


def import_and_serve(workdir: Path, zk_data: Path, port=None):
    target = workdir / "roost-data"
    out = m.roost_cmd("import-zookeeper", "--from", str(zk_data), "--to", str(target))
    roost = m.start_roost(workdir / "roost", port or h.free_port(), target)
    return roost, out


def assert_same(before, after):
    problems = m.diff_dumps(before, after)
    assert not problems, "\n".join(problems[:60])


def test_import_gives_the_same_tree_stats_acls_sessions_and_zxid(workdir):
    zk_data, before = zookeeper_filled(workdir)
    assert len(m.snapshot_files(zk_data)) >= 2, "the fill must span several snapshots"
    assert len(before["sessions"]) == 3
    roost, out = import_and_serve(workdir, zk_data)
    try:
        assert "imported" in out.stdout
        after = m.dump(roost.port, zxid_first=True)
        assert_same(before, after)
        # Writes go on above ZooKeeper's last zxid.
        client = m.connect(roost.port)
        try:
            _, stat = client.get("/app")
            client.set("/app", b"after the move")
            _, newer = client.get("/app")
            assert newer.mzxid > before["zxid"] and newer.version == stat.version + 1
            seq = client.create("/app/seq-", b"", sequence=True)
            assert seq == "/app/seq-0000000003" or int(seq[-10:]) > 2, seq
        finally:
            client.stop()
    finally:
        roost.stop()


@pytest.mark.parametrize("method", ["gz", "snappy"])
def test_compressed_snapshots(workdir, method):
    zk_data, before = zookeeper_filled(workdir, {"zookeeper.snapshot.compression.method": method})
    assert any(p.name.endswith("." + method) for p in m.snapshot_files(zk_data)), m.snapshot_files(zk_data)
    roost, _ = import_and_serve(workdir, zk_data)
    try:
        assert_same(before, m.dump(roost.port, zxid_first=True))
    finally:
        roost.stop()


def test_torn_last_record_is_ignored_like_zookeeper_does(workdir):
    zk_data, _ = zookeeper_filled(workdir)
    last_log = m.log_files(zk_data)[-1]
    raw = last_log.read_bytes()
    # Find the end of the last entry (entries end with 'B'; zero preallocation follows).
    end = len(raw.rstrip(b"\0"))
    assert raw[end - 1:end] == b"B"
    # Cut the last entry in half: as after a crash in the middle of a write.
    start_of_last = _entry_starts(raw)[-1]
    torn = raw[: start_of_last + (end - start_of_last) // 2]
    last_log.write_bytes(torn + b"\0" * 4096)
    zk_copy = workdir / "zk-torn"
    shutil.copytree(zk_data, zk_copy)
    # What ZooKeeper itself serves from the torn directory is the reference.
    port = h.free_port()
    zk = m.start_zookeeper(workdir / "zk2", port, zk_data)
    reference = m.dump(port, zxid_first=True)
    zk.stop()
    roost, out = import_and_serve(workdir, zk_copy)
    try:
        assert "partial record" in out.stdout, out.stdout
        after = m.dump(roost.port, zxid_first=True)
    finally:
        roost.stop()
    # ZooKeeper's restart may have expired nothing yet; compare the trees and the zxid.
    assert_same(reference, after)


def _entry_starts(raw: bytes):
    starts, pos = [], 16
    while pos + 12 <= len(raw):
        length = int.from_bytes(raw[pos + 8:pos + 12], "big")
        if length == 0:
            break
        starts.append(pos)
        pos += 12 + length + 1
    return starts


def test_a_damaged_byte_is_refused_naming_file_and_offset(workdir):
    zk_data, _ = zookeeper_filled(workdir)
    log = m.log_files(zk_data)[-1]
    original_log = log.read_bytes()
    raw = bytearray(original_log)
    entry = _entry_starts(bytes(raw))[3]
    raw[entry + 12 + 20] ^= 0x10  # inside the 4th entry's txn header
    log.write_bytes(bytes(raw))
    target = workdir / "roost-data"
    out = m.roost_cmd("import-zookeeper", "--from", str(zk_data), "--to", str(target), check=False)
    assert out.returncode == 1, out
    assert str(log) in out.stderr and f"offset {entry}" in out.stderr and "checksum" in out.stderr, out.stderr
    assert not (target / "raft").exists(), "nothing is written on a refused import"

    log.write_bytes(original_log)
    snap = m.snapshot_files(zk_data)[-1]
    raw = bytearray(snap.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    snap.write_bytes(bytes(raw))
    out = m.roost_cmd("import-zookeeper", "--from", str(zk_data), "--to", str(target), check=False)
    assert out.returncode == 1 and str(snap) in out.stderr and "offset" in out.stderr, out.stderr


def test_refuses_a_non_empty_target(workdir):
    zk_data, _ = zookeeper_filled(workdir)
    target = workdir / "busy"
    target.mkdir()
    (target / "something").write_text("x")
    out = m.roost_cmd("import-zookeeper", "--from", str(zk_data), "--to", str(target), check=False)
    assert out.returncode == 1 and "not empty" in out.stderr, out.stderr
    assert m.roost_cmd("import-zookeeper", "--help").stdout.count("--from") >= 1
