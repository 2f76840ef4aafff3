"""TLS, x509 and SASL seen through the clients people use (zkCli.sh, kazoo), Apache ZooKeeper 3.8
(the golden behaviour, produced at test time) against roost, configured the same way.

Server pairs (one ZooKeeper, one roost; identical zoo.cfg and -D properties; ports 27000-27499):
  tls_need    secureClientPort, kazoo-style JKS stores (fixtures keystore.jks/truststore.jks:
              X.509 v1 server cert without SAN), ssl.clientAuth unset (= need)
  tls_unified client.portUnification=true on the plain port, PKCS12 stores made by keytool
              (server cert with SAN IP:127.0.0.1, so hostname verification stays on)
  tls_super   secureClientPort, keytool's JKS stores, X509AuthenticationProvider.superUser=CN=client
  tls_want    secureClientPort, PEM stores (key+chain PEM, CA PEM), ssl.clientAuth=want
  tls_none    the same with ssl.clientAuth=none
  sasl        JAAS Server section with users bob and carol, SASLAuthenticationProvider,
              zookeeper.superUser=carol

cli_mt is not used: Debian's C client (zookeeper-bin 3.8.0) is built without OpenSSL (and
without SASL) -- see test_cli_mt_has_no_tls, which records the evidence and skips.

Run:  ROOST_BIN=/path/to/roost python3 -m pytest tests/compat/test_cli_secure.py   (about 1 minute)
      ROOST_BIN=zookeeper ... is the self-check (two ZooKeepers; everything must pass).
zkCli.sh gets the harness classpath as a second -cp (Debian's zookeeper.jar manifest lacks
netty-codec, without which ClientCnxnSocketNetty never connects); see secure/secharness.py.
"""

import re
import subprocess
import threading

import pytest

import zkharness as h
from conftest import assert_same
from secure import secharness as s

F = s.fixture

# ---------------------------------------------------------------------------------------------
# Server pairs


def _start(kind, config, sysprops=None, secure_port=True):
    try:
        return s.start(kind, config, sysprops, secure_port=secure_port)
    except h.HarnessError as e:
        if kind == "roost" and "binary not found" in str(e) and not h.ci_mode():
            pytest.skip(str(e))
        raise


def _pair(config, sysprops=None, secure_port=True):
    ref = _start("zookeeper", config, sysprops, secure_port)
    try:
        cand = _start("roost", config, sysprops, secure_port)
    except BaseException:
        h.destroy(ref)
        raise
    try:
        yield ref, cand
    finally:
        h.destroy(cand)
        h.destroy(ref)


@pytest.fixture(scope="module")
def pki():
    p = s.Pki()
    yield p
    p.destroy()


@pytest.fixture(scope="module")
def tls_need():
    yield from _pair({
        "ssl.keyStore.location": F("keystore.jks"),
        "ssl.keyStore.password": s.PW,
        "ssl.trustStore.location": F("truststore.jks"),
        "ssl.trustStore.password": s.PW,
    })


@pytest.fixture(scope="module")
def tls_unified():
    yield from _pair({
        "client.portUnification": "true",
        "ssl.keyStore.location": F("keytool-keystore.p12"),
        "ssl.keyStore.password": s.PW,
        "ssl.trustStore.location": F("keytool-truststore.p12"),
        "ssl.trustStore.password": s.PW,
        # ZooKeeper 3.8.0 registers the x509 provider only when secureClientPort is set; with port
        # unification alone it refuses every TLS client ("X509 Auth provider not found: x509").
        "authProvider.x509": "org.apache.zookeeper.server.auth.X509AuthenticationProvider",
    }, secure_port=False)


@pytest.fixture(scope="module")
def tls_super():
    yield from _pair({
        "ssl.keyStore.location": F("keytool-keystore.jks"),
        "ssl.keyStore.password": s.PW,
        "ssl.trustStore.location": F("keytool-truststore.jks"),
        "ssl.trustStore.password": s.PW,
        "X509AuthenticationProvider.superUser": "CN=client",
    })


