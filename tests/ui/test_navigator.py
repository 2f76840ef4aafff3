"""Browser tests of the navigator: headless Debian Chromium (Playwright) against a real roost,
with a real ZooKeeper client (kazoo) making the out-of-band changes a user must see.

Screenshots go to test-output/ui/ (TEST_OUTPUT_DIR/ui)."""

import json
import re
import time

import pytest
from kazoo.security import make_digest_acl, OPEN_ACL_UNSAFE
from playwright.sync_api import expect

from conftest import shot, start_node
import zkharness as h


def open_node(page, node, path):
    """Opens the node page by deep link and waits until the live stream is subscribed."""
    page.goto(node.ui(path))
    expect(page.get_by_test_id("live-status")).to_have_attribute("data-ready", "true")


def test_deep_link_shows_node(page, node, zk, fresh):
    zk.create(fresh + "/app/config", b'{"replicas": 3, "name": "web"}', makepath=True)
    zk.create(fresh + "/app/config/child-1", b"x")
    zk.create(fresh + "/app/config/child-2", b"")
    zk.set(fresh + "/app/config", b'{"replicas": 3, "name": "web"}')  # version 1
    open_node(page, node, fresh + "/app/config")
    expect(page.get_by_test_id("breadcrumb")).to_contain_text("config")
    # JSON is shown pretty-printed (saved as the user leaves it: see test_editor.py).
    expect(page.get_by_test_id("editor")).to_have_value(json.dumps({"replicas": 3, "name": "web"}, indent=2))
    expect(page.get_by_test_id("data-mode")).to_have_value("json")
    expect(page.get_by_test_id("child-row")).to_have_count(2)
    expect(page.get_by_test_id("child-count")).to_have_text("2")
    # The tree opened the ancestors and marks the current node.
    expect(page.locator('#tree a[aria-current="page"]')).to_have_text("config")
    page.get_by_test_id("tab-stat").click()
    _, stat = zk.get(fresh + "/app/config")
    expect(page.get_by_test_id("stat-version")).to_have_text("1")
    expect(page.get_by_test_id("stat-numChildren")).to_have_text("2")
    expect(page.get_by_test_id("stat-czxid")).to_have_attribute("title", str(stat.czxid))
    expect(page.get_by_test_id("stat-mzxid")).to_have_attribute("title", str(stat.mzxid))
    expect(page.get_by_test_id("stat-ephemeralOwner")).to_contain_text("persistent")
    shot(page, "stat")
    page.get_by_test_id("tab-data").click()
    page.get_by_test_id("reformat").click()
    expect(page.get_by_test_id("editor")).to_have_value(json.dumps({"replicas": 3, "name": "web"}, indent=2))
    shot(page, "deep-link")
    # An unknown node is a 404 page saying NoNode, not an error page.
    resp = page.goto(node.ui(fresh + "/missing"))
    assert resp.status == 404
    expect(page.get_by_test_id("node-error")).to_have_attribute("data-error", "NoNode")


def test_edit_and_save(page, node, zk, fresh):
    path = fresh + "/n"
    zk.create(path, b"v0")
    open_node(page, node, path)
    page.get_by_test_id("editor").fill("v1 from the browser")
    page.get_by_test_id("save-btn").click()
    expect(page.locator("#toast")).to_contain_text("Saved (version 1)")
    data, stat = zk.get(path)
    assert data == b"v1 from the browser" and stat.version == 1
    # Ctrl+S saves too, with the version the page now holds.
    page.get_by_test_id("editor").fill("v2")
    page.keyboard.press("Control+s")
    expect(page.locator("#toast")).to_contain_text("Saved (version 2)")
    assert zk.get(path)[0] == b"v2"


