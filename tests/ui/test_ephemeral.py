"""Ephemeral nodes made through the navigator and the REST API belong to a ZooKeeper session
held for the browser session: kept alive while that browser session shows signs of life
(requests, an open page's live stream), deleted at logout, expired by the server when the
browser goes away. Checked from outside with kazoo, as another client sees them."""

import json
import time

import pytest
import requests
from kazoo.client import KazooClient
from playwright.sync_api import expect

import zkharness as h
from conftest import shot, start_node


def _create(s: requests.Session, node, path: str, mode: str = "ephemeral", csrf: str = "") -> requests.Response:
    return s.post(node.api("/znodes" + path), json={"data": "held", "mode": mode},
                  headers={"X-CSRF-Token": csrf} if csrf else {}, timeout=30)


def _sessions(node) -> dict:
    return {x["id"]: x for x in requests.get(node.api("/sessions"), timeout=10).json()["sessions"]}


def test_rest_ephemeral_belongs_to_the_browser_session_and_goes_at_logout(node, zk, fresh):
    s = requests.Session()
    r = _create(s, node, fresh + "/e1")
    assert r.status_code == 201, r.text
    # A caller without a browser session is given one: its cookie and the token its later
    # writes need.
    assert "roost_sid" in s.cookies
    csrf = r.headers["X-CSRF-Token"]
    stat = zk.exists(fresh + "/e1")
    assert stat is not None and stat.ephemeralOwner != 0
    owner = "0x%x" % stat.ephemeralOwner
    assert r.json()["stat"]["ephemeralOwner"] == owner
    # The sessions list names it as a browser session's, with the node.
    listed = _sessions(node)[owner]
    assert "(browser session)" in (listed["client"] or ""), listed
    assert fresh + "/e1" in listed["ephemerals"]

    # More ephemerals of the same browser session share its ZooKeeper session; a sequential
    # one gets ZooKeeper's 10-digit suffix; a multi may create them too.
    r = _create(s, node, fresh + "/seq-", mode="ephemeral_sequential", csrf=csrf)
    assert r.status_code == 201, r.text
    seq_path = r.json()["path"]
    assert seq_path.startswith(fresh + "/seq-") and len(seq_path) == len(fresh + "/seq-") + 10
    r = s.post(node.api("/multi"), headers={"X-CSRF-Token": csrf}, timeout=30,
               json={"ops": [{"op": "create", "path": fresh + "/m1", "mode": "ephemeral"},
                             {"op": "create", "path": fresh + "/p1"}]})
    assert r.status_code == 200, r.text
    for p in (seq_path, fresh + "/m1"):
        assert zk.exists(p).ephemeralOwner == stat.ephemeralOwner, p
    assert zk.exists(fresh + "/p1").ephemeralOwner == 0

    # Another browser's ephemerals are not this one's.
    other = requests.Session()
    assert _create(other, node, fresh + "/e-other").status_code == 201
    assert zk.exists(fresh + "/e-other").ephemeralOwner != stat.ephemeralOwner

    # Logout closes the session: its ephemeral nodes are gone at once, the other browser's stay.
    r = s.delete(node.api("/auth"), headers={"X-CSRF-Token": csrf}, timeout=30)
    assert r.status_code == 200, r.text
    for p in (fresh + "/e1", seq_path, fresh + "/m1"):
        assert zk.exists(p) is None, p
    assert owner not in _sessions(node)
    assert zk.exists(fresh + "/p1") is not None
    assert zk.exists(fresh + "/e-other") is not None

    # The same browser session creates ephemerals again, in a new ZooKeeper session.
    r = _create(s, node, fresh + "/e2", csrf=csrf)
    assert r.status_code == 201, r.text
    assert zk.exists(fresh + "/e2").ephemeralOwner not in (0, stat.ephemeralOwner)


def test_ephemeral_modes_are_checked_like_the_native_port(node, zk, fresh):
    s = requests.Session()
    assert _create(s, node, fresh + "/e").status_code == 201
    csrf = s.get(node.api("/auth"), timeout=10).json()["csrf"]
    # An ephemeral node cannot have children (NoChildrenForEphemerals), as on the native port.
    r = _create(s, node, fresh + "/e/child", csrf=csrf)
    assert r.status_code >= 400 and r.json()["error"] == "NoChildrenForEphemerals", r.text
    r = _create(s, node, fresh + "/bad", mode="ephemeral_ttl", csrf=csrf)
    assert r.status_code == 400, r.text


@pytest.fixture(scope="module")
def short_node():
    """A node whose session timeout is clamped to 4 s (maxSessionTimeout = 20 ticks)."""
    n = start_node({"tickTime": "200"})
    try:
        yield n
    finally:
        h.destroy(n.server)


