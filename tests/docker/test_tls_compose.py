"""The TLS compose example (docker/tls/docker-compose.yaml), for real: build the image without a
registry, make a CA and the members' certificates with docker/tls/gen-certs.sh into a temporary
directory, bring up the three members (mutual TLS between them, TLS on the client port, HTTPS on
the HTTP port), and check that a leader is elected, that a write through one member is read
through another over TLS, that the peer port refuses a plain connection and a TLS one without a
certificate, and that the HTTP port speaks HTTPS. Everything is torn down by the compose project
name, which is unique to this run."""

import json
import os
import socket
import ssl
import subprocess
import time
import urllib.request
import uuid

import pytest
from kazoo.client import KazooClient

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMPOSE_FILE = os.path.join(REPO, "docker", "tls", "docker-compose.yaml")
PROJECT = "roosttls" + uuid.uuid4().hex[:6]
# Host ports published by docker/tls/docker-compose.yaml: TLS client port, HTTPS port.
PORTS = {"zoo1": 2281, "zoo2": 2282, "zoo3": 2283}
HTTPS_PORTS = {"zoo1": 8441, "zoo2": 8442, "zoo3": 8443}


def compose(certs, *args, check=True):
    return subprocess.run(
        ["docker-compose", "-p", PROJECT, "-f", COMPOSE_FILE, *args],
        cwd=REPO, check=check, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, ROOST_TLS_CERTS=str(certs)),
    )


def tls_context(certs, client_cert=True):
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    if client_cert:
        ctx.load_cert_chain(str(certs / "client.pem"), str(certs / "client.key"))
    return ctx


def four_letter_tls(certs, port, word):
    """A four-letter word over the TLS client port (the certificates name localhost)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    with tls_context(certs).wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(word.encode())
        out = b""
        while chunk := s.recv(4096):
            out += chunk
        return out.decode()


def mode(certs, port):
    try:
        for line in four_letter_tls(certs, port, "srvr").splitlines():
            if line.startswith("Mode: "):
                return line[6:]
    except OSError:  # ssl.SSLError is an OSError too
        return None
    return None


def wait_for(predicate, timeout=60, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def container(service):
    return f"{PROJECT}_{service}_1"


def container_ip(service):
    out = subprocess.run(
        ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", container(service)],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout.split()
    assert out, f"{container(service)} has no IP address"
    return out[0]


def container_log(service):
    proc = subprocess.run(["docker", "logs", container(service)], capture_output=True, text=True, timeout=60)
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls-certs")
    subprocess.run([os.path.join(REPO, "docker", "tls", "gen-certs.sh"), str(d)], check=True, timeout=120,
                   capture_output=True)
    return d


@pytest.fixture(scope="module")
def cluster(certs):
    # ROOST_BIN (if set) is used as is; otherwise the script builds the release binary.
    subprocess.run([os.path.join(REPO, "docker", "build-local-image.sh")], check=True, timeout=900)
    compose(certs, "up", "-d")
    try:
        wait_for(lambda: sorted(filter(None, (mode(certs, p) for p in PORTS.values())))
                 == ["follower", "follower", "leader"],
                 what="one leader and two followers, asked over TLS")
        yield certs
    finally:
        compose(certs, "down", "-v", check=False)


def tls_client(certs, port, with_cert=True, timeout=30):
    args = dict(certfile=str(certs / "client.pem"), keyfile=str(certs / "client.key")) if with_cert else {}
    k = KazooClient(hosts=f"localhost:{port}", timeout=15, use_ssl=True, ca=str(certs / "ca.pem"),
                    verify_certs=True, check_hostname=False, **args)
    k.start(timeout=timeout)
    return k


def test_write_through_one_member_read_through_another_over_tls(cluster):
    certs = cluster
    writer = tls_client(certs, PORTS["zoo1"])
    reader = tls_client(certs, PORTS["zoo3"])
    try:
        writer.ensure_path("/tls-compose")
        writer.create("/tls-compose/n", b"written through zoo1")
        writer.set("/tls-compose/n", b"v2")
        reader.sync("/tls-compose/n")
        data, stat = reader.get("/tls-compose/n")
        assert data == b"v2" and stat.version == 1
        writer.delete("/tls-compose", recursive=True)
    finally:
        for c in (writer, reader):
            c.stop()
            c.close()


def test_client_port_requires_a_client_certificate(cluster):
    """ssl.clientAuth is unset, so need: a TLS client without a certificate never gets a session."""
    with pytest.raises(Exception):
        tls_client(cluster, PORTS["zoo2"], with_cert=False, timeout=5)


def test_peer_port_refuses_plain_and_certificateless_connections(cluster):
    certs = cluster
    # The peer port is not published; the host reaches it at the container's bridge address.
    ip = container_ip("zoo2")
    try:
        plain = socket.create_connection((ip, 2888), timeout=5)
    except OSError as e:
        pytest.skip(f"the host cannot reach containers at their bridge addresses ({ip}: {e})")
    with plain:
        # A length-prefixed frame, as a plain peer would send first.
        plain.sendall(b"\x00\x00\x00\x10" + b"\x01" * 16)
        try:
            got = plain.recv(100)
        except (ConnectionResetError, socket.timeout) as e:
            got = type(e).__name__
        assert got in (b"", "ConnectionResetError"), f"a plain peer got an answer: {got!r}"
    wait_for(lambda: "a plain connection to the peer port refused" in container_log("zoo2"), timeout=10,
             what="zoo2 logging the refused plain peer")

    # TLS with the right CA but no certificate: the handshake is refused (TLS 1.3 reports it at the
    # first read). check_hostname is off: the address is an IP the certificates do not name.
    ctx = tls_context(certs, client_cert=False)
    ctx.check_hostname = False
    raw = socket.create_connection((ip, 2888), timeout=5)
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        with ctx.wrap_socket(raw) as s:
            s.sendall(b"\x00\x00\x00\x10" + b"\x01" * 16)
            assert s.recv(100) == b""
            raise ConnectionResetError("closed without an answer")

    # The ensemble is unaffected.
    assert sorted(mode(certs, p) for p in PORTS.values()) == ["follower", "follower", "leader"]


def test_http_port_is_https_only(cluster):
    certs = cluster
    ctx = tls_context(certs, client_cert=False)
    with urllib.request.urlopen(f"https://localhost:{HTTPS_PORTS['zoo3']}/commands/ruok", context=ctx,
                                timeout=10) as r:
        assert r.status == 200
        assert json.loads(r.read())["command"] == "ruok"
        assert "max-age=" in r.headers["Strict-Transport-Security"]
    with pytest.raises(Exception):
        urllib.request.urlopen(f"http://localhost:{HTTPS_PORTS['zoo3']}/commands/ruok", timeout=10)