def test_stale_version_conflict_never_overwrites(page, node, zk, fresh):
    path = fresh + "/n"
    zk.create(path, b"original")
    open_node(page, node, path)
    page.get_by_test_id("editor").fill("mine")
    zk.set(path, b"theirs")
    # The live stream tells the user but keeps the unsaved edit.
    expect(page.get_by_test_id("changed-banner")).to_be_visible()
    expect(page.get_by_test_id("editor")).to_have_value("mine")
    page.get_by_test_id("save-btn").click()
    expect(page.get_by_test_id("conflict")).to_be_visible()
    expect(page.get_by_test_id("conflict")).to_contain_text("Nothing was overwritten")
    expect(page.get_by_test_id("conflict-data")).to_have_text("theirs")
    shot(page, "conflict")
    assert zk.get(path)[0] == b"theirs"
    # Saving over the current version is an explicit choice.
    page.get_by_test_id("keep-mine").click()
    expect(page.locator("#toast")).to_contain_text("Saved (version 2)")
    assert zk.get(path)[0] == b"mine"


def test_live_changes_without_losing_edits(page, node, zk, fresh):
    path = fresh + "/live"
    zk.create(path, b"one")
    open_node(page, node, path)
    zk.set(path, b"two")
    expect(page.get_by_test_id("editor")).to_have_value("two")
    page.get_by_test_id("tab-stat").click()
    expect(page.get_by_test_id("stat-version")).to_have_text("1")
    page.get_by_test_id("tab-data").click()
    zk.create(path + "/kid-a", b"")
    expect(page.locator('[data-testid="child-row"][data-path$="/kid-a"]')).to_be_visible()
    # The tree shows the new child too (its parent is expanded as an ancestor of nothing:
    # expand the node itself in the tree first).
    # The tree follows too: the parent is expanded (an ancestor of the page's node).
    zk.create(fresh + "/sibling", b"")
    expect(page.locator(f'#tree li[data-path="{fresh}/sibling"]')).to_be_visible()
    page.get_by_test_id("editor").fill("half-typed edit")
    zk.set(path, b"three")
    zk.create(path + "/kid-b", b"")
    zk.delete(path + "/kid-a")
    expect(page.locator('[data-testid="child-row"][data-path$="/kid-b"]')).to_be_visible()
    expect(page.locator('[data-testid="child-row"][data-path$="/kid-a"]')).to_have_count(0)
    expect(page.get_by_test_id("changed-banner")).to_be_visible()
    expect(page.get_by_test_id("editor")).to_have_value("half-typed edit")
    shot(page, "live-dirty")
    page.locator("#reload-data").click()
    expect(page.get_by_test_id("editor")).to_have_value("three")


def test_a_change_made_while_the_page_loads_is_not_missed(page, node, zk, fresh):
    """The page's HTML is read, then its script opens the live stream: a change in between
    must still reach the page (the stream replays from the zxid the page was read at).
    Holding the script back until the change is acknowledged makes the gap certain."""
    path = fresh + "/loading"
    zk.create(path, b"as loaded")
    zk.create(path + "/old-kid", b"")

    def change_then_serve(route):
        zk.set(path, b"changed while loading")
        zk.create(path + "/new-kid", b"")
        route.continue_()

    page.route("**/static/js/main.js", change_then_serve)
    page.goto(node.ui(path))
    expect(page.get_by_test_id("live-status")).to_have_attribute("data-ready", "true")
    expect(page.get_by_test_id("editor")).to_have_value("changed while loading")
    expect(page.locator('[data-testid="child-row"][data-path$="/new-kid"]')).to_be_visible()
    page.get_by_test_id("tab-stat").click()
    expect(page.get_by_test_id("stat-version")).to_have_text("1")