def _client(node) -> KazooClient:
    c = KazooClient(hosts=node.zk, timeout=15)
    c.start(timeout=30)
    return c


def test_ephemeral_lives_while_the_browser_session_is_active_and_expires_after(short_node):
    zk = _client(short_node)
    try:
        zk.ensure_path("/eph-life")
        s = requests.Session()
        assert _create(s, short_node, "/eph-life/kept").status_code == 201
        owner = zk.exists("/eph-life/kept").ephemeralOwner
        listed = _sessions(short_node)["0x%x" % owner]
        assert listed["timeoutMs"] == 4000, listed
        # Requests of the browser session keep it alive well past its timeout ...
        end = time.monotonic() + 10
        while time.monotonic() < end:
            assert s.get(short_node.api("/auth"), timeout=10).status_code == 200
            time.sleep(1)
        assert zk.exists("/eph-life/kept") is not None
        # ... and without them the server expires it like a vanished client's.
        deadline = time.monotonic() + 15
        while zk.exists("/eph-life/kept") is not None:
            assert time.monotonic() < deadline, "the ephemeral of an idle browser session was never expired"
            time.sleep(0.5)
        # The browser session itself lives on: its next ephemeral create opens a new session.
        csrf = s.get(short_node.api("/auth"), timeout=10).json()["csrf"]
        r = _create(s, short_node, "/eph-life/again", csrf=csrf)
        assert r.status_code == 201, r.text
        assert zk.exists("/eph-life/again").ephemeralOwner not in (0, owner)
    finally:
        zk.stop()
        zk.close()


def test_an_open_page_keeps_its_ephemeral_alive(short_node, browser):
    zk = _client(short_node)
    ctx = browser.new_context(viewport={"width": 1360, "height": 860})
    try:
        zk.ensure_path("/eph-page")
        pg = ctx.new_page()
        pg.goto(short_node.ui("/eph-page"))
        pg.get_by_test_id("create-btn").click()
        pg.get_by_test_id("create-name").fill("open-page")
        pg.get_by_test_id("create-mode").select_option("ephemeral")
        expect(pg.get_by_test_id("create-ephemeral-note")).to_be_visible()
        pg.get_by_test_id("create-submit").click()
        expect(pg.get_by_test_id("breadcrumb")).to_contain_text("open-page")
        expect(pg.get_by_test_id("own-session")).to_be_attached()
        expect(pg.get_by_test_id("live-status")).to_have_attribute("data-ready", "true")
        # The page sends nothing for 10 s (over twice the 4 s timeout): its live stream alone
        # keeps the session.
        time.sleep(10)
        assert zk.exists("/eph-page/open-page") is not None
        # Closing the page stops the signs of life; the server expires the session.
        ctx.close()
        ctx = None
        deadline = time.monotonic() + 15
        while zk.exists("/eph-page/open-page") is not None:
            assert time.monotonic() < deadline, "the ephemeral outlived its closed page"
            time.sleep(0.5)
    finally:
        if ctx is not None:
            ctx.close()
        zk.stop()
        zk.close()


def test_navigator_creates_an_ephemeral_and_logout_deletes_it(page, node, zk, fresh):
    page.goto(node.ui(fresh))
    page.get_by_test_id("create-btn").click()
    page.get_by_test_id("create-name").fill("mine")
    page.get_by_test_id("create-mode").select_option("ephemeral")
    expect(page.get_by_test_id("create-ephemeral-note")).to_be_visible()
    shot(page, "create-ephemeral")
    page.get_by_test_id("create-submit").click()
    # The new node opens, marked as this browser session's. The page's scripts must be
    # running before the tab is clicked (in CI a click that came first did nothing).
    expect(page.get_by_test_id("breadcrumb")).to_contain_text("mine")
    expect(page.get_by_test_id("live-status")).to_have_attribute("data-ready", "true")
    page.get_by_role("tab", name="Stat").click()
    expect(page.get_by_test_id("own-session")).to_be_visible()
    stat = zk.exists(fresh + "/mine")
    assert stat is not None and stat.ephemeralOwner != 0
    expect(page.get_by_test_id("stat-ephemeralOwner")).to_contain_text("0x%x" % stat.ephemeralOwner)
    shot(page, "node-ephemeral-own")
    # Other pages of the same browser session keep working with the page's token (a
    # persistent create after the browser session was made for the ephemeral one).
    page.goto(node.ui(fresh))
    page.get_by_test_id("create-btn").click()
    page.get_by_test_id("create-name").fill("plain")
    page.get_by_test_id("create-submit").click()
    expect(page.get_by_test_id("breadcrumb")).to_contain_text("plain")
    assert zk.exists(fresh + "/plain").ephemeralOwner == 0
    # Logging out (an anonymous visitor may log out too: it ends the browser session's
    # ZooKeeper session) deletes the ephemeral node.
    status = page.evaluate("""async () => {
        const csrf = document.querySelector('meta[name="csrf-token"]').content;
        const r = await fetch(document.body.dataset.base + '/api/v1/auth', {method: 'DELETE', headers: {'X-CSRF-Token': csrf}});
        return r.status;
    }""")
    assert status == 200
    assert zk.exists(fresh + "/mine") is None
    assert zk.exists(fresh + "/plain") is not None


