"""Failure states that tell the truth: a missing node names what is missing, a forbidden one
which identities were used and which would help, actions that cannot work are disabled, a
lost connection is a banner and a failed save says why."""

import time

from kazoo.security import make_acl, make_digest_acl
from playwright.sync_api import expect

from conftest import shot, start_node
import zkharness as h

ACTIONS = ("create-btn", "copy-btn", "move-btn", "export-btn", "import-btn", "delete-btn")


def test_nonode_page_names_what_is_missing_and_offers_to_create_it(page, node, zk, fresh):
    missing = fresh + "/a/b/c"
    resp = page.goto(node.ui(missing))
    assert resp.status == 404
    err = page.get_by_test_id("node-error")
    expect(err).to_have_attribute("data-error", "NoNode")
    expect(page.get_by_test_id("nonode-help")).to_contain_text(f"Missing: {fresh}/a")
    expect(page.get_by_test_id("nearest")).to_have_text(fresh)
    for a in ACTIONS:
        expect(page.get_by_test_id(a)).to_be_disabled()
    # No "Children 0 / No data" as if the node were there and empty.
    expect(page.get_by_test_id("children")).to_be_hidden()
    expect(page.get_by_text("No data to show")).to_be_hidden()
    shot(page, "nonode")
    page.get_by_test_id("create-here").click()
    expect(page.get_by_test_id("node-error")).to_have_count(0)
    assert zk.exists(missing)


def test_noauth_page_names_identities_and_a_mistyped_password(page, node, zk, fresh):
    path = fresh + "/guarded"
    # alice may read; everyone may read the ACL (ADMIN), so the page can say who would help.
    zk.create(path, b"alice's", acl=[make_digest_acl("alice", "wonderland", all=True), make_acl("world", "anyone", admin=True)])
    page.goto(node.ui(path))
    help_ = page.get_by_test_id("noauth-help")
    expect(help_).to_contain_text("ip:127.0.0.1")
    expect(help_).to_contain_text("digest:alice:")
    expect(help_).to_contain_text("not logged in")
    for a in ACTIONS:
        expect(page.get_by_test_id(a)).to_be_disabled()
    # A wrong password: the session holds alice's name, but the page says it grants nothing.
    page.locator('[data-testid="node-error"] a').click()
    expect(page.get_by_test_id("login-explain")).to_contain_text("does not check the password")
    page.fill('input[name="user"]', "alice")
    page.fill('input[name="password"]', "wonderlnad")
    page.get_by_test_id("login-submit").click()
    page.wait_for_url(node.ui(path))
    expect(page.get_by_test_id("node-error")).to_have_attribute("data-error", "NoAuth")
    expect(page.get_by_test_id("noauth-help")).to_contain_text("probably mistyped")
    shot(page, "noauth-mistyped")


def test_noauth_without_readable_acl_says_so(page, node, zk, fresh):
    path = fresh + "/sealed"
    zk.create(path, b"x", acl=[make_digest_acl("carol", "pw", all=True)])
    page.goto(node.ui(path))
    expect(page.get_by_test_id("noauth-help")).to_contain_text("not readable with these identities")


def test_save_while_the_member_is_gone_says_so(browser, tmp_path):
    own = start_node()
    ctx = browser.new_context(viewport={"width": 1360, "height": 860})
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    try:
        import requests
        requests.post(own.api("/znodes/doc"), json={"data": "v0"}).raise_for_status()
        page.goto(own.ui("/doc"))
        expect(page.get_by_test_id("live-status")).to_have_attribute("data-ready", "true")
        page.get_by_test_id("editor").fill("typed while it dies")
        own.server.proc.kill()
        own.server.proc.wait(timeout=10)
        expect(page.get_by_test_id("conn-lost")).to_be_visible(timeout=5_000)
        shot(page, "connection-lost")
        page.get_by_test_id("save-btn").click()
        toast = page.locator("#toast .err")
        expect(toast).to_contain_text("no answer from")
        expect(toast).to_contain_text("Nothing was saved")
        assert "Failed to fetch" not in toast.inner_text()
        expect(page.get_by_test_id("editor")).to_have_value("typed while it dies")
    finally:
        ctx.close()
        h.destroy(own.server)