def test_create_delete_move(page, node, zk, fresh):
    open_node(page, node, fresh)
    page.get_by_test_id("create-btn").click()
    page.get_by_test_id("create-name").fill("made-in-ui")
    page.get_by_test_id("create-data").fill("hello")
    shot(page, "create-dialog")
    page.get_by_test_id("create-submit").click()
    # The new node opens.
    page.wait_for_url("**/made-in-ui")
    assert zk.get(fresh + "/made-in-ui")[0] == b"hello"
    # Sequential mode gets ZooKeeper's 10-digit suffix.
    open_node(page, node, fresh)
    expect(page.locator('[data-testid="child-row"][data-path$="/made-in-ui"]')).to_be_visible()
    page.get_by_test_id("create-btn").click()
    page.get_by_test_id("create-name").fill("seq-")
    page.get_by_test_id("create-mode").select_option("persistent_sequential")
    page.get_by_test_id("create-submit").click()
    page.wait_for_url("**/seq-0000000001")

    # Move a subtree: one multi, data preserved, source gone.
    zk.create(fresh + "/made-in-ui/inner", b"deep")
    open_node(page, node, fresh + "/made-in-ui")
    page.get_by_test_id("move-btn").click()
    page.get_by_test_id("dest-path").fill(fresh + "/moved")
    page.get_by_test_id("dest-submit").click()
    page.wait_for_url("**/moved")
    assert zk.exists(fresh + "/made-in-ui") is None
    assert zk.get(fresh + "/moved/inner")[0] == b"deep"
    assert zk.get(fresh + "/moved")[0] == b"hello"

    # Duplicate.
    page.get_by_test_id("copy-btn").click()
    page.get_by_test_id("dest-path").fill(fresh + "/dup")
    page.get_by_test_id("dest-submit").click()
    page.wait_for_url("**/dup")
    assert zk.get(fresh + "/dup/inner")[0] == b"deep"

    # Recursive delete needs the confirmation checkbox; without it: NotEmpty, nothing deleted.
    open_node(page, node, fresh + "/moved")
    page.get_by_test_id("delete-btn").click()
    page.get_by_test_id("delete-confirm").click()
    expect(page.locator("#dlg-delete [data-role=error]")).to_contain_text("NotEmpty")
    assert zk.exists(fresh + "/moved/inner")
    page.get_by_test_id("delete-recursive").check()
    shot(page, "delete-dialog")
    page.get_by_test_id("delete-confirm").click()
    page.wait_for_url(node.ui(fresh))
    assert zk.exists(fresh + "/moved") is None


def test_export_import(page, node, zk, fresh, tmp_path):
    zk.create(fresh + "/src/a", b"alpha", makepath=True)
    zk.create(fresh + "/src/a/b", b"\x00\x01binary")
    zk.create(fresh + "/dst", b"")
    open_node(page, node, fresh + "/src")
    with page.expect_download() as dl:
        page.get_by_test_id("export-btn").click()
    file = tmp_path / "export.json"
    dl.value.save_as(file)
    doc = json.loads(file.read_text())
    assert doc["format"] == "roost-export-1" and doc["nodes"][0]["name"] == "src"
    open_node(page, node, fresh + "/dst")
    page.get_by_test_id("import-btn").click()
    page.get_by_test_id("import-file").set_input_files(str(file))
    page.get_by_test_id("import-submit").click()
    expect(page.locator('[data-testid="child-row"][data-path$="/dst/src"]')).to_be_visible()
    assert zk.get(fresh + "/dst/src/a")[0] == b"alpha"
    assert zk.get(fresh + "/dst/src/a/b")[0] == b"\x00\x01binary"
    # Binary data is shown as hex, never as mojibake.
    open_node(page, node, fresh + "/dst/src/a/b")
    expect(page.get_by_test_id("binary-badge")).to_be_visible()
    expect(page.get_by_test_id("editor")).to_have_value("00 01 62 69 6e 61 72 79")


def test_acl_edit(page, node, zk, fresh):
    path = fresh + "/guarded"
    zk.create(path, b"x")
    open_node(page, node, path)
    page.get_by_test_id("tab-acl").click()
    expect(page.get_by_test_id("acl-row")).to_have_count(1)
    row = page.get_by_test_id("acl-row").first
    row.locator('[data-perm="d"]').uncheck()
    row.locator('[data-perm="a"]').uncheck()
    page.get_by_test_id("acl-add").click()
    new = page.get_by_test_id("acl-row").nth(1)
    new.locator(".acl-scheme").fill("digest")
    new.locator(".acl-id").fill("bob:ZxlZ1pVj0qSVlSCgxIkYnz8Fh6w=")
    for p in "cdrwa":
        new.locator(f'[data-perm="{p}"]').check()
    shot(page, "acl-edit")
    page.get_by_test_id("acl-save").click()
    expect(page.locator("#toast")).to_contain_text("ACL applied (ACL version 1)")
    acl, stat = zk.get_acls(path)
    assert stat.aversion == 1
    got = {(a.id.scheme, a.id.id, a.perms) for a in acl}
    # The anonymous reader lacks ADMIN now, so ZooKeeper masks the digest hash ("bob:x").
    assert got == {("world", "anyone", 1 | 2 | 4), ("digest", "bob:x", 31)}


