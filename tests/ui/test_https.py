"""The navigator over HTTPS (`admin.forceHttps=true`): the UI loads, edits save (the CSRF-protected
form and REST calls work over TLS), the live WebSocket stream connects (wss://), and the response
carries HSTS. With `admin.needClientAuth=true` a browser without a client certificate gets no page.
"""

import pytest
import requests
import urllib3
from playwright.sync_api import expect

from conftest import REPO, h, shot

FIXTURES = REPO / "crates" / "tls" / "tests" / "fixtures"
# The test server certificate (kazoo's kind: X.509 v1, CN=localhost, no SAN) cannot pass Python's
# host name check, so these requests do not verify it; the browser is told to accept it too.
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)


def start_https_node(extra: dict):
    http_port = h.free_port()
    config = {
        "admin.enableServer": "true",
        "admin.serverPort": str(http_port),
        "admin.forceHttps": "true",
        "ssl.keyStore.location": str(FIXTURES / "server-keystore.pem"),
        "ssl.keyStore.type": "PEM",
        "ssl.trustStore.location": str(FIXTURES / "ca.pem"),
        "ssl.trustStore.type": "PEM",
    }
    config.update(extra)
    try:
        server = h.start_server("roost", config=config)
    except h.HarnessError as e:
        if "binary not found" in str(e) and not h.ci_mode():
            pytest.skip(str(e))
        raise
    return server, http_port


def test_navigator_over_https(browser):
    server, port = start_https_node({})
    try:
        url = f"https://localhost:{port}"
        r = requests.get(url + "/api/v1/cluster", verify=False, timeout=10)
        assert r.status_code == 200
        assert r.headers.get("strict-transport-security") == "max-age=86400; includeSubDomains"
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(f"http://localhost:{port}/api/v1/cluster", timeout=5)

        from kazoo.client import KazooClient

        zk = KazooClient(hosts=server.address, timeout=15)
        zk.start(timeout=30)
        try:
            zk.create("/https-demo", b"over tls")
            # The test CA is not in the browser's store: the context is told to accept it,
            # as an operator would after importing it.
            ctx = browser.new_context(viewport={"width": 1360, "height": 860}, ignore_https_errors=True)
            page = ctx.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.set_default_timeout(15_000)
            page.goto(url + "/ui/https-demo")
            expect(page.get_by_test_id("editor")).to_have_value("over tls")
            # A change made elsewhere shows up live: the WebSocket stream works over wss://.
            zk.set("/https-demo", b"changed live")
            expect(page.get_by_test_id("editor")).to_have_value("changed live")
            shot(page, "https-navigator")
            ctx.close()
            assert not errors, errors
        finally:
            zk.stop()
            zk.close()
    finally:
        h.destroy(server)


def test_client_certificate_required(browser):
    server, port = start_https_node({"admin.needClientAuth": "true"})
    try:
        ctx = browser.new_context(ignore_https_errors=True)
        page = ctx.new_page()
        with pytest.raises(Exception):
            page.goto(f"https://localhost:{port}/ui/", timeout=10_000)
        ctx.close()
        # With the client certificate (requests), the same URL answers.
        cert = (str(FIXTURES / "client.pem"), str(FIXTURES / "client.key"))
        r = requests.get(f"https://localhost:{port}/api/v1/cluster", cert=cert, verify=False, timeout=10)
        assert r.status_code == 200
    finally:
        h.destroy(server)