def test_one_address_cannot_pile_up_sessions(short_node):
    """Each fresh cookie would get a session of its own: one client address holds at most 16
    (like ZooKeeper's per-address connection limit), and logging out frees one."""
    zk = _client(short_node)
    sessions = []
    try:
        zk.ensure_path("/eph-bound")
        held = sum(1 for x in _sessions(short_node).values() if "(browser session)" in (x["client"] or ""))
        refused = None
        for i in range(20):
            s = requests.Session()
            r = _create(s, short_node, f"/eph-bound/n{i}")
            if r.status_code != 201:
                refused = r
                break
            sessions.append((s, r.headers["X-CSRF-Token"]))
        assert refused is not None, "20 browser sessions of one address each got a ZooKeeper session"
        assert refused.status_code == 429 and refused.json()["error"] == "TooManySessions", refused.text
        assert held + len(sessions) == 16
        s, csrf = sessions.pop()
        assert s.delete(short_node.api("/auth"), headers={"X-CSRF-Token": csrf}, timeout=30).status_code == 200
        assert _create(requests.Session(), short_node, "/eph-bound/after-logout").status_code == 201
    finally:
        for s, csrf in sessions:
            s.delete(short_node.api("/auth"), headers={"X-CSRF-Token": csrf}, timeout=30)
        zk.stop()
        zk.close()


def _wait_job(node, jid: str) -> dict:
    deadline = time.monotonic() + 60
    while True:
        j = requests.get(node.api(f"/jobs/{jid}"), timeout=10).json()
        if j.get("state") != "running":
            return j
        assert time.monotonic() < deadline, j
        time.sleep(0.2)


@pytest.mark.parametrize("job", ["never", "always"])
def test_copy_leaves_ephemerals_out_and_move_refuses_to_take_them(node, zk, fresh, job):
    """A copy (one multi, or a job) of a subtree holding live sessions' ephemeral nodes does
    not turn them into persistent nodes that outlive their owners; a move, which deletes its
    source, is refused rather than deleting them from under their owners."""
    zk.create(fresh + "/svc/a", b"cfg", makepath=True)
    owner = _client(node)
    try:
        lock = owner.create(fresh + "/svc/a/lock-", b"held", ephemeral=True, sequence=True)
        r = requests.post(node.api(f"/copy?job={job}"), timeout=30,
                          json={"source": fresh + "/svc", "destination": fresh + "/svc-copy"})
        assert r.status_code in (200, 202), r.text
        if job == "always":
            j = _wait_job(node, r.json()["job"]["id"])
            assert j["state"] == "done" and j["skippedEphemeral"] == 1, j
            assert "1 ephemeral nodes were left out" in j["outcome"], j
        else:
            assert r.json()["skippedEphemeral"] == 1 and r.json()["skippedEphemeralPaths"] == [lock], r.text
        assert zk.get(fresh + "/svc-copy/a")[0] == b"cfg"
        assert zk.get_children(fresh + "/svc-copy/a") == []

        r = requests.post(node.api(f"/move?job={job}"), timeout=30,
                          json={"source": fresh + "/svc", "destination": fresh + "/svc-moved"})
        assert r.status_code == 400 and "ephemeral" in r.json()["message"] and lock in r.json()["message"], r.text
        assert zk.exists(lock) is not None and zk.exists(fresh + "/svc-moved") is None
        # An ephemeral node itself is neither copied nor moved.
        r = requests.post(node.api(f"/copy?job={job}"), timeout=30, json={"source": lock, "destination": fresh + "/l"})
        assert r.status_code == 400, r.text
    finally:
        owner.stop()
        owner.close()
    # Once the session is gone, the move goes through.
    r = requests.post(node.api(f"/move?job={job}"), timeout=30,
                      json={"source": fresh + "/svc", "destination": fresh + "/svc-moved"})
    assert r.status_code in (200, 202), r.text
    if job == "always":
        assert _wait_job(node, r.json()["job"]["id"])["state"] == "done"
    assert zk.exists(fresh + "/svc-moved/a") is not None and zk.exists(fresh + "/svc") is None