def test_acl_recursive_apply(page, node, zk, fresh):
    zk.create(fresh + "/tree/a/b", b"", makepath=True)
    open_node(page, node, fresh + "/tree")
    page.get_by_test_id("tab-acl").click()
    row = page.get_by_test_id("acl-row").first
    for p in "cdw":
        row.locator(f'[data-perm="{p}"]').uncheck()
    page.get_by_test_id("acl-recursive").check()
    page.get_by_test_id("acl-save").click()
    # Asked in the page (no browser confirm()).
    expect(page.get_by_test_id("confirm-dialog")).to_contain_text("every node below it")
    page.get_by_test_id("confirm-ok").click()
    expect(page.locator("#toast")).to_contain_text("ACL applied to the subtree")
    for p in ("/tree", "/tree/a", "/tree/a/b"):
        acl, _ = zk.get_acls(fresh + p)
        assert [(a.id.scheme, a.id.id, a.perms) for a in acl] == [("world", "anyone", 1 | 16)], p


def test_noauth_shown_then_login(page, node, zk, fresh):
    path = fresh + "/secret"
    acl = make_digest_acl("alice", "wonderland", all=True)
    zk.create(path, b"for alice only", acl=[acl])
    resp = page.goto(node.ui(path))
    assert resp.status == 403
    expect(page.get_by_test_id("node-error")).to_have_attribute("data-error", "NoAuth")
    expect(page.get_by_test_id("node-error")).to_contain_text("READ permission")
    expect(page.get_by_test_id("editor")).to_have_count(0)
    shot(page, "noauth")
    # Nothing leaks: as with exists on the native port, no stat without READ (or ADMIN).
    expect(page.get_by_test_id("stat-dataLength")).to_have_count(0)
    page.locator('[data-testid="node-error"] a').click()
    page.fill('input[name="user"]', "alice")
    page.fill('input[name="password"]', "wonderland")
    page.get_by_test_id("login-submit").click()
    page.wait_for_url(node.ui(path))
    expect(page.get_by_test_id("whoami")).to_contain_text("alice")
    expect(page.get_by_test_id("editor")).to_have_value("for alice only")


def test_search_and_cluster_pages(page, node, zk, fresh):
    zk.create(fresh + "/findme-needle", b"")
    page.goto(node.url + "/ui/search?q=findme-need")
    expect(page.locator("main")).to_contain_text(fresh + "/findme-needle")
    zk.get(fresh + "/findme-needle", watch=lambda event: None)
    page.goto(node.url + "/ui/cluster")
    expect(page.get_by_test_id("members")).to_contain_text("standalone")
    # Watches by path (wchp): the kazoo session's data watch, linked to its session.
    row = page.get_by_test_id("watches").locator("tr", has_text=fresh + "/findme-needle")
    expect(row).to_contain_text("0x%x" % zk.client_id[0])
    shot(page, "cluster")


