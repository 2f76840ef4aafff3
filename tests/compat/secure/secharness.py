"""Helpers for the TLS / x509 / SASL compatibility tests (tests/compat/test_cli_secure*.py).

Builds on zkharness (process registry, readiness, normalisation) and adds what the secure tests
need and zkharness does not offer: servers on ports of our own range (27000-27499) with a plain
and a secure client port, key/trust stores (the checked-in fixtures of crates/tls plus a client
certificate with a many-part subject made here with openssl), JAAS files, and zkCli.sh sessions
with extra JVM flags.

Both servers get the *same* zoo.cfg and the same -D properties, including
serverCnxnFactory=NettyServerCnxnFactory (ZooKeeper needs it for TLS; Roost ignores it).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import zkharness as h

FIXTURES = h.REPO / "crates" / "tls" / "tests" / "fixtures"
PW = "apassword"  # password of every fixture store
NETTY = "org.apache.zookeeper.server.NettyServerCnxnFactory"
SASL_PROVIDER = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"

PORT_FIRST, PORT_LAST = 27000, 27499
_next_port = PORT_FIRST


def port() -> int:
    """The next port of our range that can be bound right now (never handed out twice)."""
    global _next_port
    while _next_port <= PORT_LAST:
        p = _next_port
        _next_port += 1
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("0.0.0.0", p))
            except OSError:
                continue
        return p
    raise h.HarnessError(f"no free port left in {PORT_FIRST}-{PORT_LAST}")


def fixture(name: str) -> str:
    path = FIXTURES / name
    if not path.exists():
        raise h.HarnessError(f"TLS fixture missing: {path}")
    return str(path)


# --------------------------------------------------------------------------------------------
# Servers

def start(kind: str, config: Dict[str, str], sysprops: Optional[Dict[str, str]] = None,
          secure_port: bool = True, timeout: float = 60.0) -> h.Server:
    """Start a standalone `kind` server ("zookeeper" or "roost"; ROOST_BIN=zookeeper makes the
    candidate a second ZooKeeper) with clientPort and, if `secure_port`, secureClientPort.

    Returns a zkharness.Server whose `.port` is the plain port; `.secure_port` is added."""
    config = dict(config)
    sysprops = dict(sysprops or {})
    workdir = Path(tempfile.mkdtemp(prefix=f"compat-secure-{kind}-"))
    plain = port()
    cfg = {"serverCnxnFactory": NETTY}
    sport = None
    if secure_port:
        sport = port()
        cfg["secureClientPort"] = str(sport)
    cfg.update(config)
    cfg_path = h.write_zoo_cfg(workdir, plain, cfg)
    log_path = workdir / "server.log"
    real = kind
    if kind == "roost" and h.roost_bin() == h.SELF_CHECK:
        real = "zookeeper"
    if real == "zookeeper":
        java = shutil.which("java", path=os.environ.get("PATH", "").replace(str(h.HERE / "zkshim"), ""))
        if not java:
            raise h.HarnessError("java not found")
        argv = [java, "-cp", h.zk_classpath(), "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-Dzookeeper.root.logger=INFO,CONSOLE",
                "-Dlog4j.configuration=file:" + str(h.console_log4j(workdir))]
        argv += [f"-D{k}={v}" for k, v in sysprops.items()]
        argv += ["org.apache.zookeeper.server.quorum.QuorumPeerMain", str(cfg_path)]
    else:
        binary = h.roost_bin()
        if not os.access(binary, os.X_OK):
            raise h.HarnessError(f"roost binary not found at {binary}: run `cargo build --release` "
                                 f"or set ROOST_BIN (ROOST_BIN={h.SELF_CHECK} runs the self-check)")
        argv = [binary, "--config", str(cfg_path)]
        for k, v in sysprops.items():
            argv += ["-D", f"{k}={v}"]
    proc = h.spawn(argv, log_path, cwd=str(workdir))
    server = h.Server(kind, plain, workdir, proc, log_path, cfg)
    server.secure_port = sport  # type: ignore[attr-defined]
    try:
        # srvr over the plain port (with port unification the first byte is not 0x16: plaintext)
        h.wait_serving(plain, proc, log_path, timeout=timeout)
    except BaseException:
        server.stop()
        raise
    return server


def secure_address(server: h.Server) -> str:
    return f"127.0.0.1:{server.secure_port}"  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------------
# Key material made at test time

class Pki:
    """Per-session scratch directory with certificates signed by the fixture CA (ca.pem/ca.key),
    so the fixture trust stores (truststore.jks, keytool-truststore.p12, ca.pem) trust them."""

    # A subject that exercises Java's RFC 2253 rendering: reversed RDN order, a multi-valued RDN,
    # an escaped comma, a space. Java renders it as RICH_DN below (same rules as dn-expected.txt).
    RICH_SUBJECT = "/C=DE/O=Roost Test, Ltd./OU=QA+UID=q1/CN=secure client"

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="compat-secure-pki-"))
        self.rich_key = str(self.dir / "rich.key")
        self.rich_cert = str(self.dir / "rich.pem")
        self.rich_p12 = str(self.dir / "rich.p12")
        self._openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", self.rich_key,
                      "-utf8", "-multivalue-rdn", "-subj", self.RICH_SUBJECT, "-out", str(self.dir / "rich.csr"))
        self._openssl("x509", "-req", "-in", str(self.dir / "rich.csr"), "-CA", fixture("ca.pem"),
                      "-CAkey", fixture("ca.key"), "-set_serial", "4242", "-days", "3650", "-sha256",
                      "-out", self.rich_cert)
        self._openssl("pkcs12", "-export", "-passout", f"pass:{PW}", "-inkey", self.rich_key, "-in", self.rich_cert,
                      "-name", "rich", "-out", self.rich_p12)
        # A PEM key store for the Java client (key + certificate in one file). The fixture
        # client-keystore.pem holds a PKCS#1 "RSA PRIVATE KEY", which ZooKeeper's PemReader
        # cannot read ("algid parse error"), so build one from the PKCS#8 client.key.
        self.client_pem_keystore = str(self.dir / "client-keystore-p8.pem")
        Path(self.client_pem_keystore).write_text(Path(fixture("client.key")).read_text()
                                                  + Path(fixture("client.pem")).read_text())

    def _openssl(self, *args: str) -> None:
        proc = subprocess.run(["openssl", *args], capture_output=True, text=True)
        if proc.returncode != 0:
            raise h.HarnessError(f"openssl {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")

    def destroy(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def write_file(directory: Path, name: str, text: str) -> str:
    path = Path(directory) / name
    path.write_text(text)
    return str(path)


def jaas_server(directory: Path, users: Dict[str, str]) -> str:
    opts = "".join(f'\n    user_{u}="{p}"' for u, p in users.items())
    return write_file(directory, "server-jaas.conf",
                      "Server {\n    org.apache.zookeeper.server.auth.DigestLoginModule required" + opts + ";\n};\n")


def jaas_client(directory: Path, user: str, password: str) -> str:
    return write_file(directory, f"client-jaas-{user}-{password}.conf",
                      "Client {\n    org.apache.zookeeper.server.auth.DigestLoginModule required\n"
                      f'    username="{user}"\n    password="{password}";\n}};\n')


# --------------------------------------------------------------------------------------------
# zkCli.sh

def tls_client_flags(keystore: Optional[str], truststore: str, hostname_verification: bool = False,
                     store_password: str = PW) -> List[str]:
    """Java client properties for TLS (security.md 2.6). keystore=None: no client certificate."""
    flags = ["-Dzookeeper.client.secure=true",
             "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty",
             f"-Dzookeeper.ssl.trustStore.location={truststore}",
             f"-Dzookeeper.ssl.trustStore.password={store_password}",
             f"-Dzookeeper.ssl.hostnameVerification={'true' if hostname_verification else 'false'}"]
    if keystore:
        flags += [f"-Dzookeeper.ssl.keyStore.location={keystore}",
                  f"-Dzookeeper.ssl.keyStore.password={store_password}"]
    return flags


def zkcli_session(address: str, commands: List[str], jvm_flags: Sequence[str] = (),
                  timeout: float = 60.0) -> Dict[str, object]:
    """zkharness.zkcli_session with extra JVM flags (and the raw output kept as "raw").

    Debian's zkCli.sh runs `java -cp /etc/zookeeper/conf:zookeeper.jar $CLIENT_JVMFLAGS ...`, and
    zookeeper.jar's manifest leaves out netty-codec, without which ClientCnxnSocketNetty cannot
    even connect (ConnectionLoss). So the flags carry a second -cp (java honours the last one)
    with the classpath zkharness uses for the server, which adds netty-codec. Flag values must
    not contain spaces (zkCli.sh word-splits CLIENT_JVMFLAGS)."""
    for f in jvm_flags:
        if any(c.isspace() for c in f):
            raise ValueError(f"zkCli.sh splits JVM flags on spaces: {f!r}")
    script = []
    for i, cmd in enumerate(commands):
        script += [cmd, f"stat /zkcli-marker-{i}"]
    script.append("quit")
    flags = ["-Xshare:auto", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
             "-cp", "/etc/zookeeper/conf:" + h.zk_classpath(), *jvm_flags]
    env = dict(os.environ, CLIENT_JVMFLAGS=" ".join(flags))
    env.pop("JVMFLAGS", None)
    proc = h.run_group(["bash", str(h.ZK_CLI_SH), "-server", address], "\n".join(script) + "\n",
                       timeout=timeout, env=env)
    session = h._chunk(proc, commands)
    session["raw"] = proc.stdout
    return session


def state_events(session: Dict[str, object]) -> List[str]:
    """The connection-state events (type None) zkCli printed, in order, consecutive repeats
    collapsed (render_transcript drops these; the SASL tests compare them separately)."""
    out: List[str] = []
    for line in str(session["raw"]).splitlines():
        m = h._WATCHER.match(line.strip())
        if m and m.group(2) == "None":
            if not out or out[-1] != m.group(1):
                out.append(m.group(1))
    return out


# --------------------------------------------------------------------------------------------
# kazoo

def kazoo_try(address: str, certfile: Optional[str], keyfile: Optional[str], ca: Optional[str],
              timeout: float = 4.0, use_ssl: bool = True, fn=None):
    """Connect with kazoo; returns ("ok", fn(client) or None) or ("failed", exception class name)."""
    from kazoo.client import KazooClient  # imported late: only these tests need kazoo

    kw = dict(use_ssl=use_ssl, verify_certs=True, check_hostname=False) if use_ssl else {}
    if use_ssl:
        kw.update(certfile=certfile, keyfile=keyfile, ca=ca)
    client = KazooClient(hosts=address, timeout=timeout, **kw)
    try:
        client.start(timeout=timeout)
    except Exception as e:  # noqa: BLE001 - the class is the result
        try:
            client.stop()
            client.close()
        except Exception:  # noqa: BLE001
            pass
        return ("failed", type(e).__name__)
    try:
        return ("ok", fn(client) if fn else None)
    finally:
        client.stop()
        client.close()