@pytest.fixture(scope="module")
def tls_want():
    yield from _pair({
        "ssl.keyStore.location": F("server-keystore.pem"),
        "ssl.trustStore.location": F("ca.pem"),
        "ssl.clientAuth": "want",
    })


@pytest.fixture(scope="module")
def tls_none():
    yield from _pair({
        "ssl.keyStore.location": F("server-keystore.pem"),
        "ssl.trustStore.location": F("ca.pem"),
        "ssl.clientAuth": "none",
    })


@pytest.fixture(scope="module")
def sasl(tmp_path_factory):
    d = tmp_path_factory.mktemp("jaas")
    jaas = s.jaas_server(d, {"bob": "bobsecret", "carol": "carolsecret"})
    sysprops = {"java.security.auth.login.config": jaas, "zookeeper.superUser": "carol"}
    for pair in _pair({"authProvider.1": s.SASL_PROVIDER}, sysprops, secure_port=False):
        yield pair + (d,)


def _compare(ref, cand, commands, ref_addr, cand_addr, flags, what, must_contain=()):
    """One zkCli session per server; normalised transcripts must be identical. Returns golden."""
    golden = h.render_transcript(s.zkcli_session(ref_addr, commands, flags))
    got = h.render_transcript(s.zkcli_session(cand_addr, commands, flags))
    # Guard against a vacuous comparison (zkCli failing the same way on both sides).
    assert "<incomplete" not in golden, golden
    for text in must_contain:
        assert text in golden, f"ZooKeeper transcript lacks {text!r}:\n{golden}"
    assert_same(golden, got, what, ref, cand)
    return golden


# ---------------------------------------------------------------------------------------------
# 1. zkCli.sh over TLS

CLIENT_JKS = s.tls_client_flags(F("client.jks"), F("truststore.jks"))  # kazoo-style v1 certs: no SAN

TLS_SCENARIO = [
    "whoami",
    "create /tls data",
    "get /tls",
    "set /tls data2",
    "get -s /tls",
    "create /tls/kid k",
    "create /tls/kid2 k2",
    "ls /tls",
    "getAcl /tls",
    "setAcl /tls x509:CN=client:cdrwa",
    "getAcl /tls",
    "get /tls",
    "setAcl /tls/kid x509:CN=somebody-else:cdrwa",
    "get /tls/kid",
    "getAcl /tls/kid",
    "set /tls/kid nope",
    "setAcl /tls/kid2 auth::cdrwa",
    "getAcl /tls/kid2",
    "delete /tls/kid2",
    "delete /tls/kid",
    "ls /tls",
    "delete /tls",
    "whoami",
]


def test_zkcli_tls_secure_port(tls_need):
    """secureClientPort with JKS stores: the client's x509 id, ACLs on it, NoAuth for others."""
    ref, cand = tls_need
    golden = _compare(ref, cand, TLS_SCENARIO, s.secure_address(ref), s.secure_address(cand), CLIENT_JKS,
                      "zkCli over TLS (secureClientPort)",
                      must_contain=["x509: CN=client", "'x509,'CN=client", "Insufficient permission : /tls/kid"])
    assert "Created /tls/kid2" in golden


X509_ACL_VALIDITY = [
    "create /x509acl",
    "setAcl /x509acl x509:garbage:cdrwa",
    "getAcl /x509acl",
    "setAcl /x509acl x509:UID=u1+CN=x:r,x509:CN=client:cdrwa",
    "getAcl /x509acl",
    "create /x509acl2 d x509:also-garbage:cdrwa",
    "get /x509acl2",
]


def test_zkcli_x509_acl_validity(tls_need):
    """An x509 ACL id must parse as an X.500 name (X509AuthenticationProvider.isValid): ZooKeeper
    answers InvalidACL for `x509:garbage` and keeps the old ACL."""
    ref, cand = tls_need
    _compare(ref, cand, X509_ACL_VALIDITY, s.secure_address(ref), s.secure_address(cand), CLIENT_JKS,
             "zkCli x509 ACL validity", must_contain=["Acl is not valid : /x509acl", "'x509,'UID=u1+CN=x\n: r\n",
                           "KeeperErrorCode = InvalidACL for /x509acl2"])