def test_hundred_thousand_children_page_stays_interactive(browser, tmp_path):
    """100,000 children under one node: the page loads, pages and filters without freezing."""
    from kazoo.client import KazooClient

    big = start_node()
    zk = KazooClient(hosts=big.zk, timeout=30)
    zk.start(timeout=30)
    try:
        zk.create("/big", b"")
        start = time.monotonic()
        n, batch = 100_000, 1000
        for b in range(0, n, batch):
            t = zk.transaction()
            for i in range(b, b + batch):
                t.create(f"/big/c{i:06d}", b"")
            results = t.commit()
            assert not any(isinstance(r, Exception) for r in results)
        created_in = time.monotonic() - start
        assert zk.get("/big")[1].numChildren == n

        ctx = browser.new_context(viewport={"width": 1360, "height": 860})
        page = ctx.new_page()
        page.set_default_timeout(60_000)
        t0 = time.monotonic()
        page.goto(big.ui("/big"))
        expect(page.get_by_test_id("child-count")).to_have_text("100000")
        expect(page.get_by_test_id("live-status")).to_have_attribute("data-ready", "true")
        # Interactive: the main thread answers promptly (no long freeze after load).
        t1 = time.monotonic()
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => r(1)))")
        frame_wait = time.monotonic() - t1
        loaded_in = time.monotonic() - t0
        rows = page.get_by_test_id("child-row")
        expect(rows).to_have_count(100)
        assert page.locator("#children li[data-path]").count() <= 200, "the DOM must hold one page, not all"
        expect(rows.first).to_have_attribute("data-path", "/big/c000000")
        page.locator("#next").click()
        expect(rows.first).to_have_attribute("data-path", "/big/c000100")
        expect(page.locator("#page-info")).to_have_text("101–200 of 100000")
        page.get_by_test_id("child-sort").click()
        expect(rows.first).to_have_attribute("data-path", "/big/c099999")
        page.get_by_test_id("child-filter").fill("c05000")
        expect(page.get_by_test_id("child-count")).to_have_text("10 of 100000")
        shot(page, "big-children")
        # A new child appears live in the count even with 100,000 siblings.
        page.get_by_test_id("child-filter").fill("")
        zk.create("/big/zz-new", b"")
        expect(page.get_by_test_id("child-count")).to_have_text("100001")
        print(f"\n100k children: created in {created_in:.1f}s, page loaded in {loaded_in:.2f}s, "
              f"frame after load {frame_wait * 1000:.0f}ms")
        assert loaded_in < 30 and frame_wait < 5
        ctx.close()
    finally:
        zk.stop()
        zk.close()
        h.destroy(big.server)


def test_gzip_data_shown_decompressed_and_saved_compressed(page, node, zk, fresh):
    import gzip

    path = fresh + "/packed"
    zk.create(path, gzip.compress(b'{"compressed": true}'))
    open_node(page, node, path)
    expect(page.get_by_test_id("gzip-badge")).to_contain_text("shown decompressed")
    expect(page.get_by_test_id("editor")).to_have_value('{\n  "compressed": true\n}')
    expect(page.get_by_test_id("binary-badge")).to_be_hidden()
    page.get_by_test_id("editor").fill('{"compressed": "still"}')
    page.get_by_test_id("save-btn").click()
    expect(page.locator("#toast")).to_contain_text("Saved (version 1)")
    raw = zk.get(path)[0]
    assert raw[:2] == b"\x1f\x8b", "saved compressed again"
    assert gzip.decompress(raw) == b'{"compressed": "still"}'
    # Unticking "decompress" shows the stored bytes.
    page.get_by_test_id("gunzip").uncheck()
    expect(page.get_by_test_id("editor")).to_have_value(re.compile(r"^1f 8b "))


def test_screenshot_for_docs(page):
    """A realistic node for docs/img/navigator.png (copied there by hand after looking at it),
    on a node of its own so that no test data shows."""
    from kazoo.client import KazooClient

    node = start_node()
    zk = KazooClient(hosts=node.zk, timeout=15)
    zk.start(timeout=30)
    try:
        _docs_screenshot(page, node, zk)
    finally:
        zk.stop()
        zk.close()
        h.destroy(node.server)


def _docs_screenshot(page, node, zk):
    base = "/services/payments"
    cfg = (b'{\n  "replicas": 3,\n  "region": "eu-west-1",\n  "db": {"host": "pg-main", "pool": 20},\n'
           b'  "features": ["3ds", "refunds", "payouts"]\n}')
    if not zk.exists(base + "/config"):
        zk.create(base + "/config", cfg, makepath=True)
        for i in range(1, 4):
            zk.create(f"{base}/instances/pay-{i}", b"10.0.1.%d:8443" % i, makepath=True)
        zk.create(base + "/config/limits", b'{"daily": 100000}')
        zk.create(base + "/config/feature-flags", b"refunds=on")
        zk.create(base + "/leader", b"pay-2")
        zk.create("/services/search/config", b"{}", makepath=True)
        zk.create("/kafka/brokers/ids/1", b"{}", makepath=True)
    open_node(page, node, base + "/config")
    zk.create(base + "/config/rollout", b"25%")
    expect(page.locator('[data-testid="child-row"][data-path$="/rollout"]')).to_be_visible()
    expect(page.get_by_test_id("meta-line")).to_contain_text("version 0")
    shot(page, "navigator")
    page.emulate_media(color_scheme="dark")
    shot(page, "navigator-dark")
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.get_by_test_id("editor")).to_be_visible()
    shot(page, "navigator-phone")


