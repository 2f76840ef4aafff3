"""Fixtures for the navigator tests: a REAL roost process (free ports, temp data dir) with its
HTTP port on, a kazoo client for out-of-band changes, and headless Debian Chromium driven by
Playwright (never a downloaded browser).

The server is started through tests/compat/zkharness.py (the same harness the compatibility
suites use), so ROOST_BIN / CARGO_TARGET_DIR select the binary the same way.
"""

import os
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "tests" / "compat"))

import zkharness as h  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
OUT = Path(os.environ.get("TEST_OUTPUT_DIR", REPO / "test-output")) / "ui"


class Node:
    """A running roost with both ports."""

    def __init__(self, server: h.Server, http_port: int):
        self.server = server
        self.http_port = http_port
        self.zk = server.address
        self.url = f"http://127.0.0.1:{http_port}"

    def api(self, path: str) -> str:
        return self.url + "/api/v1" + path

    def ui(self, path: str) -> str:
        return self.url + "/ui" + ("/" if path == "/" else path)


def _wait_http(node: Node, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            r = requests.get(node.api("/cluster"), timeout=2)
            if r.status_code == 200:
                return
            last = r.status_code
        except requests.RequestException as e:
            last = e
        time.sleep(0.2)
    raise RuntimeError(f"HTTP port {node.http_port} not answering ({last}); log:\n{node.server.log_tail()}")


def start_node(extra_config=None) -> Node:
    """A roost with its HTTP port; `extra_config` adds zoo.cfg keys."""
    http_port = h.free_port()
    config = {"admin.enableServer": "true", "admin.serverPort": str(http_port), **(extra_config or {})}
    sysprops = {
        "zookeeper.extendedTypesEnabled": "true",
        "zookeeper.DigestAuthenticationProvider.superDigest": h.SUPER_DIGEST,
    }
    try:
        server = h.start_server("roost", config=config, sysprops=sysprops)
    except h.HarnessError as e:
        if "binary not found" in str(e) and not h.ci_mode():
            pytest.skip(str(e))
        raise
    node = Node(server, http_port)
    try:
        _wait_http(node)
    except BaseException:
        h.destroy(server)
        raise
    return node


@pytest.fixture(scope="session")
def node() -> Iterator[Node]:
    n = start_node()
    try:
        yield n
    finally:
        h.destroy(n.server)


@pytest.fixture(scope="session")
def zk(node):
    from kazoo.client import KazooClient

    client = KazooClient(hosts=node.zk, timeout=15)
    client.start(timeout=30)
    try:
        yield client
    finally:
        client.stop()
        client.close()


@pytest.fixture
def fresh(zk, request) -> str:
    """A new empty persistent node for one test: /t/<test name>."""
    path = "/t/" + request.node.name.replace("[", "_").replace("]", "")
    if zk.exists(path):
        from kazoo.exceptions import NoNodeError

        try:
            zk.delete(path, recursive=True)
        except NoNodeError:
            pass
    zk.create(path, b"", makepath=True)
    return path


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, request):
    ctx = browser.new_context(viewport={"width": 1360, "height": 860}, accept_downloads=True)
    pg = ctx.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.set_default_timeout(15_000)
    pg.js_errors = errors
    try:
        yield pg
    finally:
        ctx.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def shot(page, name: str) -> Path:
    """Saves a screenshot under test-output/ui/<name>.png."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=False)
    return path