RICH_DN = "CN=secure client,OU=QA+UID=q1,O=Roost Test\\, Ltd.,C=DE"  # Java's rendering of Pki.RICH_SUBJECT
RICH_DN_ACL = RICH_DN.replace(",", "%2C")  # zkCli's getAcl prints an id's commas as %2C

UNIFIED_TLS = [
    "whoami",
    "create /pu data",
    "setAcl /pu auth::cdrwa",
    "getAcl /pu",
    "get /pu",
    "create /pu/open o",
    "setAcl /pu/open x509:CN=client:cdrwa",
    "get /pu/open",
    "getAcl /pu/open",
    "ls /pu",
]

UNIFIED_PLAIN = [
    "whoami",
    "get /pu",
    "ls /pu",
    "create /pu/x",
    "create /plain p",
    "get /plain",
]


def test_zkcli_tls_port_unification(tls_unified, pki):
    """client.portUnification: TLS (PKCS12 stores, host name verified against the SAN) and
    plaintext sessions on the same plain port; a many-part subject DN as the x509 id."""
    ref, cand = tls_unified
    # the same scenario as on the secure port (host name verified: the server cert has SANs)
    _compare(ref, cand, TLS_SCENARIO, ref.address, cand.address,
             s.tls_client_flags(F("client.jks"), F("truststore.jks"), hostname_verification=True),
             "zkCli over TLS (port unification, CN=client)",
             must_contain=["x509: CN=client", "'x509,'CN=client", "Insufficient permission : /tls/kid"])
    flags = s.tls_client_flags(pki.rich_p12, F("keytool-truststore.p12"), hostname_verification=True)
    _compare(ref, cand, UNIFIED_TLS, ref.address, cand.address, flags, "zkCli over TLS (port unification)",
             must_contain=[f"x509: {RICH_DN}", f"'x509,'{RICH_DN_ACL}", "Insufficient permission : /pu/open"])
    # A plaintext client on the same port: no x509 id, so the x509-only ACLs above lock it out.
    _compare(ref, cand, UNIFIED_PLAIN, ref.address, cand.address, [], "zkCli plaintext (port unification)",
             must_contain=["Insufficient permission : /pu", "Created /plain"])


# ---------------------------------------------------------------------------------------------
# 4. x509 super user (X509AuthenticationProvider.superUser=CN=client on tls_super)

SUPER_SETUP = [  # as the rich client: a node only it may touch
    "create /su data",
    "setAcl /su auth::cdrwa",
    "create /su/kid k",
    "setAcl /su/kid x509:CN=somebody-else:cdrwa",
    "get /su/kid",
]

SUPER_X509 = [  # as CN=client, the super user
    "get /su",
    "getAcl /su",
    "set /su by-super",
    "get /su/kid",
    "create /su/by-super s",
    "setAcl /su/by-super auth::r",
    "getAcl /su/by-super",
    "delete /su/by-super",
    "delete /su/kid",
    "ls /su",
]


def test_zkcli_x509_super_user(tls_super, pki):
    """CN=client is the x509 super user: it reads and writes /su, whose ACL names only the rich
    client (which itself is refused /su/kid: the negative control)."""
    ref, cand = tls_super
    rich = s.tls_client_flags(pki.rich_p12, F("keytool-truststore.jks"), hostname_verification=True)
    _compare(ref, cand, SUPER_SETUP, s.secure_address(ref), s.secure_address(cand), rich,
             "zkCli x509 super user: setup", must_contain=["Insufficient permission : /su/kid"])
    flags = s.tls_client_flags(F("client.jks"), F("truststore.jks"), hostname_verification=True)
    _compare(ref, cand, SUPER_X509, s.secure_address(ref), s.secure_address(cand), flags, "zkCli x509 super user",
             must_contain=[f"'x509,'{RICH_DN_ACL}", "$ get /su/kid\nk\n"])


def test_zkcli_x509_super_user_whoami(tls_super):
    """whoami of the x509 super user lists the super id too (ZooKeeper: `super:` above `x509: CN=client`)."""
    ref, cand = tls_super
    flags = s.tls_client_flags(F("client.jks"), F("truststore.jks"), hostname_verification=True)
    _compare(ref, cand, ["whoami"], s.secure_address(ref), s.secure_address(cand), flags,
             "zkCli x509 super user: whoami", must_contain=["\nsuper:\nx509: CN=client\n"])