def test_yaml_reformat_keeps_meaning_or_refuses(page, node, zk, fresh):
    path = fresh + "/app.yaml"
    zk.create(path, b"{port: 017, debug: yes, hosts: [a, b], db: {user: 'o''brien'}}")
    open_node(page, node, path)
    page.get_by_test_id("data-mode").select_option("yaml")
    expect(page.get_by_test_id("reformat")).to_be_enabled()
    page.get_by_test_id("reformat").click()
    # Block style, plain scalars exactly as written (017 stays octal for YAML 1.1 readers).
    expect(page.get_by_test_id("editor")).to_have_value(
        "port: 017\ndebug: yes\nhosts:\n  - a\n  - b\ndb:\n  user: 'o''brien'\n")
    expect(page.locator("#dirty")).to_be_visible()
    shot(page, "yaml-reformat")
    page.get_by_test_id("save-btn").click()
    expect(page.locator("#toast")).to_contain_text("Saved (version 1)")
    # A comment would be lost: refused with a reason, the text untouched.
    commented = "a: 1   # the answer\nb: [x]\n"
    page.get_by_test_id("editor").fill(commented)
    page.get_by_test_id("reformat").click()
    expect(page.locator("#mode-error")).to_contain_text("comments would be lost")
    expect(page.get_by_test_id("editor")).to_have_value(commented)
    page.get_by_test_id("editor").fill("a: [1, 2\n")
    page.get_by_test_id("reformat").click()
    expect(page.locator("#mode-error")).to_contain_text("not valid YAML")
    # Modes without a reformatter disable the button.
    page.get_by_test_id("editor").fill("plain")
    page.get_by_test_id("data-mode").select_option("text")
    expect(page.get_by_test_id("reformat")).to_be_disabled()


def test_json_reformat_keeps_numbers_and_keys_as_written(page, node, zk, fresh):
    path = fresh + "/ids.json"
    raw = '{"id":12345678901234567890,"ratio":1.50,"k":"a\\u00e9","k":2,"e":{},"l":[]}'
    zk.create(path, raw.encode())
    open_node(page, node, path)
    expect(page.get_by_test_id("data-mode")).to_have_value("json")
    page.get_by_test_id("reformat").click()
    # JSON.parse would round the id and drop the first "k": token-level re-indent does not.
    expect(page.get_by_test_id("editor")).to_have_value(
        '{\n  "id": 12345678901234567890,\n  "ratio": 1.50,\n  "k": "a\\u00e9",\n  "k": 2,\n  "e": {},\n  "l": []\n}')
    page.get_by_test_id("editor").fill('{"broken": ')
    page.get_by_test_id("reformat").click()
    expect(page.locator("#mode-error")).to_contain_text("Not reformatted")


def _zoonavigator_export(tmp_path):
    """A file in exactly ZooNavigator's export format: gzip(JSON array of {"h": {acl, path,
    data: base64}, "t": [children]}), paths rebased to /<root name>, permissions as words."""
    import base64
    import gzip

    def h(path, data, perms):
        return {"acl": [{"id": "anyone", "scheme": "world", "permissions": perms}],
                "path": path, "data": base64.b64encode(data).decode()}

    trees = [{"h": h("/zn-app", b"root data", ["read", "admin", "delete", "write", "create"]),
              "t": [{"h": h("/zn-app/conf", b'{"x": 1}', ["read"]), "t": []},
                    {"h": h("/zn-app/empty", b"", ["read", "write"]), "t": []}]},
             {"h": h("/zn-other", b"\x00\xff", ["read", "admin", "delete", "write", "create"]), "t": []}]
    file = tmp_path / "znode-export-2025-01-01T00:00:00.000Z.gz"
    file.write_bytes(gzip.compress(json.dumps(trees, separators=(",", ":")).encode()))
    return file


