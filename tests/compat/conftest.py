"""Fixtures for the CLI and 4lw compatibility tests: a reference Apache ZooKeeper and the candidate
(roost, or a second Apache server when ROOST_BIN=zookeeper), both standalone on free ports."""

import difflib
from typing import Dict, Iterator, Optional, Tuple

import pytest

import zkharness as h

# Same switches on both servers: TTL nodes need extendedTypesEnabled; super digest is kazoo's.
SYSPROPS = {
    "zookeeper.extendedTypesEnabled": "true",
    "zookeeper.DigestAuthenticationProvider.superDigest": h.SUPER_DIGEST,
}


def _start(kind: str, config: Optional[Dict[str, str]] = None) -> h.Server:
    try:
        return h.start_server(kind, config=config, sysprops=SYSPROPS)
    except h.HarnessError as e:
        # Missing roost binary: a loud failure in CI, a skip on a developer machine.
        if kind == "roost" and "binary not found" in str(e) and not h.ci_mode():
            pytest.skip(str(e))
        raise


def _pair(config: Optional[Dict[str, str]] = None) -> Iterator[Tuple[h.Server, h.Server]]:
    ref = _start("zookeeper", config)
    try:
        cand = _start("roost", config)
    except BaseException:
        h.destroy(ref)
        raise
    try:
        yield ref, cand
    finally:
        h.destroy(cand)
        h.destroy(ref)


@pytest.fixture(scope="session")
def servers():
    """(reference, candidate) with the 4lw whitelist `*`."""
    yield from _pair()


@pytest.fixture(scope="session")
def restricted_servers():
    """(reference, candidate) with the default-like whitelist `srvr,ruok`."""
    yield from _pair({"4lw.commands.whitelist": "srvr,ruok"})


def assert_same(ref_text: str, cand_text: str, what: str, ref: h.Server, cand: h.Server) -> None:
    if ref_text == cand_text:
        return
    diff = "".join(difflib.unified_diff(ref_text.splitlines(True), cand_text.splitlines(True),
                                        fromfile=f"zookeeper ({what})", tofile=f"{cand.kind} ({what})"))
    pytest.fail(f"{what}: output differs from Apache ZooKeeper\n{diff}\n"
                f"--- candidate log tail ---\n{cand.log_tail(30)}", pytrace=False)