# ---------------------------------------------------------------------------------------------
# 2. Server-side rejections (kazoo)

def _kazoo_both(ref_addr, cand_addr, **kw):
    """kazoo_try against both servers at once (a refused client costs the full timeout)."""
    results = {}

    def run(key, addr):
        try:
            results[key] = s.kazoo_try(addr, **kw)
        except Exception as e:  # noqa: BLE001
            results[key] = ("error", repr(e))

    threads = [threading.Thread(target=run, args=("ref", ref_addr)),
               threading.Thread(target=run, args=("cand", cand_addr))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results["ref"], results["cand"]


def _create_and_read(client):
    path = client.create("/kz-", b"v", sequence=True)
    data, _ = client.get(path)
    client.delete(path)
    return data


CERTS = {
    # name: (certfile, keyfile) for kazoo; ca is always the fixture CA
    "good": ("client.pem", "client.key"),
    "none": (None, None),
    "unrelated-ca": ("other-client.pem", "other-client.key"),
    "impostor-ca": ("impostor-client.pem", "impostor-client.key"),
    "expired": ("expired-client.pem", "expired-client.key"),
}

EXPECTED = {
    # (clientAuth, certificate) -> ZooKeeper's outcome
    ("need", "good"): "ok",
    ("need", "none"): "failed",
    ("need", "unrelated-ca"): "failed",
    ("need", "impostor-ca"): "failed",
    ("need", "expired"): "failed",
    ("want", "good"): "ok",
    ("want", "none"): "ok",
    ("want", "unrelated-ca"): "failed",
    ("none", "none"): "ok",
    ("none", "unrelated-ca"): "ok",  # not asked for, so never checked
}


def _good_client_accepted(ref, cand):
    """Positive control for a refusal: the same port accepts the CA's client certificate, so the
    refusal is the server's verdict on the certificate, not a port that is closed or plaintext."""
    good = _kazoo_both(s.secure_address(ref), s.secure_address(cand), certfile=F("client.pem"),
                       keyfile=F("client.key"), ca=F("ca.pem"), timeout=5.0, fn=_create_and_read)
    assert good == (("ok", b"v"), ("ok", b"v")), f"control (good certificate): {good}\n{cand.log_tail(30)}"


@pytest.mark.parametrize("mode,cert", sorted(EXPECTED))
def test_kazoo_client_certificate(mode, cert, request):
    ref, cand = request.getfixturevalue(f"tls_{mode}")
    certfile, keyfile = CERTS[cert]
    got_ref, got_cand = _kazoo_both(s.secure_address(ref), s.secure_address(cand),
                                    certfile=certfile and F(certfile), keyfile=keyfile and F(keyfile),
                                    ca=F("ca.pem"), timeout=3.0, fn=_create_and_read)
    expected = EXPECTED[(mode, cert)]
    if expected == "failed" and cert != "good":
        _good_client_accepted(ref, cand)
    assert got_ref[0] == expected, f"ZooKeeper itself: {got_ref} (harness problem?)\n{ref.log_tail(20)}"
    if expected == "ok":
        assert got_ref == ("ok", b"v"), got_ref
    assert got_cand[0] == got_ref[0], (f"clientAuth={mode}, client cert {cert}: ZooKeeper {got_ref}, "
                                       f"{cand.kind} {got_cand}\n{cand.log_tail(30)}")
    assert got_cand == got_ref


WANT_SCENARIO = ["whoami", "create /want w", "setAcl /want auth::cdrwa", "getAcl /want", "get /want"]


def test_zkcli_want_without_certificate(tls_want):
    """clientAuth=want: zkCli with a trust store but no key store connects and has only its ip id;
    `auth::` then has no authenticated id to expand to (InvalidACL)."""
    ref, cand = tls_want
    flags = s.tls_client_flags(None, F("ca.pem"))
    golden = _compare(ref, cand, WANT_SCENARIO, s.secure_address(ref), s.secure_address(cand), flags,
                      "zkCli TLS without certificate (clientAuth=want)", must_contain=["ip: 127.0.0.1", "Created /want"])
    assert "x509" not in golden, golden


def test_zkcli_want_with_certificate(tls_want, pki):
    """clientAuth=want still verifies a certificate that is offered, and gives its x509 id (PEM
    stores on the server, PEM key store on the client this time)."""
    ref, cand = tls_want
    flags = s.tls_client_flags(pki.client_pem_keystore, F("ca.pem"), store_password="")
    commands = ["whoami", "create /want2 w", "setAcl /want2 auth::cdrwa", "getAcl /want2", "get /want2"]
    _compare(ref, cand, commands, s.secure_address(ref), s.secure_address(cand), flags,
             "zkCli TLS with certificate (clientAuth=want)", must_contain=["x509: CN=client", "'x509,'CN=client"])


def test_zkcli_clientauth_none(tls_none):
    """clientAuth=none: the server does not ask for the certificate zkCli has, so no x509 id."""
    ref, cand = tls_none
    flags = s.tls_client_flags(F("client.jks"), F("truststore.jks"))
    golden = _compare(ref, cand, ["whoami", "create /none n", "getAcl /none"], s.secure_address(ref),
                      s.secure_address(cand), flags, "zkCli TLS (clientAuth=none)",
                      must_contain=["ip: 127.0.0.1", "Created /none"])
    assert "x509" not in golden, golden


def test_plaintext_client_on_secure_port_refused(tls_need):
    """A plaintext session on the TLS-only port gets nowhere on either server."""
    ref, cand = tls_need
    got_ref, got_cand = _kazoo_both(s.secure_address(ref), s.secure_address(cand), certfile=None, keyfile=None,
                                    ca=None, timeout=3.0, use_ssl=False)
    assert got_ref[0] == "failed", got_ref
    assert got_cand == got_ref
    _good_client_accepted(ref, cand)


# ---------------------------------------------------------------------------------------------
# 3. SASL DIGEST-MD5 (zkCli.sh with a JAAS Client section)

SASL_SCENARIO = [
    "whoami",
    "create /sasl data sasl:bob:cdrwa",
    "getAcl /sasl",
    "get /sasl",
    "set /sasl data2",
    "create /sasl/kid k",
    "setAcl /sasl/kid auth::cdrwa",
    "getAcl /sasl/kid",
    "ls /sasl",
    "create /sasl-other x sasl:dave:cdrwa",
    "get /sasl-other",
]


def _jaas_flags(d, user, password):
    return [f"-Djava.security.auth.login.config={s.jaas_client(d, user, password)}"]


def test_zkcli_sasl_digest(sasl):
    ref, cand, d = sasl
    flags = _jaas_flags(d, "bob", "bobsecret")
    ref_sess = s.zkcli_session(ref.address, SASL_SCENARIO, flags)
    cand_sess = s.zkcli_session(cand.address, SASL_SCENARIO, flags)
    golden, got = h.render_transcript(ref_sess), h.render_transcript(cand_sess)
    for text in ["sasl: bob", "'sasl,'bob", "Insufficient permission : /sasl-other"]:
        assert text in golden, golden
    assert_same(golden, got, "zkCli SASL DIGEST-MD5", ref, cand)
    assert s.state_events(ref_sess) == ["SyncConnected", "SaslAuthenticated", "Closed"], ref_sess["raw"]
    assert_same("\n".join(s.state_events(ref_sess)), "\n".join(s.state_events(cand_sess)),
                "zkCli SASL connection states", ref, cand)


def _raw_normalised(session):
    rest, _ = h.split_zkcli_events(str(session["raw"]))
    return "\n".join(h.normalize_lines(rest, h.Canon())) + "\n"


def test_zkcli_sasl_wrong_password(sasl):
    """Wrong password: AuthFailed, the session is dead (every command: Not connected), nothing created."""
    ref, cand, d = sasl
    flags = _jaas_flags(d, "bob", "not-bobs-password")
    commands = ["create /sasl-bad x", "whoami", "ls /"]
    ref_sess = s.zkcli_session(ref.address, commands, flags)
    cand_sess = s.zkcli_session(cand.address, commands, flags)
    assert s.state_events(ref_sess) == ["SyncConnected", "AuthFailed"], ref_sess["raw"]
    assert_same("\n".join(s.state_events(ref_sess)), "\n".join(s.state_events(cand_sess)),
                "zkCli SASL wrong password: connection states", ref, cand)
    golden = _raw_normalised(ref_sess)
    assert "Created" not in golden and "Not connected" in golden, golden
    assert_same(golden, _raw_normalised(cand_sess), "zkCli SASL wrong password", ref, cand)
    # and an anonymous look confirms nothing was created on either server
    check = ["stat /sasl-bad"]
    _compare(ref, cand, check, ref.address, cand.address, [], "anonymous check after failed SASL",
             must_contain=["Node does not exist: /sasl-bad"])


SASL_SUPER = [
    "create /sasl-super x sasl:bob:cdrwa",
    "get /sasl-super",
    "getAcl /sasl-super",
    "set /sasl-super by-carol",
    "get /sasl-super",
    "delete /sasl-super",
]


def test_zkcli_sasl_super_user(sasl):
    """zookeeper.superUser=carol: carol gets the super id and passes an ACL naming only bob."""
    ref, cand, d = sasl
    _compare(ref, cand, SASL_SUPER, ref.address, cand.address, _jaas_flags(d, "carol", "carolsecret"),
             "zkCli SASL super user", must_contain=["by-carol"])


def test_zkcli_sasl_super_user_whoami(sasl):
    """whoami of the SASL super user lists the super id too (ZooKeeper: `super:` below `sasl: carol`)."""
    ref, cand, d = sasl
    _compare(ref, cand, ["whoami"], ref.address, cand.address, _jaas_flags(d, "carol", "carolsecret"),
             "zkCli SASL super user: whoami", must_contain=["sasl: carol\nsuper:\n"])


def test_zkcli_no_sasl_is_anonymous(sasl):
    """Negative control for the SASL tests: without a JAAS Client section, bob's node is NoAuth."""
    ref, cand, d = sasl
    commands = ["whoami", "create /sasl-anon x sasl:bob:cdrwa", "get /sasl-anon", "getAcl /sasl-anon"]
    _compare(ref, cand, commands, ref.address, cand.address, [], "zkCli without SASL",
             must_contain=["Insufficient permission : /sasl-anon"])


# ---------------------------------------------------------------------------------------------
# 5. cli_mt over TLS

def test_cli_mt_has_no_tls():
    """The C client's TLS (`cli_mt -s cert,...`, zookeeper_init_ssl) exists only when built with
    OpenSSL. Debian's 3.8.0 build is not: its usage text has no --ssl option, libzookeeper_mt
    exports no zookeeper_init_ssl and does not link libssl. Skip with that evidence; fail loudly if
    a TLS-capable cli_mt appears, so that someone writes the test it then deserves."""
    if not h.CLI_MT.exists():
        pytest.skip(f"cli_mt not installed at {h.CLI_MT}")
    usage = subprocess.run([str(h.CLI_MT)], capture_output=True, text=True, timeout=10)
    text = usage.stdout + usage.stderr
    ldd = subprocess.run(["ldd", str(h.CLI_MT)], capture_output=True, text=True, timeout=10).stdout
    lib = re.search(r"libzookeeper_mt\S*\s*=>\s*(\S+)", ldd)
    symbols = ""
    if lib:
        symbols = subprocess.run(["nm", "-D", lib.group(1)], capture_output=True, text=True, timeout=10).stdout
    has_tls = "--ssl" in text or "zookeeper_init_ssl" in symbols
    if has_tls:
        pytest.fail("this cli_mt supports TLS (--ssl / zookeeper_init_ssl): add a cli_mt TLS transcript test")
    pytest.skip("cli_mt has no TLS support: usage lacks --ssl; "
                f"{lib.group(1) if lib else 'libzookeeper_mt'} exports no zookeeper_init_ssl "
                f"and links {'libssl' if 'libssl' in ldd else 'no libssl'}")