def test_import_zoonavigator_gzip_export(page, node, zk, fresh, tmp_path):
    file = _zoonavigator_export(tmp_path)
    open_node(page, node, fresh)
    page.get_by_test_id("import-btn").click()
    page.get_by_test_id("import-file").set_input_files(str(file))
    shot(page, "import-dialog")
    page.get_by_test_id("import-submit").click()
    expect(page.locator("#toast")).to_contain_text("Imported 4 node(s)")
    expect(page.locator('[data-testid="child-row"][data-path$="/zn-app"]')).to_be_visible()
    assert zk.get(fresh + "/zn-app")[0] == b"root data"
    assert zk.get(fresh + "/zn-app/conf")[0] == b'{"x": 1}'
    assert zk.get(fresh + "/zn-app/empty")[0] == b""
    assert zk.get(fresh + "/zn-other")[0] == b"\x00\xff"
    acl, _ = zk.get_acls(fresh + "/zn-app/conf")
    assert [(a.id.scheme, a.id.id, a.perms) for a in acl] == [("world", "anyone", 1)]
    acl, _ = zk.get_acls(fresh + "/zn-app/empty")
    assert [(a.id.scheme, a.id.id, a.perms) for a in acl] == [("world", "anyone", 1 | 2)]
    # Importing again: the nodes exist, nothing is created (one multi, all or nothing).
    page.get_by_test_id("import-btn").click()
    page.get_by_test_id("import-file").set_input_files(str(file))
    page.get_by_test_id("import-submit").click()
    expect(page.locator('#dlg-import [data-role="error"]')).to_contain_text("NodeExists")


def test_cluster_page_members_sessions_ephemerals_watches(page, node, zk, fresh):
    eph = zk.create(fresh + "/worker-", b"", ephemeral=True, sequence=True)
    zk.exists(fresh + "/watched", watch=lambda event: None)
    page.goto(node.url + "/ui/cluster")
    member = page.get_by_test_id("member")
    expect(member).to_have_count(1)
    expect(member).to_have_attribute("data-leader", "true")  # standalone: serves as leader
    cells = member.locator("td")
    expect(cells.nth(2)).to_contain_text("standalone")
    expect(cells.nth(3)).to_contain_text("0x")  # zxid
    assert int(cells.nth(4).inner_text()) >= 1  # connections (kazoo's)
    expect(cells.nth(5)).to_contain_text(" ms")  # latency
    assert int(cells.nth(6).inner_text()) > 1  # znodes
    sid = "0x%x" % zk.client_id[0]
    row = page.get_by_test_id("cluster-sessions").locator("tr", has_text=sid)
    expect(row).to_contain_text(eph)
    shot(page, "cluster-sessions")
    row.get_by_role("link", name=eph).click()
    page.wait_for_url(re.compile(re.escape(eph) + "$"))
    expect(page.get_by_test_id("stat-ephemeralOwner")).to_contain_text(sid)
    page.goto(node.url + "/ui/cluster")
    expect(page.get_by_test_id("watches").locator("tr", has_text=fresh + "/watched")).to_contain_text(sid)
    page.get_by_test_id("cluster-sessions").get_by_role("link", name=sid).click()
    expect(page.locator(f'[id="s-{sid}"]')).to_contain_text(eph)


