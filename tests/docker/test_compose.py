"""The docker-compose cluster, for real: build the image without a registry, bring up the
three servers from the repository's docker-compose.yaml, run the seed walkthrough through
2181, kill one container, keep writing and reading through the others, start it again and
check that it catches up."""

import os
import socket
import subprocess
import time
import uuid

import pytest
from kazoo.client import KazooClient

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROJECT = "roostci" + uuid.uuid4().hex[:6]
PORTS = {"zoo1": 2181, "zoo2": 2182, "zoo3": 2183}


def compose(*args, check=True):
    return subprocess.run(
        ["docker-compose", "-p", PROJECT, "-f", os.path.join(REPO, "docker-compose.yaml"), *args],
        cwd=REPO, check=check, capture_output=True, text=True, timeout=300,
    )


def four_letter(port, word):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(word.encode())
        out = b""
        while chunk := s.recv(4096):
            out += chunk
        return out.decode()


def mode(port):
    try:
        for line in four_letter(port, "srvr").splitlines():
            if line.startswith("Mode: "):
                return line[6:]
    except OSError:
        return None
    return None


def wait_for(predicate, timeout=60, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def cluster():
    subprocess.run([os.path.join(REPO, "docker", "build-local-image.sh")], check=True, timeout=900)
    compose("up", "-d")
    try:
        wait_for(lambda: sorted(filter(None, map(mode, PORTS.values()))) == ["follower", "follower", "leader"],
                 what="one leader and two followers")
        yield
    finally:
        compose("down", "-v", check=False)


def client(port):
    k = KazooClient(hosts=f"127.0.0.1:{port}", timeout=15)
    k.start(timeout=30)
    return k


def test_walkthrough_failover_and_catch_up(cluster, tmp_path):
    data_file = tmp_path / "payload.bin"
    data_file.write_bytes(b"roost in docker\x00\x01")
    k = client(2181)
    assert k.exists("/") is not None
    k.ensure_path("/gunwu")
    k.create("/gunwu/test1", data_file.read_bytes())
    data, stat = k.get("/gunwu/test1")
    assert data == data_file.read_bytes() and stat.version == 0
    stat = k.set("/gunwu/test1", b"v2")
    assert stat.version == 1 and stat.czxid < stat.mzxid
    k.stop()
    k.close()

    leader = next(name for name, port in PORTS.items() if mode(port) == "leader")
    subprocess.run(["docker", "kill", f"{PROJECT}_{leader}_1"], check=True, capture_output=True, timeout=60)
    survivors = [p for n, p in PORTS.items() if n != leader]
    wait_for(lambda: "leader" in map(mode, survivors), what="a new leader among the survivors")

    k = client(survivors[0])
    k.create("/gunwu/after-failover", b"x")
    k.set("/gunwu/test1", b"v3")
    k2 = client(survivors[1])
    k2.sync("/gunwu")
    assert k2.get("/gunwu/test1")[0] == b"v3"
    assert k2.exists("/gunwu/after-failover") is not None

    compose("start", leader)
    wait_for(lambda: mode(PORTS[leader]) == "follower", what="the killed server back as a follower")
    k3 = client(PORTS[leader])
    k3.sync("/gunwu")
    assert k3.get("/gunwu/test1")[0] == b"v3"
    assert sorted(k3.get_children("/gunwu")) == ["after-failover", "test1"]
    k.delete("/gunwu", recursive=True)
    for c in (k, k2, k3):
        c.stop()
        c.close()