def test_keyboard_only(page, node, zk, fresh):
    zk.create(fresh + "/kb/alpha", b"one", makepath=True)
    zk.create(fresh + "/kb/beta", b"two")
    page.goto(node.url + "/ui/")
    # g: address bar; a path and Enter navigates.
    page.keyboard.press("g")
    expect(page.get_by_test_id("address-bar")).to_be_focused()
    page.keyboard.type(fresh + "/kb")
    page.keyboard.press("Enter")
    page.wait_for_url(node.ui(fresh + "/kb"))
    expect(page.get_by_test_id("live-status")).to_have_attribute("data-ready", "true")
    # /: filter; Enter opens the first match.
    page.keyboard.press("/")
    expect(page.get_by_test_id("child-filter")).to_be_focused()
    page.keyboard.type("bet")
    expect(page.get_by_test_id("child-count")).to_have_text("1 of 2")
    page.keyboard.press("Enter")
    page.wait_for_url(node.ui(fresh + "/kb/beta"))
    expect(page.get_by_test_id("live-status")).to_have_attribute("data-ready", "true")
    # Tabs move with the arrow keys.
    page.get_by_test_id("tab-data").focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_test_id("tab-stat")).to_be_focused()
    expect(page.get_by_test_id("stat")).to_be_visible()
    page.keyboard.press("ArrowLeft")
    expect(page.get_by_test_id("editor")).to_be_visible()
    # Edit and Ctrl+S without the mouse; Escape leaves the editor, u goes up.
    page.get_by_test_id("editor").focus()
    page.keyboard.press("Control+a")
    page.keyboard.type("typed")
    page.keyboard.press("Control+s")
    expect(page.locator("#toast")).to_contain_text("Saved (version 1)")
    assert zk.get(fresh + "/kb/beta")[0] == b"typed"
    page.keyboard.press("Escape")
    page.keyboard.press("u")
    page.wait_for_url(node.ui(fresh + "/kb"))
    # The tree: arrow keys move between entries and expand them.
    expect(page.get_by_test_id("live-status")).to_have_attribute("data-ready", "true")
    current = page.locator('#tree a[aria-current="page"]')
    expect(current).to_have_text("kb")
    current.focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator(f'#tree li[data-path="{fresh}/kb"]')).to_have_attribute("aria-expanded", "true")
    expect(page.locator("#tree a", has_text="alpha")).to_be_visible()
    page.keyboard.press("ArrowDown")
    expect(page.locator("#tree a", has_text="alpha")).to_be_focused()
    # n: the create dialog, typed and submitted with Enter.
    page.keyboard.press("Escape")
    page.locator("body").focus()
    page.keyboard.press("n")
    expect(page.get_by_test_id("create-name")).to_be_focused()
    page.keyboard.type("gamma")
    page.keyboard.press("Enter")
    page.wait_for_url(node.ui(fresh + "/kb/gamma"))


def _no_horizontal_overflow(page):
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_phone_width_is_usable(browser, node, zk, fresh):
    zk.create(fresh + "/mobile/config", b'{"a": 1}', makepath=True)
    zk.create(fresh + "/mobile/config/child", b"")
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    try:
        open_node(page, node, fresh + "/mobile/config")
        expect(page.get_by_test_id("editor")).to_be_visible()
        expect(page.get_by_test_id("save-btn")).to_be_visible()
        expect(page.get_by_test_id("child-row")).to_have_count(1)
        assert _no_horizontal_overflow(page), "the node page scrolls sideways on a phone"
        box = page.get_by_test_id("editor").bounding_box()
        assert box["width"] >= 300, f"editor too narrow on a phone: {box}"
        shot(page, "phone-node")
        page.get_by_test_id("editor").fill('{"a": 2}')
        page.get_by_test_id("save-btn").tap()
        expect(page.locator("#toast")).to_contain_text("Saved (version 1)")
        for url in ("/ui/cluster", "/ui/sessions", "/ui/search?q=mobile"):
            page.goto(node.url + url)
            assert _no_horizontal_overflow(page), f"{url} scrolls sideways on a phone"
        shot(page, "phone-search")
    finally:
        ctx.close()


def _luminance(css_color):
    nums = [float(x) for x in re.findall(r"[\d.]+", css_color)[:3]]
    return sum(nums) / 3


def test_dark_theme_follows_system_and_toggle(page, node, zk, fresh):
    zk.create(fresh + "/themed", b'{"dark": true}')
    page.emulate_media(color_scheme="dark")
    open_node(page, node, fresh + "/themed")
    bg = lambda sel: page.evaluate(f"() => getComputedStyle(document.querySelector('{sel}')).backgroundColor")
    fg = lambda sel: page.evaluate(f"() => getComputedStyle(document.querySelector('{sel}')).color")
    assert _luminance(bg("body")) < 80, bg("body")
    assert _luminance(fg("body")) > 150, fg("body")
    assert _luminance(bg("#code")) < 80, bg("#code")
    shot(page, "dark-theme")
    # The toggle overrides the system preference and is remembered.
    page.get_by_test_id("theme-toggle").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    assert _luminance(bg("body")) > 200
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    assert _luminance(bg("body")) > 200
    page.get_by_test_id("theme-toggle").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    assert _luminance(bg("body")) < 80
